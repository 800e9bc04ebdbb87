package vm

import (
	"fmt"

	"go.starlark.net/starlark"
)

// systemHandle is a system object named by the root, as method code sees
// it: a name to send messages to — knowledge_catalog.search("rivers", 3)
// — although methods otherwise reach only self and what their slots hold.
// Each attribute is a send to the object the root names at the time of
// the call, in the caller's transaction; reading data slots through it is
// not offered (a handle has no slots of its own to show).
type systemHandle struct{ name string }

var _ starlark.HasAttrs = systemHandle{}

func (h systemHandle) String() string        { return "<system object " + h.name + ">" }
func (h systemHandle) Type() string          { return "system object" }
func (h systemHandle) Freeze()               {}
func (h systemHandle) Truth() starlark.Bool  { return starlark.True }
func (h systemHandle) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: system object") }
func (h systemHandle) AttrNames() []string   { return nil }

func (h systemHandle) Attr(selector string) (starlark.Value, error) {
	return &systemSend{root: h.name, selector: selector}, nil
}

// systemSend is a message to a system object, sent when called.
type systemSend struct{ root, selector string }

func (s *systemSend) String() string        { return fmt.Sprintf("<message %s to %s>", s.selector, s.root) }
func (s *systemSend) Type() string          { return "message" }
func (s *systemSend) Freeze()               {}
func (s *systemSend) Truth() starlark.Bool  { return starlark.True }
func (s *systemSend) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: message") }
func (s *systemSend) Name() string          { return s.root + "." + s.selector }

func (s *systemSend) CallInternal(thread *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ex, err := executionFor(thread, s.Name())
	if err != nil {
		return nil, err
	}
	oid, err := ex.tx.Resolve(s.root)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name(), err)
	}
	o, err := ex.object(oid)
	if err != nil {
		return nil, err
	}
	if err := ex.checkDepth(thread, s.selector); err != nil {
		return nil, err
	}
	return o.send(thread, s.selector, args, kwargs)
}

package cycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/vm"
)

// generatedForbids are the built-ins generated methods may not use:
// method() would let code that passed the guardian install code that
// never did, once it runs for real.
var generatedForbids = map[string]string{
	"method": "a generated method may not make methods (what it installed would never be audited)",
}

// errRollback ends the sandbox transaction without committing it.
var errRollback = errors.New("cycle: sandbox rolled back")

// validate runs the guardian's audit and then the tests and the original
// call against the candidate installed in the receiver, each in a
// transaction of its own that is always rolled back: what one test
// changes cannot make another, or the call, pass. It returns the first
// failure, with every message verbatim (clipped), or nil if the
// candidate passed.
func (m *Machine) validate(ctx context.Context, c *Cycle) (*Failure, error) {
	args := len(c.Mission.Args)
	var kwargs []string
	for _, kw := range c.Mission.Kwargs {
		kwargs = append(kwargs, kw.Name)
	}
	if c.Mission.Brief != "" && len(c.Mission.Args) == 0 {
		args = -1 // a brief names no call to check the arity against
	}
	if err := vm.Audit(c.Code, vm.AuditOptions{Selector: c.Plan.Selector, Args: args, Kwargs: kwargs, Forbid: generatedForbids}); err != nil {
		return &Failure{Attempt: c.Attempt, Kind: FailureAudit, Message: withHint(err.Error(), vm.Hint(c.Code, err))}, nil
	}
	if msg, err := m.dataSlot(ctx, c); err != nil || msg != "" {
		if err != nil {
			return nil, err
		}
		return &Failure{Attempt: c.Attempt, Kind: FailureAudit, Message: msg}, nil
	}
	if c.Mission.Brief != "" && len(c.Tests) == 0 {
		return &Failure{Attempt: c.Attempt, Kind: FailureTest, Message: "there are no tests, and a brief names no call to run: nothing shows the method works (write tests)"}, nil
	}
	runs := make([]func(tx *image.Tx) string, 0, len(c.Tests)+1)
	for i, t := range c.Tests {
		runs = append(runs, func(tx *image.Tx) string { return m.runTest(ctx, tx, c, i, t) })
	}
	if c.Mission.Brief == "" {
		runs = append(runs, func(tx *image.Tx) string { return m.runCall(ctx, tx, c) })
	}
	var msgs []string
	for _, run := range runs {
		msg, err := m.sandbox(ctx, c, run)
		if err != nil {
			return nil, err
		}
		if msg != "" {
			msgs = append(msgs, msg)
		}
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	return &Failure{Attempt: c.Attempt, Kind: FailureTest, Message: strings.Join(msgs, "\n")}, nil
}

// dataSlot says why the candidate cannot be installed, if the receiver's
// slot of its name holds data.
func (m *Machine) dataSlot(ctx context.Context, c *Cycle) (string, error) {
	var msg string
	err := m.db.View(ctx, func(tx *image.Tx) error {
		o, err := tx.Object(c.Mission.Receiver)
		if err != nil {
			return err
		}
		if v, ok := o.Get(c.Plan.Selector); ok {
			if _, isMethod := v.(*image.Method); !isMethod {
				msg = fmt.Sprintf("the receiver's slot %s holds data (%s), not a method: installing would overwrite it", c.Plan.Selector, clip(image.Repr(v), 100))
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	return msg, nil
}

// sandbox runs fn with the candidate installed in the receiver, in a
// transaction that is always rolled back, and returns fn's failure
// message, if any.
func (m *Machine) sandbox(ctx context.Context, c *Cycle, fn func(tx *image.Tx) string) (string, error) {
	var msg string
	err := m.db.Update(ctx, func(tx *image.Tx) error {
		tx.Note(fmt.Sprintf("cycle %d: sandbox (rolled back)", c.ID))
		o, err := tx.Object(c.Mission.Receiver)
		if err != nil {
			return err
		}
		if err := o.Set(c.Plan.Selector, &image.Method{Source: c.Code}); err != nil {
			return err
		}
		msg = fn(tx)
		return errRollback
	})
	if err != nil && !errors.Is(err, errRollback) {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	return msg, nil
}

// maxTestMessage bounds what one test's failure says (a test can raise,
// or answer, megabytes).
const maxTestMessage = 2000

func (m *Machine) runTest(ctx context.Context, tx *image.Tx, c *Cycle, i int, t Test) string {
	name := t.Name
	if name == "" {
		name = fmt.Sprintf("test %d", i+1)
	}
	globals, err := sandboxGlobals(tx, c.Mission.Receiver)
	if err != nil {
		return fmt.Sprintf("%s: %v", name, err)
	}
	// A comparison's sides are evaluated once each, in this execution:
	// what a side changes happens once, as when the test runs whole.
	res, cmp, err := m.vm.EvalTest(ctx, tx, t.Expr, globals)
	if t.Fails != "" {
		return refusalFailure(name+": "+t.Expr, t.Fails, res, err)
	}
	var msg string
	switch {
	case err != nil:
		msg = fmt.Sprintf("%s: %s raised an error:\n%v", name, t.Expr, err)
	case cmp != nil:
		msg = fmt.Sprintf("%s: %s is False, want True: %s", name, t.Expr, explainComparison(cmp))
	case !image.Equal(res.Value, image.Bool(true)):
		msg = fmt.Sprintf("%s: %s is %s, want True", name, t.Expr, clip(res.Repr, maxSlotRepr))
	default:
		return ""
	}
	return withHint(clip(msg, maxTestMessage), vm.TestHint(t.Expr, res.Value, err))
}

// refusalFailure judges what must fail: "" when it failed with a method
// error mentioning words, else what happened instead.
func refusalFailure(what, words string, res vm.Result, err error) string {
	var ve *vm.Error
	switch {
	case err == nil:
		return fmt.Sprintf("%s answered %s; it must fail, with an error mentioning %q (call fail(...))", what, clip(res.Repr, maxSlotRepr), words)
	case !errors.As(err, &ve):
		return clip(fmt.Sprintf("%s failed, but not as a method's error (%v); it must call fail(...) with a message mentioning %q", what, err, words), maxTestMessage)
	case !strings.Contains(strings.ToLower(ve.Msg), strings.ToLower(words)):
		return clip(fmt.Sprintf("%s failed with %q; its error must mention %q", what, ve.Msg, words), maxTestMessage)
	}
	return ""
}

// withHint is a failure message followed by what to write instead of
// the habit that caused it, if any: the message stays whole and first.
func withHint(msg, hint string) string {
	if hint == "" {
		return msg
	}
	return msg + "\n" + hint
}

// explainComparison says what the sides of a comparison that did not hold were,
// so that a model sees what its method answered against what the test
// wants: "word_count("a b  c") returned 3, the test wants 4". The side
// that is a constant is what the test expects; when neither side (or
// both) is, it says what each was.
func explainComparison(c *vm.Comparison) string {
	subject, expected, flipped := c.Left, c.Right, false
	if c.Left.Constant && !c.Right.Constant {
		subject, expected, flipped = c.Right, c.Left, true
	}
	if subject.Constant || !expected.Constant {
		return fmt.Sprintf("%s, and %s", sideWas(c.Left), sideWas(c.Right))
	}
	return fmt.Sprintf("%s, the test wants %s", sideWas(subject), wants(c.Op, flipped, expected.Repr))
}

func sideWas(s vm.Side) string {
	if s.Call {
		return s.Source + " returned " + s.Repr
	}
	return s.Source + " is " + s.Repr
}

// wants is what a test comparing a value by op wants of it, given the
// expected side's repr; flipped says the expected side stands left.
func wants(op string, flipped bool, expected string) string {
	switch op {
	case "==":
		return expected
	case "!=":
		return "anything but " + expected
	case "in":
		if flipped {
			return "it to contain " + expected
		}
		return "it to be in " + expected
	case "not in":
		if flipped {
			return "it not to contain " + expected
		}
		return "it not to be in " + expected
	}
	if flipped { // 4 < x wants x > 4
		op = map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
	}
	return map[string]string{"<": "less than ", "<=": "at most ", ">": "more than ", ">=": "at least "}[op] + expected
}

// runCall runs the original call, which must answer without error.
func (m *Machine) runCall(ctx context.Context, tx *image.Tx, c *Cycle) string {
	start := time.Now()
	res, err := m.vm.Send(ctx, tx, c.Mission.Receiver, c.Plan.Selector, c.Mission.Args, c.Mission.Kwargs)
	if c.Plan.Refuses != "" {
		return refusalFailure("the original call "+callText(c.Mission), c.Plan.Refuses, res, err)
	}
	if err != nil {
		return withHint(clip(fmt.Sprintf("the original call %s raised an error after %s:\n%v", callText(c.Mission), time.Since(start).Round(time.Millisecond), err), maxTestMessage), vm.Hint(c.Code, err))
	} else if res.Value == nil {
		return fmt.Sprintf("the original call %s answered %s, which cannot be kept in the image (return data, not a function)", callText(c.Mission), clip(res.Repr, maxSlotRepr))
	}
	return ""
}

// sandboxGlobals binds the root's names and self.
func sandboxGlobals(tx *image.Tx, receiver store.OID) (map[string]image.Value, error) {
	root, err := tx.Root()
	if err != nil {
		return nil, err
	}
	g := map[string]image.Value{"root": root.Ref()}
	for _, s := range root.Slots() {
		if r, ok := s.Value.(image.Ref); ok {
			g[s.Name] = r
		}
	}
	g["self"] = image.Ref(receiver)
	return g, nil
}

// install puts the validated method in the receiver with its provenance,
// keeping the version it replaces (for revert).
func install(tx *image.Tx, c *Cycle, now time.Time) error {
	o, err := tx.Object(c.Mission.Receiver)
	if err != nil {
		return fmt.Errorf("install: receiver: %w", err)
	}
	meta := &image.Dict{}
	set := func(k string, v image.Value) error { return meta.Set(image.String(k), v) }
	var tests []image.Value
	for _, t := range c.Tests {
		tests = append(tests, image.String(t.Expr))
	}
	var personas, models []image.Value
	for _, p := range c.Personas() {
		personas = append(personas, image.String(p))
	}
	for _, md := range c.models() {
		models = append(models, image.String(md))
	}
	if v, ok := o.Get(c.Plan.Selector); ok {
		if _, isMethod := v.(*image.Method); !isMethod {
			// It did not when the candidate was validated.
			return fmt.Errorf("install: the receiver's slot %s now holds data (%s), not a method: not overwritten", c.Plan.Selector, clip(image.Repr(v), 100))
		}
	}
	previous, err := previousVersion(o, c.Plan.Selector)
	if err != nil {
		return err
	}
	for _, kv := range []struct {
		k string
		v image.Value
	}{
		{"origin", image.String("cycle")}, {"cycle", image.Int(c.ID)}, {"personas", image.NewList(personas...)},
		{"models", image.NewList(models...)}, {"attempts", image.Int(c.Attempt)}, {"tests", image.NewList(tests...)},
		{"installed_at", image.String(now.UTC().Format(time.RFC3339Nano))}, {"previous", previous},
		{"sources", sourcesValue(c)},
	} {
		if err := set(kv.k, kv.v); err != nil {
			return err
		}
	}
	if im := c.Mission.Improve; im != nil {
		// The audit that proposed it: revertable with method revert,
		// and traceable to the findings that asked for it.
		for _, kv := range []struct {
			k string
			v image.Value
		}{{"improves", image.String(im.Kind)}, {"audit", image.Int(im.Audit)}, {"proposal", image.Int(im.Proposal)}} {
			if err := set(kv.k, kv.v); err != nil {
				return err
			}
		}
	}
	return o.Set(c.Plan.Selector, &image.Method{Source: c.Code, Meta: meta})
}

// previousVersion is what a slot held before an install, as revert
// needs it: None (no slot), {"method": source, "meta": meta without its
// own previous}, or {"value": v}. One level is kept, so provenance does
// not grow without bound.
func previousVersion(o *image.Object, name string) (image.Value, error) {
	v, ok := o.Get(name)
	if !ok {
		return image.None, nil
	}
	d := &image.Dict{}
	if m, isMethod := v.(*image.Method); isMethod {
		meta := &image.Dict{}
		if m.Meta != nil {
			for k, mv := range m.Meta.All() {
				if !image.Equal(k, image.String("previous")) {
					if err := meta.Set(k, mv); err != nil {
						return nil, err
					}
				}
			}
		}
		if err := d.Set(image.String("method"), image.String(m.Source)); err != nil {
			return nil, err
		}
		return d, d.Set(image.String("meta"), meta)
	}
	return d, d.Set(image.String("value"), v)
}

// ErrNoPrevious is returned by Revert when a method keeps no previous
// version (it was not installed by a cycle).
var ErrNoPrevious = errors.New("cycle: no previous version to revert to")

// Revert restores what slot name of o held before a cycle installed the
// method there (deleting the slot if it held nothing).
func Revert(o *image.Object, name string) (restored string, err error) {
	v, ok := o.Get(name)
	m, isMethod := v.(*image.Method)
	if !ok || !isMethod || m.Meta == nil {
		return "", fmt.Errorf("%w: %s is not a method a cycle installed", ErrNoPrevious, name)
	}
	prev, ok := m.Meta.Get(image.String("previous"))
	if !ok {
		return "", fmt.Errorf("%w: %s has no recorded previous version", ErrNoPrevious, name)
	}
	if prev == image.None {
		_, err := o.Delete(name)
		return "nothing (the slot was removed)", err
	}
	d, isDict := prev.(*image.Dict)
	if !isDict {
		return "", fmt.Errorf("%w: %s's previous version is %s", ErrNoPrevious, name, image.Repr(prev))
	}
	if src, ok := d.Get(image.String("method")); ok {
		s, isString := src.(image.String)
		if !isString {
			return "", fmt.Errorf("%w: %s's previous source is %s, not a string", ErrNoPrevious, name, clip(image.Repr(src), 100))
		}
		meta, _ := d.Get(image.String("meta"))
		md, _ := meta.(*image.Dict)
		return "the previous method", o.Set(name, &image.Method{Source: string(s), Meta: md})
	}
	if val, ok := d.Get(image.String("value")); ok {
		return "the previous value", o.Set(name, val)
	}
	return "", fmt.Errorf("%w: %s's previous version is unreadable", ErrNoPrevious, name)
}

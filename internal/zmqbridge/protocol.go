package zmqbridge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/vm"
)

// Backend carries out the bridge's commands; the uvm provides it. Results
// are plain data (maps, lists, strings, numbers, image values) the codec
// can encode.
type Backend interface {
	Send(ctx context.Context, target, selector string, args []image.Value, kwargs []image.Slot) (vm.Result, error)
	Eval(ctx context.Context, code string) (vm.Result, error)
	Inspect(ctx context.Context, target string) (any, error)
	History(ctx context.Context, target string, limit int) (any, error)
	Log(ctx context.Context, limit int, before store.TID) (any, error)
	Undo(ctx context.Context, tid store.TID) (any, error)
	// InitiateCycle is the seed's initiate_cognitive_cycle: a mission for
	// an object, answered at once with the cycle's handle. Without a mind
	// it answers vm.ErrNoMind.
	InitiateCycle(ctx context.Context, target string, brief string) (any, error)
}

// Error kinds in replies; clients switch on these.
const (
	KindBadRequest     = "bad_request"
	KindUnknownCommand = "unknown_command"
	KindNotFound       = "not_found"
	KindNoMind         = "no_mind"
	KindLimit          = "limit"
	KindConflict       = "conflict"
	KindMethodError    = "method_error"
	KindShuttingDown   = "shutting_down"
	KindLearningFailed = "learning_failed"
	KindStillLearning  = "still_learning"
	KindCorrupt        = "corrupt"
	KindNoSpace        = "no_space"
	KindReadOnly       = "read_only"
	KindInternal       = "internal"
)

// ErrUnknownCommand is wrapped by errors for commands the bridge lacks.
var ErrUnknownCommand = errors.New("zmqbridge: unknown command")

// commands maps each command to its handler.
var commands = map[string]func(ctx context.Context, b Backend, req map[string]any) (any, error){
	"ping": func(ctx context.Context, b Backend, req map[string]any) (any, error) {
		return "pong", nil
	},
	"send": func(ctx context.Context, b Backend, req map[string]any) (any, error) {
		target, err := stringArg(req, "target", true)
		if err != nil {
			return nil, err
		}
		selector, err := stringArg(req, "selector", true)
		if err != nil {
			return nil, err
		}
		if selector == "" {
			return nil, fmt.Errorf("%w: \"selector\" is empty", ErrBadRequest)
		}
		args, err := listArg(req, "args")
		if err != nil {
			return nil, err
		}
		kwargs, err := mapArg(req, "kwargs")
		if err != nil {
			return nil, err
		}
		how, learning, err := learnArgs(req)
		if err != nil {
			return nil, err
		}
		var res vm.Result
		if learning {
			res, err = sendLearning(ctx, b, target, selector, args, kwargs, how)
		} else {
			res, err = b.Send(ctx, target, selector, args, kwargs)
		}
		return resultMap(res), err
	},
	"eval": func(ctx context.Context, b Backend, req map[string]any) (any, error) {
		code, err := stringArg(req, "code", true)
		if err != nil {
			return nil, err
		}
		res, err := b.Eval(ctx, code)
		return resultMap(res), err
	},
	"inspect": func(ctx context.Context, b Backend, req map[string]any) (any, error) {
		target, err := stringArg(req, "target", true)
		if err != nil {
			return nil, err
		}
		return b.Inspect(ctx, target)
	},
	"history": func(ctx context.Context, b Backend, req map[string]any) (any, error) {
		target, err := stringArg(req, "target", true)
		if err != nil {
			return nil, err
		}
		limit, err := intArg(req, "limit", 20)
		if err != nil {
			return nil, err
		}
		return b.History(ctx, target, limit)
	},
	"log": func(ctx context.Context, b Backend, req map[string]any) (any, error) {
		limit, err := intArg(req, "limit", 20)
		if err != nil {
			return nil, err
		}
		var before store.TID
		if s, err := stringArg(req, "before", false); err != nil {
			return nil, err
		} else if s != "" {
			if before, err = store.ParseTID(s); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
			}
		}
		return b.Log(ctx, limit, before)
	},
	"undo": func(ctx context.Context, b Backend, req map[string]any) (any, error) {
		s, err := stringArg(req, "tid", true)
		if err != nil {
			return nil, err
		}
		tid, err := store.ParseTID(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
		return b.Undo(ctx, tid)
	},
	"initiate_cognitive_cycle": func(ctx context.Context, b Backend, req map[string]any) (any, error) {
		target, err := stringArg(req, "target_oid", true)
		if err != nil {
			return nil, err
		}
		brief, err := stringArg(req, "mission_brief", true)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(brief) == "" {
			return nil, fmt.Errorf("%w: \"mission_brief\" is empty: say what the object should learn", ErrBadRequest)
		}
		return b.InitiateCycle(ctx, target, brief)
	},
}

func resultMap(res vm.Result) map[string]any {
	return map[string]any{"value": res.Value, "repr": res.Repr, "output": res.Output}
}

func stringArg(req map[string]any, name string, required bool) (string, error) {
	v, ok := req[name]
	if !ok || v == nil {
		if required {
			return "", fmt.Errorf("%w: %q is required", ErrBadRequest, name)
		}
		return "", nil
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case image.Ref:
		return store.OID(v).String(), nil
	case int64:
		if name == "target" || name == "target_oid" {
			return fmt.Sprint(v), nil
		}
	}
	return "", fmt.Errorf("%w: %q must be a string, got %s", ErrBadRequest, name, typeName(v))
}

func intArg(req map[string]any, name string, def int) (int, error) {
	v, ok := req[name]
	if !ok || v == nil {
		return def, nil
	}
	n, ok := v.(int64)
	if !ok || n < 0 || n > math.MaxInt32 {
		return 0, fmt.Errorf("%w: %q must be a non-negative integer, got %v", ErrBadRequest, name, v)
	}
	return int(n), nil
}

func listArg(req map[string]any, name string) ([]image.Value, error) {
	v, ok := req[name]
	if !ok || v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: %q must be an array, got %s", ErrBadRequest, name, typeName(v))
	}
	out := make([]image.Value, len(list))
	for i, x := range list {
		iv, err := ToImage(x)
		if err != nil {
			return nil, fmt.Errorf("%w: %s[%d]: %v", ErrBadRequest, name, i, err)
		}
		out[i] = iv
	}
	return out, nil
}

func mapArg(req map[string]any, name string) ([]image.Slot, error) {
	v, ok := req[name]
	if !ok || v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: %q must be a map, got %s", ErrBadRequest, name, typeName(v))
	}
	var out []image.Slot
	for _, k := range keysSorted(m) {
		iv, err := ToImage(m[k])
		if err != nil {
			return nil, fmt.Errorf("%w: %s.%s: %v", ErrBadRequest, name, k, err)
		}
		out = append(out, image.Slot{Name: k, Value: iv})
	}
	return out, nil
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case bool:
		return "a boolean"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case string:
		return "a string"
	case []byte:
		return "binary"
	case []any:
		return "an array"
	case map[string]any:
		return "a map"
	case image.Ref:
		return "an object reference"
	}
	return fmt.Sprintf("%T", v)
}

// errorKind classifies an error for the reply.
func errorKind(err error) string {
	var le *vm.LimitError
	var ve *vm.Error
	switch {
	case errors.Is(err, ErrBadRequest):
		return KindBadRequest
	case errors.Is(err, ErrLearningFailed):
		return KindLearningFailed
	case errors.Is(err, ErrStillLearning):
		return KindStillLearning
	case errors.Is(err, ErrUnknownCommand):
		return KindUnknownCommand
	case errors.Is(err, vm.ErrNoMind):
		return KindNoMind
	case errors.Is(err, store.ErrNoSpace):
		return KindNoSpace
	case errors.Is(err, store.ErrCorrupt):
		return KindCorrupt
	case errors.Is(err, store.ErrReadOnly):
		return KindReadOnly
	case errors.As(err, &le), errors.Is(err, store.ErrTooLarge):
		return KindLimit
	case errors.Is(err, store.ErrConflict):
		return KindConflict
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrNoTransaction), errors.Is(err, ErrNotFound):
		return KindNotFound
	case errors.As(err, &ve):
		return KindMethodError
	case errors.Is(err, ErrShuttingDown):
		return KindShuttingDown
	}
	return KindInternal
}

// errorPath is the file an error about the store's files names, or "":
// the one a full file system refused, or the damaged one.
func errorPath(err error) string {
	var ns *store.NoSpaceError
	var de *store.DamageError
	switch {
	case errors.As(err, &ns):
		return ns.Path
	case errors.As(err, &de):
		return de.Path
	}
	return ""
}

// ErrNotFound may be wrapped by a Backend for an unknown target.
var ErrNotFound = errors.New("zmqbridge: not found")

// ErrShuttingDown is returned for requests that arrive during shutdown.
var ErrShuttingDown = errors.New("zmqbridge: shutting down")

// handle runs one decoded request and builds its reply.
func handle(ctx context.Context, b Backend, req map[string]any) map[string]any {
	reply := map[string]any{"id": req["id"]}
	name, _ := req["command"].(string)
	fn, ok := commands[name]
	var result any
	var err error
	switch {
	case req["command"] == nil:
		err = fmt.Errorf("%w: \"command\" is required", ErrBadRequest)
	case name == "":
		err = fmt.Errorf("%w: \"command\" must be a string, got %s", ErrBadRequest, typeName(req["command"]))
	case !ok:
		err = fmt.Errorf("%w %q (known: %s)", ErrUnknownCommand, name, knownCommands())
	default:
		result, err = fn(ctx, b, req)
	}
	if err != nil {
		reply["ok"] = false
		e := map[string]any{"kind": errorKind(err), "message": err.Error()}
		var ce cycleError
		if errors.As(err, &ce) && ce.CycleID() > 0 {
			e["cycle"] = ce.CycleID()
		}
		if path := errorPath(err); path != "" {
			e["path"] = path
		}
		reply["error"] = e
		return reply
	}
	reply["ok"] = true
	reply["result"] = result
	return reply
}

func knownCommands() string {
	names := keysSorted(commands)
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}

func keysSorted[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

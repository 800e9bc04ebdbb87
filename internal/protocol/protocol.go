package protocol

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"batos/internal/command"
	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/store"
)

// Handle translates between the protocol's plain data and the command
// layer: each request's arguments are read from the decoded map into a
// typed request (wrong types are bad_request), the command runs on the
// service, and its typed result is written back as plain data (the wire
// forms are in wire.go and docs/protocol.md).

// ErrServerClosing answers requests that arrive while the server stops.
var ErrServerClosing = command.WithKind(command.ErrShuttingDown, errors.New("the server is stopping; retry against the next one"))

// handler serves one command.
type handler = func(ctx context.Context, svc command.Service, req map[string]any) (any, error)

// Handler serves one command: its arguments in req, its result as plain
// data.
type Handler = handler

// Register adds a command of a transport's own (the bridge's cancel,
// about its connection's requests), taking the given fields; it must be
// called before anything is served (from an init function).
func Register(name string, fields []string, h Handler) {
	if _, dup := commands[name]; dup {
		panic("protocol: command " + name + " registered twice")
	}
	commands[name] = h
	commandFields[name] = fields
}

// commands maps each command to its handler.
var commands = map[string]handler{
	"ping": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		return "pong", nil
	},
	"send": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		var r command.SendRequest
		var err error
		if r.Target, err = stringArg(req, "target", true); err != nil {
			return nil, err
		}
		if r.Selector, err = stringArg(req, "selector", true); err != nil {
			return nil, err
		}
		if r.Args, err = listArg(req, "args"); err != nil {
			return nil, err
		}
		if r.Kwargs, err = mapArg(req, "kwargs"); err != nil {
			return nil, err
		}
		if r.Learn, err = learnArgs(req); err != nil {
			return nil, err
		}
		if err := r.Check(); err != nil {
			return nil, err
		}
		res, err := svc.Send(ctx, r)
		return resultMap(res), err
	},
	"eval": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		r := command.EvalRequest{}
		var err error
		if r.Code, err = stringArg(req, "code", true); err != nil {
			return nil, err
		}
		if r.Session, err = stringArg(req, "session", false); err != nil {
			return nil, err
		}
		if r.Self, err = stringArg(req, "self", false); err != nil {
			return nil, err
		}
		if err := r.Check(); err != nil {
			return nil, err
		}
		res, err := svc.Eval(ctx, r)
		m := resultMap(res)
		if r.Session != "" && len(res.Dropped) > 0 {
			// What the session could not carry to its next eval (without
			// a session nothing carries).
			m["dropped"] = res.Dropped
		}
		return m, err
	},
	"inspect": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		target, err := stringArg(req, "target", true)
		if err != nil {
			return nil, err
		}
		at, err := stringArg(req, "tid", false)
		if err != nil {
			return nil, err
		}
		var view command.ObjectView
		if at == "" {
			view, err = svc.Inspect(ctx, target)
		} else {
			var tid store.TID
			if tid, err = command.ResolveTID(ctx, svc, at); err != nil {
				return nil, err
			}
			view, err = svc.InspectAt(ctx, target, tid)
		}
		if err != nil {
			return nil, err
		}
		return objectViewMap(view), nil
	},
	"history": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		target, err := stringArg(req, "target", true)
		if err != nil {
			return nil, err
		}
		limit, err := intArg(req, "limit", 20)
		if err != nil {
			return nil, err
		}
		revs, err := svc.History(ctx, target, limit)
		if err != nil {
			return nil, err
		}
		return revisionsList(revs), nil
	},
	"log": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		limit, err := intArg(req, "limit", 20)
		if err != nil {
			return nil, err
		}
		q := store.LogQuery{Limit: limit}
		if s, err := stringArg(req, "before", false); err != nil {
			return nil, err
		} else if s != "" {
			// As undo takes it: 16 digits, or a prefix of one TID's.
			if q.Before, err = command.ResolveTID(ctx, svc, s); err != nil {
				return nil, err
			}
		}
		txns, err := svc.Log(ctx, q)
		if err != nil {
			return nil, err
		}
		out := make([]any, len(txns))
		for i, t := range txns {
			out[i] = txMap(t)
		}
		return out, nil
	},
	"undo": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		s, err := stringArg(req, "tid", true)
		if err != nil {
			return nil, err
		}
		tid, err := command.ResolveTID(ctx, svc, s)
		if err != nil {
			return nil, err
		}
		u, err := svc.Undo(ctx, tid)
		if err != nil {
			return nil, err
		}
		return undoneMap(u), nil
	},
	"pack": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		var r command.PackRequest
		switch v := req["compact"].(type) {
		case nil:
		case bool:
			r.Compact = v
		default:
			return nil, fmt.Errorf("%w: \"compact\" must be true or false, not %T", command.ErrBadRequest, v)
		}
		s, err := stringArg(req, "before", false)
		if err != nil {
			return nil, err
		}
		if s != "" {
			if r.Before, err = command.ParseBefore(s, time.Now()); err != nil {
				return nil, fmt.Errorf("%w: \"before\": %v", command.ErrBadRequest, err)
			}
		}
		if err := r.Check(); err != nil {
			return nil, err
		}
		p, err := svc.Pack(ctx, r)
		if err != nil {
			return nil, err
		}
		return packedMap(r, p), nil
	},
	"stats": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		st, err := svc.Stats(ctx)
		if err != nil {
			return nil, err
		}
		return statsMap(st), nil
	},
	"verify": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		rep, err := svc.Verify(ctx)
		if err != nil {
			return nil, err
		}
		return reportMap(rep), nil
	},
	"method_set": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		var r command.MethodRequest
		var err error
		if r.Target, err = stringArg(req, "target", true); err != nil {
			return nil, err
		}
		if r.Name, err = stringArg(req, "name", true); err != nil {
			return nil, err
		}
		if r.Source, err = stringArg(req, "source", true); err != nil {
			return nil, err
		}
		if r.From, err = stringArg(req, "from", false); err != nil {
			return nil, err
		}
		c, err := svc.SetMethod(ctx, r)
		if err != nil {
			return nil, err
		}
		return methodChangeMap(c), nil
	},
	"method_revert": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		target, err := stringArg(req, "target", true)
		if err != nil {
			return nil, err
		}
		name, err := stringArg(req, "name", true)
		if err != nil {
			return nil, err
		}
		c, err := svc.RevertMethod(ctx, target, name)
		if err != nil {
			return nil, err
		}
		return methodChangeMap(c), nil
	},
	"slot_remove": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		target, err := stringArg(req, "target", true)
		if err != nil {
			return nil, err
		}
		name, err := stringArg(req, "name", true)
		if err != nil {
			return nil, err
		}
		r, err := svc.RemoveSlot(ctx, target, name)
		if err != nil {
			return nil, err
		}
		return map[string]any{"tid": r.TID.String(), "removed": r.Removed}, nil
	},
	"persona_list": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		rep, err := svc.Personas(ctx, "")
		if err != nil {
			return nil, err
		}
		return personaReportPlain(rep)
	},
	"persona_show": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		name, err := stringArg(req, "name", true)
		if err != nil {
			return nil, err
		}
		if name == "" {
			return nil, fmt.Errorf("%w: \"name\" is empty", command.ErrBadRequest)
		}
		rep, err := svc.Personas(ctx, name)
		if err != nil {
			return nil, err
		}
		return personaReportPlain(rep)
	},
	"persona_set": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		name, err := stringArg(req, "name", true)
		if err != nil {
			return nil, err
		}
		edit, err := personaEditArgs(req)
		if err != nil {
			return nil, err
		}
		c, err := svc.EditPersona(ctx, name, edit)
		if err != nil {
			return nil, err
		}
		return personaChangeMap(c), nil
	},
	"persona_warm": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		names, err := stringsArg(req, "names")
		if err != nil {
			return nil, err
		}
		rs, err := svc.WarmPersonas(ctx, names)
		if err != nil {
			return nil, err
		}
		return warmResultsList(rs), nil
	},
	"initiate_cognitive_cycle": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		target, err := stringArg(req, "target_oid", true)
		if err != nil {
			return nil, err
		}
		brief, err := stringArg(req, "mission_brief", true)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(brief) == "" {
			return nil, fmt.Errorf("%w: \"mission_brief\" is empty: say what the object should learn", command.ErrBadRequest)
		}
		h, err := svc.InitiateCycle(ctx, target, brief)
		if err != nil {
			return nil, err
		}
		return handleMap(h), nil
	},
	"cycle_list": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		limit, err := intArg(req, "limit", 20)
		if err != nil {
			return nil, err
		}
		views, err := svc.ListCycles(ctx, limit)
		if err != nil {
			return nil, err
		}
		out := make([]any, len(views))
		for i := range views {
			if out[i], err = cycleViewPlain(&views[i]); err != nil {
				return nil, err
			}
		}
		return out, nil
	},
	"cycle_show": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		id, err := idArg(req, "cycle")
		if err != nil {
			return nil, err
		}
		v, err := svc.ShowCycle(ctx, id)
		if err != nil {
			return nil, err
		}
		return cycleViewPlain(v)
	},
	"cycle_retry": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		id, err := idArg(req, "cycle")
		if err != nil {
			return nil, err
		}
		h, err := svc.RetryCycle(ctx, id)
		if err != nil {
			return nil, err
		}
		return handleMap(h), nil
	},
	"cycle_cancel": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		id, err := idArg(req, "cycle")
		if err != nil {
			return nil, err
		}
		c, err := svc.CancelCycle(ctx, id)
		if err != nil {
			return nil, err
		}
		return cancelledMap(c), nil
	},
	"catalog_add": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		r, err := catalogAddArgs(req)
		if err != nil {
			return nil, err
		}
		res, err := svc.CatalogAdd(ctx, r)
		if err != nil {
			return nil, err
		}
		return plainView(res)
	},
	"catalog_search": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		r, err := catalogSearchArgs(req)
		if err != nil {
			return nil, err
		}
		res, err := svc.CatalogSearch(ctx, r)
		if err != nil {
			return nil, err
		}
		return plainView(res)
	},
	"catalog_list": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		res, err := svc.CatalogList(ctx)
		if err != nil {
			return nil, err
		}
		return plainView(res)
	},
	"catalog_show": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		doc, err := docArg(req)
		if err != nil {
			return nil, err
		}
		res, err := svc.CatalogShow(ctx, doc)
		if err != nil {
			return nil, err
		}
		return plainView(res)
	},
	"catalog_remove": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		doc, err := docArg(req)
		if err != nil {
			return nil, err
		}
		res, err := svc.CatalogRemove(ctx, doc)
		if err != nil {
			return nil, err
		}
		return plainView(res)
	},
	"catalog_reindex": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		res, err := svc.CatalogReindex(ctx)
		if err != nil {
			return nil, err
		}
		return plainView(res)
	},
	"catalog_stats": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		res, err := svc.CatalogStats(ctx)
		if err != nil {
			return nil, err
		}
		return plainView(res)
	},
}

func stringArg(req map[string]any, name string, required bool) (string, error) {
	v, ok := req[name]
	if !ok || v == nil {
		if required {
			return "", fmt.Errorf("%w: %q is required", command.ErrBadRequest, name)
		}
		return "", nil
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case image.Ref:
		return store.OID(v).String(), nil
	case int64:
		if name == "target" || name == "target_oid" || name == "self" {
			return fmt.Sprint(v), nil
		}
	}
	return "", fmt.Errorf("%w: %q must be a string, got %s", command.ErrBadRequest, name, typeName(v))
}

func intArg(req map[string]any, name string, def int) (int, error) {
	v, ok := req[name]
	if !ok || v == nil {
		return def, nil
	}
	n, ok := v.(int64)
	if !ok || n < 0 || n > math.MaxInt32 {
		return 0, fmt.Errorf("%w: %q must be a non-negative integer, got %s", command.ErrBadRequest, name, argText(v))
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
		return nil, fmt.Errorf("%w: %q must be an array, got %s", command.ErrBadRequest, name, typeName(v))
	}
	out := make([]image.Value, len(list))
	for i, x := range list {
		iv, err := image.ValueOf(x)
		if err != nil {
			return nil, fmt.Errorf("%w: %s[%d]: %v", command.ErrBadRequest, name, i, err)
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
		return nil, fmt.Errorf("%w: %q must be a map, got %s", command.ErrBadRequest, name, typeName(v))
	}
	var out []image.Slot
	for _, k := range keysSorted(m) {
		iv, err := image.ValueOf(m[k])
		if err != nil {
			return nil, fmt.Errorf("%w: %s.%s: %v", command.ErrBadRequest, name, k, err)
		}
		out = append(out, image.Slot{Name: k, Value: iv})
	}
	return out, nil
}

// personaEditArgs reads persona_set's changes: a field left out is left
// as it is.
func personaEditArgs(req map[string]any) (command.PersonaEdit, error) {
	var e command.PersonaEdit
	for _, f := range []struct {
		name string
		to   **string
	}{{"role", &e.Role}, {"system_prompt", &e.SystemPrompt}, {"model", &e.Model}} {
		if req[f.name] == nil {
			continue
		}
		s, err := stringArg(req, f.name, true)
		if err != nil {
			return e, err
		}
		*f.to = &s
	}
	switch t := req["temperature"].(type) {
	case nil:
	case float64:
		e.Temperature = &t
	case int64:
		f := float64(t)
		e.Temperature = &f
	default:
		return e, fmt.Errorf("%w: \"temperature\" must be a number, got %s", command.ErrBadRequest, argText(t))
	}
	var err error
	if e.Adapter, err = stringArg(req, "adapter", false); err != nil {
		return e, err
	}
	if e.ClearAdapter, err = boolArg(req, "clear_adapter"); err != nil {
		return e, err
	}
	if e.Create, err = boolArg(req, "create"); err != nil {
		return e, err
	}
	return e, nil
}

func boolArg(req map[string]any, name string) (bool, error) {
	switch v := req[name].(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	default:
		return false, fmt.Errorf("%w: %q must be true or false, got %s", command.ErrBadRequest, name, argText(v))
	}
}

// stringsArg reads an optional array of strings.
func stringsArg(req map[string]any, name string) ([]string, error) {
	v, ok := req[name]
	if !ok || v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: %q must be an array of strings, got %s", command.ErrBadRequest, name, typeName(v))
	}
	out := make([]string, len(l))
	for i, x := range l {
		if out[i], ok = x.(string); !ok {
			return nil, fmt.Errorf("%w: %s[%d] must be a string, got %s", command.ErrBadRequest, name, i, typeName(x))
		}
	}
	return out, nil
}

// textArg reads a string argument that is text and nothing else (no
// object reference or number standing for one).
func textArg(req map[string]any, name string, required bool) (string, error) {
	switch v := req[name].(type) {
	case nil:
		if required {
			return "", fmt.Errorf("%w: %q is required", command.ErrBadRequest, name)
		}
		return "", nil
	case string:
		return v, nil
	default:
		return "", fmt.Errorf("%w: %q must be a string, got %s", command.ErrBadRequest, name, argText(v))
	}
}

// metaArg reads a map of strings to strings, at most
// command.MaxCatalogMeta pairs.
func metaArg(req map[string]any, name string) (map[string]string, error) {
	v, ok := req[name]
	if !ok || v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: %q must be a map of strings to strings, got %s", command.ErrBadRequest, name, argText(v))
	}
	if len(m) > command.MaxCatalogMeta {
		return nil, fmt.Errorf("%w: %q holds %d pairs, over the limit of %d", command.ErrBadRequest, name, len(m), command.MaxCatalogMeta)
	}
	out := make(map[string]string, len(m))
	for _, k := range keysSorted(m) {
		s, ok := m[k].(string)
		if !ok {
			return nil, fmt.Errorf("%w: %s.%s must be a string, got %s", command.ErrBadRequest, name, clipArg(k), argText(m[k]))
		}
		out[k] = s
	}
	return out, nil
}

// catalogAddArgs reads catalog_add's arguments: "paths", or "text" with
// "name" and an optional "title"; and an optional "meta".
func catalogAddArgs(req map[string]any) (command.CatalogAddRequest, error) {
	var r command.CatalogAddRequest
	hasPaths, hasText := req["paths"] != nil, req["text"] != nil
	var err error
	switch {
	case hasPaths && hasText:
		return r, fmt.Errorf("%w: give \"paths\" or \"text\", not both", command.ErrBadRequest)
	case !hasPaths && !hasText:
		return r, fmt.Errorf("%w: \"paths\" (files and directories the server reads) or \"text\" (with its \"name\") is required", command.ErrBadRequest)
	case hasPaths && (req["name"] != nil || req["title"] != nil):
		return r, fmt.Errorf("%w: \"name\" and \"title\" go with \"text\"; a file's name is its path", command.ErrBadRequest)
	case hasPaths:
		if r.Paths, err = stringsArg(req, "paths"); err != nil {
			return r, err
		}
		if len(r.Paths) == 0 {
			return r, fmt.Errorf("%w: \"paths\" is empty", command.ErrBadRequest)
		}
	default:
		if r.Text, err = textArg(req, "text", true); err != nil {
			return r, err
		}
		if r.Name, err = textArg(req, "name", true); err != nil {
			return r, err
		}
		if r.Name == "" {
			return r, fmt.Errorf("%w: \"name\" is empty: a text needs a name, its path in the catalog", command.ErrBadRequest)
		}
		if r.Title, err = textArg(req, "title", false); err != nil {
			return r, err
		}
	}
	if r.Meta, err = metaArg(req, "meta"); err != nil {
		return r, err
	}
	return r, r.Check()
}

// catalogSearchArgs reads catalog_search's arguments.
func catalogSearchArgs(req map[string]any) (command.CatalogSearchRequest, error) {
	var r command.CatalogSearchRequest
	var err error
	if r.Query, err = textArg(req, "query", true); err != nil {
		return r, err
	}
	if r.K, err = intArg(req, "k", 0); err != nil {
		return r, err
	}
	if r.Methods, err = boolArg(req, "methods"); err != nil {
		return r, err
	}
	if r.Doc, err = textArg(req, "doc", false); err != nil {
		return r, err
	}
	if r.Meta, err = metaArg(req, "meta"); err != nil {
		return r, err
	}
	return r, r.Check()
}

// docArg reads the document catalog_show and catalog_remove name: its
// ID or its path.
func docArg(req map[string]any) (string, error) {
	doc, err := textArg(req, "doc", true)
	if err != nil {
		return "", err
	}
	return doc, command.CheckDoc(doc)
}

// learnArgs reads a send's "learn" and "timeout_ms".
func learnArgs(req map[string]any) (how command.Learn, err error) {
	mode, err := stringArg(req, "learn", false)
	if err != nil {
		return how, err
	}
	switch {
	case req["learn"] == nil, mode == "wait":
	case mode == "handle":
		how.Handle = true
	default:
		return how, fmt.Errorf("%w: \"learn\" must be \"wait\" or \"handle\", got %q", command.ErrBadRequest, clipArg(mode))
	}
	if v := req["timeout_ms"]; v != nil {
		ms, ok := v.(int64)
		if !ok || ms < 0 || ms > math.MaxInt32 {
			return how, fmt.Errorf("%w: \"timeout_ms\" must be a non-negative integer of milliseconds (at most %d), got %s", command.ErrBadRequest, math.MaxInt32, argText(v))
		}
		if how.Handle {
			return how, fmt.Errorf("%w: \"timeout_ms\" bounds a wait, and \"learn\": \"handle\" does not wait", command.ErrBadRequest)
		}
		how.Timeout = time.Duration(ms) * time.Millisecond
	}
	return how, nil
}

// idArg reads a cycle ID: a positive integer, or a string such as "12",
// "c12" or "#12".
func idArg(req map[string]any, name string) (int64, error) {
	v, ok := req[name]
	if !ok || v == nil {
		return 0, fmt.Errorf("%w: %q is required", command.ErrBadRequest, name)
	}
	switch x := v.(type) {
	case int64:
		if x > 0 {
			return x, nil
		}
	case string:
		if n, err := cycle.ParseID(x); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%w: %q must be a cycle ID (a positive integer, or a string like \"c12\"), got %s", command.ErrBadRequest, name, argText(v))
}

// argText shows a bad argument briefly.
func argText(v any) string {
	switch x := v.(type) {
	case int64, float64, bool:
		return fmt.Sprintf("%s %v", typeName(v), x)
	case string:
		return fmt.Sprintf("the string %q", clipArg(x))
	}
	return typeName(v)
}

func clipArg(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
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

// commandFields lists the arguments each command reads, beside "id" and
// "command": any other field is refused, so a typo in an optional
// argument is caught rather than ignored. Keep it in step with the
// handlers and the arguments column of docs/protocol.md; a test checks
// that every command has an entry. A command without one takes any
// field.
var commandFields = map[string][]string{
	"ping":                     nil,
	"send":                     {"target", "selector", "args", "kwargs", "learn", "timeout_ms"},
	"eval":                     {"code", "session", "self"},
	"inspect":                  {"target", "tid"},
	"history":                  {"target", "limit"},
	"log":                      {"limit", "before"},
	"undo":                     {"tid"},
	"pack":                     {"before", "compact"},
	"stats":                    nil,
	"verify":                   nil,
	"method_set":               {"target", "name", "source", "from"},
	"method_revert":            {"target", "name"},
	"slot_remove":              {"target", "name"},
	"initiate_cognitive_cycle": {"target_oid", "mission_brief"},
	"cycle_list":               {"limit"},
	"cycle_show":               {"cycle"},
	"cycle_retry":              {"cycle"},
	"cycle_cancel":             {"cycle"},
	"persona_list":             nil,
	"persona_show":             {"name"},
	"persona_set":              {"name", "role", "system_prompt", "model", "temperature", "adapter", "clear_adapter", "create"},
	"persona_warm":             {"names"},
	"catalog_add":              {"paths", "text", "name", "title", "meta"},
	"catalog_search":           {"query", "k", "methods", "doc", "meta"},
	"catalog_list":             nil,
	"catalog_show":             {"doc"},
	"catalog_remove":           {"doc"},
	"catalog_reindex":          nil,
	"catalog_stats":            nil,
	"method_stats":             {"target"},
	"audit_run":                nil,
	"audit_list":               {"limit"},
	"audit_show":               {"audit"},
	"proposal_list":            {"all"},
	"proposal_show":            {"proposal"},
	"proposal_accept":          {"proposal"},
	"proposal_reject":          {"proposal", "reason"},
}

// maxUnknownNamed bounds the unknown fields an error names.
const maxUnknownNamed = 8

// checkFields refuses the fields of req that command name does not read.
func checkFields(name string, req map[string]any) error {
	accepted, ok := commandFields[name]
	if !ok {
		return nil
	}
	var unknown []string
	for k := range req {
		if k != "id" && k != "command" && !slices.Contains(accepted, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	named := make([]string, 0, min(len(unknown), maxUnknownNamed))
	for _, k := range unknown[:cap(named)] {
		named = append(named, fmt.Sprintf("%q", clipArg(k)))
	}
	list := strings.Join(named, ", ")
	if len(unknown) > len(named) {
		list += fmt.Sprintf(" and %d more", len(unknown)-len(named))
	}
	takes := "no arguments"
	if len(accepted) > 0 {
		takes = "only " + strings.Join(accepted, ", ")
	}
	noun := "field"
	if len(unknown) > 1 {
		noun = "fields"
	}
	return fmt.Errorf("%w: unknown %s %s: %s takes %s (beside \"id\" and \"command\")", command.ErrBadRequest, noun, list, name, takes)
}

// checkTexts refuses a request holding a string, anywhere in its
// arguments, that is not valid UTF-8 (command.CheckText), naming where it
// is. The id is not read, only echoed.
func checkTexts(req map[string]any) error {
	// A request has few fields: their names are sorted on the stack.
	var buf [8]string
	keys := buf[:0]
	for k := range req {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "id" {
			continue
		}
		if err := checkText(k, req[k]); err != nil {
			return err
		}
	}
	return nil
}

func checkText(field string, v any) error {
	switch v := v.(type) {
	case string:
		return command.CheckText(field, v)
	case []any:
		for i, x := range v {
			if err := checkText(fmt.Sprintf("%s[%d]", field, i), x); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, k := range keysSorted(v) {
			if err := command.CheckText(field+" key", k); err != nil {
				return err
			}
			if err := checkText(field+"."+k, v[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Handle runs one decoded request (a map of plain values, as a transport
// decoded it: nil, bool, int64, float64, string, []byte, []any,
// map[string]any, image.Ref) and builds its reply: {"id", "ok",
// "result"} or {"id", "ok", "error"}. Every transport serves the commands
// through it, so they cannot differ.
func Handle(ctx context.Context, svc command.Service, req map[string]any) map[string]any {
	start := time.Now()
	reply := map[string]any{"id": req["id"]}
	name, _ := req["command"].(string)
	fn, ok := commands[name]
	var result any
	var err error
	label := unknownCommand
	if ok {
		label = name
	}
	defer func() { observeRequest(transportOf(ctx), label, start, err) }()
	switch {
	case req["command"] == nil:
		err = fmt.Errorf("%w: \"command\" is required", command.ErrBadRequest)
	case name == "":
		err = fmt.Errorf("%w: \"command\" must be a string, got %s", command.ErrBadRequest, typeName(req["command"]))
	case !ok:
		err = fmt.Errorf("%w %q (known: %s)", command.ErrUnknownCommand, name, knownCommands())
	default:
		if err = checkFields(name, req); err == nil {
			err = checkTexts(req)
		}
		if err == nil {
			result, err = fn(ctx, svc, req)
			err = interrupted(ctx, err)
		}
	}
	if err != nil {
		reply["ok"] = false
		reply["error"] = ErrorMap(err)
		return reply
	}
	reply["ok"] = true
	reply["result"] = result
	return reply
}

// ErrorMap is an error as a reply carries it: its kind and message, and
// the cycle or file it is about.
func ErrorMap(err error) map[string]any {
	e := map[string]any{"kind": string(command.KindOf(err)), "message": command.Message(err)}
	if id := command.CycleOf(err); id > 0 {
		e["cycle"] = id
	}
	if line, col := command.PositionOf(err); line > 0 {
		e["line"], e["col"] = int64(line), int64(col)
	}
	if path := command.PathOf(err); path != "" {
		e["path"] = path
	}
	if blocked := command.BlockedBy(err); len(blocked) > 0 {
		oids := slices.Sorted(maps.Keys(blocked))
		list := make([]any, len(oids))
		for i, oid := range oids {
			list[i] = map[string]any{"oid": image.Ref(oid), "tid": blocked[oid].String()}
		}
		e["blocked_by"] = list
	}
	return e
}

// ReplyError reads an error reply back into the command layer's error.
func ReplyError(e map[string]any) error {
	kind, _ := e["kind"].(string)
	msg, _ := e["message"].(string)
	path, _ := e["path"].(string)
	id, _ := e["cycle"].(int64)
	line, _ := e["line"].(int64)
	col, _ := e["col"].(int64)
	var blocked map[store.OID]store.TID
	for _, x := range list(e["blocked_by"]) {
		b, _ := x.(map[string]any)
		oid, isRef := b["oid"].(image.Ref)
		tid, err := store.ParseTID(str(b["tid"]))
		if isRef && err == nil {
			if blocked == nil {
				blocked = map[store.OID]store.TID{}
			}
			blocked[store.OID(oid)] = tid
		}
	}
	return &command.Error{Kind: command.Kind(kind), Message: msg, Path: path, Cycle: id, Line: int(line), Col: int(col), Blocked: blocked}
}

func knownCommands() string {
	return strings.Join(keysSorted(commands), ", ")
}

func keysSorted[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

package vm

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// Builtin is a name method code can use without defining it.
type Builtin struct {
	// Name is the name as code writes it: "clone", "len", "json".
	Name string
	// Usage shows how it is called: "clone(obj, **slots)", or for a
	// module the members worth naming, "json.encode(x), json.decode(s)".
	// It is the name alone for Starlark's own built-ins.
	Usage string
	// Universal is true for Starlark's own built-ins (len, sorted, ...),
	// false for those this package adds (clone, send, json, ...).
	Universal bool
	// Members are a module's member names, sorted; nil for a function.
	Members []string
}

// usages are the calling forms of this package's built-ins, as prompts
// show them. A built-in missing here is shown by its name.
var usages = map[string]string{
	"clone":             "clone(obj, **slots)",
	"clone_object":      "clone_object(obj, **slots)",
	"has_slot":          "has_slot(obj, name)",
	"json":              "json.encode(x), json.decode(s)",
	"knowledge_catalog": `knowledge_catalog.search(query, k) (passages of the documents in the catalog: a list of dicts with "text", "title", "path", "position" and "score")`,
	"math":              "math.* (floor, sqrt, pi, ...)",
	"method":            "method(source)",
	"new":               "new(parents, **slots)",
	"oid":               "oid(obj)",
	"parents":           "parents(obj)",
	"send":              `send(obj, "selector", *args)`,
	"set_slot":          "set_slot(obj, name, value)",
	"slots":             "slots(obj)",
	"time":              "time.now()",
}

// Builtins returns every built-in method code can name — this package's
// and Starlark's universal functions (not the constants None, True and
// False) — sorted by name. It is the table prompts that teach the
// dialect are generated from; what it lists is what is bound, no more.
// Each call returns a fresh slice; it is safe for concurrent use.
func Builtins() []Builtin {
	var out []Builtin
	for name, v := range builtins {
		if _, universal := starlark.Universe[name]; universal {
			continue // a guarded universal, listed below
		}
		b := Builtin{Name: name, Usage: name}
		if u, ok := usages[name]; ok {
			b.Usage = u
		}
		if m, ok := v.(*starlarkstruct.Module); ok {
			for k := range m.Members {
				b.Members = append(b.Members, k)
			}
			sort.Strings(b.Members)
		}
		out = append(out, b)
	}
	for name, v := range starlark.Universe {
		if _, fn := v.(*starlark.Builtin); fn {
			out = append(out, Builtin{Name: name, Usage: name, Universal: true})
		}
	}
	slices.SortFunc(out, func(a, b Builtin) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// ErrNotExpression is returned (wrapped) by CheckExpr for text that
// parses as statements, not as one expression.
var ErrNotExpression = errors.New("vm: a statement, not an expression")

// CheckExpr reports whether text is one Starlark expression in the
// dialect Eval runs (a test of a method is one), without running it. A
// syntax error says where ("line 1, col 8: got identifier, want
// newline"); text that parses only as statements (x = 1, two lines)
// wraps ErrNotExpression. It is safe for concurrent use.
func CheckExpr(text string) error {
	_, err := evalOptions.ParseExpr("expr", text, 0)
	if err == nil {
		return nil
	}
	if _, ferr := evalOptions.Parse("expr", text, 0); ferr == nil {
		return ErrNotExpression
	}
	var se syntax.Error
	if errors.As(err, &se) {
		return fmt.Errorf("line %d, col %d: %s", se.Pos.Line, se.Pos.Col, se.Msg)
	}
	return err
}

// UndefinedNames lists the free names of the expression text that are
// neither built-ins nor known (a test sees self and the root's names):
// what it names that does not exist. text must parse as an expression
// (CheckExpr); a text that does not is reported as CheckExpr reports it.
func UndefinedNames(text string, known func(name string) bool) ([]string, error) {
	expr, err := evalOptions.ParseExpr("expr", text, 0)
	if err != nil {
		return nil, CheckExpr(text)
	}
	var out []string
	seen := map[string]bool{}
	isKnown := func(name string) bool { return isPredeclared(name) || known(name) }
	if _, err := resolve.ExprOptions(evalOptions, expr, isKnown, starlark.Universe.Has); err != nil {
		var rl resolve.ErrorList
		if !errors.As(err, &rl) {
			return nil, err
		}
		for _, e := range rl {
			name, ok := strings.CutPrefix(e.Msg, "undefined: ")
			if !ok || seen[name] {
				continue
			}
			seen[name] = true
			out = append(out, name)
		}
	}
	return out, nil
}

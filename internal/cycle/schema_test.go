package cycle

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
)

// schemas are every schema the cycle sends, with an answer batos takes
// and the parser of that answer.
var schemas = []struct {
	name   string
	schema json.RawMessage
	good   string
	parse  func(answer string) error
}{
	{"plan", planSchema, goodPlan, func(a string) error { _, _, err := parsePlan(a, ""); return err }},
	{"method", methodSchema, goodDisputingMethod, func(a string) error { _, _, err := parseMethod(a); return err }},
}

// goodDisputingMethod is goodMethod with a dispute, so that every
// property of the method's schema is in it.
var goodDisputingMethod = strings.TrimSuffix(strings.TrimSpace(goodMethod), "}") +
	`, "disputes": [{"test": "names itself", "reason": "the mission asks for slots, not a name"}]}`

// TestSchemasStrict: every schema is one strict structured-output
// servers accept: each object lists all its properties in required and
// sets additionalProperties to false.
func TestSchemasStrict(t *testing.T) {
	for _, s := range schemas {
		var root map[string]any
		if err := json.Unmarshal(s.schema, &root); err != nil {
			t.Fatalf("%s schema: %v", s.name, err)
		}
		objects := 0
		walkSchema(root, s.name, func(path string, node map[string]any) {
			if !slices.Contains(types(node), "object") {
				return
			}
			objects++
			props, _ := node["properties"].(map[string]any)
			var names []string
			for k := range props {
				names = append(names, k)
			}
			sort.Strings(names)
			var req []string
			for _, r := range node["required"].([]any) {
				req = append(req, r.(string))
			}
			sort.Strings(req)
			if len(names) == 0 || !slices.Equal(names, req) {
				t.Errorf("%s: properties %v, required %v; want every property required", path, names, req)
			}
			if ap, ok := node["additionalProperties"].(bool); !ok || ap {
				t.Errorf("%s: additionalProperties is %v, want false", path, node["additionalProperties"])
			}
		})
		if objects < 2 {
			t.Errorf("%s schema: walked %d objects; want the answer and its tests", s.name, objects)
		}
	}
}

// TestSchemasNullable: a property the schema makes nullable is one
// batos reads null as absent for, and takes; setting any other to null
// is refused with a message naming it. So the schema's idea of what is
// optional is the parser's.
func TestSchemasNullable(t *testing.T) {
	for _, s := range schemas {
		var root map[string]any
		if err := json.Unmarshal(s.schema, &root); err != nil {
			t.Fatal(err)
		}
		walkProperties(root, nil, func(path []string, prop map[string]any) {
			var answer any
			if err := json.Unmarshal([]byte(s.good), &answer); err != nil {
				t.Fatal(err)
			}
			setPath(answer, path, nil)
			b, _ := json.Marshal(answer)
			err := s.parse(string(b))
			name := s.name + "." + strings.Join(path, ".")
			switch nullable := slices.Contains(types(prop), "null"); {
			case nullable && err != nil:
				t.Errorf("%s is nullable, but null is refused: %v", name, err)
			case !nullable && err == nil:
				t.Errorf("%s is not nullable, but null is taken", name)
			case !nullable && !strings.Contains(err.Error(), field(path)):
				t.Errorf("%s null refused with %q, which does not name it", name, err)
			}
		})
	}
}

// field is the name a refusal must use for path: its last field, or
// for an element of a list, "test" or "sub-question" (as "test 1").
func field(path []string) string {
	last := path[len(path)-1]
	if last != "0" {
		return last
	}
	return map[string]string{"tests": "test 1", "sub_questions": "sub-question 1"}[path[len(path)-2]]
}

func types(node map[string]any) []string {
	switch ty := node["type"].(type) {
	case string:
		return []string{ty}
	case []any:
		var out []string
		for _, x := range ty {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

// walkSchema calls fn on node and every schema under it.
func walkSchema(node map[string]any, path string, fn func(path string, node map[string]any)) {
	fn(path, node)
	if props, ok := node["properties"].(map[string]any); ok {
		for k, p := range props {
			walkSchema(p.(map[string]any), path+"."+k, fn)
		}
	}
	if items, ok := node["items"].(map[string]any); ok {
		walkSchema(items, path+"[]", fn)
	}
}

// walkProperties calls fn on every property under node, with its path
// through the answer (an array's first element: "tests", "0", "expr").
func walkProperties(node map[string]any, path []string, fn func(path []string, prop map[string]any)) {
	if props, ok := node["properties"].(map[string]any); ok {
		for k, p := range props {
			pp := append(slices.Clone(path), k)
			fn(pp, p.(map[string]any))
			walkProperties(p.(map[string]any), pp, fn)
		}
	}
	if items, ok := node["items"].(map[string]any); ok {
		walkProperties(items, append(slices.Clone(path), "0"), fn)
	}
}

// setPath sets the value at path in a decoded JSON answer, if it is
// there (an empty list has no element 0).
func setPath(v any, path []string, to any) {
	for i, k := range path {
		last := i == len(path)-1
		switch x := v.(type) {
		case map[string]any:
			if last {
				x[k] = to
				return
			}
			v = x[k]
		case []any:
			if len(x) == 0 {
				return
			}
			if last {
				x[0] = to
				return
			}
			v = x[0]
		default:
			return
		}
	}
}

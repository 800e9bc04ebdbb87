package image_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/image"
	"batos/internal/store"
)

// decodeJSON decodes one JSON text as clients of ValueFromJSON do, with
// json.Number for numbers.
func decodeJSON(tb testing.TB, s string) any {
	tb.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		tb.Fatalf("decode %s: %v", s, err)
	}
	return x
}

func TestValueFromJSON(t *testing.T) {
	dict := func(kv ...image.Value) *image.Dict {
		d := &image.Dict{}
		for i := 0; i < len(kv); i += 2 {
			if err := d.Set(kv[i], kv[i+1]); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	tests := []struct {
		name string
		json string
		want image.Value
	}{
		{"null", `null`, image.None},
		{"bool", `true`, image.Bool(true)},
		{"int", `-42`, image.Int(-42)},
		{"int64 max", `9223372036854775807`, image.Int(math.MaxInt64)},
		{"float", `1.5`, image.Float(1.5)},
		{"integral float", `2.0`, image.Float(2)},
		{"exponent", `1e3`, image.Float(1000)},
		{"string", `"ada"`, image.String("ada")},
		{"list", `[1, "a", [null]]`, image.NewList(image.Int(1), image.String("a"), image.NewList(image.None))},
		{"dict keys sorted", `{"b": 1, "a": {"c": []}}`, dict(image.String("a"), dict(image.String("c"), image.NewList()), image.String("b"), image.Int(1))},
		{"ref", `{"$ref": "oid:7"}`, image.Ref(7)},
		{"bare ref", `{"$ref": "7"}`, image.Ref(7)},
		{"ref in a list", `[{"$ref": "oid:1"}]`, image.NewList(image.Ref(1))},
		{"other tags are dicts", `{"$method": "def f(self): pass"}`, dict(image.String("$method"), image.String("def f(self): pass"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := image.ValueFromJSON(decodeJSON(t, tt.json))
			if err != nil {
				t.Fatal(err)
			}
			if !image.Equal(got, tt.want) {
				t.Errorf("got %s, want %s", image.Repr(got), image.Repr(tt.want))
			}
		})
	}
	if got, err := image.ValueFromJSON(2.5); err != nil || !image.Equal(got, image.Float(2.5)) {
		t.Errorf("a float64: got %v, %v; want 2.5", got, err)
	}
}

func TestValueFromJSONErrors(t *testing.T) {
	deep := strings.Repeat("[", image.MaxDepth+1) + strings.Repeat("]", image.MaxDepth+1)
	tests := []struct {
		name string
		x    any
		want error
	}{
		{"int too big", decodeJSON(t, `9223372036854775808`), image.ErrIntRange},
		{"float too big", decodeJSON(t, `1e999`), image.ErrInvalid},
		{"not a number", json.Number("NaN"), image.ErrInvalid},
		{"number with a plus", json.Number("+1"), image.ErrInvalid},
		{"ref OID 0", decodeJSON(t, `{"$ref": "oid:0"}`), store.ErrInvalid},
		{"ref not an OID", decodeJSON(t, `[{"$ref": "genesis"}]`), store.ErrInvalid},
		{"ref not a string", decodeJSON(t, `{"$ref": 7}`), image.ErrInvalid},
		{"ref with another key", decodeJSON(t, `{"a": {"$ref": "oid:7", "x": 1}}`), image.ErrInvalid},
		{"too deep", decodeJSON(t, deep), image.ErrTooDeep},
		{"not JSON data", struct{}{}, image.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := image.ValueFromJSON(tt.x)
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, %v; want an error wrapping %v", v, err, tt.want)
			}
		})
	}
}

func TestValueToJSON(t *testing.T) {
	digest := bytes.Repeat([]byte{0xab}, 32)
	blob := image.BlobRef{Size: 10}
	copy(blob.Digest[:], digest)
	mixed := &image.Dict{}
	mixed.Set(image.Int(1), image.String("one"))
	mixed.Set(image.String("two"), image.Int(2))
	named := &image.Dict{}
	named.Set(image.String("b"), image.Ref(3))
	named.Set(image.String("a"), image.Bytes("\x01"))
	tests := []struct {
		name string
		v    image.Value
		want string
	}{
		{"none", image.None, `null`},
		{"bool", image.Bool(false), `false`},
		{"int", image.Int(-3), `-3`},
		{"float", image.Float(1.25), `1.25`},
		{"integral float", image.Float(2), `2.0`},
		{"big integral float", image.Float(1e20), `100000000000000000000.0`},
		{"negative zero", image.Float(math.Copysign(0, -1)), `-0.0`},
		{"string", image.String("ada"), `"ada"`},
		{"bytes", image.Bytes("ab"), `{"$bytes":"ab"}`},
		{"ref", image.Ref(7), `{"$ref":"oid:7"}`},
		{"list", image.NewList(image.Int(1), image.NewList()), `[1,[]]`},
		{"tuple", image.Tuple{image.String("x")}, `["x"]`},
		{"dict", named, `{"a":{"$bytes":"\u0001"},"b":{"$ref":"oid:3"}}`},
		{"dict with other keys", mixed, `[[1,"one"],["two",2]]`},
		{"method", &image.Method{Source: "def f(self): pass"}, `{"$method":"def f(self): pass"}`},
		{"blob", blob, `{"$blob":"` + blob.Digest.String() + `","size":10}`},
		{"primitive", image.Primitive{Name: "print"}, `{"$primitive":"print"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(image.ValueToJSON(tt.v))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(got), tt.want); diff != "" {
				t.Errorf("JSON form of %s (-got +want):\n%s", image.Repr(tt.v), diff)
			}
		})
	}
}

// TestJSONRoundTrip: what ValueFromJSON reads, ValueToJSON writes back
// as the same value.
func TestJSONRoundTrip(t *testing.T) {
	for _, s := range []string{
		`null`, `[true, -1, 0.5, 2.0, 1e20, "s", {"$ref": "oid:12"}]`, `{"k": {"$ref": "oid:1"}, "l": [[], {}]}`,
	} {
		v, err := image.ValueFromJSON(decodeJSON(t, s))
		if err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(image.ValueToJSON(v))
		if err != nil {
			t.Fatal(err)
		}
		back, err := image.ValueFromJSON(decodeJSON(t, string(out)))
		if err != nil || !image.Equal(back, v) {
			t.Errorf("%s: read back as %s (%v), want %s", s, out, err, image.Repr(v))
		}
	}
}

func TestParseRefTag(t *testing.T) {
	for s, want := range map[string]image.Ref{"oid:5": 5, "5": 5} {
		if got, err := image.ParseRefTag(s); err != nil || got != want {
			t.Errorf("ParseRefTag(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "oid:0", "oid:", "oid:-1", "oid:oid:5", "oid:18446744073709551616", "x"} {
		if got, err := image.ParseRefTag(s); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("ParseRefTag(%q) = %v, %v; want store.ErrInvalid", s, got, err)
		}
	}
}

// FuzzValueFromJSON: any JSON text either fails to convert or converts
// to a value whose JSON form converts to the same value again, and
// writing that value gives the same text.
func FuzzValueFromJSON(f *testing.F) {
	for _, s := range []string{
		`null`, `1`, `-0`, `1.5e300`, `9223372036854775808`, `"x"`, `[1, [2, [3]]]`,
		`{"$ref": "oid:3"}`, `{"$ref": 3}`, `{"a": {"$ref": "4", "b": 1}}`, `{"$bytes": "x"}`, `[[[[[[[[]]]]]]]]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var x any
		if dec.Decode(&x) != nil {
			return
		}
		v, err := image.ValueFromJSON(x)
		if err != nil {
			return
		}
		out, err := json.Marshal(image.ValueToJSON(v))
		if err != nil {
			t.Fatalf("%s: its value %s has no JSON form: %v", s, image.Repr(v), err)
		}
		back, err := image.ValueFromJSON(decodeJSON(t, string(out)))
		if err != nil {
			t.Fatalf("%s: the JSON form %s does not read back: %v", s, out, err)
		}
		again, err := json.Marshal(image.ValueToJSON(back))
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("%s: written as %s, then as %s (%v)", s, out, again, err)
		}
	})
}

package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"batos/internal/store"
)

// The JSON form of values, for the CLI's arguments and -json output and
// any other JSON-speaking client:
//
//	None, Bool, Int, Float, String  null, true/false, number, number, string
//	Bytes                           {"$bytes": "<the bytes as a string>"}
//	Ref                             {"$ref": "oid:N"}
//	*List, Tuple                    array
//	*Dict                           object if every key is a String, else an
//	                                array of [key, value] pairs in insertion order
//	*Method                         {"$method": source}
//	BlobRef                         {"$blob": "sha256:<hex>", "size": n}
//	Primitive                       {"$primitive": name}
//
// A Float is written with a fraction or an exponent ("2.0", not "2") so
// that it reads back as a Float. Of the tagged forms only the reference
// is read back ([ValueFromJSON]): the others come out of the image, they
// are not made by clients. The form is lossy where JSON is: a Tuple reads
// back as a List, a Dict with other keys as a List of pairs, and a
// non-finite Float has no JSON form at all.

// RefTag is the key of a reference's JSON form, {"$ref": "oid:N"}.
const RefTag = "$ref"

// ParseRefTag parses the text of a reference's JSON form, the "oid:N" of
// {"$ref": "oid:N"} (a bare "N" is accepted too). Errors wrap
// store.ErrInvalid. Every decoder of the tagged form parses it here.
func ParseRefTag(s string) (Ref, error) {
	oid, err := store.ParseOID(s)
	if err != nil {
		return 0, err
	}
	return Ref(oid), nil
}

// ValueToJSON returns v's JSON form as data encoding/json marshals: nil,
// bool, int64, json.Number (a Float), string, []any, [][2]any and
// map[string]any. A non-finite Float stays a float64, which encoding/json
// refuses.
func ValueToJSON(v Value) any {
	switch v := v.(type) {
	case nil, NoneType:
		return nil
	case Bool:
		return bool(v)
	case Int:
		return int64(v)
	case Float:
		return jsonFloat(float64(v))
	case String:
		return string(v)
	case Bytes:
		return map[string]any{"$bytes": string(v)}
	case Ref:
		return map[string]any{RefTag: store.OID(v).String()}
	case *List:
		return jsonList(v.Elems)
	case Tuple:
		return jsonList(v)
	case *Dict:
		return jsonDict(v)
	case *Method:
		return map[string]any{"$method": v.Source}
	case BlobRef:
		return map[string]any{"$blob": v.Digest.String(), "size": v.Size}
	case Primitive:
		return map[string]any{"$primitive": v.Name}
	}
	return Repr(v)
}

// jsonFloat writes f as encoding/json does, with ".0" added to a number
// that would otherwise read back as an integer.
func jsonFloat(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return f
	}
	b, _ := json.Marshal(f) // cannot fail for a finite float
	if !bytes.ContainsAny(b, ".eE") {
		b = append(b, ".0"...)
	}
	return json.Number(b)
}

func jsonList(vs []Value) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = ValueToJSON(v)
	}
	return out
}

func jsonDict(d *Dict) any {
	obj := map[string]any{}
	for k, val := range d.All() {
		s, ok := k.(String)
		if !ok {
			var pairs [][2]any
			for k, val := range d.All() {
				pairs = append(pairs, [2]any{ValueToJSON(k), ValueToJSON(val)})
			}
			return pairs
		}
		obj[string(s)] = ValueToJSON(val)
	}
	return obj
}

// ValueFromJSON converts decoded JSON to a value: what encoding/json
// decodes into an any, numbers as json.Number (Decoder.UseNumber) so that
// integers keep every digit; a float64 is taken as a Float. A number
// without a fraction or exponent is an Int (ErrIntRange if it does not
// fit), any other a Float; an array is a *List; {"$ref": "oid:N"} is a
// Ref, and any other object a *Dict with its keys in sorted order. An
// object with a "$ref" key that is not exactly that form is an error
// (ErrInvalid), not a Dict: it is a reference written wrong. Nesting
// deeper than [MaxDepth] is ErrTooDeep.
func ValueFromJSON(x any) (Value, error) {
	return valueOf(x, 0, true)
}

// ErrRefForm is the error of a map that has the "$ref" key but is not
// exactly {"$ref": "oid:N"}: a reference written wrong, not a dict.
var ErrRefForm = fmt.Errorf(`%w: an object with a %q key is not {"$ref": "oid:N"}`, ErrInvalid, RefTag)

// RefOf reads the tagged form of a reference in decoded data (JSON, or
// the bridge's msgpack): tagged says m has the "$ref" key. A tagged map
// that is not exactly {"$ref": "oid:N"} is ErrRefForm; a bad OID is
// ParseRefTag's error.
func RefOf(m map[string]any) (ref Ref, tagged bool, err error) {
	tag, tagged := m[RefTag]
	if !tagged {
		return 0, false, nil
	}
	s, ok := tag.(string)
	if !ok || len(m) != 1 {
		return 0, true, ErrRefForm
	}
	ref, err = ParseRefTag(s)
	return ref, true, err
}

// numberValue converts a JSON number: an Int unless it has a fraction or
// an exponent.
func numberValue(n json.Number) (Value, error) {
	s := string(n)
	if s == "" || !(s[0] == '-' || '0' <= s[0] && s[0] <= '9') || strings.TrimSpace(s) != s || !json.Valid([]byte(s)) {
		return nil, fmt.Errorf("%w: %q is not a JSON number", ErrInvalid, s)
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return Int(i), nil
	}
	if !strings.ContainsAny(s, ".eE") {
		return nil, intRangeError{s}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: %s does not fit in a 64-bit float", ErrInvalid, s)
	}
	return Float(f), nil
}

// PlainValue turns a Go value made of JSON-able parts (a struct with
// json tags, say) into image values — strings, numbers, bools, lists,
// dicts, and references where the JSON holds {"$ref": "oid:N"} — so
// records kept in the image read naturally from the REPL.
func PlainValue(v any) (Value, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	return ValueFromJSON(x)
}

// FromPlain reads image values back into a Go value, through JSON.
func FromPlain(v Value, dst any) error {
	raw, err := json.Marshal(ValueToJSON(v))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, dst)
}

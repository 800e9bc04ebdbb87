package image

import (
	"encoding/json"
	"fmt"
	"iter"
	"math"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"

	"batos/internal/store"
)

// Value is a value an object's slot can hold. The set of implementations
// is closed: the types in this file.
//
// Scalars and [Tuple] are immutable. [*List], [*Dict] and [*Method] are
// mutable and not safe for concurrent use; a value shared between
// goroutines must be [Clone]d or guarded by its owner.
type Value interface {
	Kind() Kind
	value() // seals the interface
}

// Kind identifies the type of a [Value].
type Kind int

// The kinds of value.
const (
	NoneKind Kind = iota
	BoolKind
	IntKind
	FloatKind
	StringKind
	BytesKind
	ListKind
	DictKind
	TupleKind
	RefKind
	MethodKind
	BlobKind
	PrimitiveKind
)

var kindNames = [...]string{
	NoneKind:      "none",
	BoolKind:      "bool",
	IntKind:       "int",
	FloatKind:     "float",
	StringKind:    "string",
	BytesKind:     "bytes",
	ListKind:      "list",
	DictKind:      "dict",
	TupleKind:     "tuple",
	RefKind:       "ref",
	MethodKind:    "method",
	BlobKind:      "blob",
	PrimitiveKind: "primitive",
}

// String returns the kind's lowercase name, such as "int" or "dict".
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// NoneType is the type of [None].
type NoneType struct{}

// None is the absence of a value.
var None = NoneType{}

type (
	// Bool is a boolean.
	Bool bool
	// Int is a 64-bit signed integer.
	Int int64
	// Float is a 64-bit IEEE float.
	Float float64
	// String is a text string. It is not required to be valid UTF-8.
	String string
	// Bytes is an immutable byte string, held in a Go string.
	Bytes string
	// Tuple is an immutable sequence. Immutability is a convention: code
	// that receives a Tuple must not modify its elements.
	Tuple []Value
	// Ref refers to an object by its OID. A Ref to OID 0 is never valid.
	Ref store.OID
)

// List is a mutable sequence.
type List struct {
	Elems []Value
}

// Method is a method: Starlark source defining one function, plus
// metadata. A nil Meta is the same as an empty one.
type Method struct {
	Source string
	Meta   *Dict
}

// BlobRef refers to a blob in the store.
type BlobRef struct {
	Digest store.Digest
	Size   int64
}

// Primitive names a built-in implemented in Go.
type Primitive struct {
	Name string
}

func (NoneType) Kind() Kind  { return NoneKind }
func (Bool) Kind() Kind      { return BoolKind }
func (Int) Kind() Kind       { return IntKind }
func (Float) Kind() Kind     { return FloatKind }
func (String) Kind() Kind    { return StringKind }
func (Bytes) Kind() Kind     { return BytesKind }
func (*List) Kind() Kind     { return ListKind }
func (*Dict) Kind() Kind     { return DictKind }
func (Tuple) Kind() Kind     { return TupleKind }
func (Ref) Kind() Kind       { return RefKind }
func (*Method) Kind() Kind   { return MethodKind }
func (BlobRef) Kind() Kind   { return BlobKind }
func (Primitive) Kind() Kind { return PrimitiveKind }

func (NoneType) value()  {}
func (Bool) value()      {}
func (Int) value()       {}
func (Float) value()     {}
func (String) value()    {}
func (Bytes) value()     {}
func (*List) value()     {}
func (*Dict) value()     {}
func (Tuple) value()     {}
func (Ref) value()       {}
func (*Method) value()   {}
func (BlobRef) value()   {}
func (Primitive) value() {}

// NewList returns a list holding elems (not a copy).
func NewList(elems ...Value) *List { return &List{Elems: elems} }

// Dict is a mutable mapping that remembers insertion order. The zero value
// is an empty dict ready to use; the read methods also accept a nil *Dict.
//
// Keys must be [Hashable]. Two keys are the same key when their encodings
// are equal, so Int(1) and Float(1.0) are distinct keys, as are Float(0)
// and Float(-0.0), while a NaN is equal to a NaN with the same bits.
// Delete is O(n) in the number of entries, which keeps the
// representation simple: dicts in an image are small.
type Dict struct {
	entries []dictEntry
	index   map[string]int // key encoding -> position in entries
}

type dictEntry struct {
	key, value Value
}

// Len returns the number of entries.
func (d *Dict) Len() int {
	if d == nil {
		return 0
	}
	return len(d.entries)
}

// Get returns the value stored under k. An unhashable k is never present.
func (d *Dict) Get(k Value) (Value, bool) {
	i, ok := d.find(k)
	if !ok {
		return nil, false
	}
	return d.entries[i].value, true
}

// Set stores v under k, keeping k's position if it is already present.
// It fails with [ErrUnhashable] if k is not hashable and with
// [ErrInvalid] if v is nil.
func (d *Dict) Set(k, v Value) error {
	if v == nil {
		return fmt.Errorf("%w: nil dict value", ErrInvalid)
	}
	enc, err := keyEncoding(k)
	if err != nil {
		return err
	}
	if i, ok := d.index[enc]; ok {
		d.entries[i].value = v
		return nil
	}
	if t, ok := k.(Tuple); ok {
		// A private copy: a caller mutating its tuple must not change a
		// key behind the index's back.
		k = slices.Clone(t)
	}
	if d.index == nil {
		d.index = make(map[string]int)
	}
	d.index[enc] = len(d.entries)
	d.entries = append(d.entries, dictEntry{k, v})
	return nil
}

// Delete removes k and reports whether it was present.
func (d *Dict) Delete(k Value) bool {
	i, ok := d.find(k)
	if !ok {
		return false
	}
	enc, _ := keyEncoding(k)
	delete(d.index, enc)
	d.entries = slices.Delete(d.entries, i, i+1)
	for j := i; j < len(d.entries); j++ {
		e, _ := keyEncoding(d.entries[j].key)
		d.index[e] = j
	}
	return true
}

// Keys returns the keys in insertion order.
func (d *Dict) Keys() []Value {
	if d == nil {
		return nil
	}
	keys := make([]Value, len(d.entries))
	for i, e := range d.entries {
		keys[i] = e.key
	}
	return keys
}

// All yields the entries in insertion order. The dict must not be
// modified during the iteration.
func (d *Dict) All() iter.Seq2[Value, Value] {
	return func(yield func(Value, Value) bool) {
		if d == nil {
			return
		}
		for _, e := range d.entries {
			if !yield(e.key, e.value) {
				return
			}
		}
	}
}

func (d *Dict) find(k Value) (int, bool) {
	if d == nil || len(d.entries) == 0 {
		return 0, false
	}
	enc, err := keyEncoding(k)
	if err != nil {
		return 0, false
	}
	i, ok := d.index[enc]
	return i, ok
}

// keyEncoding returns the canonical encoding that identifies key k.
func keyEncoding(k Value) (string, error) {
	if !Hashable(k) {
		return "", fmt.Errorf("%w: %s", ErrUnhashable, kindOf(k))
	}
	b, err := AppendValue(nil, k)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Hashable reports whether v may be a dict key: None, Bool, Int, Float,
// String, Bytes, Ref, or a Tuple of hashable values.
func Hashable(v Value) bool { return hashable(v, 0) }

// The recursive helpers below carry a depth and give up past MaxDepth, so
// a value that contains itself (which only Go code can build) fails
// cleanly instead of exhausting the stack.
func hashable(v Value, depth int) bool {
	switch v := v.(type) {
	case NoneType, Bool, Int, Float, String, Bytes, Ref:
		return true
	case Tuple:
		if depth >= MaxDepth {
			return false
		}
		for _, e := range v {
			if !hashable(e, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

func kindOf(v Value) string {
	if v == nil {
		return "nil"
	}
	return v.Kind().String()
}

// Equal reports whether a and b are the same value, deeply. It is the
// equality of the image, not of the language: floats compare by their
// bits (so a NaN equals itself and 0.0 differs from -0.0), dicts compare
// in order, and Int(1) differs from Float(1). For values that encode,
// Equal(a, b) holds exactly when their encodings are equal.
func Equal(a, b Value) bool { return equal(a, b, 0) }

func equal(a, b Value, depth int) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if depth > MaxDepth {
		return false
	}
	d := depth + 1
	switch a := a.(type) {
	case *List:
		b, ok := b.(*List)
		return ok && (a == b || a != nil && b != nil && equalSlices(a.Elems, b.Elems, d))
	case Tuple:
		b, ok := b.(Tuple)
		return ok && equalSlices(a, b, d)
	case *Dict:
		b, ok := b.(*Dict)
		return ok && equalDicts(a, b, d)
	case *Method:
		b, ok := b.(*Method)
		return ok && (a == b || a != nil && b != nil &&
			a.Source == b.Source && equalDicts(a.Meta, b.Meta, d))
	case Float:
		b, ok := b.(Float)
		return ok && math.Float64bits(float64(a)) == math.Float64bits(float64(b))
	}
	// The remaining kinds are comparable Go values.
	return a == b
}

func equalSlices(a, b []Value, depth int) bool {
	return slices.EqualFunc(a, b, func(x, y Value) bool { return equal(x, y, depth) })
}

// equalDicts treats a nil dict as empty, as the codec does for method
// metadata.
func equalDicts(a, b *Dict, depth int) bool {
	if a.Len() != b.Len() {
		return false
	}
	for i := range a.Len() {
		ea, eb := a.entries[i], b.entries[i]
		if !equal(ea.key, eb.key, depth) || !equal(ea.value, eb.value, depth) {
			return false
		}
	}
	return true
}

// Clone returns a deep copy of v: lists, dicts and methods are copied, as
// are tuples that contain them; immutable values are returned as they are.
func Clone(v Value) Value { return clone(v, 0) }

// clone stops copying past MaxDepth: such a value cannot be encoded, so
// what it shares is never saved.
func clone(v Value, depth int) Value {
	if depth > MaxDepth {
		return v
	}
	d := depth + 1
	switch v := v.(type) {
	case *List:
		if v == nil {
			return v
		}
		return &List{Elems: cloneSlice(v.Elems, d)}
	case *Dict:
		return cloneDict(v, d)
	case *Method:
		if v == nil {
			return v
		}
		return &Method{Source: v.Source, Meta: cloneDict(v.Meta, d)}
	case Tuple:
		if !containsMutable(v, d) {
			return v
		}
		return Tuple(cloneSlice(v, d))
	}
	return v
}

func cloneSlice(s []Value, depth int) []Value {
	if s == nil {
		return nil
	}
	c := make([]Value, len(s))
	for i, e := range s {
		c[i] = clone(e, depth)
	}
	return c
}

func cloneDict(d *Dict, depth int) *Dict {
	if d == nil {
		return nil
	}
	// Keys are hashable, hence immutable, and can be shared.
	c := &Dict{entries: make([]dictEntry, len(d.entries))}
	for i, e := range d.entries {
		c.entries[i] = dictEntry{e.key, clone(e.value, depth)}
	}
	if d.index != nil {
		c.index = make(map[string]int, len(d.index))
		for k, i := range d.index {
			c.index[k] = i
		}
	}
	return c
}

func containsMutable(t Tuple, depth int) bool {
	if depth > MaxDepth {
		return true
	}
	for _, e := range t {
		switch e := e.(type) {
		case *List, *Dict, *Method:
			return true
		case Tuple:
			if containsMutable(e, depth+1) {
				return true
			}
		}
	}
	return false
}

// ValueOf converts a Go value to a Value: nil, bool, every integer type,
// *big.Int, float32, float64, string, []byte (copied), []any, map[string]any
// (entries in sorted key order, so the result is deterministic) and Value
// itself (returned as is). Integers outside the int64 range fail with
// [ErrIntRange], other types with [ErrUnsupported].
func ValueOf(x any) (Value, error) {
	return valueOf(x, 0, false)
}

// valueOf is ValueOf, and with fromJSON ValueFromJSON: one walk of
// decoded data, JSON adding its numbers and its {"$ref"} tag.
func valueOf(x any, depth int, fromJSON bool) (Value, error) {
	switch x := x.(type) {
	case json.Number:
		if fromJSON {
			return numberValue(x)
		}
	case nil:
		return None, nil
	case Value:
		return x, nil
	case bool:
		return Bool(x), nil
	case int:
		return Int(x), nil
	case int8:
		return Int(x), nil
	case int16:
		return Int(x), nil
	case int32:
		return Int(x), nil
	case int64:
		return Int(x), nil
	case uint, uint8, uint16, uint32, uint64, uintptr:
		return uintValue(x)
	case *big.Int:
		if x == nil {
			return nil, fmt.Errorf("%w: nil *big.Int", ErrUnsupported)
		}
		i, err := IntFromBig(x)
		if err != nil {
			return nil, err
		}
		return i, nil
	case float32:
		return Float(x), nil
	case float64:
		return Float(x), nil
	case string:
		return String(x), nil
	case []byte:
		return Bytes(x), nil
	case []any:
		return listOf(x, depth, fromJSON)
	case map[string]any:
		if ref, tagged, err := RefOf(x); tagged && fromJSON {
			if err != nil {
				return nil, err
			}
			return ref, nil
		}
		return dictOf(x, depth, fromJSON)
	}
	return nil, fmt.Errorf("%w: %T", ErrUnsupported, x)
}

func uintValue(x any) (Value, error) {
	var u uint64
	switch x := x.(type) {
	case uint:
		u = uint64(x)
	case uint8:
		u = uint64(x)
	case uint16:
		u = uint64(x)
	case uint32:
		u = uint64(x)
	case uint64:
		u = x
	case uintptr:
		u = uint64(x)
	}
	if u > math.MaxInt64 {
		return nil, intRangeError{strconv.FormatUint(u, 10)}
	}
	return Int(u), nil
}

// IntFromBig converts b to an Int, failing with [ErrIntRange] if it does
// not fit.
func IntFromBig(b *big.Int) (Int, error) {
	if !b.IsInt64() {
		return 0, intRangeError{b.String()}
	}
	return Int(b.Int64()), nil
}

// enter guards the recursion of ValueOf: a []any can contain itself.
func enter(depth int) error {
	if depth >= MaxDepth {
		return fmt.Errorf("%w: more than %d levels", ErrTooDeep, MaxDepth)
	}
	return nil
}

func listOf(xs []any, depth int, fromJSON bool) (Value, error) {
	if err := enter(depth); err != nil {
		return nil, err
	}
	elems := make([]Value, len(xs))
	for i, x := range xs {
		v, err := valueOf(x, depth+1, fromJSON)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		elems[i] = v
	}
	return &List{Elems: elems}, nil
}

func dictOf(m map[string]any, depth int, fromJSON bool) (Value, error) {
	if err := enter(depth); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	d := &Dict{}
	for _, k := range keys {
		v, err := valueOf(m[k], depth+1, fromJSON)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		if err := d.Set(String(k), v); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Repr formats v for debugging, in the style of Python's repr:
// None, True, 1, 1.5, "s", b"\x00", [1, 2], {"k": 1}, (1,), <ref oid:7>,
// <method name>, <blob sha256:… size N>, <primitive name>.
func Repr(v Value) string {
	var sb strings.Builder
	writeRepr(&sb, v, 0)
	return sb.String()
}

func writeRepr(sb *strings.Builder, v Value, depth int) {
	if isNil(v) {
		sb.WriteString("<nil>")
		return
	}
	if depth > MaxDepth {
		sb.WriteString("...")
		return
	}
	switch v := v.(type) {
	case NoneType:
		sb.WriteString("None")
	case Bool:
		if v {
			sb.WriteString("True")
		} else {
			sb.WriteString("False")
		}
	case Int:
		sb.WriteString(strconv.FormatInt(int64(v), 10))
	case Float:
		sb.WriteString(formatFloat(float64(v)))
	case String:
		sb.WriteString(strconv.Quote(string(v)))
	case Bytes:
		writeBytesRepr(sb, string(v))
	case *List:
		writeSeq(sb, "[", "]", v.Elems, false, depth+1)
	case Tuple:
		writeSeq(sb, "(", ")", v, true, depth+1)
	case *Dict:
		writeDict(sb, v, depth+1)
	case Ref:
		fmt.Fprintf(sb, "<ref oid:%d>", uint64(v))
	case *Method:
		sb.WriteString("<method " + methodName(v) + ">")
	case BlobRef:
		fmt.Fprintf(sb, "<blob %s size %d>", v.Digest, v.Size)
	case Primitive:
		sb.WriteString("<primitive " + v.Name + ">")
	}
}

// formatFloat follows Python: an integral float keeps ".0", and large or
// tiny magnitudes use an exponent.
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	if a := math.Abs(f); a != 0 && (a < 1e-4 || a >= 1e16) {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsRune(s, '.') {
		s += ".0"
	}
	return s
}

func writeBytesRepr(sb *strings.Builder, s string) {
	sb.WriteString(`b"`)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		case c == '\n':
			sb.WriteString(`\n`)
		case c == '\t':
			sb.WriteString(`\t`)
		case c == '\r':
			sb.WriteString(`\r`)
		case c >= 0x20 && c < 0x7f:
			sb.WriteByte(c)
		default:
			fmt.Fprintf(sb, `\x%02x`, c)
		}
	}
	sb.WriteByte('"')
}

func writeSeq(sb *strings.Builder, open, close string, elems []Value, tuple bool, depth int) {
	sb.WriteString(open)
	for i, e := range elems {
		if i > 0 {
			sb.WriteString(", ")
		}
		writeRepr(sb, e, depth)
	}
	if tuple && len(elems) == 1 {
		sb.WriteByte(',')
	}
	sb.WriteString(close)
}

func writeDict(sb *strings.Builder, d *Dict, depth int) {
	sb.WriteByte('{')
	i := 0
	for k, v := range d.All() {
		if i > 0 {
			sb.WriteString(", ")
		}
		i++
		writeRepr(sb, k, depth)
		sb.WriteString(": ")
		writeRepr(sb, v, depth)
	}
	sb.WriteByte('}')
}

// methodName is the method's "name" metadata, else the name its source
// defines, else "?".
func methodName(m *Method) string {
	if m == nil {
		return "?"
	}
	if n, ok := m.Meta.Get(String("name")); ok {
		if s, ok := n.(String); ok {
			return string(s)
		}
	}
	for line := range strings.Lines(m.Source) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "def ")
		if !ok {
			continue
		}
		if name, _, ok := strings.Cut(rest, "("); ok {
			return strings.TrimSpace(name)
		}
	}
	return "?"
}

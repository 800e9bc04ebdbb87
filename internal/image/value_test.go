package image

import (
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/store"
)

// valueCmp makes cmp compare values the way the image does.
var valueCmp = cmp.Comparer(func(a, b Value) bool { return Equal(a, b) })

// mustDict builds a dict from alternating keys and values.
func mustDict(tb testing.TB, kvs ...Value) *Dict {
	tb.Helper()
	if len(kvs)%2 != 0 {
		tb.Fatalf("mustDict: odd number of arguments")
	}
	d := &Dict{}
	for i := 0; i < len(kvs); i += 2 {
		if err := d.Set(kvs[i], kvs[i+1]); err != nil {
			tb.Fatalf("Set(%s, %s): %v", Repr(kvs[i]), Repr(kvs[i+1]), err)
		}
	}
	return d
}

// nestedLists returns n lists, each holding the next; the innermost holds
// None.
func nestedLists(n int) Value {
	var v Value = None
	for range n {
		v = NewList(v)
	}
	return v
}

func digest(b byte) store.Digest {
	var d store.Digest
	for i := range d {
		d[i] = b
	}
	return d
}

func TestKindString(t *testing.T) {
	tests := []struct {
		k    Kind
		want string
	}{
		{NoneKind, "none"},
		{IntKind, "int"},
		{DictKind, "dict"},
		{PrimitiveKind, "primitive"},
		{Kind(99), "Kind(99)"},
		{Kind(-1), "Kind(-1)"},
	}
	for _, tt := range tests {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(tt.k), got, tt.want)
		}
	}
}

func TestKinds(t *testing.T) {
	tests := []struct {
		v    Value
		want Kind
	}{
		{None, NoneKind},
		{Bool(true), BoolKind},
		{Int(1), IntKind},
		{Float(1), FloatKind},
		{String("s"), StringKind},
		{Bytes("b"), BytesKind},
		{NewList(), ListKind},
		{&Dict{}, DictKind},
		{Tuple{}, TupleKind},
		{Ref(1), RefKind},
		{&Method{}, MethodKind},
		{BlobRef{}, BlobKind},
		{Primitive{"p"}, PrimitiveKind},
	}
	for _, tt := range tests {
		if got := tt.v.Kind(); got != tt.want {
			t.Errorf("%s.Kind() = %s, want %s", Repr(tt.v), got, tt.want)
		}
	}
}

func TestDict(t *testing.T) {
	d := mustDict(t, String("a"), Int(1), Int(1), String("int"), Float(1), String("float"))
	if got, want := d.Len(), 3; got != want {
		t.Fatalf("Len = %d, want %d", got, want)
	}
	// Int(1) and Float(1) are distinct keys.
	if v, ok := d.Get(Float(1)); !ok || !Equal(v, String("float")) {
		t.Errorf("Get(1.0) = %v, %v, want \"float\", true", v, ok)
	}
	// Overwriting keeps the key's position.
	if err := d.Set(String("a"), Int(2)); err != nil {
		t.Fatal(err)
	}
	want := []Value{String("a"), Int(1), Float(1)}
	if diff := cmp.Diff(d.Keys(), want, valueCmp); diff != "" {
		t.Errorf("Keys (-got +want):\n%s", diff)
	}
	if !d.Delete(String("a")) || d.Delete(String("a")) {
		t.Errorf("Delete(\"a\") twice: want true then false")
	}
	// Entries after the deleted one must still be found.
	if v, ok := d.Get(Float(1)); !ok || !Equal(v, String("float")) {
		t.Errorf("after Delete, Get(1.0) = %v, %v, want \"float\", true", v, ok)
	}
	if err := d.Set(String("a"), Int(3)); err != nil {
		t.Fatal(err)
	}
	got := Repr(d)
	if want := `{1: "int", 1.0: "float", "a": 3}`; got != want {
		t.Errorf("Repr = %s, want %s", got, want)
	}
}

func TestDictKeys(t *testing.T) {
	tests := []struct {
		name    string
		key     Value
		wantErr error
	}{
		{"none", None, nil},
		{"bool", Bool(false), nil},
		{"nan", Float(math.NaN()), nil},
		{"bytes", Bytes("b"), nil},
		{"ref", Ref(7), nil},
		{"tuple", Tuple{Int(1), Tuple{String("x")}}, nil},
		{"list", NewList(), ErrUnhashable},
		{"dict", &Dict{}, ErrUnhashable},
		{"tuple of list", Tuple{Int(1), NewList()}, ErrUnhashable},
		{"blob", BlobRef{}, ErrUnhashable},
		{"method", &Method{}, ErrUnhashable},
		{"nil", nil, ErrUnhashable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Dict{}
			err := d.Set(tt.key, Int(1))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Set: got error %v, want %v", err, tt.wantErr)
			}
			_, ok := d.Get(tt.key)
			if ok != (tt.wantErr == nil) {
				t.Errorf("Get found = %v, want %v", ok, tt.wantErr == nil)
			}
		})
	}
}

func TestDictNilValue(t *testing.T) {
	if err := (&Dict{}).Set(Int(1), nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Set(1, nil): got %v, want ErrInvalid", err)
	}
}

func TestNilDictReads(t *testing.T) {
	var d *Dict
	if d.Len() != 0 || d.Keys() != nil {
		t.Errorf("nil dict: Len = %d, Keys = %v; want 0, nil", d.Len(), d.Keys())
	}
	if _, ok := d.Get(Int(1)); ok {
		t.Errorf("nil dict: Get found a key")
	}
	for range d.All() {
		t.Errorf("nil dict: All yielded an entry")
	}
}

func TestDictAllStops(t *testing.T) {
	d := mustDict(t, Int(1), None, Int(2), None, Int(3), None)
	n := 0
	for range d.All() {
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Errorf("iterated %d entries, want 2", n)
	}
}

func TestDictTupleKeyIsCopied(t *testing.T) {
	key := Tuple{Int(1), Int(2)}
	d := mustDict(t, key, String("v"))
	key[0] = Int(9)
	if _, ok := d.Get(Tuple{Int(1), Int(2)}); !ok {
		t.Errorf("key changed when the caller's tuple was mutated")
	}
}

func TestEqual(t *testing.T) {
	nan := Float(math.NaN())
	otherNaN := Float(math.Float64frombits(math.Float64bits(math.NaN()) + 1))
	tests := []struct {
		name string
		a, b Value
		want bool
	}{
		{"none", None, None, true},
		{"nil nil", nil, nil, true},
		{"nil none", nil, None, false},
		{"int", Int(3), Int(3), true},
		{"int float", Int(1), Float(1), false},
		{"nan", nan, nan, true},
		{"nan bits differ", nan, otherNaN, false},
		{"signed zero", Float(0), Float(math.Copysign(0, -1)), false},
		{"string bytes", String("a"), Bytes("a"), false},
		{"lists", NewList(Int(1), NewList()), NewList(Int(1), NewList()), true},
		{"lists differ", NewList(Int(1)), NewList(Int(2)), false},
		{"list tuple", NewList(), Tuple{}, false},
		{"nil elems", NewList(), &List{Elems: []Value{}}, true},
		{"nil list", (*List)(nil), NewList(), false},
		{"dicts", mustDict(t, Int(1), nan), mustDict(t, Int(1), nan), true},
		{"dict order", mustDict(t, Int(1), None, Int(2), None), mustDict(t, Int(2), None, Int(1), None), false},
		{"method nil meta", &Method{Source: "s"}, &Method{Source: "s", Meta: &Dict{}}, true},
		{"method meta", &Method{Source: "s"}, &Method{Source: "s", Meta: mustDict(t, Int(1), None)}, false},
		{"method source", &Method{Source: "s"}, &Method{Source: "t"}, false},
		{"blob", BlobRef{digest(1), 3}, BlobRef{digest(1), 3}, true},
		{"blob size", BlobRef{digest(1), 3}, BlobRef{digest(1), 4}, false},
		{"primitive", Primitive{"p"}, Primitive{"p"}, true},
		{"ref", Ref(1), Ref(2), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Equal(tt.a, tt.b); got != tt.want {
				t.Errorf("Equal(%s, %s) = %v, want %v", Repr(tt.a), Repr(tt.b), got, tt.want)
			}
			if got := Equal(tt.b, tt.a); got != tt.want {
				t.Errorf("Equal(%s, %s) = %v, want %v", Repr(tt.b), Repr(tt.a), got, tt.want)
			}
		})
	}
}

func TestClone(t *testing.T) {
	inner := NewList(Int(1))
	orig := NewList(inner, mustDict(t, String("k"), NewList()), &Method{Source: "s", Meta: mustDict(t, String("m"), NewList())},
		Tuple{inner}, String("s"))
	c := Clone(orig).(*List)
	if !Equal(c, orig) {
		t.Fatalf("Clone = %s, want %s", Repr(c), Repr(orig))
	}
	// Mutate every container in the clone; the original must not change.
	before := Repr(orig)
	c.Elems[0].(*List).Elems[0] = Int(2)
	d := c.Elems[1].(*Dict)
	v, _ := d.Get(String("k"))
	v.(*List).Elems = append(v.(*List).Elems, None)
	if err := d.Set(String("new"), None); err != nil {
		t.Fatal(err)
	}
	m := c.Elems[2].(*Method)
	if err := m.Meta.Set(String("new"), None); err != nil {
		t.Fatal(err)
	}
	c.Elems[3].(Tuple)[0].(*List).Elems[0] = Int(3)
	if after := Repr(orig); after != before {
		t.Errorf("original changed through its clone: got %s, want %s", after, before)
	}
}

func TestCloneSharesImmutable(t *testing.T) {
	tup := Tuple{Int(1), Tuple{String("x")}}
	c := Clone(tup).(Tuple)
	if &c[0] != &tup[0] {
		t.Errorf("Clone copied a tuple without mutable parts")
	}
	for _, v := range []Value{None, Int(1), String("s"), Ref(1), BlobRef{}, Primitive{"p"}} {
		if got := Clone(v); got != v {
			t.Errorf("Clone(%s) = %s, want it unchanged", Repr(v), Repr(got))
		}
	}
	if Clone(nil) != nil {
		t.Errorf("Clone(nil) != nil")
	}
	if c := Clone(&Method{Source: "s"}).(*Method); c.Meta != nil {
		t.Errorf("Clone of a method with nil Meta has Meta %s", Repr(c.Meta))
	}
}

func TestValueOf(t *testing.T) {
	big100 := new(big.Int).Lsh(big.NewInt(1), 100)
	bigMin := new(big.Int).SetInt64(math.MinInt64)
	type myInt int
	tests := []struct {
		name    string
		in      any
		want    Value
		wantErr error
		errText string
	}{
		{name: "nil", in: nil, want: None},
		{name: "bool", in: true, want: Bool(true)},
		{name: "int", in: -5, want: Int(-5)},
		{name: "int8", in: int8(-8), want: Int(-8)},
		{name: "int16", in: int16(16), want: Int(16)},
		{name: "int32", in: int32(32), want: Int(32)},
		{name: "int64", in: int64(math.MinInt64), want: Int(math.MinInt64)},
		{name: "uint", in: uint(7), want: Int(7)},
		{name: "uint8", in: uint8(255), want: Int(255)},
		{name: "uint16", in: uint16(16), want: Int(16)},
		{name: "uint32", in: uint32(math.MaxUint32), want: Int(math.MaxUint32)},
		{name: "uint64 max int", in: uint64(math.MaxInt64), want: Int(math.MaxInt64)},
		{name: "uintptr", in: uintptr(3), want: Int(3)},
		{name: "uint64 overflow", in: uint64(math.MaxUint64), wantErr: ErrIntRange,
			errText: "image: integer 18446744073709551615 does not fit in 64 bits"},
		{name: "big", in: big.NewInt(42), want: Int(42)},
		{name: "big min", in: bigMin, want: Int(math.MinInt64)},
		{name: "big too large", in: big100, wantErr: ErrIntRange,
			errText: "image: integer 1267650600228229401496703205376 does not fit in 64 bits"},
		{name: "big too small", in: new(big.Int).Sub(bigMin, big.NewInt(1)), wantErr: ErrIntRange,
			errText: "image: integer -9223372036854775809 does not fit in 64 bits"},
		{name: "nil big", in: (*big.Int)(nil), wantErr: ErrUnsupported},
		{name: "float32", in: float32(1.5), want: Float(1.5)},
		{name: "float64", in: 2.25, want: Float(2.25)},
		{name: "string", in: "s", want: String("s")},
		{name: "bytes", in: []byte{0, 1}, want: Bytes("\x00\x01")},
		{name: "list", in: []any{1, "a", nil, []any{true}}, want: NewList(Int(1), String("a"), None, NewList(Bool(true)))},
		{name: "map sorted", in: map[string]any{"b": 2, "a": 1, "c": map[string]any{}},
			want: mustDict(t, String("a"), Int(1), String("b"), Int(2), String("c"), &Dict{})},
		{name: "value", in: Ref(9), want: Ref(9)},
		{name: "struct", in: struct{}{}, wantErr: ErrUnsupported, errText: "image: unsupported Go type: struct {}"},
		{name: "named int", in: myInt(1), wantErr: ErrUnsupported, errText: "image: unsupported Go type: image.myInt"},
		{name: "typed slice", in: []int{1}, wantErr: ErrUnsupported, errText: "image: unsupported Go type: []int"},
		{name: "nested bad", in: []any{map[string]any{"x": 1 + 2i}}, wantErr: ErrUnsupported},
		{name: "nested big", in: []any{big100}, wantErr: ErrIntRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ValueOf(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ValueOf: got error %v, want %v", err, tt.wantErr)
			}
			if tt.errText != "" && err.Error() != tt.errText {
				t.Errorf("error = %q, want %q", err, tt.errText)
			}
			if diff := cmp.Diff(got, tt.want, valueCmp); diff != "" {
				t.Errorf("ValueOf (-got +want):\n%s", diff)
			}
		})
	}
}

func TestValueOfSelfReference(t *testing.T) {
	s := []any{nil}
	s[0] = s
	if _, err := ValueOf(s); !errors.Is(err, ErrTooDeep) {
		t.Errorf("ValueOf(self-referential slice): got %v, want ErrTooDeep", err)
	}
}

func TestValueOfCopiesBytes(t *testing.T) {
	b := []byte("abc")
	v, err := ValueOf(b)
	if err != nil {
		t.Fatal(err)
	}
	b[0] = 'x'
	if !Equal(v, Bytes("abc")) {
		t.Errorf("ValueOf([]byte) aliases its input: got %s", Repr(v))
	}
}

func TestIntFromBig(t *testing.T) {
	if got, err := IntFromBig(big.NewInt(-3)); err != nil || got != -3 {
		t.Errorf("IntFromBig(-3) = %d, %v; want -3, nil", got, err)
	}
	huge, _ := new(big.Int).SetString("99999999999999999999", 10)
	if _, err := IntFromBig(huge); !errors.Is(err, ErrIntRange) || !strings.Contains(err.Error(), "99999999999999999999") {
		t.Errorf("IntFromBig(huge): got %v, want ErrIntRange naming the number", err)
	}
}

func TestRepr(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{None, "None"},
		{Bool(true), "True"},
		{Bool(false), "False"},
		{Int(-12), "-12"},
		{Float(1.5), "1.5"},
		{Float(2), "2.0"},
		{Float(math.Copysign(0, -1)), "-0.0"},
		{Float(1e16), "1e+16"},
		{Float(1e-5), "1e-05"},
		{Float(math.NaN()), "nan"},
		{Float(math.Inf(-1)), "-inf"},
		{String("a\"b\n"), `"a\"b\n"`},
		{Bytes("a\x00\"\xff"), `b"a\x00\"\xff"`},
		{NewList(Int(1), NewList()), "[1, []]"},
		{Tuple{}, "()"},
		{Tuple{Int(1)}, "(1,)"},
		{Tuple{Int(1), String("x")}, `(1, "x")`},
		{mustDict(t, String("k"), Tuple{None}), `{"k": (None,)}`},
		{&Dict{}, "{}"},
		{Ref(42), "<ref oid:42>"},
		{&Method{Source: "def greet(self, who):\n  return who\n"}, "<method greet>"},
		{&Method{Source: "x", Meta: mustDict(t, String("name"), String("hello"))}, "<method hello>"},
		{&Method{Source: "x"}, "<method ?>"},
		{BlobRef{digest(0xab), 10}, "<blob sha256:" + strings.Repeat("ab", 32) + " size 10>"},
		{Primitive{"print"}, "<primitive print>"},
		{nil, "<nil>"},
	}
	for _, tt := range tests {
		if got := Repr(tt.v); got != tt.want {
			t.Errorf("Repr = %s, want %s", got, tt.want)
		}
	}
}

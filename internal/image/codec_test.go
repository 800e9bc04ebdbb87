package image

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/store"
)

type namedValue struct {
	name string
	v    Value
}

// sampleValues covers every kind, the edges of each, and nesting.
func sampleValues(tb testing.TB) []namedValue {
	tb.Helper()
	meta := mustDict(tb, String("name"), String("greet"), String("blob"), BlobRef{digest(2), 9}, String("uses"), Ref(3))
	return []namedValue{
		{"none", None},
		{"false", Bool(false)},
		{"true", Bool(true)},
		{"int zero", Int(0)},
		{"int neg", Int(-1)},
		{"int max", Int(math.MaxInt64)},
		{"int min", Int(math.MinInt64)},
		{"float", Float(1.5)},
		{"float neg zero", Float(math.Copysign(0, -1))},
		{"float nan", Float(math.NaN())},
		{"float inf", Float(math.Inf(1))},
		{"float denormal", Float(math.SmallestNonzeroFloat64)},
		{"string empty", String("")},
		{"string utf8", String("héllo, 世界")},
		{"string invalid utf8", String("\xff\xfe")},
		{"bytes", Bytes("\x00\x01\xff")},
		{"bytes empty", Bytes("")},
		{"list empty", NewList()},
		{"list", NewList(Int(1), String("two"), NewList(None, Bool(true)))},
		{"dict empty", &Dict{}},
		{"dict keys", mustDict(tb,
			None, Int(0), Bool(true), Int(1), Int(1), Int(2), Float(1), Int(3), String("s"), Int(4),
			Bytes("b"), Int(5), Ref(6), Int(6), Tuple{Int(1), Tuple{String("x")}}, Int(7),
			Float(math.NaN()), NewList(mustDict(tb, String("deep"), Ref(8))))},
		{"tuple empty", Tuple{}},
		{"tuple", Tuple{Int(1), NewList(Ref(2))}},
		{"ref", Ref(1)},
		{"ref max", Ref(math.MaxUint64)},
		{"method", &Method{Source: "def greet(self):\n    return 'hi'\n", Meta: meta}},
		{"method nil meta", &Method{Source: ""}},
		{"blob", BlobRef{digest(0xab), 1 << 40}},
		{"blob empty", BlobRef{digest(0), 0}},
		{"blob max size", BlobRef{digest(1), math.MaxInt64}},
		{"primitive", Primitive{"vm.print"}},
		{"nested max depth", nestedLists(MaxDepth)},
		{"method at max depth", nestLast(MaxDepth-1, &Method{Source: "s", Meta: mustDict(tb, Int(1), None)})},
	}
}

// nestLast wraps v in n lists.
func nestLast(n int, v Value) Value {
	for range n {
		v = NewList(v)
	}
	return v
}

func mustEncode(tb testing.TB, v Value) []byte {
	tb.Helper()
	b, err := AppendValue(nil, v)
	if err != nil {
		tb.Fatalf("AppendValue(%s): %v", shortRepr(v), err)
	}
	return b
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestValueRoundTrip(t *testing.T) {
	for _, tt := range sampleValues(t) {
		t.Run(tt.name, func(t *testing.T) {
			b := mustEncode(t, tt.v)
			got, err := DecodeValue(b)
			if err != nil {
				t.Fatalf("DecodeValue: %v", err)
			}
			if diff := cmp.Diff(got, tt.v, valueCmp); diff != "" {
				t.Errorf("round trip (-got +want):\n%s", diff)
			}
			if again := mustEncode(t, got); !bytes.Equal(again, b) {
				t.Errorf("re-encoding differs:\n got %x\nwant %x", again, b)
			}
			if again := mustEncode(t, Clone(tt.v)); !bytes.Equal(again, b) {
				t.Errorf("encoding of a clone differs:\n got %x\nwant %x", again, b)
			}
		})
	}
}

func TestAppendValueAppends(t *testing.T) {
	b, err := AppendValue([]byte("prefix"), Int(1))
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte("prefix\x03\x02"); !bytes.Equal(b, want) {
		t.Errorf("got %q, want %q", b, want)
	}
}

// TestEncoding pins the format: these bytes are on disk.
func TestEncoding(t *testing.T) {
	tests := []struct {
		name string
		v    Value
		hex  string
	}{
		{"none", None, "00"},
		{"false", Bool(false), "01"},
		{"true", Bool(true), "02"},
		{"int 0", Int(0), "03 00"},
		{"int -1", Int(-1), "03 01"},
		{"int 1", Int(1), "03 02"},
		{"int 64", Int(64), "03 8001"},
		{"int min", Int(math.MinInt64), "03 ffffffffffffffffff01"},
		{"float", Float(1.5), "04 3ff8000000000000"},
		{"string", String("hi"), "05 02 6869"},
		{"bytes", Bytes("\x00"), "06 01 00"},
		{"list", NewList(None), "07 01 00"},
		{"dict", mustDict(t, String("a"), Int(1)), "08 01 05 01 61 03 02"},
		{"tuple", Tuple{Bool(true)}, "09 01 02"},
		{"ref", Ref(300), "0a ac02"},
		{"method", &Method{Source: "x"}, "0b 01 78 00"},
		{"method meta", &Method{Source: "x", Meta: mustDict(t, None, None)}, "0b 01 78 01 00 00"},
		{"blob", BlobRef{digest(0x11), 5}, "0c " + strings.Repeat("11", 32) + " 05"},
		{"primitive", Primitive{"p"}, "0d 01 70"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := mustHex(t, tt.hex)
			if got := mustEncode(t, tt.v); !bytes.Equal(got, want) {
				t.Errorf("got %x, want %x", got, want)
			}
		})
	}
}

func TestEncodingDeterministic(t *testing.T) {
	m := map[string]any{}
	for _, k := range []string{"q", "w", "e", "r", "t", "y", "u", "i", "o", "p"} {
		m[k] = []any{k, len(k)}
	}
	first, err := ValueOf(m)
	if err != nil {
		t.Fatal(err)
	}
	want := mustEncode(t, first)
	for range 20 {
		v, err := ValueOf(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustEncode(t, v); !bytes.Equal(got, want) {
			t.Fatalf("encodings of the same map differ:\n got %x\nwant %x", got, want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	mutated := mustDict(t, Tuple{Int(1)}, None)
	mutated.Keys()[0].(Tuple)[0] = Int(2)
	dup := mustDict(t, Tuple{Int(1)}, None, Tuple{Int(2)}, None)
	dup.Keys()[1].(Tuple)[0] = Int(1)
	tests := []struct {
		name string
		v    Value
		want error
	}{
		{"nil", nil, ErrInvalid},
		{"nil in list", NewList(Int(1), nil), ErrInvalid},
		{"nil in tuple", Tuple{nil}, ErrInvalid},
		{"nil list", (*List)(nil), ErrInvalid},
		{"nil dict", (*Dict)(nil), ErrInvalid},
		{"nil method", (*Method)(nil), ErrInvalid},
		{"zero ref", NewList(Ref(0)), ErrInvalid},
		{"negative blob", BlobRef{Size: -1}, ErrInvalid},
		{"too deep", nestedLists(MaxDepth + 1), ErrTooDeep},
		{"method too deep", nestLast(MaxDepth, &Method{}), ErrTooDeep},
		{"mutated key", mutated, ErrInvalid},
		{"duplicate key", dup, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := AppendValue(nil, tt.v)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			if b != nil {
				t.Errorf("got bytes %x with the error, want nil", b)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	digest0 := strings.Repeat("00", 32)
	tests := []struct {
		name string
		hex  string
		want string // the message after "image: decode: "
	}{
		{"empty", "", "truncated value tag at offset 0"},
		{"unknown tag", "2a", "unknown value tag 0x2a at offset 0"},
		{"unknown nested tag", "07 02 00 2a", "unknown value tag 0x2a at offset 3"},
		{"trailing", "00 00", "1 trailing bytes at offset 1"},
		{"huge list", "07 ffffffff0f", "element count 4294967295 exceeds the 0 bytes left at offset 1"},
		{"huge string", "05 0a 6869", "string length 10 exceeds the 2 bytes left at offset 1"},
		{"huge dict", "08 ff01 00", "dict size 255 exceeds the 1 bytes left at offset 1"},
		{"varint overflow", "03 ffffffffffffffffff02", "int overflows 64 bits at offset 1"},
		{"varint too long", "03 ffffffffffffffffffff01", "int overflows 64 bits at offset 1"},
		{"varint padded", "03 8000", "int is not minimally encoded at offset 1"},
		{"length padded", "05 8100 68", "string length is not minimally encoded at offset 1"},
		{"truncated varint", "03 80", "truncated int at offset 1"},
		{"truncated float", "04 0000", "truncated float at offset 1"},
		{"zero ref", "07 01 0a 00", "reference to OID 0 at offset 2"},
		{"duplicate key", "08 02 03 02 00 03 02 01", "duplicate dict key 1 at offset 5"},
		{"duplicate nan key", "08 02 04 7ff8000000000001 00 04 7ff8000000000001 00", "duplicate dict key nan at offset 12"},
		{"unhashable key", "08 01 07 00 00", "unhashable dict key of kind list at offset 2"},
		{"unhashable tuple key", "08 01 09 01 08 00 00", "unhashable dict key of kind tuple at offset 2"},
		{"duplicate meta key", "0b 00 02 00 00 00 00", "duplicate dict key None at offset 5"},
		{"truncated blob", "0c 0000", "truncated blob digest at offset 1"},
		{"blob size range", "0c " + digest0 + " 808080808080808080 01", "blob size 9223372036854775808 out of range at offset 33"},
		{"too deep", strings.Repeat("0701", MaxDepth+1) + "00", "containers nested more than 100 deep at offset 200"},
		{"method too deep", strings.Repeat("0701", MaxDepth) + "0b 00 00", "containers nested more than 100 deep at offset 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := DecodeValue(mustHex(t, tt.hex))
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("got %s, %v; want ErrDecode", shortRepr(v), err)
			}
			if got, want := err.Error(), "image: decode: "+tt.want; got != want {
				t.Errorf("error = %q, want %q", got, want)
			}
			if v != nil {
				t.Errorf("got value %s with the error, want nil", shortRepr(v))
			}
		})
	}
}

// TestDecodeTruncated cuts valid encodings at every offset: each prefix
// must fail cleanly, and so must the whole with a byte appended.
func TestDecodeTruncated(t *testing.T) {
	for _, tt := range sampleValues(t) {
		t.Run(tt.name, func(t *testing.T) {
			b := mustEncode(t, tt.v)
			for i := range len(b) {
				if v, err := DecodeValue(b[:i]); !errors.Is(err, ErrDecode) {
					t.Fatalf("DecodeValue(first %d of %d bytes) = %s, %v; want ErrDecode", i, len(b), shortRepr(v), err)
				}
			}
			if _, err := DecodeValue(append(b, 0)); !errors.Is(err, ErrDecode) {
				t.Errorf("DecodeValue with a trailing byte: got %v, want ErrDecode", err)
			}
		})
	}
}

func sampleState(tb testing.TB) []Slot {
	tb.Helper()
	var slots []Slot
	for _, s := range sampleValues(tb) {
		slots = append(slots, Slot{Name: s.name, Value: s.v})
	}
	return append(slots,
		Slot{Name: "parent*", Value: Ref(1)},
		Slot{Name: strings.Repeat("é", MaxSlotName/2), Value: None})
}

// diffSlots compares states; nil and empty are the same state.
func diffSlots(got, want []Slot) string {
	if len(got) == 0 && len(want) == 0 {
		return ""
	}
	return cmp.Diff(got, want, valueCmp)
}

func TestStateRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		slots []Slot
	}{
		{"empty", nil},
		{"one", []Slot{{"a", None}}},
		{"all kinds", sampleState(t)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := EncodeState(tt.slots)
			if err != nil {
				t.Fatalf("EncodeState: %v", err)
			}
			got, err := DecodeState(b)
			if err != nil {
				t.Fatalf("DecodeState: %v", err)
			}
			if diff := diffSlots(got, tt.slots); diff != "" {
				t.Errorf("round trip (-got +want):\n%s", diff)
			}
			again, err := EncodeState(got)
			if err != nil || !bytes.Equal(again, b) {
				t.Errorf("re-encoding: got %x, %v; want %x", again, err, b)
			}
			for i := range len(b) {
				if _, err := DecodeState(b[:i]); !errors.Is(err, ErrDecode) {
					t.Fatalf("DecodeState(first %d of %d bytes): got %v, want ErrDecode", i, len(b), err)
				}
			}
		})
	}
}

func TestStateEncoding(t *testing.T) {
	b, err := EncodeState([]Slot{{"a", None}, {"b*", Ref(2)}})
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHex(t, "01 02 01 61 00 02 622a 0a 02"); !bytes.Equal(b, want) {
		t.Errorf("got %x, want %x", b, want)
	}
}

func TestEncodeStateErrors(t *testing.T) {
	tests := []struct {
		name  string
		slots []Slot
		want  error
	}{
		{"empty name", []Slot{{"", None}}, ErrSlotName},
		{"long name", []Slot{{strings.Repeat("x", MaxSlotName+1), None}}, ErrSlotName},
		{"invalid utf8", []Slot{{"a\xff", None}}, ErrSlotName},
		{"duplicate", []Slot{{"a", None}, {"b", None}, {"a", None}}, ErrSlotName},
		{"nil value", []Slot{{"a", nil}}, ErrInvalid},
		{"too deep", []Slot{{"a", nestedLists(MaxDepth + 1)}}, ErrTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := EncodeState(tt.slots); !errors.Is(err, tt.want) {
				t.Errorf("got error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeStateErrors(t *testing.T) {
	long := hex.EncodeToString([]byte(strings.Repeat("x", MaxSlotName+1)))
	tests := []struct {
		name string
		hex  string
		want string
	}{
		{"empty", "", "truncated state version at offset 0"},
		{"version", "02 00", "unknown state version 2 at offset 0"},
		{"huge count", "01 ffffffff0f", "slot count 4294967295 exceeds the 0 bytes left at offset 1"},
		{"empty name", "01 01 00 00", "invalid slot name: empty at offset 2"},
		{"long name", "01 01 8102" + long + "00", "invalid slot name: 257 bytes long, more than 256 at offset 2"},
		{"invalid utf8", "01 01 01 ff 00", `invalid slot name: "\xff" is not valid UTF-8 at offset 2`},
		{"duplicate", "01 02 01 61 00 01 61 01", `duplicate slot "a" at offset 5`},
		{"bad value", "01 01 01 61 2a", "unknown value tag 0x2a at offset 4"},
		{"trailing", "01 00 00", "1 trailing bytes at offset 2"},
		{"missing slot", "01 02 01 61 00", "truncated slot name length at offset 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeState(mustHex(t, tt.hex))
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("got %v, want ErrDecode", err)
			}
			if got, want := err.Error(), "image: decode: "+tt.want; got != want {
				t.Errorf("error = %q, want %q", got, want)
			}
		})
	}
}

func TestCheckSlotName(t *testing.T) {
	for _, name := range []string{"a", "parent*", "日本", strings.Repeat("x", MaxSlotName)} {
		if err := CheckSlotName(name); err != nil {
			t.Errorf("CheckSlotName(%q) = %v, want nil", name, err)
		}
	}
}

func TestRefs(t *testing.T) {
	slots := []Slot{
		{"parent*", Ref(1)},
		{"list", NewList(Ref(2), Tuple{Ref(3), BlobRef{digest(1), 1}}, Ref(1))},
		{"dict", mustDict(t, Ref(4), NewList(Ref(5)), String("b"), BlobRef{digest(1), 1})},
		{"method", &Method{Source: "s", Meta: mustDict(t, String("adapter"), BlobRef{digest(2), 7}, String("r"), Ref(6))}},
		{"plain", String("no refs")},
	}
	b, err := EncodeState(slots)
	if err != nil {
		t.Fatal(err)
	}
	oids, blobs, err := Refs(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(oids, []store.OID{1, 2, 3, 4, 5, 6}); diff != "" {
		t.Errorf("oids (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(blobs, []store.Digest{digest(1), digest(2)}); diff != "" {
		t.Errorf("blobs (-got +want):\n%s", diff)
	}
}

func TestRefsNone(t *testing.T) {
	b, err := EncodeState([]Slot{{"a", Int(1)}})
	if err != nil {
		t.Fatal(err)
	}
	oids, blobs, err := Refs(b)
	if err != nil || len(oids) != 0 || len(blobs) != 0 {
		t.Errorf("Refs = %v, %v, %v; want nothing", oids, blobs, err)
	}
}

func TestRefsCorrupt(t *testing.T) {
	if _, _, err := Refs([]byte{stateVersion, 1, 1, 'a', tagRef, 0}); !errors.Is(err, ErrDecode) {
		t.Errorf("Refs(corrupt): got %v, want ErrDecode", err)
	}
}

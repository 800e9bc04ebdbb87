package zmqbridge

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tinylib/msgp/msgp"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/store"
)

// cmpOpts compares floats by their bits, so NaN equals NaN and -0 differs
// from 0, as the codec preserves them.
var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }),
}

// diffDecoded returns a diff (-got +want) of two decoded values, or "" if
// they are equal. The check is linear: cmp.Diff takes time exponential in
// the nesting of one-element slices, so it only formats a mismatch.
func diffDecoded(got, want any) string {
	if equalDecoded(got, want) {
		return ""
	}
	return cmp.Diff(got, want, cmpOpts)
}

// equalDecoded is reflect.DeepEqual for decoded values, with floats
// compared by their bits.
func equalDecoded(a, b any) bool {
	switch a := a.(type) {
	case float64:
		b, ok := b.(float64)
		return ok && math.Float64bits(a) == math.Float64bits(b)
	case []byte:
		b, ok := b.([]byte)
		return ok && bytes.Equal(a, b) && (a == nil) == (b == nil)
	case []any:
		b, ok := b.([]any)
		return ok && slices.EqualFunc(a, b, equalDecoded) && (a == nil) == (b == nil)
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) || (a == nil) != (b == nil) {
			return false
		}
		for k, va := range a {
			vb, ok := b[k]
			if !ok || !equalDecoded(va, vb) {
				return false
			}
		}
		return true
	case nil, bool, int64, string, image.Ref:
		return a == b
	}
	panic(fmt.Sprintf("equalDecoded: unexpected type %T", a))
}

// sampleRequest exercises every type a request can hold.
func sampleRequest() map[string]any {
	return map[string]any{
		"id":      int64(42),
		"command": "send",
		"target":  image.Ref(7),
		"nil":     nil,
		"yes":     true,
		"no":      false,
		"ints":    []any{int64(0), int64(-1), int64(-33), int64(127), int64(255), int64(1 << 40), int64(math.MinInt64), int64(math.MaxInt64)},
		"floats":  []any{0.0, math.Copysign(0, -1), 1.5, math.Inf(-1), math.NaN()},
		"text":    strings.Repeat("é", 40),
		"empty":   "",
		"bin":     []byte{0, 1, 2, 0xff},
		"nobin":   []byte{},
		"kwargs":  map[string]any{"a": []any{map[string]any{}, []any{}}, "ref": image.Ref(math.MaxUint64)},
	}
}

func mustEncode(tb testing.TB, v map[string]any) []byte {
	tb.Helper()
	b, err := EncodeReply(v)
	if err != nil {
		tb.Fatalf("EncodeReply: %v", err)
	}
	return b
}

func TestCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
	}{
		{"empty", map[string]any{}},
		{"ping", map[string]any{"command": "ping", "id": int64(1)}},
		{"all types", sampleRequest()},
		{"long string", map[string]any{"s": strings.Repeat("x", 70_000)}},
		{"long bytes", map[string]any{"b": bytes.Repeat([]byte{7}, 300)}},
		{"many items", map[string]any{"a": make([]any, 20_000)}},
		{"deepest allowed", map[string]any{"a": nest(DefaultLimits.MaxDepth - 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRequest(mustEncode(t, tt.in), DefaultLimits)
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if diff := diffDecoded(got, tt.in); diff != "" {
				t.Errorf("round trip (-got +want):\n%s", diff)
			}
		})
	}
}

// nest returns n arrays nested in each other.
func nest(n int) any {
	var v any = int64(1)
	for range n {
		v = []any{v}
	}
	return v
}

// TestDecodeRequestForms decodes encodings other than the ones EncodeReply
// writes.
func TestDecodeRequestForms(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want map[string]any
	}{
		{"float32", "81a166ca3fc00000", map[string]any{"f": 1.5}},
		{"uint8", "81a175cc ff", map[string]any{"u": int64(255)}},
		{"uint64 max int64", "81a175cf7fffffffffffffff", map[string]any{"u": int64(math.MaxInt64)}},
		{"int8", "81a169d0 80", map[string]any{"i": int64(-128)}},
		{"str8 key", "81d901 6b c0", map[string]any{"k": nil}},
		{"str32 value", "81a173db00000002 6869", map[string]any{"s": "hi"}},
		{"bin8 empty", "81a162c400", map[string]any{"b": []byte{}}},
		{"array16", "81a161dc0002 0102", map[string]any{"a": []any{int64(1), int64(2)}}},
		{"map32", "df00000001 a161 c3", map[string]any{"a": true}},
		{"ref ext", "81a172d701 0000000000000009", map[string]any{"r": image.Ref(9)}},
		{"ref ext8", "81a172c70801 0000000000000009", map[string]any{"r": image.Ref(9)}},
		{"tagged ref", "81a17281a424726566 a56f69643a35", map[string]any{"r": image.Ref(5)}},
		{"tagged ref bare", "81a17281a424726566 a137", map[string]any{"r": image.Ref(7)}},
		{"top-level $ref key", "81a42472656601", map[string]any{"$ref": int64(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRequest(unhex(t, tt.hex), DefaultLimits)
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if diff := diffDecoded(got, tt.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

type hostileCase struct {
	name string
	in   []byte
	lim  Limits
	want string // in the error message
}

func hostileCases(tb testing.TB) []hostileCase {
	tb.Helper()
	h := func(s string) []byte { return unhex(tb, s) }
	big := mustEncode(tb, map[string]any{"s": strings.Repeat("x", DefaultLimits.MaxBytes)})
	deep := append(h("81a161"), bytes.Repeat([]byte{0x91}, DefaultLimits.MaxDepth)...)
	deep = append(deep, 0x01)
	return []hostileCase{
		{"empty", nil, Limits{}, "empty request"},
		{"invalid byte", h("c1"), Limits{}, "got invalid byte 0xc1"},
		{"invalid byte nested", h("81a161c1"), Limits{}, "invalid msgpack byte 0xc1 at offset 3"},
		{"array not map", h("9101"), Limits{}, "request must be a msgpack map, got array"},
		{"string not map", h("a161"), Limits{}, "request must be a msgpack map, got str"},
		{"array32 4Gi bare", h("ddffffffff"), Limits{}, "request must be a msgpack map, got array"},
		{"array32 4Gi nested", h("81a161ddffffffff"), Limits{},
			"array of 4294967295 items at offset 3 exceeds the 0 bytes left"},
		{"map32 4Gi", h("dfffffffff"), Limits{}, "map of 4294967295 entries at offset 0 exceeds the 0 bytes left"},
		{"map32 4Gi nested", h("81a161dfffffffff"), Limits{}, "map of 4294967295 entries at offset 3"},
		{"array16 count over bytes", h("81a161dc0005 0102"), Limits{}, "array of 5 items at offset 3 exceeds the 2 bytes left"},
		{"map16 count then garbage", append(h("de7530"), bytes.Repeat([]byte{0xc1}, 60_000)...), Limits{},
			"key 0 of the map at offset 0 is not a string: got invalid byte 0xc1 at offset 3"},
		{"array16 count then garbage", append(h("81a161dcffff"), bytes.Repeat([]byte{0xc1}, 65_535)...), Limits{},
			"invalid msgpack byte 0xc1 at offset 6"},
		{"map count over half the bytes", h("83a161c0"), Limits{}, "map of 3 entries at offset 0 exceeds the 3 bytes left"},
		{"deep nesting", deep, Limits{}, "array at offset 34 nests deeper than 32 levels"},
		{"very deep nesting", append(h("81a161"), bytes.Repeat([]byte{0x91}, 100_000)...), Limits{}, "nests deeper than 32 levels"},
		{"over MaxBytes", big, Limits{}, "bytes exceeds the limit of 1048576"},
		{"over small MaxBytes", h("81a161a3616263"), Limits{MaxBytes: 6}, "request of 7 bytes exceeds the limit of 6"},
		{"over MaxItems", h("82a16192c0c0a16292c0c0"), Limits{MaxItems: 5},
			"array of 2 items at offset 8 exceeds the limit of 5 items"},
		{"str32 4GiB value", h("81a161dbffffffff"), Limits{}, "str of 4294967295 bytes at offset 3 exceeds the 0 bytes left"},
		{"str32 4GiB key", h("81dbffffffff"), Limits{}, "str of 4294967295 bytes at offset 1 exceeds the 0 bytes left"},
		{"bin32 4GiB", h("81a161c6ffffffff"), Limits{}, "bin of 4294967295 bytes at offset 3"},
		{"ext32 4GiB", h("81a161c9ffffffff01"), Limits{}, "extension of 4294967295 bytes at offset 3"},
		{"uint64 max", h("81a161cfffffffffffffffff"), Limits{}, "integer 18446744073709551615 at offset 3 exceeds the int64 range"},
		{"key not string", h("82a161c001c0"), Limits{}, "key 1 of the map at offset 0 is not a string: got int at offset 4"},
		{"nested int key", h("81a1618101c0"), Limits{}, "key 0 of the map at offset 3 is not a string: got int at offset 4"},
		{"duplicate key", h("82a161c0a161c0"), Limits{}, `duplicate key "a" at offset 4`},
		{"ext type 2", h("81a161d7020000000000000001"), Limits{}, "extension type 2 at offset 3 is not supported"},
		{"ext type -1 (timestamp)", h("81a161d6ff00000001"), Limits{}, "extension type -1 at offset 3 is not supported"},
		{"ext 1 short", h("81a161d60100000001"), Limits{}, "object reference at offset 3 has 4 bytes of data, want 8"},
		{"ext 1 long", h("81a161d80100000000000000000000000000000001"), Limits{}, "has 16 bytes of data, want 8"},
		{"ext 1 empty", h("81a161c70001"), Limits{}, "has 0 bytes of data, want 8"},
		{"ref to OID 0", h("81a161d7010000000000000000"), Limits{}, "object reference at offset 3 is to OID 0"},
		{"tagged ref OID 0", h("81a16181a4247265 66a56f69643a30"), Limits{}, `"$ref" "oid:0" in the map at offset 3 is not an OID`},
		{"tagged ref not string", h("81a16181a4247265 6605"), Limits{}, `map at offset 3 has a "$ref" key but is not`},
		{"tagged ref extra key", h("81a16182a4247265 66a131a178c0"), Limits{}, `map at offset 3 has a "$ref" key but is not`},
		{"trailing bytes", h("80010203"), Limits{}, "request has 3 trailing bytes at offset 1"},
		{"missing value", h("81a161"), Limits{}, "a value is missing at offset 3"},
		{"truncated value", h("82a161c0a162"), Limits{}, "a value is missing at offset 6"},
		{"truncated int", h("81a161d1 00"), Limits{}, "truncated int at offset 3"},
		{"truncated float", h("81a161cb 0000"), Limits{}, "truncated float64 at offset 3"},
	}
}

func TestDecodeRequestHostile(t *testing.T) {
	for _, tt := range hostileCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRequest(tt.in, tt.lim)
			if !errors.Is(err, command.ErrBadRequest) {
				t.Fatalf("DecodeRequest = %v, %v; want an error wrapping command.ErrBadRequest", got, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// TestDecodeRequestHostileAllocs checks that no hostile input makes the
// decoder allocate more than a few KB, whatever its headers claim.
func TestDecodeRequestHostileAllocs(t *testing.T) {
	const runs = 20
	for _, tt := range hostileCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			perRun := allocBytes(runs, func() { _, _ = DecodeRequest(tt.in, tt.lim) })
			if perRun > 4<<10 {
				t.Errorf("DecodeRequest allocated %d bytes per run, want at most 4 KiB", perRun)
			}
		})
	}
}

// allocBytes returns the bytes f allocates per run, on average.
func allocBytes(runs int, f func()) uint64 {
	f() // warm up
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

func TestDecodeRequestTruncated(t *testing.T) {
	full := mustEncode(t, sampleRequest())
	if _, err := DecodeRequest(full, DefaultLimits); err != nil {
		t.Fatalf("DecodeRequest(full): %v", err)
	}
	for i := range len(full) {
		got, err := DecodeRequest(full[:i], DefaultLimits)
		if !errors.Is(err, command.ErrBadRequest) {
			t.Errorf("DecodeRequest(first %d of %d bytes) = %v, %v; want command.ErrBadRequest", i, len(full), got, err)
		}
	}
}

func TestDecodeRequestDepthLimit(t *testing.T) {
	tests := []struct {
		name   string
		arrays int
		lim    Limits
		ok     bool
	}{
		{"default limit", DefaultLimits.MaxDepth - 1, Limits{}, true},
		{"default limit plus one", DefaultLimits.MaxDepth, Limits{}, false},
		{"flat only", 0, Limits{MaxDepth: 1}, true},
		{"flat only with array", 1, Limits{MaxDepth: 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustEncode(t, map[string]any{"a": nest(tt.arrays)})
			_, err := DecodeRequest(b, tt.lim)
			if tt.ok && err != nil {
				t.Errorf("DecodeRequest: %v", err)
			}
			if !tt.ok && !errors.Is(err, command.ErrBadRequest) {
				t.Errorf("DecodeRequest error = %v, want command.ErrBadRequest", err)
			}
		})
	}
}

func TestEncodeReplyBytes(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		hex  string
	}{
		{"sorted keys", map[string]any{"b": int64(1), "a": nil}, "82a161c0a16201"},
		{"ref is fixext8 type 1", map[string]any{"r": image.Ref(0x0102030405060708)}, "81a172d7010102030405060708"},
		{"store OID", map[string]any{"r": store.OID(1)}, "81a172d7010000000000000001"},
		{"image bytes", map[string]any{"b": image.Bytes("\x00\x01")}, "81a162c4020001"},
		{"float32", map[string]any{"f": float32(1.5)}, "81a166ca3fc00000"},
		{"image float", map[string]any{"f": image.Float(1.5)}, "81a166cb3ff8000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hex.EncodeToString(mustEncode(t, tt.in))
			if got != tt.hex {
				t.Errorf("EncodeReply = %s, want %s", got, tt.hex)
			}
		})
	}
}

func TestEncodeReplyImageValues(t *testing.T) {
	intKeys := &image.Dict{}
	mustSet(t, intKeys, image.Int(1), image.String("one"))
	mustSet(t, intKeys, image.Tuple{image.Int(2)}, image.None)
	strKeys := &image.Dict{}
	mustSet(t, strKeys, image.String("z"), image.Int(26))
	mustSet(t, strKeys, image.String("a"), image.NewList(image.Bool(true)))
	var digest store.Digest
	digest[0], digest[31] = 0xab, 0xcd
	digestHex := "sha256:ab" + strings.Repeat("00", 30) + "cd"

	tests := []struct {
		name string
		in   any
		want any
	}{
		{"none", image.None, nil},
		{"bool", image.Bool(true), true},
		{"int", image.Int(-5), int64(-5)},
		{"float", image.Float(2.5), 2.5},
		{"string", image.String("hi"), "hi"},
		{"bytes", image.Bytes("\xff"), []byte{0xff}},
		{"ref", image.Ref(3), image.Ref(3)},
		{"list", image.NewList(image.Int(1), image.String("x")), []any{int64(1), "x"}},
		{"nil list", (*image.List)(nil), []any{}},
		{"tuple", image.Tuple{image.None, image.Bool(false)}, []any{nil, false}},
		{"dict with string keys", strKeys, map[string]any{"z": int64(26), "a": []any{true}}},
		{"dict with other keys", intKeys, []any{[]any{int64(1), "one"}, []any{[]any{int64(2)}, nil}}},
		{"empty dict", &image.Dict{}, map[string]any{}},
		{"method", &image.Method{Source: "def f(): pass"}, map[string]any{"$method": "def f(): pass"}},
		{"blob", image.BlobRef{Digest: digest, Size: 10}, map[string]any{"$blob": digestHex, "size": int64(10)}},
		{"primitive", image.Primitive{Name: "print"}, map[string]any{"$primitive": "print"}},
		{"values", []image.Value{image.Int(1)}, []any{int64(1)}},
		{"value map", map[string]image.Value{"k": image.Int(1)}, map[string]any{"k": int64(1)}},
		{"strings", []string{"a", "b"}, []any{"a", "b"}},
		{"string map", map[string]string{"a": "b"}, map[string]any{"a": "b"}},
		{"maps", []map[string]any{{"a": 1}}, []any{map[string]any{"a": int64(1)}}},
		{"go ints", []any{1, int8(-2), int16(3), int32(4), uint(5), uint8(6), uint16(7), uint32(8), uint64(9)},
			[]any{int64(1), int64(-2), int64(3), int64(4), int64(5), int64(6), int64(7), int64(8), int64(9)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustEncode(t, map[string]any{"v": tt.in})
			got, err := DecodeRequest(b, DefaultLimits)
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if diff := diffDecoded(got["v"], tt.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

func mustSet(tb testing.TB, d *image.Dict, k, v image.Value) {
	tb.Helper()
	if err := d.Set(k, v); err != nil {
		tb.Fatalf("Set: %v", err)
	}
}

func TestEncodeReplyErrors(t *testing.T) {
	cycle := []any{nil}
	cycle[0] = cycle
	tests := []struct {
		name string
		in   map[string]any
		want string
	}{
		{"channel", map[string]any{"c": make(chan int)}, `"c": zmqbridge: cannot encode reply: unsupported type chan int`},
		{"nested func", map[string]any{"a": []any{1, func() {}}}, `"a": [1]: zmqbridge: cannot encode reply: unsupported type func()`},
		{"ref to OID 0", map[string]any{"r": image.Ref(0)}, "reference to OID 0"},
		{"nil method", map[string]any{"m": (*image.Method)(nil)}, "nil *image.Method"},
		{"cycle", map[string]any{"c": cycle}, "nested deeper than 116 levels"},
		{"struct", map[string]any{"s": struct{}{}}, "unsupported type struct {}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := EncodeReply(tt.in)
			if !errors.Is(err, ErrEncode) {
				t.Fatalf("EncodeReply = %x, %v; want an error wrapping ErrEncode", b, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// TestEncodeReplyDeepImageValue checks that every value the image can
// store (up to image.MaxDepth levels) encodes inside a reply.
func TestEncodeReplyDeepImageValue(t *testing.T) {
	var v image.Value = image.None
	for range image.MaxDepth {
		v = image.NewList(v)
	}
	reply := map[string]any{"ok": true, "result": map[string]any{"value": v}}
	if _, err := EncodeReply(reply); err != nil {
		t.Fatalf("EncodeReply: %v", err)
	}
}

func TestCodecToImage(t *testing.T) {
	wantDict := &image.Dict{}
	mustSet(t, wantDict, image.String("a"), image.Int(1))
	mustSet(t, wantDict, image.String("b"), image.Ref(4))
	tests := []struct {
		name string
		in   any
		want image.Value
	}{
		{"nil", nil, image.None},
		{"bool", true, image.Bool(true)},
		{"int", int64(-3), image.Int(-3)},
		{"float", 0.5, image.Float(0.5)},
		{"string", "s", image.String("s")},
		{"bytes", []byte("b"), image.Bytes("b")},
		{"ref", image.Ref(9), image.Ref(9)},
		{"list", []any{int64(1), "x"}, image.NewList(image.Int(1), image.String("x"))},
		{"map sorted", map[string]any{"b": image.Ref(4), "a": int64(1)}, wantDict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ToImage(tt.in)
			if err != nil {
				t.Fatalf("ToImage: %v", err)
			}
			if !image.Equal(got, tt.want) {
				t.Errorf("ToImage = %s, want %s", image.Repr(got), image.Repr(tt.want))
			}
		})
	}
}

func TestCodecToImageErrors(t *testing.T) {
	if _, err := ToImage(make(chan int)); !errors.Is(err, image.ErrUnsupported) {
		t.Errorf("ToImage(chan) error = %v, want image.ErrUnsupported", err)
	}
	if _, err := ToImage(nest(image.MaxDepth + 1)); !errors.Is(err, image.ErrTooDeep) {
		t.Errorf("ToImage(deep) error = %v, want image.ErrTooDeep", err)
	}
}

// TestCodecDecodedToImage decodes a request and converts every value.
func TestCodecDecodedToImage(t *testing.T) {
	req, err := DecodeRequest(mustEncode(t, sampleRequest()), DefaultLimits)
	if err != nil {
		t.Fatalf("DecodeRequest: %v", err)
	}
	for k, v := range req {
		if _, err := ToImage(v); err != nil {
			t.Errorf("ToImage(%s): %v", k, err)
		}
	}
}

// TestCodecMsgpCompat checks that msgp's own reader agrees with the
// encoding of plain values.
func TestCodecMsgpCompat(t *testing.T) {
	b := mustEncode(t, map[string]any{"a": []any{int64(1), "x", 2.5, nil, true}})
	got, rest, err := msgp.ReadMapStrIntfBytes(b, nil)
	if err != nil || len(rest) != 0 {
		t.Fatalf("ReadMapStrIntfBytes: %v (%d bytes left)", err, len(rest))
	}
	want := map[string]any{"a": []any{int64(1), "x", 2.5, nil, true}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
}

package gguf_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"

	"batos/internal/gguf"
	"batos/internal/gguf/gguftest"
)

// TestReadRefuses feeds Read hostile, truncated and corrupted files and
// checks that each error says what is wrong, where, and is ErrFormat, and
// that refusing cost little memory whatever the file claimed.
func TestReadRefuses(t *testing.T) {
	valid := encode(t, []gguf.KV{str("general.architecture", "llama")},
		[]gguf.Tensor{f32("a", 8), f32("blk.0.attn_q.weight", 4, 4)})
	long := strings.Repeat("x", 64)
	tests := []struct {
		name string
		file []byte
		want string
		off  int64 // the FormatError's Offset, or -1 not to check
	}{
		{"empty", nil, "not a GGUF file: only 0 bytes", 0},
		{"zip", []byte("PK\x03\x04\x14\x00\x00\x00"), `not a GGUF file: magic is "PK\x03\x04"`, 0},
		{"version 1", header(1, 0, 0).b, "version 1 is no longer supported", 4},
		{"version 4", header(4, 0, 0).b, "version 4 is not supported", 4},
		{"big-endian", header(0x03000000, 0, 0).b, "big-endian", 4},
		{"no counts", []byte("GGUF\x03\x00\x00\x00\x01"), "tensor count: unexpected end of file (the file has 9 bytes)", 8},
		{"tensor count limit", header(3, 1<<40, 0).b, "tensor count 1099511627776 exceeds the limit", 8},
		{"tensor count", header(3, 2, 0).add(make([]byte, 60)...).b, "tensor count 2 exceeds the file (60 bytes remain)", 8},
		{"metadata count limit", header(3, 0, math.MaxUint64).b, "metadata count 18446744073709551615 exceeds the limit", 16},
		{"metadata count", header(3, 0, 1000).add(make([]byte, 100)...).b, "metadata count 1000 exceeds the file", 16},
		{"key length", header(3, 0, 1).u64(100).add(make([]byte, 20)...).b,
			"metadata key 0: key length 100 exceeds the file (20 bytes remain)", 24},
		{"key limit", header(3, 0, 1).u64(1 << 16).add(make([]byte, 20)...).b,
			"metadata key 0: key length 65536 exceeds the limit of 65535", 24},
		{"empty key", header(3, 0, 1).str("").u32(0).add(1, 0).b, "metadata key 0: empty key", 24},
		{"duplicate key", header(3, 0, 2).kv("k", "a").kv("k", "b").b, `metadata key 1 "k": duplicate key (also metadata key 0)`, 46},
		{"value type", header(3, 0, 1).str("k").u32(13).add(0).b, `metadata key 0 "k": unknown value type 13`, 33},
		{"string length", header(3, 0, 2).kv("a", "b").str("general.name").u32(8).u64(9999999).add(0, 0).b,
			`metadata key 1 "general.name": string length 9999999 exceeds the file (2 bytes remain)`, 70},
		{"string cut", header(3, 0, 1).str("k").u32(uint32(gguf.TypeUint64)).add(1, 2).b,
			`metadata key 0 "k": value: unexpected end of file (the file has 39 bytes)`, 37},
		{"array of arrays", header(3, 0, 1).str("k").u32(9).u32(9).u64(0).b, `metadata key 0 "k": arrays of arrays are not supported`, 37},
		{"array element type", header(3, 0, 1).str("k").u32(9).u32(77).u64(0).b, "unknown array element type 77", 37},
		{"array limit", header(3, 0, 1).str("k").u32(9).u32(0).u64(1<<22 + 1).add(make([]byte, 16)...).b,
			"array of 4194305 elements exceeds the limit of 4194304", 41},
		{"array length", header(3, 0, 1).str("tokens").u32(9).u32(uint32(gguf.TypeString)).u64(1000).str("a").str("b").b,
			`metadata key 0 "tokens": array of 1000 string elements exceeds the file (18 bytes remain)`, 46},
		{"array element cut", header(3, 0, 1).str("k").u32(9).u32(uint32(gguf.TypeString)).u64(2).str("abc").u64(100).b,
			`metadata key 0 "k": element 1: string length 100 exceeds the file`, 60},
		{"alignment type", header(3, 0, 1).str("general.alignment").u32(uint32(gguf.TypeUint64)).u64(64).b,
			`metadata key 0 "general.alignment": type uint64, want uint32`, 24},
		{"alignment value", header(3, 0, 1).kvU32("general.alignment", 48).b, "alignment 48 is not a power of two", 24},
		{"alignment zero", header(3, 0, 1).kvU32("general.alignment", 0).b, "alignment 0 is not a power of two", 24},
		{"empty name", header(3, 1, 0).info("", gguf.F32, 0, 1).data(32, 4).b, "tensor 0: empty name", 24},
		{"long name", header(3, 1, 0).info(long, gguf.F32, 0, 1).data(32, 4).b, "tensor 0: name length 64 exceeds the limit of 63", 24},
		{"duplicate name", header(3, 2, 0).info("t", gguf.F32, 0, 1).info("t", gguf.F32, 32, 1).data(32, 36).b,
			`tensor 1 "t": duplicate name (also tensor 0)`, 57},
		{"no dims", header(3, 1, 0).info("t", gguf.F32, 0).data(32, 4).b, `tensor 0 "t": 0 dimensions, want 1 to 4`, 33},
		{"five dims", header(3, 1, 0).info("t", gguf.F32, 0, 1, 1, 1, 1, 1).data(32, 4).b, `tensor 0 "t": 5 dimensions, want 1 to 4`, 33},
		{"zero dim", header(3, 1, 0).info("t", gguf.F32, 0, 4, 0).data(32, 4).b, `tensor 0 "t": dimension 1 is 0`, 24},
		{"dims cut", header(3, 1, 0).str(long[:30]).u32(2).u64(4).add(make([]byte, 4)...).b,
			`: dimension 1: unexpected end of file (the file has 78 bytes)`, 74},
		{"elements overflow", header(3, 1, 0).info("t", gguf.F32, 0, 1<<32, 1<<31).data(32, 4).b, "more than 2^63 elements", 24},
		{"unknown type elements overflow", header(3, 1, 0).info("t", 200, 0, 1<<32, 1<<32).data(32, 4).b, "more than 2^63 elements", 24},
		{"bytes overflow", header(3, 1, 0).info("t", gguf.F32, 0, 1<<62).data(32, 4).b, "takes more than 2^63 bytes", 24},
		{"partial block", header(3, 1, 0).info("t", gguf.Q4_0, 0, 48).data(32, 36).b,
			`tensor 0 "t": row of 48 elements is not a whole number of Q4_0 blocks of 32`, 24},
		{"unaligned", header(3, 1, 0).info("t", gguf.F32, 4, 1).data(32, 8).b,
			`tensor 0 "t": data offset 4 is not a multiple of the alignment 32`, 24},
		{"offset overflow", header(3, 1, 0).info("t", gguf.F32, math.MaxUint64&^31, 1).data(32, 4).b,
			"data offset 18446744073709551584 overflows", 24},
		{"truncated data", valid[:len(valid)-40], `tensor 1 "blk.0.attn_q.weight": data ends at 288 but the file has 248 bytes`, 102},
		{"missing data", header(3, 1, 0).info("t", gguf.F32, 1<<20, 8).data(32, 4).b,
			`tensor 0 "t": data ends at 1048672 but the file has 68 bytes`, 24},
		{"unknown type missing data", header(3, 1, 0).info("t", 200, 64, 8).data(32, 4).b,
			`tensor 0 "t": data starts at 128 but the file has 68 bytes`, 24},
		{"overlap", header(3, 2, 0).info("a", gguf.F32, 0, 16).info("b", gguf.F32, 32, 1).data(32, 64).b,
			`tensor 1 "b": data at 32 overlaps tensor 0 "a" (data 0 to 64)`, 57},
		{"same offset", header(3, 2, 0).info("a", 200, 0, 16).info("b", gguf.F32, 0, 1).data(32, 64).b,
			`tensor 1 "b": data at 0 overlaps tensor 0 "a" (data 0 to 1)`, 57},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			alloc := allocated(func() { _, err = gguf.Read(bytes.NewReader(tt.file), int64(len(tt.file))) })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Read: %v\nwant an error containing %s", err, tt.want)
			}
			if !errors.Is(err, gguf.ErrFormat) {
				t.Errorf("Read: %v, not ErrFormat", err)
			}
			var fe *gguf.FormatError
			if !errors.As(err, &fe) || (tt.off >= 0 && fe.Offset != tt.off) {
				t.Errorf("Read: %#v, want a *FormatError at offset %d", err, tt.off)
			}
			if alloc > 1<<20 {
				t.Errorf("Read allocated %d bytes to refuse a %d-byte file", alloc, len(tt.file))
			}
		})
	}
}

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestReadEveryTruncation checks that every proper prefix of a file is
// refused as a format error.
func TestReadEveryTruncation(t *testing.T) {
	meta := append(allTypes(), gguf.KV{Key: "general.alignment", Type: gguf.TypeUint32, Value: uint64(8)})
	data := encode(t, meta, []gguf.Tensor{f32("a", 3), f32("b", 2, 2)})
	f := parse(t, data)
	for n := range f.Size {
		_, err := gguf.Read(bytes.NewReader(data[:n]), n)
		if !errors.Is(err, gguf.ErrFormat) {
			t.Fatalf("Read of the first %d of %d bytes: %v, want ErrFormat", n, f.Size, err)
		}
	}
}

func TestReadAccepts(t *testing.T) {
	tests := []struct {
		name string
		file []byte
		size int64 // f.Size
	}{
		{"version 2", header(2, 0, 0).b, 24},
		{"no tensors, no padding", header(3, 0, 1).kv("k", "v").b, 46},
		{"trailing bytes", header(3, 1, 0).info("t", gguf.F32, 0, 2).data(32, 8).add(1, 2, 3).b, 72},
		{"unknown type", header(3, 1, 0).info("t", 200, 0, 2).data(32, 1).b, 65},
		{"out of order", header(3, 2, 0).info("a", gguf.F32, 32, 1).info("b", gguf.F32, 0, 8).data(32, 36).b, 132},
		{"bool 2", header(3, 0, 1).str("b").u32(uint32(gguf.TypeBool)).add(2).b, 38},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := parse(t, tt.file)
			if f.Size != tt.size {
				t.Errorf("Size = %d, want %d", f.Size, tt.size)
			}
		})
	}
	f := parse(t, tests[3].file)
	if f.Tensors[0].Size != -1 || f.Tensors[0].Type.String() != "TensorType(200)" {
		t.Errorf("unknown type tensor: %+v", f.Tensors[0])
	}
	if v, _ := parse(t, tests[5].file).Get("b"); v.Value != true {
		t.Errorf("bool 2 reads as %v, want true", v.Value)
	}
}

type failReader struct{}

func (failReader) ReadAt(p []byte, off int64) (int, error) { return 0, errors.New("disk on fire") }

func TestReadReportsReaderErrors(t *testing.T) {
	_, err := gguf.Read(failReader{}, 100)
	if err == nil || errors.Is(err, gguf.ErrFormat) || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Read = %v, want the reader's error, not ErrFormat", err)
	}
	// A reader shorter than the size it is said to have is not a format
	// problem either.
	data := header(3, 0, 1).kv("k", "v").b[:30]
	_, err = gguf.Read(bytes.NewReader(data), 1000)
	if !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gguf.ErrFormat) {
		t.Errorf("Read of a reader shorter than its size = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestFileAccessors(t *testing.T) {
	f := build(t, allTypes(), f32("t", 2))
	if s, ok := f.String("string"); !ok || s != "héllo\x00" {
		t.Errorf("String(string) = %q, %v", s, ok)
	}
	if _, ok := f.String("u8"); ok {
		t.Error("String(u8) is ok")
	}
	for key, want := range map[string]uint64{"u8": 255, "u16": 65535, "u32": math.MaxUint32, "u64": math.MaxUint64} {
		if v, ok := f.Uint(key); !ok || v != want {
			t.Errorf("Uint(%s) = %d, %v; want %d", key, v, ok, want)
		}
	}
	for _, key := range []string{"i8", "i64", "f32", "string", "a.u8", "missing"} {
		if v, ok := f.Uint(key); ok {
			t.Errorf("Uint(%s) = %d, ok", key, v)
		}
	}
	g := build(t, []gguf.KV{{Key: "n", Type: gguf.TypeInt32, Value: 5}})
	if v, ok := g.Uint("n"); !ok || v != 5 {
		t.Errorf("Uint of int32 5 = %d, %v", v, ok)
	}
	if v, ok := f.Float("f64"); !ok || v != 0.1 {
		t.Errorf("Float(f64) = %v, %v", v, ok)
	}
	if _, ok := f.Float("u8"); ok {
		t.Error("Float(u8) is ok")
	}
	if f.Architecture() != "llama" || f.Type() != "model" || f.IsAdapter() {
		t.Errorf("Architecture %q, Type %q, IsAdapter %v", f.Architecture(), f.Type(), f.IsAdapter())
	}
	if ti, ok := f.Tensor("t"); !ok || ti.Size != 8 {
		t.Errorf("Tensor(t) = %+v, %v", ti, ok)
	}
	if _, ok := f.Tensor("u"); ok {
		t.Error("Tensor(u) is ok")
	}
}

func TestTypeNames(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{gguf.TypeFloat32.String(), "float32"},
		{gguf.TypeArray.String(), "array"},
		{gguf.ValueType(13).String(), "ValueType(13)"},
		{gguf.Q4_K.String(), "Q4_K"},
		{gguf.BF16.String(), "BF16"},
		{gguf.TensorType(4).String(), "TensorType(4)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
	// Block layouts llama.cpp's tables give; spot checks.
	for _, tt := range []struct {
		typ          gguf.TensorType
		block, bytes int64
	}{
		{gguf.F32, 1, 4}, {gguf.Q4_0, 32, 18}, {gguf.Q8_0, 32, 34}, {gguf.Q8_1, 32, 36},
		{gguf.Q4_K, 256, 144}, {gguf.Q6_K, 256, 210}, {gguf.IQ4_XS, 256, 136}, {gguf.BF16, 1, 2},
	} {
		if b, n := tt.typ.BlockSize(), tt.typ.BlockBytes(); b != tt.block || n != tt.bytes {
			t.Errorf("%s: block %d of %d bytes, want %d of %d", tt.typ, b, n, tt.block, tt.bytes)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	data := gguftest.TinyLlama(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := gguf.Read(bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
}

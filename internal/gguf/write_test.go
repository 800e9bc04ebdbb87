package gguf_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"batos/internal/gguf"
)

// allTypes has a pair of every value type and an array of every element
// type, with values as Read returns them.
func allTypes() []gguf.KV {
	arr := func(key string, elem gguf.ValueType, vals ...any) gguf.KV {
		return gguf.KV{Key: key, Type: gguf.TypeArray, Elem: elem, Value: vals}
	}
	return []gguf.KV{
		str("general.architecture", "llama"),
		{Key: "u8", Type: gguf.TypeUint8, Value: uint64(255)},
		{Key: "i8", Type: gguf.TypeInt8, Value: int64(-128)},
		{Key: "u16", Type: gguf.TypeUint16, Value: uint64(65535)},
		{Key: "i16", Type: gguf.TypeInt16, Value: int64(-32768)},
		{Key: "u32", Type: gguf.TypeUint32, Value: uint64(math.MaxUint32)},
		{Key: "i32", Type: gguf.TypeInt32, Value: int64(math.MinInt32)},
		{Key: "f32", Type: gguf.TypeFloat32, Value: float64(float32(0.1))},
		{Key: "bool", Type: gguf.TypeBool, Value: true},
		{Key: "string", Type: gguf.TypeString, Value: "héllo\x00"},
		{Key: "u64", Type: gguf.TypeUint64, Value: uint64(math.MaxUint64)},
		{Key: "i64", Type: gguf.TypeInt64, Value: int64(math.MinInt64)},
		{Key: "f64", Type: gguf.TypeFloat64, Value: 0.1},
		arr("a.u8", gguf.TypeUint8, uint64(1), uint64(2)),
		arr("a.i8", gguf.TypeInt8, int64(-1)),
		arr("a.u16", gguf.TypeUint16, uint64(3)),
		arr("a.i16", gguf.TypeInt16, int64(-3)),
		arr("a.u32", gguf.TypeUint32, uint64(4)),
		arr("a.i32", gguf.TypeInt32, int64(-4), int64(5)),
		arr("a.f32", gguf.TypeFloat32, 1.5, -2.0),
		arr("a.bool", gguf.TypeBool, true, false),
		arr("a.string", gguf.TypeString, "a", "", "▁b"),
		arr("a.u64", gguf.TypeUint64, uint64(6)),
		arr("a.i64", gguf.TypeInt64, int64(-6)),
		arr("a.f64", gguf.TypeFloat64, 2.5),
		arr("a.empty", gguf.TypeString),
	}
}

func TestRoundTrip(t *testing.T) {
	f16 := gguf.Tensor{Name: "half", Dims: []uint64{3, 2}, Type: gguf.F16, Data: make([]byte, 12)}
	tests := []struct {
		name    string
		meta    []gguf.KV
		tensors []gguf.Tensor
		align   uint64
	}{
		{"no tensors", allTypes(), nil, 32},
		{"no metadata", nil, []gguf.Tensor{f32("t", 5)}, 32},
		{"all types", allTypes(), []gguf.Tensor{f32("a", 7), f16, f32("b", 2, 3, 4, 5)}, 32},
		{"alignment 64", append(allTypes(), gguf.KV{Key: "general.alignment", Type: gguf.TypeUint32, Value: uint64(64)}),
			[]gguf.Tensor{f32("a", 3), f32("b", 17, 1)}, 64},
		{"alignment 1", []gguf.KV{{Key: "general.alignment", Type: gguf.TypeUint32, Value: uint64(1)}},
			[]gguf.Tensor{f16, f32("b", 1)}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := encode(t, tt.meta, tt.tensors)
			f := parse(t, data)
			if f.Version != 3 || f.Alignment != tt.align {
				t.Errorf("version %d, alignment %d; want 3, %d", f.Version, f.Alignment, tt.align)
			}
			if diff := cmp.Diff(f.Metadata, tt.meta, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("metadata (-got +want):\n%s", diff)
			}
			if f.DataOffset%int64(tt.align) != 0 || f.Size > int64(len(data)) {
				t.Errorf("DataOffset %d, Size %d in a file of %d bytes", f.DataOffset, f.Size, len(data))
			}
			var infos []gguf.TensorInfo
			for i, tensor := range tt.tensors {
				got := f.Tensors[i]
				infos = append(infos, gguf.TensorInfo{Name: tensor.Name, Dims: tensor.Dims, Type: tensor.Type,
					Offset: got.Offset, Size: int64(len(tensor.Data))})
				start := f.DataOffset + int64(got.Offset)
				if !bytes.Equal(data[start:start+got.Size], tensor.Data) {
					t.Errorf("tensor %s: data differs", tensor.Name)
				}
			}
			if diff := cmp.Diff(f.Tensors, infos, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("tensors (-got +want):\n%s", diff)
			}
		})
	}
}

func TestWriteConvertsGoValues(t *testing.T) {
	meta := []gguf.KV{
		{Key: "int", Type: gguf.TypeUint32, Value: 7},
		{Key: "neg", Type: gguf.TypeInt16, Value: int8(-7)},
		{Key: "f32", Type: gguf.TypeFloat32, Value: float32(0.5)},
		{Key: "strings", Type: gguf.TypeArray, Elem: gguf.TypeString, Value: []string{"x", "y"}},
		{Key: "floats", Type: gguf.TypeArray, Elem: gguf.TypeFloat32, Value: []float32{1, 2}},
		{Key: "bytes", Type: gguf.TypeArray, Elem: gguf.TypeUint8, Value: []byte{9}},
	}
	f := build(t, meta)
	want := []any{uint64(7), int64(-7), 0.5, []any{"x", "y"}, []any{1.0, 2.0}, []any{uint64(9)}}
	for i, kv := range f.Metadata {
		if diff := cmp.Diff(kv.Value, want[i]); diff != "" {
			t.Errorf("%s (-got +want):\n%s", kv.Key, diff)
		}
	}
}

func TestWriteRefuses(t *testing.T) {
	tests := []struct {
		name    string
		meta    []gguf.KV
		tensors []gguf.Tensor
		want    string
	}{
		{"empty key", []gguf.KV{str("", "x")}, nil, "key length 0"},
		{"duplicate key", []gguf.KV{str("k", "x"), str("k", "y")}, nil, "duplicate key"},
		{"wrong Go type", []gguf.KV{{Key: "k", Type: gguf.TypeUint32, Value: "7"}}, nil, "is not a uint32"},
		{"out of range", []gguf.KV{{Key: "k", Type: gguf.TypeUint8, Value: 256}}, nil, "is not a uint8"},
		{"negative unsigned", []gguf.KV{{Key: "k", Type: gguf.TypeUint64, Value: -1}}, nil, "is not a uint64"},
		{"signed out of range", []gguf.KV{{Key: "k", Type: gguf.TypeInt8, Value: 128}}, nil, "is not a int8"},
		{"unknown type", []gguf.KV{{Key: "k", Type: 13, Value: 1}}, nil, "unknown value type"},
		{"array of arrays", []gguf.KV{{Key: "k", Type: gguf.TypeArray, Elem: gguf.TypeArray, Value: []any{}}}, nil, "not supported"},
		{"array not a slice", []gguf.KV{{Key: "k", Type: gguf.TypeArray, Elem: gguf.TypeUint8, Value: 1}}, nil, "want a slice"},
		{"array element", []gguf.KV{{Key: "k", Type: gguf.TypeArray, Elem: gguf.TypeString, Value: []any{"a", 1}}}, nil, "element 1"},
		{"alignment type", []gguf.KV{{Key: "general.alignment", Type: gguf.TypeUint64, Value: 64}}, nil, "uint32 power of two"},
		{"alignment value", []gguf.KV{{Key: "general.alignment", Type: gguf.TypeUint32, Value: 48}}, nil, "uint32 power of two"},
		{"no name", nil, []gguf.Tensor{f32("", 1)}, "name length 0"},
		{"long name", nil, []gguf.Tensor{f32(strings.Repeat("n", 64), 1)}, "name length 64"},
		{"duplicate name", nil, []gguf.Tensor{f32("t", 1), f32("t", 2)}, "duplicate name"},
		{"no dims", nil, []gguf.Tensor{f32("t")}, "0 dimensions"},
		{"five dims", nil, []gguf.Tensor{f32("t", 1, 1, 1, 1, 1)}, "5 dimensions"},
		{"zero dim", nil, []gguf.Tensor{f32("t", 2, 0)}, "dimension 1 is 0"},
		{"short data", nil, []gguf.Tensor{{Name: "t", Dims: []uint64{4}, Type: gguf.F16, Data: make([]byte, 7)}}, "data is 7 bytes, want 8"},
		{"unknown tensor type", nil, []gguf.Tensor{{Name: "t", Dims: []uint64{4}, Type: 99, Data: make([]byte, 4)}}, "unknown type"},
		{"partial block", nil, []gguf.Tensor{{Name: "t", Dims: []uint64{16}, Type: gguf.Q8_0, Data: make([]byte, 17)}}, "whole number of Q8_0 blocks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := gguf.Write(&buf, tt.meta, tt.tensors)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Write: %v, want an error containing %q", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("Write wrote %d bytes before refusing", buf.Len())
			}
		})
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriteReportsWriterErrors(t *testing.T) {
	err := gguf.Write(&failWriter{n: 100}, allTypes(), []gguf.Tensor{f32("t", 1<<16)})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Write = %v, want the writer's error", err)
	}
}

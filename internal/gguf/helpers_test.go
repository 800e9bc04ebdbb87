package gguf_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"batos/internal/gguf"
)

// raw builds files byte by byte, for inputs Write refuses to make.
type raw struct{ b []byte }

// header starts a file with the magic, a version and the two counts.
func header(version uint32, nTensors, nKVs uint64) *raw {
	r := &raw{b: []byte("GGUF")}
	return r.u32(version).u64(nTensors).u64(nKVs)
}

func (r *raw) u32(v uint32) *raw  { r.b = binary.LittleEndian.AppendUint32(r.b, v); return r }
func (r *raw) u64(v uint64) *raw  { r.b = binary.LittleEndian.AppendUint64(r.b, v); return r }
func (r *raw) str(s string) *raw  { return r.u64(uint64(len(s))).add([]byte(s)...) }
func (r *raw) add(p ...byte) *raw { r.b = append(r.b, p...); return r }

// kv adds a string key/value pair.
func (r *raw) kv(key, val string) *raw { return r.str(key).u32(uint32(gguf.TypeString)).str(val) }

// kvU32 adds a uint32 key/value pair.
func (r *raw) kvU32(key string, v uint32) *raw {
	return r.str(key).u32(uint32(gguf.TypeUint32)).u32(v)
}

// info adds a tensor info.
func (r *raw) info(name string, typ gguf.TensorType, off uint64, dims ...uint64) *raw {
	r.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r.u64(d)
	}
	return r.u32(uint32(typ)).u64(off)
}

// data pads to a multiple of align and adds n zero bytes.
func (r *raw) data(align, n int) *raw {
	for len(r.b)%align != 0 {
		r.b = append(r.b, 0)
	}
	r.b = append(r.b, make([]byte, n)...)
	return r
}

// f32 returns an F32 tensor of zeros of the given shape.
func f32(name string, dims ...uint64) gguf.Tensor {
	n := uint64(4)
	for _, d := range dims {
		n *= d
	}
	return gguf.Tensor{Name: name, Dims: dims, Type: gguf.F32, Data: make([]byte, n)}
}

func str(key, v string) gguf.KV { return gguf.KV{Key: key, Type: gguf.TypeString, Value: v} }

// encode writes a file and fails the test if Write refuses.
func encode(tb testing.TB, meta []gguf.KV, tensors []gguf.Tensor) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := gguf.Write(&buf, meta, tensors); err != nil {
		tb.Fatalf("Write: %v", err)
	}
	return buf.Bytes()
}

// parse reads a file and fails the test if Read refuses.
func parse(tb testing.TB, data []byte) *gguf.File {
	tb.Helper()
	f, err := gguf.Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		tb.Fatalf("Read: %v", err)
	}
	return f
}

// build writes a file and reads it back.
func build(tb testing.TB, meta []gguf.KV, tensors ...gguf.Tensor) *gguf.File {
	tb.Helper()
	return parse(tb, encode(tb, meta, tensors))
}

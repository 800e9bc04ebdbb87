package gguf_test

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"batos/internal/gguf"
)

// FuzzRead checks that Read never panics, allocates in proportion to the
// file at most, and that what it accepts is consistent: every tensor lies
// within Size, Size within the file, and Write accepts the same metadata
// and tensors and produces a file Read reads back the same.
func FuzzRead(f *testing.F) {
	// Small seeds: the fuzzer minimizes every new input it finds, which
	// takes long on files of kilobytes like gguftest's.
	f.Add(encode(f, adapterMeta(), []gguf.Tensor{f32("x.lora_a", 4, 2), f32("x.lora_b", 2, 4), f32("token_embd.weight.lora_b", 2, 4)}))
	f.Add(encode(f, allTypes(), []gguf.Tensor{f32("a", 3), {Name: "h", Dims: []uint64{2, 2}, Type: gguf.F16, Data: make([]byte, 8)}}))
	f.Add(encode(f, []gguf.KV{{Key: "general.alignment", Type: gguf.TypeUint32, Value: 8}, str("general.architecture", "llama")},
		[]gguf.Tensor{f32("x", 1), f32("y.lora_a", 2, 1)}))
	f.Add(header(3, 2, 0).info("a", gguf.Q4_0, 32, 32).info("b", 200, 0, 4).data(32, 64).b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var file *gguf.File
		var err error
		alloc := allocated(func() { file, err = gguf.Read(bytes.NewReader(data), int64(len(data))) })
		if limit := 64*uint64(len(data)) + 1<<20; alloc > limit {
			t.Fatalf("Read allocated %d bytes for a %d-byte file", alloc, len(data))
		}
		if err != nil {
			return
		}
		if file.Size > int64(len(data)) || file.DataOffset%int64(file.Alignment) != 0 {
			t.Fatalf("Size %d, DataOffset %d, alignment %d for a %d-byte file", file.Size, file.DataOffset, file.Alignment, len(data))
		}
		tensors := make([]gguf.Tensor, len(file.Tensors))
		for i, ti := range file.Tensors {
			if ti.Size < 0 {
				return // Write takes only known types
			}
			start := file.DataOffset + int64(ti.Offset)
			if start+ti.Size > file.Size {
				t.Fatalf("tensor %s ends at %d, beyond Size %d", ti.Name, start+ti.Size, file.Size)
			}
			tensors[i] = gguf.Tensor{Name: ti.Name, Dims: ti.Dims, Type: ti.Type, Data: data[start : start+ti.Size]}
		}
		// gguf.CheckModel and friends must not panic on anything Read accepts.
		_ = gguf.CheckModel(file)
		_ = gguf.Fits(file, file)
		var buf bytes.Buffer
		if err := gguf.Write(&buf, file.Metadata, tensors); err != nil {
			t.Fatalf("Write refuses what Read accepted: %v", err)
		}
		again := parse(t, buf.Bytes())
		opts := []cmp.Option{cmpopts.EquateEmpty(), cmpopts.EquateNaNs(), cmpopts.IgnoreFields(gguf.TensorInfo{}, "Offset")}
		if diff := cmp.Diff(again.Metadata, file.Metadata, opts...); diff != "" {
			t.Fatalf("metadata after rewriting (-got +want):\n%s", diff)
		}
		if diff := cmp.Diff(again.Tensors, file.Tensors, opts...); diff != "" {
			t.Fatalf("tensors after rewriting (-got +want):\n%s", diff)
		}
	})
}

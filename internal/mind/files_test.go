package mind

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"batos/internal/gguf/gguftest"
	"batos/internal/image"
	"batos/internal/store/bolt"
)

func blobBytes(t *testing.T, s *bolt.DB, b image.BlobRef) []byte {
	t.Helper()
	rc, err := s.OpenBlob(t.Context(), b.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestImportWeightsRoundTrip(t *testing.T) {
	db, s := testImage(t)
	model := gguftest.TinyLlama(1)
	var lastDone, lastTotal int64
	imp, err := ImportWeights(t.Context(), db, writeFile(t, "tiny.gguf", model), func(done, total int64) { lastDone, lastTotal = done, total })
	if err != nil {
		t.Fatal(err)
	}
	if imp.Architecture != "llama" || imp.Format != FormatGGUF || imp.Blob.Size != int64(len(model)) {
		t.Errorf("imported %+v, want a llama model of %d bytes", imp, len(model))
	}
	if lastDone != int64(len(model)) || lastTotal != int64(len(model)) {
		t.Errorf("progress ended at %d/%d, want %d/%d", lastDone, lastTotal, len(model), len(model))
	}
	if got := blobBytes(t, s, imp.Blob); !bytes.Equal(got, model) {
		t.Errorf("blob differs from the file (%d vs %d bytes)", len(got), len(model))
	}
	base, err := LoadWeights(t.Context(), db)
	if err != nil || base == nil || base.Blob != imp.Blob || base.File != "tiny.gguf" {
		t.Fatalf("LoadWeights = %+v, %v; want the imported blob", base, err)
	}
}

func TestImportRefusesBadFiles(t *testing.T) {
	model := gguftest.TinyLlama(2)
	lora := gguftest.TinyLoRA(2)
	cases := []struct {
		name    string
		data    []byte
		adapter bool
	}{
		{"truncated model", model[:len(model)-100], false},
		{"truncated in the header", model[:40], false},
		{"not GGUF", []byte("PK\x03\x04 this is a zip file, not a model at all......"), false},
		{"empty", nil, false},
		{"adapter as model", lora, false},
		{"model as adapter", model, true},
		{"truncated adapter", lora[:len(lora)/2], true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db, s := testImage(t)
			before, err := s.Stats(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			path := writeFile(t, "bad.gguf", c.data)
			if c.adapter {
				_, err = ImportAdapter(t.Context(), db, path, nil)
			} else {
				_, err = ImportWeights(t.Context(), db, path, nil)
			}
			if !errors.Is(err, ErrNotGGUF) {
				t.Fatalf("import: %v, want ErrNotGGUF", err)
			}
			after, err := s.Stats(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if after.Blobs != before.Blobs || after.Transactions != before.Transactions {
				t.Errorf("stored something: blobs %d→%d, transactions %d→%d", before.Blobs, after.Blobs, before.Transactions, after.Transactions)
			}
			if base, _ := LoadWeights(t.Context(), db); base != nil {
				t.Errorf("pLLM records a base model after a refused import")
			}
		})
	}
}

func TestAdapterMustFitWeights(t *testing.T) {
	db, s := testImage(t)
	ctx := t.Context()
	if _, err := ImportWeights(ctx, db, writeFile(t, "tiny.gguf", gguftest.TinyLlama(3)), nil); err != nil {
		t.Fatal(err)
	}
	_, err := ImportAdapter(ctx, db, writeFile(t, "wrong.gguf", gguftest.MismatchedLoRA(3)), nil)
	if !errors.Is(err, ErrNotGGUF) {
		t.Fatalf("mismatched adapter: %v, want ErrNotGGUF", err)
	}
	lora := gguftest.TinyLoRA(3)
	imp, err := ImportAdapter(ctx, db, writeFile(t, "brick.gguf", lora), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := EditPersona(ctx, db, "BRICK", Edit{Adapter: imp}); err != nil {
		t.Fatal(err)
	}
	var p *Persona
	if err := db.View(ctx, func(tx *image.Tx) error { p, err = LoadPersona(tx, "BRICK"); return err }); err != nil {
		t.Fatal(err)
	}
	if p.Adapter != imp.Blob || p.AdapterFile != "brick.gguf" || p.AdapterFormat != FormatGGUF {
		t.Errorf("persona adapter = %+v %q %q, want %+v brick.gguf gguf", p.Adapter, p.AdapterFile, p.AdapterFormat, imp.Blob)
	}
	if got := blobBytes(t, s, p.Adapter); !bytes.Equal(got, lora) {
		t.Error("adapter blob differs from the file")
	}
	if err := EditPersona(ctx, db, "BRICK", Edit{ClearAdapter: true}); err != nil {
		t.Fatal(err)
	}
	if err := db.View(ctx, func(tx *image.Tx) error { p, err = LoadPersona(tx, "BRICK"); return err }); err != nil {
		t.Fatal(err)
	}
	if p.HasAdapter() {
		t.Error("adapter still attached after ClearAdapter")
	}
}

// TestMisfitAdapterStoresNothing: an adapter refused because it does not
// fit the base model leaves no blob behind.
func TestMisfitAdapterStoresNothing(t *testing.T) {
	db, s := testImage(t)
	ctx := t.Context()
	if _, err := ImportWeights(ctx, db, writeFile(t, "tiny.gguf", gguftest.TinyLlama(1)), nil); err != nil {
		t.Fatal(err)
	}
	before, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ImportAdapter(ctx, db, writeFile(t, "wrong.gguf", gguftest.MismatchedLoRA(1)), nil); !errors.Is(err, ErrNotGGUF) {
		t.Fatalf("misfit adapter: %v, want ErrNotGGUF", err)
	}
	after, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Blobs != before.Blobs || after.BlobBytes != before.BlobBytes {
		t.Errorf("blobs %d (%d bytes) after a refused import, want %d (%d bytes)", after.Blobs, after.BlobBytes, before.Blobs, before.BlobBytes)
	}
}

package mind

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"batos/internal/image"
	"batos/internal/store/bolt"
)

// testImage opens a fresh image with the system objects and personas
// BRICK and ROBIN (the uvm seeds the real ones; mind sits below it).
// Its cleanup verifies the image.
func testImage(t testing.TB) (*image.DB, *bolt.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mind.db")
	s, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	db := image.New(s, nil)
	ctx := t.Context()
	if _, err := db.Init(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"BRICK", "ROBIN"} {
		if err := EditPersona(ctx, db, name, Edit{Create: true, Role: ptr("test " + name), SystemPrompt: ptr("You are " + name + ".")}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		rep, err := db.Verify(context.Background())
		if err != nil {
			t.Errorf("verify: %v", err)
		} else if len(rep.Problems) > 0 {
			t.Errorf("verify: %v", rep.Problems)
		}
		s.Close()
	})
	return db, s
}

func ptr[T any](v T) *T { return &v }

// writeFile writes data to a file in a fresh directory and returns its path.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

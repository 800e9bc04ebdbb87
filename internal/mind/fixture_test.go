package mind

import (
	"os"
	"path/filepath"
	"testing"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store/bolt"
)

// testImage opens a fresh image with the system objects and personas
// BRICK and ROBIN (the uvm seeds the real ones; mind sits below it).
// Its cleanup verifies the image.
func testImage(t testing.TB) (*image.DB, *bolt.DB) {
	t.Helper()
	db := imagetest.Open(t, &imagetest.Options{Name: "mind.db"})
	for _, name := range []string{"BRICK", "ROBIN"} {
		if err := EditPersona(t.Context(), db, name, Edit{Create: true, Role: ptr("test " + name), SystemPrompt: ptr("You are " + name + ".")}); err != nil {
			t.Fatal(err)
		}
	}
	return db, imagetest.Bolt(db)
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

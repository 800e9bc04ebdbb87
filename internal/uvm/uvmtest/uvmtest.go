// Package uvmtest opens awakened images for tests, as imagetest opens
// plain ones: a fresh image in the test's temporary directory, closed
// when the test ends and then verified from its file, which must come out
// clean.
//
// Shipped code never imports it.
package uvmtest

import (
	"context"
	"path/filepath"
	"testing"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store/bolt"
	"batos/internal/uvm"
)

// Open awakens a fresh image for t with opts (nil for the defaults). When
// the test ends, the UVM is closed (a test may close or shut it down
// itself first), and the file is opened again, read-only, and verified.
// Cleanups t registers after Open run before these.
func Open(t testing.TB, opts *uvm.Options) *uvm.UVM {
	t.Helper()
	u, _ := OpenAt(t, filepath.Join(t.TempDir(), "live_image.db"), opts)
	return u
}

// OpenAt is Open on the image at path, which may exist already; created
// says whether this awakening created it.
func OpenAt(t testing.TB, path string, opts *uvm.Options) (u *uvm.UVM, created bool) {
	t.Helper()
	u, created, err := uvm.Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("open image %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := u.Close(); err != nil {
			t.Errorf("close image: %v", err)
		}
		VerifyFile(t, path)
	})
	return u, created
}

// VerifyFile opens the image file at path read-only and fails t, with the
// report, unless it verifies clean.
func VerifyFile(t testing.TB, path string) {
	t.Helper()
	s, err := bolt.Open(path, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Errorf("reopen %s to verify it: %v", path, err)
		return
	}
	defer s.Close()
	imagetest.Verify(t, image.New(s, nil))
}

// Package imagetest opens images for tests: a fresh bolt store in the
// test's temporary directory with an initialised image over it, closed
// when the test ends after a verify that must come out clean, as bbolt's
// btesting checks every database its tests open.
//
// Shipped code never imports it.
package imagetest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"batos/internal/image"
	"batos/internal/store/bolt"
)

// Options configures Open. The zero value (or nil) gives the defaults.
type Options struct {
	// Name is the image file's name in the test's temporary directory;
	// default "live_image.db".
	Name string
	// Store configures the bolt store; nil gives its defaults.
	Store *bolt.Options
	// Image configures the image; nil gives its defaults.
	Image *image.Options
	// Raw leaves the image uninitialised and skips the verify at cleanup,
	// for tests that damage the image on purpose. The store is still
	// closed.
	Raw bool
}

// Open opens a fresh image for t. Unless opts.Raw, the image is Init'ed
// and, when the test ends, verified: every problem the report lists fails
// the test. Then the store is closed, and an error closing it fails the
// test too. Cleanups t registers after Open run before these, so a
// fixture built on the image can stop its own goroutines first.
func Open(t testing.TB, opts *Options) *image.DB {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Name == "" {
		o.Name = "live_image.db"
	}
	s, err := bolt.Open(filepath.Join(t.TempDir(), o.Name), o.Store)
	if err != nil {
		t.Fatalf("open image: %v", err)
	}
	db := image.New(s, o.Image)
	t.Cleanup(func() {
		if !o.Raw {
			Verify(t, db)
		}
		if err := s.Close(); err != nil {
			t.Errorf("close image: %v", err)
		}
	})
	if o.Raw {
		return db
	}
	if _, err := db.Init(context.Background()); err != nil {
		t.Fatalf("init image: %v", err)
	}
	return db
}

// Bolt is the bolt store beneath an image Open returned.
func Bolt(db *image.DB) *bolt.DB { return db.Store().(*bolt.DB) }

// Verify fails t, with the report, unless the image verifies clean.
func Verify(t testing.TB, db *image.DB) {
	t.Helper()
	// Not t.Context: Verify also runs in cleanups, after it is cancelled.
	rep, err := db.Verify(context.Background())
	if err != nil {
		t.Errorf("verify image: %v", err)
		return
	}
	if !rep.OK() {
		var b strings.Builder
		for _, p := range rep.Problems {
			b.WriteString("\n\t" + p.String())
		}
		t.Errorf("verify image: %d problems:%s", len(rep.Problems), b.String())
	}
}

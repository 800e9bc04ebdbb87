package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/store/bolt"
)

// batos runs the CLI in-process and returns its exit code and output.
func batos(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := batos(t, args...)
	if code != 0 {
		t.Fatalf("batos %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func TestImageLifecycle(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	if code, _, errOut := batos(t, "-image", img, "stats"); code != 1 || !strings.Contains(errOut, "image init") {
		t.Errorf("stats on a missing image: exit %d, %q; want a hint to run image init", code, errOut)
	}
	if out := mustRun(t, "-image", img, "image", "init"); !strings.Contains(out, "created image") {
		t.Errorf("init: %q", out)
	}
	if out := mustRun(t, "-image", img, "image", "init"); !strings.Contains(out, "already exists") {
		t.Errorf("second init: %q", out)
	}
	var stats map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "stats", "-json")), &stats); err != nil {
		t.Fatal(err)
	}
	// The root, the system objects and the four seeded personas.
	if want := float64(1 + len(image.SystemNames) + 4); stats["objects"] != want {
		t.Errorf("stats objects = %v, want %v", stats["objects"], want)
	}

	oid, tid := addObject(t, img, "greeting", image.String("hello"))
	if out := mustRun(t, "-image", img, "log", "-n", "1"); !strings.HasPrefix(out, tid.String()) || !strings.Contains(out, "add greeting") {
		t.Errorf("log: %q, want %s first", out, tid)
	}
	if out := mustRun(t, "-image", img, "history", oid.String()); !strings.Contains(out, tid.String()) {
		t.Errorf("history: %q", out)
	}
	if out := mustRun(t, "-image", img, "image", "undo", tid.String()); !strings.Contains(out, "undid "+tid.String()) {
		t.Errorf("undo: %q", out)
	}
	if code, _, errOut := batos(t, "-image", img, "undo", tid.String()); code != 1 || !strings.Contains(errOut, oid.String()) {
		t.Errorf("undoing twice: exit %d %q, want a refusal naming %s", code, errOut, oid)
	}
	if out := mustRun(t, "-image", img, "pack", "-before", "now"); !strings.Contains(out, "dropped") {
		t.Errorf("pack: %q", out)
	}
	if out := mustRun(t, "-image", img, "verify"); !strings.HasSuffix(out, "ok\n") {
		t.Errorf("verify: %q", out)
	}
}

func TestUsageErrors(t *testing.T) {
	img := filepath.Join(t.TempDir(), "x.db")
	mustRun(t, "-image", img, "image", "init")
	cases := map[string][]string{
		"unknown command":      {"frobnicate"},
		"no command":           {},
		"bad OID":              {"-image", img, "history", "oid:abc"},
		"bad TID":              {"-image", img, "undo", "xyz"},
		"pack without -before": {"-image", img, "pack"},
		"bad pack time":        {"-image", img, "pack", "-before", "yesterday-ish"},
		"image subcommand":     {"-image", img, "image", "explode"},
	}
	for name, args := range cases {
		if code, _, errOut := batos(t, args...); code != 2 || errOut == "" {
			t.Errorf("%s: exit %d, stderr %q; want 2 and a message", name, code, errOut)
		}
	}
}

// TestImageInUse: a second opener is told which process holds the image.
func TestImageInUse(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	s, err := bolt.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	code, _, errOut := batos(t, "-image", img, "stats")
	want := "in use by process " + itoa(os.Getpid())
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("stats while held: exit %d %q, want %q", code, errOut, want)
	}
}

// TestCorruptionReported: a flipped byte in a record or a blob is reported
// by verify and by the load that touches it, naming the object.
func TestCorruptionReported(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	oid, _ := addObject(t, img, "marker", image.String("MARKER-0123456789"))
	blobOID, blob := addBlob(t, img, "blob content to damage")
	flipByte(t, img, []byte("MARKER-0123456789"))
	flipByte(t, filepath.Join(img+".blobs", blob.Digest.Hex()[:2], blob.Digest.Hex()), []byte("damage"))

	code, out, _ := batos(t, "-image", img, "verify")
	if code != 1 || !strings.Contains(out, "corrupt-record: "+oid.String()) || !strings.Contains(out, "corrupt-blob: blob "+blob.Digest.String()) {
		t.Errorf("verify: exit %d\n%s\nwant corrupt-record naming %s and corrupt-blob naming %s", code, out, oid, blob.Digest)
	}
	code, _, errOut := batos(t, "-image", img, "history", oid.String())
	if code != 1 || !strings.Contains(errOut, "corrupt record of object "+oid.String()) {
		t.Errorf("history of corrupt object: exit %d %q", code, errOut)
	}
	// Loading the damaged object through the image fails naming it; other
	// objects still load.
	s, err := bolt.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := image.New(s, nil)
	err = db.View(context.Background(), func(tx *image.Tx) error {
		if _, err := tx.Object(oid); err == nil || !strings.Contains(err.Error(), oid.String()) {
			t.Errorf("load corrupt object: %v", err)
		}
		o, err := tx.Object(blobOID)
		if err != nil {
			return err
		}
		v, _ := o.Get("blob")
		rc, err := tx.OpenBlob(v.(image.BlobRef))
		if err != nil {
			return err
		}
		defer rc.Close()
		if _, err := readAll(rc); err == nil || !strings.Contains(err.Error(), blob.Digest.String()) {
			t.Errorf("reading damaged blob: %v, want an error naming it", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func addObject(t *testing.T, img, name string, v image.Value) (store.OID, store.TID) {
	t.Helper()
	s, err := bolt.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var oid store.OID
	tid, err := image.New(s, nil).UpdateTID(context.Background(), func(tx *image.Tx) error {
		tx.Note("add " + name)
		o, err := tx.New(image.Slot{Name: name, Value: v})
		if err != nil {
			return err
		}
		oid = o.OID()
		root, err := tx.Root()
		if err != nil {
			return err
		}
		return root.Set(name, o.Ref())
	})
	if err != nil {
		t.Fatal(err)
	}
	return oid, tid
}

func addBlob(t *testing.T, img, content string) (store.OID, image.BlobRef) {
	t.Helper()
	s, err := bolt.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ref image.BlobRef
	var oid store.OID
	err = image.New(s, nil).Update(context.Background(), func(tx *image.Tx) error {
		var err error
		if ref, err = tx.PutBlob(strings.NewReader(content)); err != nil {
			return err
		}
		o, err := tx.New(image.Slot{Name: "blob", Value: ref})
		if err != nil {
			return err
		}
		oid = o.OID()
		root, _ := tx.Root()
		return root.Set("blobholder", o.Ref())
	})
	if err != nil {
		t.Fatal(err)
	}
	return oid, ref
}

// flipByte inverts one byte in every occurrence of marker in a file:
// bbolt copies pages on write, so stale copies may sit in free pages too.
func flipByte(t *testing.T, path string, marker []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := bytes.Index(b, marker); i >= 0; i = bytes.Index(b, marker) {
		b[i+len(marker)/2] ^= 0xff
		n++
	}
	if n == 0 {
		t.Fatalf("marker %q not found in %s", marker, path)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(r) }

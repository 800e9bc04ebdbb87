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

func newImage(t *testing.T) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	return img
}

// logJSON returns the log, newest first.
func logJSON(t *testing.T, img string) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "log", "-n", "0", "-json")), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHostileFlagErrorsExitTwo: a bad flag or flag value given to a
// subcommand is a usage error and must exit 2, like a bad flag before the
// command does. Subcommands return fs.Parse's error unwrapped, so run
// exits 1 (and prints the error a second time).
func TestHostileFlagErrorsExitTwo(t *testing.T) {
	img := newImage(t)
	cases := map[string][]string{
		"global unknown flag": {"-bogus", "stats"},
		"stats unknown flag":  {"-image", img, "stats", "-bogus"},
		"verify unknown flag": {"-image", img, "verify", "-bogus"},
		"log -n not a number": {"-image", img, "log", "-n", "abc"},
		"history -n missing":  {"-image", img, "history", "-n"},
		"pack -before empty":  {"-image", img, "pack", "-before"},
		"undo unknown flag":   {"-image", img, "undo", "-x", "1"},
		"init unknown flag":   {"-image", img, "image", "init", "-force"},
		"history negative":    {"-image", img, "history", "-5"},
	}
	for name, args := range cases {
		code, _, errOut := batos(t, args...)
		if code != 2 || errOut == "" {
			t.Errorf("%s: exit %d, stderr %q; want 2 and a message", name, code, errOut)
		}
	}
}

// TestHostileNegativeCount: -n -1 is neither "at most N" nor the
// documented "0 for all"; it must be refused, not silently list all.
func TestHostileNegativeCount(t *testing.T) {
	img := newImage(t)
	for _, args := range [][]string{
		{"-image", img, "log", "-n", "-1"},
		{"-image", img, "history", "-n", "-1", image.RootOID.String()},
	} {
		if code, out, errOut := batos(t, args...); code != 2 {
			t.Errorf("batos %s: exit %d (stdout %q, stderr %q), want 2", strings.Join(args[2:], " "), code, out, errOut)
		}
	}
}

// TestHostileStrayArguments: positional arguments a command does not take
// must be refused, not ignored ("batos log 5" meant -n 5).
func TestHostileStrayArguments(t *testing.T) {
	img := newImage(t)
	for _, args := range [][]string{
		{"-image", img, "stats", "extra"},
		{"-image", img, "verify", "extra"},
		{"-image", img, "log", "5"},
		{"-image", img, "image", "init", "extra"},
		{"-image", img, "history", "1", "2"},
		{"-image", img, "undo", "1", "2"},
		{"-image", img, "pack", "-before", "now", "extra"},
	} {
		if code, _, errOut := batos(t, args...); code != 2 || errOut == "" {
			t.Errorf("batos %s: exit %d, stderr %q; want 2 and a message", strings.Join(args[2:], " "), code, errOut)
		}
	}
}

// TestHostileOIDAndTIDForms: the accepted and refused spellings.
func TestHostileOIDAndTIDForms(t *testing.T) {
	img := newImage(t)
	oid, tid := addObject(t, img, "thing", image.Int(1))
	usage := map[string][]string{
		"oid:0":             {"history", "oid:0"},
		"0":                 {"history", "0"},
		"2^64":              {"history", "oid:18446744073709551616"},
		"OID: upper case":   {"history", "OID:5"},
		"oid:oid:5":         {"history", "oid:oid:5"},
		"hex OID":           {"history", "0x5"},
		"TID 0x":            {"undo", "0x"},
		"TID above MaxTID":  {"undo", "ffffffffffffffff"},
		"TID 17 digits":     {"undo", "1" + tid.String()},
		"TID not hex":       {"undo", "zz"},
		"log -before bogus": {"log", "-before", "yesterday"},
	}
	for name, args := range usage {
		code, _, errOut := batos(t, append([]string{"-image", img}, args...)...)
		if code != 2 || errOut == "" {
			t.Errorf("%s: exit %d, stderr %q; want 2 and a message", name, code, errOut)
		}
	}
	// Well-formed but absent: a failure naming what is missing.
	code, _, errOut := batos(t, "-image", img, "history", "oid:18446744073709551615")
	if code != 1 || !strings.Contains(errOut, "oid:18446744073709551615") || !strings.Contains(errOut, "not found") {
		t.Errorf("history of a huge absent OID: exit %d %q, want 1 naming it", code, errOut)
	}
	// A TID of fewer than 16 digits is the first digits of one (undo
	// 18eec9): none begins 0, nor 0000000000000002 (a TID is nanoseconds
	// since 1970).
	for _, args := range [][]string{{"undo", "0"}, {"log", "-before", "0"}} {
		code, _, errOut := batos(t, append([]string{"-image", img}, args...)...)
		if code != 1 || !strings.Contains(errOut, "no transaction's TID begins 0") {
			t.Errorf("%v: exit %d %q, want 1 and no transaction begins 0", args, code, errOut)
		}
	}
	code, _, errOut = batos(t, "-image", img, "undo", "0000000000000002")
	if code != 1 || !strings.Contains(errOut, "no such transaction") {
		t.Errorf("undo of an absent TID: exit %d %q, want 1 and no such transaction", code, errOut)
	}
	// Bare N and 0x-prefixed TIDs work.
	if out := mustRun(t, "-image", img, "history", strings.TrimPrefix(oid.String(), "oid:")); !strings.Contains(out, tid.String()) {
		t.Errorf("history by bare number: %q", out)
	}
	if out := mustRun(t, "-image", img, "undo", "0x"+tid.String()); !strings.Contains(out, "undid "+tid.String()) {
		t.Errorf("undo with 0x prefix: %q", out)
	}
}

// TestHostileInitCorruptRootCLI: init and verify on an image whose root
// record is garbage fail with exit 1 naming the root.
func TestHostileInitCorruptRootCLI(t *testing.T) {
	img := newImage(t)
	s, err := bolt.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s.Load(context.Background(), image.RootOID)
	if err == nil {
		_, err = s.Commit(context.Background(), store.TxMeta{}, []store.Write{{OID: image.RootOID, Serial: rec.Serial, Data: []byte{9, 9, 9}}})
	}
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut := batos(t, "-image", img, "image", "init")
	if code != 1 || !strings.Contains(errOut, image.RootOID.String()) {
		t.Errorf("init on a corrupt root: exit %d %q, want 1 naming %s", code, errOut, image.RootOID)
	}
	code, out, _ := batos(t, "-image", img, "verify")
	if code != 1 || !strings.Contains(out, image.RootOID.String()) {
		t.Errorf("verify with a corrupt root: exit %d\n%s", code, out)
	}
}

// TestHostileInUseEverywhere: every command that opens the image names
// the process holding it and exits 1.
func TestHostileInUseEverywhere(t *testing.T) {
	img := newImage(t)
	_, tid := addObject(t, img, "x", image.Int(1))
	s, err := bolt.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := "in use by process " + itoa(os.Getpid())
	for _, args := range [][]string{
		{"image", "init"}, {"stats"}, {"verify"}, {"log"}, {"history", "oid:1"},
		{"undo", tid.String()}, {"pack", "-before", "now"},
	} {
		code, _, errOut := batos(t, append([]string{"-image", img}, args...)...)
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("%s while held: exit %d %q, want 1 and %q", args[0], code, errOut, want)
		}
	}
}

// TestHostileNotAnImage: a file that is not an image is reported with
// exit 1, naming the path, and is not modified.
func TestHostileNotAnImage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	content := []byte(strings.Repeat("these are not bbolt pages\n", 400))
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := batos(t, "-image", path, "stats")
	if code != 1 || !strings.Contains(errOut, path) {
		t.Errorf("stats on a text file: exit %d %q, want 1 naming it", code, errOut)
	}
	if got, _ := os.ReadFile(path); string(got) != string(content) {
		t.Errorf("stats changed a file that is not an image")
	}
}

// TestHostileHelpExitsZero: -h on the top level and on a subcommand prints
// usage and exits 0; "image" alone is a usage error.
func TestHostileHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"log", "-h"}, {"image", "init", "-h"}, {"pack", "-h"}} {
		code, out, errOut := batos(t, args...)
		if code != 0 || out+errOut == "" {
			t.Errorf("batos %s: exit %d, no usage printed", strings.Join(args, " "), code)
		}
	}
	if code, _, errOut := batos(t, "image"); code != 2 || !strings.Contains(errOut, "\n  init ") || !strings.Contains(errOut, "\n  pack ") {
		t.Errorf("batos image: exit %d %q, want 2 and the subcommands", code, errOut)
	}
}

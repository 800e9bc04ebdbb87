package main

// Hostile tests of the CLI: odd arguments, odd images, exit codes
// (0 ok, 1 failure, 2 usage). Tests that fail on the current code show a
// bug.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/store/bolt"
)

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
		"TID 0":             {"undo", "0"},
		"TID 0x":            {"undo", "0x"},
		"TID above MaxTID":  {"undo", "ffffffffffffffff"},
		"TID 17 digits":     {"undo", "1" + tid.String()},
		"TID not hex":       {"undo", "zz"},
		"log -before 0":     {"log", "-before", "0"},
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
	code, _, errOut = batos(t, "-image", img, "undo", "0000000000000001")
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

// TestHostileLogCounts: -n 0 lists every transaction, -n 1 one, and
// -before excludes the given TID and newer ones.
func TestHostileLogCounts(t *testing.T) {
	img := newImage(t)
	for i := range 3 {
		addObject(t, img, "o"+itoa(i), image.Int(int64(i)))
	}
	all := logJSON(t, img)
	if len(all) != 4 {
		t.Fatalf("log -n 0 lists %d transactions, want 4", len(all))
	}
	if lines := strings.Count(mustRun(t, "-image", img, "log", "-n", "0"), "\n"); lines != 4 {
		t.Errorf("log -n 0 printed %d lines, want 4", lines)
	}
	if lines := strings.Count(mustRun(t, "-image", img, "log", "-n", "1"), "\n"); lines != 1 {
		t.Errorf("log -n 1 printed %d lines, want 1", lines)
	}
	second := all[1]["tid"].(string)
	out := mustRun(t, "-image", img, "log", "-n", "0", "-before", second)
	if strings.Contains(out, second) || strings.Contains(out, all[0]["tid"].(string)) || strings.Count(out, "\n") != 2 {
		t.Errorf("log -before %s:\n%s\nwant the 2 older transactions only", second, out)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "stats", "-json")), &st); err != nil {
		t.Fatal(err)
	}
	if st["transactions"] != float64(4) || st["last_tid"] != all[0]["tid"] {
		t.Errorf("stats %v disagrees with the log", st)
	}
}

// TestHostileHistoryOfUndoneObject: after its creation is undone the
// object's history still lists it, marked deleted, and a View no longer
// finds it.
func TestHostileHistoryOfUndoneObject(t *testing.T) {
	img := newImage(t)
	oid, tid := addObject(t, img, "ephemeral", image.String("x"))
	out := mustRun(t, "-image", img, "undo", tid.String())
	if !strings.Contains(out, "undid "+tid.String()) {
		t.Fatalf("undo: %q", out)
	}
	out = mustRun(t, "-image", img, "history", oid.String())
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "deleted") || !strings.Contains(lines[1], tid.String()) {
		t.Errorf("history of an undone object:\n%s\nwant a deleted revision above %s", out, tid)
	}
	var revs []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "history", "-json", oid.String())), &revs); err != nil {
		t.Fatal(err)
	}
	if len(revs) != 2 || revs[0]["deleted"] != true || revs[1]["deleted"] != false {
		t.Errorf("history -json: %v", revs)
	}
	if code, _, errOut := batos(t, "-image", img, "undo", tid.String()); code != 1 || !strings.Contains(errOut, oid.String()) {
		t.Errorf("undoing the creation twice: exit %d %q", code, errOut)
	}
	if out := mustRun(t, "-image", img, "verify"); !strings.HasSuffix(out, "ok\n") {
		t.Errorf("verify after undoing a creation: %q", out)
	}
}

// TestHostileUndoInitCLI: undoing the transaction that created the image
// is refused with exit 1 and a reason.
func TestHostileUndoInitCLI(t *testing.T) {
	img := newImage(t)
	entries := logJSON(t, img)
	initTID := entries[len(entries)-1]["tid"].(string)
	code, _, errOut := batos(t, "-image", img, "undo", initTID)
	if code != 1 || !strings.Contains(errOut, "root") {
		t.Errorf("undo of init: exit %d %q, want 1 and a refusal about the root", code, errOut)
	}
	if n := len(logJSON(t, img)); n != 1 {
		t.Errorf("log has %d entries after a refused undo, want 1", n)
	}
}

// TestHostilePackFutureCLI: "pack -before" a future time either is
// refused as a usage error or behaves like "now"; it must not stop later
// transactions from being undone.
func TestHostilePackFutureCLI(t *testing.T) {
	img := newImage(t)
	addObject(t, img, "a", image.Int(1))
	future := time.Now().AddDate(1, 0, 0).UTC().Format(time.RFC3339)
	code, _, errOut := batos(t, "-image", img, "pack", "-before", future)
	if code == 2 {
		return // refused: fine
	}
	if code != 0 {
		t.Fatalf("pack -before %s: exit %d %q", future, code, errOut)
	}
	_, tid := addObject(t, img, "b", image.Int(2))
	if code, _, errOut := batos(t, "-image", img, "undo", tid.String()); code != 0 {
		t.Errorf("after pack -before %s, undo of a new transaction: exit %d %q", future, code, errOut)
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

// TestHostileVerifyWithWAL: an image left by a process that died after
// committing (the commits only in the write-ahead log) verifies clean and
// shows the commits. The child keeps its commit in the log by turning the
// store's background checkpoints off, so no checkpoint can win a race
// with its death and take the commit into the file.
func TestHostileVerifyWithWAL(t *testing.T) {
	if path := os.Getenv("HOSTILE_WAL_IMAGE"); path != "" {
		walChild(t, path)
		return
	}
	img := filepath.Join(t.TempDir(), "live_image.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHostileVerifyWithWAL$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HOSTILE_WAL_IMAGE="+img)
	out, _ := cmd.CombinedOutput() // killed: a non-zero exit is expected
	var tid string
	var clean int64
	if _, after, ok := strings.Cut(string(out), "\nCOMMITTED "); !ok {
		t.Fatalf("child did not commit:\n%s", out)
	} else if _, err := fmt.Sscan(after, &tid, &clean); err != nil {
		t.Fatalf("child's report %q: %v", after, err)
	}
	if got := walSize(img); got <= clean {
		t.Fatalf("the write-ahead log holds %d bytes, no more than before the commit (%d): the commit is not in it", got, clean)
	}
	code, vout, verr := batos(t, "-image", img, "verify")
	if code != 0 || !strings.HasSuffix(vout, "ok\n") {
		t.Errorf("verify with the WAL present: exit %d\n%s%s", code, vout, verr)
	}
	if out := mustRun(t, "-image", img, "log", "-n", "1"); !strings.HasPrefix(out, tid) || !strings.Contains(out, "before the crash") {
		t.Errorf("log after recovery: %q, want %s first", out, tid)
	}
	if out := mustRun(t, "-image", img, "verify"); !strings.HasSuffix(out, "ok\n") {
		t.Errorf("second verify: %q", out)
	}
}

// walChild opens the image at path, initialises it and closes it, so that
// Init is in the file; reopens it with no background checkpoint, commits,
// reports the commit's TID and the log's size before the commit, and dies
// without closing the store.
func walChild(t *testing.T, path string) {
	ctx := context.Background()
	s, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := image.New(s, nil).Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = bolt.Open(path, &bolt.Options{NoBackgroundCheckpoint: true})
	if err != nil {
		t.Fatal(err)
	}
	clean := walSize(path)
	tid, err := image.New(s, nil).UpdateTID(ctx, func(tx *image.Tx) error {
		tx.Note("before the crash")
		o, err := tx.New(image.Slot{Name: "survivor", Value: image.String("yes")})
		if err != nil {
			return err
		}
		root, err := tx.Root()
		if err != nil {
			return err
		}
		return root.Set("survivor", o.Ref())
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("\nCOMMITTED %s %d\n", tid, clean)
	syscall.Kill(os.Getpid(), syscall.SIGKILL) // die like a crash: no cleanup at all
	select {}
}

// walSize is how many bytes the write-ahead log segments of the image at
// path hold together.
func walSize(path string) int64 {
	segs, _ := filepath.Glob(path + ".wal.*")
	var n int64
	for _, seg := range segs {
		if fi, err := os.Stat(seg); err == nil {
			n += fi.Size()
		}
	}
	return n
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
	if code, _, errOut := batos(t, "image"); code != 2 || !strings.Contains(errOut, "init|stats") {
		t.Errorf("batos image: exit %d %q, want 2 and the subcommands", code, errOut)
	}
}

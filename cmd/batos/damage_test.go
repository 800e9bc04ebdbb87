package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// The tests here damage a closed image's files as an outside attack did,
// and check that verify, eval and run report it precisely (never a crash),
// and that batos recover keeps what is intact and names what was lost.

// runWithin runs the CLI in-process, giving up after a while so that a
// command that should have refused cannot hang the test (batos run).
func runWithin(t *testing.T, d time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := runIO(ctx, args, strings.NewReader(""), &stdout, &stderr)
	if ctx.Err() != nil {
		t.Errorf("batos %s: still running after %s, want a refusal", strings.Join(args, " "), d)
	}
	return code, stdout.String(), stderr.String()
}

// flipNewestMeta damages the checksum of the bbolt meta page with the
// higher transaction id: bbolt then falls back to the older one.
func flipNewestMeta(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A meta page: page header (16), magic, version, page size, flags (4
	// each), root bucket (16), freelist, pgid, txid, checksum (8 each).
	pageSize := int(binary.LittleEndian.Uint32(data[16+8:]))
	txid := func(page int) uint64 { return binary.LittleEndian.Uint64(data[page*pageSize+64:]) }
	newest := 0
	if txid(1) > txid(0) {
		newest = 1
	}
	data[newest*pageSize+72] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedMetaPageCLI: the newest meta page damaged after a clean
// shutdown silently rolled the last checkpoint back; now every command
// refuses naming the gap, and recover gets the hidden commits back.
func TestDamagedMetaPageCLI(t *testing.T) {
	img := newImage(t)
	mustRun(t, "-image", img, "eval", "genesis.kept = 1")
	mustRun(t, "-image", img, "eval", "genesis.last = 2")
	last := logJSON(t, img)[0]["tid"].(string)
	flipNewestMeta(t, img)

	for _, args := range [][]string{
		{"-image", img, "verify"},
		{"-image", img, "eval", "genesis.kept"},
		{"-image", img, "run", "-listen", "tcp://127.0.0.1:*", "-events", "tcp://127.0.0.1:*", "-http", "off"},
	} {
		code, out, errOut := runWithin(t, 20*time.Second, args...)
		if code != 1 || !strings.Contains(errOut, "damaged") || !strings.Contains(errOut, last) || !strings.Contains(errOut, "batos recover") {
			t.Errorf("batos %s: exit %d\nstdout: %s\nstderr: %s\nwant exit 1 naming the damage, the lost commit %s and batos recover", args[2], code, out, errOut, last)
		}
	}

	// The newest checkpoint's pages are still in the file, unreachable
	// from the older meta page: rebuilding the file from every intact
	// record finds them, and nothing is lost.
	out := mustRun(t, "-image", img, "recover")
	if !strings.Contains(out, "rebuilt") || !strings.Contains(out, "meta page") {
		t.Errorf("recover: %s\nwant the file rebuilt, naming the damaged meta page", out)
	}
	if got := strings.TrimSpace(mustRun(t, "-image", img, "eval", "genesis.last")); got != "2" {
		t.Errorf("genesis.last after recover = %s, want 2 (the commit the rollback hid)", got)
	}
	if out := mustRun(t, "-image", img, "verify"); !strings.HasSuffix(out, "ok\n") {
		t.Errorf("verify after recover: %s", out)
	}
	if out := mustRun(t, "-image", img, "eval", "genesis.kept"); strings.TrimSpace(out) != "1" {
		t.Errorf("genesis.kept after recover = %s", out)
	}
}

// TestDamagedPageCLI: a page of the file holding records wiped out. verify
// names the damage, a read that reaches it gets an error (no crash), and
// recover rebuilds the file from what is intact, naming what was lost.
func TestDamagedPageCLI(t *testing.T) {
	img := newImage(t)
	var code strings.Builder
	for i := range 300 {
		fmt.Fprintf(&code, "genesis.s%03d = genesis.clone(name = 'victim-%03d-' + 'x' * 150)\n", i, i)
	}
	mustRun(t, "-image", img, "eval", code.String())
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("victim-150-"))
	if i < 0 {
		t.Fatal("record not found in the file")
	}
	page := i / 4096 * 4096
	copy(data[page:page+4096], make([]byte, 4096))
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}

	c, out, errOut := runWithin(t, 20*time.Second, "-image", img, "verify")
	if c != 1 || !strings.Contains(out, "corrupt-file") || !strings.Contains(out, "page") || !strings.Contains(errOut, "problems found") {
		t.Errorf("verify: exit %d\n%s%s\nwant exit 1 listing the damaged page", c, out, errOut)
	}
	for _, args := range [][]string{
		{"-image", img, "eval", "genesis.s150.name"},
		{"-image", img, "history", "oid:3"},
		{"-image", img, "run", "-listen", "tcp://127.0.0.1:*", "-events", "tcp://127.0.0.1:*", "-http", "off"},
	} {
		c, out, errOut := runWithin(t, 20*time.Second, args...)
		if c != 1 || !strings.Contains(errOut, "damaged") || !strings.Contains(errOut, "batos recover") {
			t.Errorf("batos %s over the damaged page: exit %d\n%s%s\nwant exit 1 reporting the damage and the way out", args[2], c, out, errOut)
		}
	}

	c, out, errOut = runWithin(t, 60*time.Second, "-image", img, "recover")
	if !strings.Contains(out, "rebuilt") || !strings.Contains(out, "damaged-") {
		t.Errorf("recover: exit %d\n%s%s\nwant the file rebuilt and the damaged one kept", c, out, errOut)
	}
	// The records of the wiped page had no other copy: verify names them
	// (a log entry without its revision) and what referred to them.
	if c != 1 || !strings.Contains(errOut, "problems left by the damage") || !strings.Contains(out, "log-mismatch") || !strings.Contains(out, "dangling-reference") {
		t.Errorf("recover: exit %d\n%.3000s%s\nwant the lost revisions and the references to them named", c, out, errOut)
	}
	if c, out, errOut := runWithin(t, 20*time.Second, "-image", img, "eval", "genesis.s000.name"); c != 0 {
		t.Errorf("an intact object after recover: exit %d %s%s", c, out, errOut)
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/store/pg/pgtest"
	"batos/internal/zmqbridge"

	zmq "github.com/pebbe/zmq4"
)

// TestMain stops the throwaway PostgreSQL cluster the tests that use one
// started (pgtest).
func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	removeBatosBinary()
	os.Exit(code)
}

// TestStoreFlagPostgres: -store (and BATOS_STORE) names a PostgreSQL
// database as -image names a file: the image is created there on first
// use, and every command works on it; a password in the URL is never
// printed.
func TestStoreFlagPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	// A database that holds no image is refused as a missing file is,
	// and nothing is created in it.
	for _, args := range [][]string{{"log"}, {"stats"}, {"history", "genesis"}} {
		code, _, errOut := batos(t, append([]string{"-store", url}, args...)...)
		if code == 0 || !strings.Contains(errOut, "no image in") || !strings.Contains(errOut, "image init") {
			t.Errorf("%s on an empty database: exit %d, %q", args[0], code, errOut)
		}
	}
	if out := mustRun(t, "-store", url, "image", "init"); !strings.Contains(out, "created image") {
		t.Errorf("image init on a database: %q", out)
	}
	mustRun(t, "-store", url, "eval", "genesis.n = 41")
	if out := mustRun(t, "eval", "-store", url, "genesis.n + 1"); strings.TrimSpace(out) != "42" {
		t.Errorf("eval after the flag: %q", out)
	}
	t.Setenv("BATOS_STORE", url)
	if out := mustRun(t, "eval", "genesis.n"); strings.TrimSpace(out) != "41" {
		t.Errorf("eval on BATOS_STORE: %q", out)
	}
	if out := mustRun(t, "log", "-n", "1"); !strings.Contains(out, "genesis.n = 41") {
		t.Errorf("log: %q", out)
	}
	if out := mustRun(t, "history", "genesis"); strings.Count(out, "\n") < 2 {
		t.Errorf("history of genesis: %q", out)
	}
	if out := mustRun(t, "verify"); !strings.Contains(out, "ok") {
		t.Errorf("verify: %q", out)
	}

	// A password in the URL (the test cluster trusts any) never shows.
	withPassword := pgtest.NewDatabase(t) + "&password=s3cr3t-pass"
	for _, args := range [][]string{{"image", "init"}, {"stats"}, {"stats", "-json"}, {"verify"}, {"log"}} {
		code, out, errOut := batos(t, append([]string{"-store", withPassword}, args...)...)
		if code != 0 || strings.Contains(out+errOut, "s3cr3t") {
			t.Errorf("%s with a password in the URL: exit %d, %q %q", strings.Join(args, " "), code, out, errOut)
		}
	}

	secret := "postgres://batos:s3cr3t-pass@127.0.0.1:1/nothing?connect_timeout=2"
	code, out, errOut := batos(t, "-store", secret, "eval", "1")
	if code == 0 || strings.Contains(out+errOut, "s3cr3t") {
		t.Errorf("an unreachable database: exit %d, %q %q (the password must not show)", code, out, errOut)
	}
}

// TestImageCopyBothWays: an image file copied into PostgreSQL and back
// reads the same at every step: log, histories, objects, blobs.
func TestImageCopyBothWays(t *testing.T) {
	file := newImage(t)
	addObject(t, file, "greeting", image.String("hello"))
	addBlob(t, file, "a blob that travels")
	mustRun(t, "-image", file, "eval", "genesis.n = 1")
	mustRun(t, "-image", file, "eval", "genesis.n = 2")
	mustRun(t, "-image", file, "undo", logJSON(t, file)[0]["tid"].(string))

	db := pgtest.NewDatabase(t)
	if out := mustRun(t, "image", "copy", file, db); !strings.Contains(out, "verified, log and histories identical") {
		t.Errorf("copy into the database: %q", out)
	}
	back := filepath.Join(t.TempDir(), "back.db")
	mustRun(t, "image", "copy", db, back)
	for _, args := range [][]string{{"log", "-n", "0"}, {"history", "genesis"}, {"history", "greeting"}, {"inspect", "genesis"}, {"eval", "genesis.n"}} {
		want := mustRun(t, append([]string{"-image", file}, args...)...)
		for _, img := range []string{db, back} {
			if got := mustRun(t, append([]string{"-store", img}, args...)...); got != want {
				t.Errorf("%s on %s:\n%s\nwant, as on the file:\n%s", strings.Join(args, " "), img, got, want)
			}
		}
	}
	if out := mustRun(t, "-store", db, "verify"); !strings.Contains(out, "ok") {
		t.Errorf("verify of the database copy: %q", out)
	}
	// A database that holds an image is no destination.
	if code, _, errOut := batos(t, "image", "copy", back, db); code == 0 || !strings.Contains(errOut, "not empty") {
		t.Errorf("a copy into a database holding an image: exit %d, %q", code, errOut)
	}
}

// TestManyNodesOnPostgres: three batos run processes on one database,
// each serving its own bridge, eight clients on each incrementing one
// shared counter through their node: all 3,000 increments count, exactly; a
// commit through one node is seen by the next read through another.
func TestManyNodesOnPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	mustRun(t, "-store", url, "image", "init")
	mustRun(t, "-store", url, "eval", "genesis.count = 0\ngenesis.bump = method(\"def bump(self):\\n    self.count = self.count + 1\\n    return self.count\")")
	const nodes, clients, each = 3, 8, 125
	// Each node a process of its own, as on three machines.
	exe := batosBinary(t)
	var addrs, events []string
	for i := range nodes {
		req, ev, _, _ := startNode(t, exe, "-store", url, "-heartbeat", "0", "-node", fmt.Sprintf("node-%d", i))
		addrs, events = append(addrs, req), append(events, ev)
	}
	dial := func(addr string) *zmqbridge.Client {
		c, err := zmqbridge.Dial(addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, nodes*clients)
	for _, addr := range addrs {
		for range clients {
			c := dial(addr)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					if _, err := c.Call(ctx, "send", map[string]any{"target": "genesis", "selector": "bump"}); err != nil {
						errs <- fmt.Errorf("bump through %s: %w", addr, err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, addr := range addrs {
		res, err := dial(addr).Call(ctx, "eval", map[string]any{"code": "genesis.count"})
		if m, _ := res.(map[string]any); err != nil || m["value"] != int64(nodes*clients*each) {
			t.Errorf("node %d reads the counter as %v (%v), want %d", i, res, err, nodes*clients*each)
		}
	}
	// Node B's event socket publishes the commits made through node A,
	// with their topic and fields, as A's does.
	sub, err := zmq.NewSocket(zmq.SUB)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	sub.SetLinger(0)
	sub.SetRcvtimeo(10 * time.Second)
	sub.SetSubscribe("commit.")
	if err := sub.Connect(events[1]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the SUB joins before anything publishes
	if _, err := dial(addrs[0]).Call(ctx, "send", map[string]any{"target": "genesis", "selector": "bump"}); err != nil {
		t.Fatal(err)
	}
	frames, err := sub.RecvMessageBytes(0)
	if err != nil {
		t.Fatalf("node B published nothing of node A's commit: %v", err)
	}
	ev, err := zmqbridge.DecodeRequest(frames[1], zmqbridge.DefaultLimits)
	if string(frames[0]) != "commit.send" || err != nil || ev["selector"] != "bump" || ev["target"] != "genesis" || len(fmt.Sprint(ev["tid"])) != 16 {
		t.Errorf("node B's event of node A's send: %q %v %v", frames[0], ev, err)
	}

	// Written through one node, read at once through another.
	a, b := dial(addrs[0]), dial(addrs[1])
	for i := range 20 {
		if _, err := a.Call(ctx, "eval", map[string]any{"code": fmt.Sprintf("genesis.mark = %d", i)}); err != nil {
			t.Fatal(err)
		}
		res, err := b.Call(ctx, "eval", map[string]any{"code": "genesis.mark"})
		if m, _ := res.(map[string]any); err != nil || m["value"] != int64(i) {
			t.Fatalf("node B read %v (%v) right after node A wrote %d", res, err, i)
		}
	}
}

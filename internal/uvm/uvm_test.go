package uvm_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/uvm"
	"batos/internal/uvm/uvmtest"
	"batos/internal/vm"
)

var ctx = context.Background()

func open(t *testing.T, path string) (*uvm.UVM, bool) {
	t.Helper()
	u, created := uvmtest.OpenAt(t, path, nil)
	return u, created
}

func eval(t *testing.T, u *uvm.UVM, code string) string {
	t.Helper()
	res, err := u.Eval(ctx, code)
	if err != nil {
		t.Fatalf("eval %q: %v", code, err)
	}
	return res.Repr
}

func TestAwakeningCreatesThePrimordialImage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live_image.db")
	u, created := open(t, path)
	if !created {
		t.Fatal("first awakening did not report creating the image")
	}
	for code, want := range map[string]string{
		`genesis.describe()`:           `"genesis (oid:`,
		`genesis.responds_to("clone")`: `True`,
		`personas.BRICK.role`:          `"deconstructs a mission into a plan"`,
		`[p for p in ["BRICK", "ROBIN", "BABS", "ALFRED"] if has_slot(personas, p)]`:                `["BRICK", "ROBIN", "BABS", "ALFRED"]`,
		`"SYNTHESIZ" in personas.ROBIN.system_prompt or "Starlark" in personas.ROBIN.system_prompt`: `True`,
		`genesis.clone(name = "g2").name`: `"g2"`,
		`cycles.name`:                     `"cycles"`,
	} {
		if got := eval(t, u, code); !strings.HasPrefix(got, want) {
			t.Errorf("%s = %s, want %s…", code, got, want)
		}
	}
	// A second awakening resumes: nothing to change, nothing committed.
	// (The calls above are counted: their telemetry is saved first.)
	if err := u.FlushTelemetry(t.Context()); err != nil {
		t.Fatal(err)
	}
	last := u.Store().LastTID()
	u.Close()
	u2, created := open(t, path)
	if created || u2.Store().LastTID() != last {
		t.Errorf("second awakening: created=%v, committed=%v", created, u2.Store().LastTID() != last)
	}
}

// TestAwakeningUpgradesSystemObjectsOnly: a batos method left by an older
// batos is upgraded; a method the user replaced, the user's own objects
// and persona edits are left alone.
func TestAwakeningUpgradesSystemObjectsOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live_image.db")
	u, _ := open(t, path)
	eval(t, u, `traits.slot_names = method("def slot_names(self):\n    return ['mine']")`)
	eval(t, u, `root.mine = new(None, name = "user object", data = [1, 2])`)
	eval(t, u, `personas.BRICK.temperature = 0.9`)
	err := u.DB().Update(ctx, func(tx *image.Tx) error {
		names, _ := tx.RootNames()
		traits, _ := tx.Object(names["traits"])
		v, _ := traits.Get("describe")
		m := v.(*image.Method)
		return traits.Set("describe", &image.Method{Source: "def describe(self):\n    return 'old'", Meta: m.Meta})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := eval(t, u, `genesis.describe()`); got != `"old"` {
		t.Fatalf("setup: describe = %s", got)
	}
	u.Close()
	u2, _ := open(t, path)
	if got := eval(t, u2, `genesis.describe()`); !strings.HasPrefix(got, `"genesis (oid:`) {
		t.Errorf("batos method not upgraded: %s", got)
	}
	for code, want := range map[string]string{
		`genesis.slot_names()`:       `["mine"]`,
		`root.mine.data`:             `[1, 2]`,
		`personas.BRICK.temperature`: `0.9`,
	} {
		if got := eval(t, u2, code); got != want {
			t.Errorf("%s = %s after upgrade, want %s", code, got, want)
		}
	}
}

func TestConcurrentSendsRetryConflicts(t *testing.T) {
	u, _ := open(t, filepath.Join(t.TempDir(), "live_image.db"))
	eval(t, u, `genesis.n = 0`)
	eval(t, u, `genesis.bump = method("def bump(self):\n    self.n = self.n + 1\n    return self.n")`)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := u.Send(ctx, "genesis", "bump", nil, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := eval(t, u, `genesis.n`); got != "160" {
		t.Errorf("n = %s after 160 concurrent bumps", got)
	}
}

func TestResolveTargets(t *testing.T) {
	u, _ := open(t, filepath.Join(t.TempDir(), "live_image.db"))
	if _, err := u.Send(ctx, "nosuchname", "describe", nil, nil); !errors.Is(err, image.ErrNoTarget) {
		t.Errorf("unknown root name: %v", err)
	}
	if _, err := u.Send(ctx, "oid:99999", "describe", nil, nil); err == nil {
		t.Errorf("missing OID accepted")
	}
	// The root has no parents, so nothing there understands describe;
	// the OID itself resolved.
	if _, err := u.Send(ctx, "oid:1", "describe", nil, nil); !errors.Is(err, vm.ErrNoMind) {
		t.Errorf("send to oid:1: %v, want the no-mind answer", err)
	}
	if _, err := u.Send(ctx, "1", "describe", nil, nil); !errors.Is(err, vm.ErrNoMind) {
		t.Errorf("send to a bare OID: %v, want the no-mind answer", err)
	}
}

// TestShutdownLetsInFlightSendsFinish: a send running when Shutdown is
// called completes; sends after it are refused.
func TestShutdownLetsInFlightSendsFinish(t *testing.T) {
	u, _ := open(t, filepath.Join(t.TempDir(), "live_image.db"))
	eval(t, u, `genesis.busy = method("def busy(self, n):\n    for i in range(n):\n        pass\n    self.done = True\n    return n")`)
	started := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		close(started)
		_, err := u.Send(ctx, "genesis", "busy", []image.Value{image.Int(500_000)}, nil)
		result <- err
	}()
	<-started
	time.Sleep(20 * time.Millisecond)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := u.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-result; err != nil && !errors.Is(err, uvm.ErrShutdown) {
		t.Errorf("in-flight send: %v", err)
	}
	if _, err := u.Send(ctx, "genesis", "busy", []image.Value{image.Int(1)}, nil); !errors.Is(err, uvm.ErrShutdown) {
		t.Errorf("send after shutdown: %v, want ErrShutdown", err)
	}
	if err := u.Shutdown(sctx); err != nil {
		t.Errorf("second shutdown: %v", err)
	}
}

func TestNoMindAnswerChangesNothing(t *testing.T) {
	u, _ := open(t, filepath.Join(t.TempDir(), "live_image.db"))
	last := u.Store().LastTID()
	_, err := u.Send(ctx, "genesis", "display_yourself", nil, nil)
	if !errors.Is(err, vm.ErrNoMind) {
		t.Fatalf("got %v, want the no-mind error", err)
	}
	if u.Store().LastTID() != last {
		t.Errorf("the not-understood send committed")
	}
}

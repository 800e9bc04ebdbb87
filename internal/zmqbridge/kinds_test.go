package zmqbridge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/uvm/uvmtest"
	"batos/internal/vm"
	"batos/internal/zmqbridge"
)

// errService is fakeService whose Inspect answers the error named by its
// target.
type errService struct {
	fakeService
	errs map[string]error
}

func (s *errService) Inspect(ctx context.Context, target string) (command.ObjectView, error) {
	if err, ok := s.errs[target]; ok {
		return command.ObjectView{}, err
	}
	return s.fakeService.Inspect(ctx, target)
}

// TestStoreErrorKinds: each of the store's error sentinels, however
// wrapped, comes back with its own kind (never internal), the error about
// a file names it in "path", and the client's *command.Error matches the
// sentinel with errors.Is.
func TestStoreErrorKinds(t *testing.T) {
	const walPath = "/images/live_image.db.wal.00000003"
	noSpace := &store.NoSpaceError{Path: walPath, Op: "write-ahead log", Err: syscall.ENOSPC}
	cases := []struct {
		name     string
		err      error
		kind     command.Kind
		path     string
		sentinel error // what the client's error matches; nil: nothing checked
	}{
		{"record over the limit", fmt.Errorf("commit: %w: %w: encoding exceeds the %d-byte record limit", image.ErrInvalid, store.ErrTooLarge, store.MaxRecordSize), command.KindLimit, "", nil},
		{"metadata over the limit", fmt.Errorf("%w: transaction metadata is 70000 bytes, limit 65536", store.ErrTooLarge), command.KindLimit, "", nil},
		{"corrupt record", &store.CorruptError{OID: 3, TID: 9, Detail: "checksum mismatch"}, command.KindCorrupt, "", store.ErrCorrupt},
		{"corrupt blob", fmt.Errorf("read blob: %w", &store.CorruptBlobError{Detail: "digest mismatch"}), command.KindCorrupt, "", store.ErrCorrupt},
		{"damaged file", &store.DamageError{Path: walPath, Offset: 4096, Detail: "bad frame"}, command.KindCorrupt, walPath, store.ErrCorrupt},
		{"corrupt object read by a method", &vm.Error{Msg: "reading oid:3", Err: &store.CorruptError{OID: 3, TID: 9, Detail: "checksum mismatch"}}, command.KindCorrupt, "", store.ErrCorrupt},
		{"no space", noSpace, command.KindNoSpace, walPath, store.ErrNoSpace},
		{"no space, wrapped", fmt.Errorf("commit: %w", noSpace), command.KindNoSpace, walPath, store.ErrNoSpace},
		{"read-only store", fmt.Errorf("commit: %w", store.ErrReadOnly), command.KindReadOnly, "", store.ErrReadOnly},
		{"conflict", &store.ConflictError{OIDs: []store.OID{3}}, command.KindConflict, "", store.ErrConflict},
		{"anything else", errors.New("disk controller on fire"), command.KindInternal, "", nil},
	}
	svc := &errService{errs: map[string]error{}}
	for _, tc := range cases {
		svc.errs[tc.name] = tc.err
	}
	_, addr, _ := startServer(t, svc)
	d := dealer(t, addr)
	c, err := zmqbridge.Dial(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := req(t, d, map[string]any{"id": int64(1), "command": "inspect", "target": tc.name})
			e, _ := r["error"].(map[string]any)
			// The message is written for the client: no Go package prefixes.
			if want := command.Message(tc.err); r["ok"] != false || e["kind"] != string(tc.kind) || e["message"] != want || strings.Contains(want, "store: ") {
				t.Errorf("got %v, want kind %s and the message %q", r, tc.kind, want)
			}
			if path, _ := e["path"].(string); path != tc.path {
				t.Errorf("path %q, want %q", path, tc.path)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := c.Call(ctx, "inspect", map[string]any{"target": tc.name})
			var re *command.Error
			if !errors.As(err, &re) || re.Kind != tc.kind || re.Path != tc.path {
				t.Fatalf("client: got %#v, want a *command.Error of kind %s, path %q", err, tc.kind, tc.path)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("client: errors.Is(%v, %v) is false", err, tc.sentinel)
			}
			for _, other := range []error{store.ErrNoSpace, store.ErrCorrupt, store.ErrReadOnly, store.ErrTooLarge, store.ErrConflict} {
				if other != tc.sentinel && errors.Is(err, other) {
					t.Errorf("client: a %s error matches %v", tc.kind, other)
				}
			}
		})
	}
}

// TestSendOverRecordLimit: a send whose method writes a value encoding
// to more than the 64 MiB record limit (a list sharing one 1 MiB string
// 80 times: small in memory) answers kind limit, not internal, naming
// the limit; nothing of it is saved, and the server goes on answering.
func TestSendOverRecordLimit(t *testing.T) {
	u := uvmtest.Open(t, nil)
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	d := dealer(t, addr)
	d.SetRcvtimeo(60 * time.Second)
	hoard := "genesis.hoard = method(\"def hoard(self, n):\\n    chunk = 'x' * (1 << 20)\\n    self.big = [[chunk] * 16] * n\\n    return n\")"
	if r := req(t, d, map[string]any{"id": int64(1), "command": "eval", "code": hoard}); r["ok"] != true {
		t.Fatalf("install hoard: %v", r)
	}
	r := req(t, d, map[string]any{"id": int64(2), "command": "send", "target": "genesis", "selector": "hoard", "args": []any{int64(5)}})
	e, _ := r["error"].(map[string]any)
	msg, _ := e["message"].(string)
	if r["ok"] != false || e["kind"] != string(command.KindLimit) || !strings.Contains(msg, fmt.Sprint(store.MaxRecordSize)) {
		t.Errorf("send writing 80 MiB: got %v, want kind limit naming the %d-byte limit", r, store.MaxRecordSize)
	}
	r = req(t, d, map[string]any{"id": int64(3), "command": "eval", "code": "'big' in slots(genesis)"})
	if res, _ := r["result"].(map[string]any); r["ok"] != true || res["repr"] != "False" {
		t.Errorf("after the refused send: %v, want genesis without big", r)
	}
	// Under the limit, the same method's value is saved.
	r = req(t, d, map[string]any{"id": int64(4), "command": "send", "target": "genesis", "selector": "hoard", "args": []any{int64(1)}})
	if r["ok"] != true {
		t.Errorf("send writing 16 MiB: %v", r)
	}
}

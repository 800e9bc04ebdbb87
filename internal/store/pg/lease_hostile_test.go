package pg_test

import (
	"strings"
	"testing"
	"time"

	"batos/internal/store/lease"
	"batos/internal/store/pg/pgtest"
)

// TestHostileLeaseNames: names and holders checkLease accepts must be
// granted, or refused by checkLease itself, never fail in the database:
// batos run -node takes any name of at most 128 bytes without control
// characters, and a node whose every lease fails runs no cycle and no
// heartbeat, only logging warnings.
func TestHostileLeaseNames(t *testing.T) {
	db := open(t, pgtest.NewDatabase(t))
	for _, c := range []struct{ name, holder string }{
		{"cycle/1", "node\xff"},            // invalid UTF-8: passes -node's check
		{"cycle/2", "n\u00e9ud \u2603 #3"}, // fine UTF-8, a '#' in it
		{"cycle/3", strings.Repeat("\u20ac", 85)},
		{"bad\x00name", "node"},
		{"bad\xfename", "node"},
	} {
		l, ok, err := db.AcquireLease(ctx, c.name, c.holder, time.Second)
		if err != nil && !strings.Contains(err.Error(), "want 1 to") && !strings.Contains(err.Error(), "want UTF-8 without NUL") {
			t.Errorf("lease %q for %q: the database refused it: %v", c.name, c.holder, err)
			continue
		}
		if err == nil && (!ok || l.Holder != c.holder) {
			t.Errorf("lease %q for %q: %v %v", c.name, c.holder, l, ok)
		}
	}
}

// TestHostileLeaseSameHolderTwoHandles: the store grants a lease to a
// holder name, renewing it for the same name; two nodes named alike
// (batos run -node given twice) therefore hold under lease.Holder's
// names, which differ, and only one of them gets the lease.
func TestHostileLeaseSameHolderTwoHandles(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := open(t, url), open(t, url)
	la, ok, err := a.AcquireLease(ctx, "heartbeat", lease.Holder("node-x"), time.Second)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	lb, ok, err := b.AcquireLease(ctx, "heartbeat", lease.Holder("node-x"), time.Second)
	if err != nil || ok {
		t.Errorf("two nodes named alike both hold %v and %v (%v)", la, lb, err)
	}
}

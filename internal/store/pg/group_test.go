package pg

import (
	"context"
	"errors"
	"slices"
	"testing"

	"batos/internal/store"
	"batos/internal/store/pg/pgtest"
	"batos/internal/store/storetest"
)

// TestGroupCommit: a group is one transaction in which each member is
// checked against the database and the members before it. A member that
// conflicts with an earlier one, or whose caller gave up, is refused
// alone; the others are made, each with its own TID (increasing in the
// group's order), log entry and revisions.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	db := openOn(t, pgtest.NewDatabase(t))
	oids, err := db.NewOIDs(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	x, y, z := oids[0], oids[1], oids[2]
	gone, cancel := context.WithCancel(ctx)
	cancel()
	newMember := func(ctx context.Context, desc string, ws ...store.Write) *member {
		m := &member{ctx: ctx, meta: store.TxMeta{Description: desc}, done: make(chan struct{})}
		for _, w := range ws {
			m.writes = append(m.writes, write{Write: w})
		}
		return m
	}
	first := newMember(ctx, "first", store.Write{OID: x, Data: storetest.Rec("x1")})
	loser := newMember(ctx, "loser", store.Write{OID: x, Data: storetest.Rec("x from the same serial")}, store.Write{OID: z, Data: storetest.Rec("z")})
	cancelled := newMember(gone, "cancelled", store.Write{OID: z, Data: storetest.Rec("z")})
	second := newMember(ctx, "second", store.Write{OID: y, Data: storetest.Rec("y1")})
	// Based on first's revision of x, which the group made just before.
	group := []*member{first, loser, cancelled, second}
	db.commitGroup(group)

	var conflict *store.ConflictError
	if !errors.As(loser.refused, &conflict) || !slices.Equal(conflict.OIDs, []store.OID{x}) {
		t.Errorf("the member based on a revision an earlier member replaced: %v, want a conflict on %s", loser.refused, x)
	}
	if !errors.Is(cancelled.refused, context.Canceled) {
		t.Errorf("the member whose caller gave up: %v", cancelled.refused)
	}
	if first.refused != nil || second.refused != nil || first.tid == 0 || second.tid <= first.tid {
		t.Fatalf("made: first %s %v, second %s %v", first.tid, first.refused, second.tid, second.refused)
	}
	log, err := db.Log(ctx, store.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var descs []string
	for _, tx := range log {
		descs = append(descs, tx.Description)
	}
	if !slices.Equal(descs, []string{"second", "first"}) {
		t.Errorf("the log holds %q, want the two members made, newest first", descs)
	}
	if r, err := db.Load(ctx, x); err != nil || r.Serial != first.tid {
		t.Errorf("x: %v %v", r, err)
	}
	if _, err := db.Load(ctx, z); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("z, which only refused members wrote: %v", err)
	}
	if db.LastTID() != second.tid {
		t.Errorf("LastTID %s, want %s", db.LastTID(), second.tid)
	}
	storetest.MustVerify(t, db)

	// A member based on the revision the group before made goes in.
	next := newMember(ctx, "next", store.Write{OID: x, Serial: first.tid, Data: storetest.Rec("x2")})
	db.commitGroup([]*member{next})
	if next.refused != nil || next.tid <= second.tid {
		t.Errorf("a member based on the current revision: %s %v", next.tid, next.refused)
	}
}

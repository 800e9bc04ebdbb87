package pg

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"batos/internal/store"
)

// write is a store.Write that may also record a deletion (from undo).
type write struct {
	store.Write
	deleted bool
}

// Commit implements store.Engine.
func (db *DB) Commit(ctx context.Context, meta store.TxMeta, writes []store.Write) (store.TID, error) {
	if err := store.ValidateCommit(meta, writes); err != nil {
		return 0, err
	}
	ws := make([]write, len(writes))
	for i, w := range writes {
		ws[i] = write{Write: w}
	}
	return db.commit(ctx, meta, ws, 0)
}

// Undo implements store.Engine. The new transaction's extension records
// which transaction it undid under the key "undo". The writes are
// computed under the commit lock, so check and restore are atomic.
func (db *DB) Undo(ctx context.Context, tid store.TID, meta store.TxMeta) (store.TID, error) {
	meta.Extension = maps.Clone(meta.Extension)
	if meta.Extension == nil {
		meta.Extension = map[string]string{}
	}
	meta.Extension["undo"] = tid.String()
	if meta.Description == "" {
		meta.Description = "undo " + tid.String()
	}
	return db.commit(ctx, meta, nil, tid)
}

// commit makes one commit: the writes, or (undo != 0) the writes that
// undo that transaction, computed under the commit lock. It hands the
// commit to the handle's committer, which makes it in one PostgreSQL
// transaction with the other commits waiting then (see group.go). It
// returns the TID only once the commit is durable, and an error only for
// a commit that was not made, except one that wraps
// store.ErrOutcomeUnknown: the connection was lost while COMMIT was under
// way and the database could not be asked in time (learnOutcome).
func (db *DB) commit(ctx context.Context, meta store.TxMeta, writes []write, undo store.TID) (store.TID, error) {
	if err := ctx.Err(); err != nil {
		return 0, err // a cancelled caller never commits
	}
	done, err := db.enter()
	if err != nil {
		return 0, err
	}
	defer done()
	m := &member{ctx: ctx, meta: meta, writes: writes, undo: undo, done: make(chan struct{})}
	db.committer.submit(m)
	select {
	case <-m.done:
	case <-ctx.Done():
		if m.withdraw() {
			return 0, ctx.Err() // never made: the group leaves it out
		}
		<-m.done // its group has it: the outcome is the caller's to learn
	}
	return m.tid, m.err
}

// commitGroup makes a group's commits, trying again on another connection
// while a pooled one is found dead before anything that could commit was
// sent on it. Each member ends with its TID or its error.
func (db *DB) commitGroup(group []*member) {
	ctx, stop := groupContext(group)
	defer stop()
	for attempt := 0; ; attempt++ {
		sent, err := db.commitGroupOnce(ctx, group)
		switch {
		case err == nil:
			return
		case sent:
			// made or not, or not known, and said so
		case deadConnection(ctx, err) && attempt < int(db.pool.Config().MaxConns):
			// A pooled connection the server closed (it restarted):
			// nothing that could commit was sent on it.
			continue
		default:
			err = unavailable(ctx, err, "the commit was not made")
		}
		for _, m := range group {
			if m.refused == nil {
				m.tid = 0
				m.refused = err
			}
		}
		return
	}
}

// commitGroupOnce is one attempt of commitGroup's, on one connection.
// Members the group refused (a conflict) carry their refusal; the others
// their TIDs, once the group committed. sent reports whether COMMIT was
// sent: if so, the error says whether it was made.
func (db *DB) commitGroupOnce(ctx context.Context, group []*member) (sent bool, err error) {
	for _, m := range group {
		m.tid, m.logCRC, m.refused = 0, 0, nil
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("pg: commit: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // a no-op once committed
	if err := db.commitGroupIn(ctx, tx, group); err != nil {
		return false, err
	}
	var made []*member
	for _, m := range group {
		if m.refused == nil {
			made = append(made, m)
		}
	}
	if len(made) == 0 {
		return false, nil // every member refused: nothing to commit
	}
	last := made[len(made)-1]
	// Marked before COMMIT: their notifications may reach the listener
	// before this returns. The marks stay until the outcome is known,
	// so a commit that was made is never passed on as another node's.
	for _, m := range made {
		db.markOwn(m.tid)
	}
	// Once COMMIT is sent the outcome must be learnt even if every
	// caller gave up: the transaction may be durable, and each must
	// learn its TID. The group is one transaction: its last log entry
	// tells for all.
	err = tx.Commit(context.WithoutCancel(ctx))
	if err != nil && outcomeUnknown(err) {
		var ok bool
		ok, err = db.learnOutcome(context.WithoutCancel(ctx), last.tid, last.logCRC, err)
		if ok {
			err = nil
		}
	}
	if err != nil {
		// Not made, or not known to be: if it was, the listener passes
		// them on as any commits this handle did not report.
		for _, m := range made {
			db.unmarkOwn(m.tid)
		}
		if errors.Is(err, store.ErrOutcomeUnknown) {
			return true, err
		}
		return true, unavailable(ctx, fmt.Errorf("pg: commit %s: %w", last.tid, err), "the commit was not made")
	}
	db.seeTID(last.tid)
	return true, nil
}

// outcomeWait bounds how long a commit whose connection was lost during
// COMMIT waits for the database to say whether it was made: long enough
// for a server restart. A variable for the tests.
var outcomeWait = 30 * time.Second

// outcomeUnknown reports whether err, COMMIT's error, leaves the outcome
// open: the connection was lost after the command may have reached the
// server. An error the server replied with (severity ERROR) rolled the
// transaction back, and a command never sent (SafeToRetry) changed
// nothing; a FATAL one may come after the commit was made.
func outcomeUnknown(err error) bool {
	if pgconn.SafeToRetry(err) || errors.Is(err, pgx.ErrTxCommitRollback) {
		return false
	}
	var pe *pgconn.PgError
	return !errors.As(err, &pe) || fatal(pe)
}

// learnOutcome finds out, on a connection of its own, whether the commit
// of tid (its log entry's checksum logCRC) was made after lost, COMMIT's
// error, left it open. It takes the commit lock first, so the session
// that sent COMMIT, if the server still runs it, has ended; then the log
// entry is there (and is this commit's, not a later one's with the same
// TID) or the commit was never made. While the server is down or
// restarting it tries again, for up to outcomeWait; after that the error
// wraps store.ErrOutcomeUnknown.
func (db *DB) learnOutcome(ctx context.Context, tid store.TID, logCRC int64, lost error) (made bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, outcomeWait)
	defer cancel()
	delay := 50 * time.Millisecond
	for {
		made, err = db.readOutcome(ctx, tid, logCRC)
		if err == nil {
			if made {
				return true, nil
			}
			return false, lost
		}
		select {
		case <-ctx.Done():
			return false, &outcomeError{tid: tid, lost: lost, asking: err}
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// readOutcome is one attempt of learnOutcome's.
func (db *DB) readOutcome(ctx context.Context, tid store.TID, logCRC int64) (bool, error) {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var crcs []int64
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", commitLockKey); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT crc FROM transaction WHERE tid = $1", int64(tid))
		if err != nil {
			return err
		}
		crcs, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	if err != nil {
		return false, err
	}
	return len(crcs) == 1 && crcs[0] == logCRC, nil
}

// outcomeError is a commit whose outcome learnOutcome could not learn.
type outcomeError struct {
	tid    store.TID
	lost   error // how the connection was lost during COMMIT
	asking error // the last attempt to ask the database
}

func (e *outcomeError) Error() string {
	return fmt.Sprintf("%v: the connection to the database was lost while commit %s was being made (%s), and the database did not answer within %s to say whether it was (%s): it may or may not have been made",
		store.ErrOutcomeUnknown, e.tid, reason(e.lost), outcomeWait, reason(e.asking))
}

func (e *outcomeError) Unwrap() []error { return []error{store.ErrOutcomeUnknown, e.lost} }

// stageData queues the insertion of the writes' data into commit_stage,
// the connection's temporary table, emptied when the transaction ends.
// A commit stages its data before taking the commit lock, so the lock is
// never held while records travel to the server.
func stageData(b *pgx.Batch, writes []write) {
	oids, datas := make([]int64, len(writes)), make([][]byte, len(writes))
	for i, w := range writes {
		oids[i], datas[i] = int64(w.OID), nonNil(w.Data) // a nil []byte would be NULL
	}
	b.Queue("INSERT INTO commit_stage (oid, data) SELECT * FROM unnest($1::bigint[], $2::bytea[])", oids, datas)
}

// raiseOIDSequence keeps OID allocation ahead of any OID a commit wrote,
// for writers that pick OIDs themselves.
func (db *DB) raiseOIDSequence(ctx context.Context, tx pgx.Tx, oid store.OID) error {
	if uint64(oid) <= db.oidHigh.Load() || int64(oid) < 0 {
		return nil // known passed, or beyond what a bigint sequence reaches
	}
	// Exclusive: no nextval runs between reading the sequence and setval,
	// which would otherwise move it back.
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", oidLockKey); err != nil {
		return fmt.Errorf("take the OID lock: %w", err)
	}
	var last int64
	var called bool
	if err := tx.QueryRow(ctx, "SELECT last_value, is_called FROM oid_seq").Scan(&last, &called); err != nil {
		return fmt.Errorf("read the OID sequence: %w", err)
	}
	next := last
	if called {
		next++
	}
	if int64(oid) >= next {
		if _, err := tx.Exec(ctx, "SELECT setval('oid_seq', $1, true)", int64(oid)); err != nil {
			return fmt.Errorf("raise the OID sequence to %s: %w", oid, err)
		}
	}
	db.raiseOIDHigh(uint64(oid))
	return nil
}

// checkSerials refuses the commit, naming every object, if any write was
// based on a revision that is no longer current.
func checkSerials(writes []write, current map[store.OID]store.TID) error {
	var stale []store.OID
	for _, w := range writes {
		if current[w.OID] != w.Serial {
			stale = append(stale, w.OID)
		}
	}
	if stale == nil {
		return nil
	}
	slices.Sort(stale)
	return &store.ConflictError{OIDs: stale}
}

// undoWrites computes the writes that restore what tid changed: for each
// object, the revision before tid, or a deletion if tid created it.
// Called under the commit lock.
func undoWrites(ctx context.Context, tx pgx.Tx, tid store.TID) ([]write, error) {
	info, err := readTransaction(ctx, tx, tid)
	if err != nil {
		return nil, fmt.Errorf("pg: undo: %w", err)
	}
	var packed int64
	if err := tx.QueryRow(ctx, "SELECT value FROM store_meta WHERE name = 'packed_before'").Scan(&packed); err != nil {
		return nil, fmt.Errorf("pg: undo: read the pack cut: %w", err)
	}
	if packed != 0 && tid <= store.TID(packed) {
		return nil, &store.UndoError{TID: tid, Reason: fmt.Sprintf("history up to %s has been packed", store.TID(packed))}
	}
	// Every object's current revision and the one before tid, in one
	// statement: the commit lock is held.
	rows, err := tx.Query(ctx, `
SELECT w.oid, c.tid, c.deleted, p.tid, p.deleted, p.data, p.crc
FROM unnest($1::bigint[]) WITH ORDINALITY AS w(oid, n)
LEFT JOIN current_object c ON c.oid = w.oid
LEFT JOIN LATERAL (
	SELECT s.tid, s.deleted, s.data, s.crc FROM object_state s
	WHERE s.oid = w.oid AND s.tid < $2 ORDER BY s.tid DESC LIMIT 1
) p ON true
ORDER BY w.n`, oidsToInt64(info.OIDs), int64(tid))
	if err != nil {
		return nil, fmt.Errorf("pg: undo %s: %w", tid, err)
	}
	type undoRow struct {
		oid                     int64
		cur, prev, prevCRC      *int64 // NULL: no current revision, no revision before tid
		curDeleted, prevDeleted *bool
		prevData                []byte
	}
	var found []undoRow
	var r undoRow
	_, err = pgx.ForEachRow(rows, []any{&r.oid, &r.cur, &r.curDeleted, &r.prev, &r.prevDeleted, &r.prevData, &r.prevCRC}, func() error {
		found = append(found, r)
		r = undoRow{} // the next row's NULLs must not keep this row's values
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pg: undo %s: %w", tid, err)
	}
	changed := map[store.OID]store.TID{}
	var writes []write
	for _, r := range found {
		oid := store.OID(r.oid)
		switch {
		case r.cur == nil:
			return nil, &store.UndoError{TID: tid, Reason: fmt.Sprintf("%s no longer exists", oid)}
		case store.TID(*r.cur) != tid:
			changed[oid] = store.TID(*r.cur)
			continue
		}
		w := write{Write: store.Write{OID: oid, Serial: tid}, deleted: true}
		if *r.curDeleted {
			w.Serial = 0 // tid deleted the object; a deleted object has serial 0
		}
		if r.prev != nil {
			if err := checkRevision(oid, store.TID(*r.prev), *r.prevDeleted, r.prevData, *r.prevCRC); err != nil {
				return nil, err
			}
			w.Data, w.deleted = r.prevData, *r.prevDeleted
		}
		writes = append(writes, w)
	}
	if len(changed) > 0 {
		return nil, &store.UndoError{TID: tid, Changed: changed}
	}
	return writes, nil
}

func cmpOID(a, b store.OID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

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

// commit runs one commit in one PostgreSQL transaction: the writes, or
// (undo != 0) the writes that undo that transaction, computed under the
// commit lock. It returns the TID only once the commit is durable, and an
// error only for a commit that was not made, except one that wraps
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
	for attempt := 0; ; attempt++ {
		tid, sent, err := db.commitOnce(ctx, meta, writes, undo)
		switch {
		case err == nil:
			return tid, nil
		case sent:
			return 0, err // made or not, or not known, and said so
		case deadConnection(ctx, err) && attempt < int(db.pool.Config().MaxConns):
			// A pooled connection the server closed (it restarted):
			// nothing that could commit was sent on it.
			continue
		}
		return 0, unavailable(ctx, err, "the commit was not made")
	}
}

// commitOnce is one attempt of commit's, on one connection. sent reports
// whether COMMIT was sent: if so, the error says whether it was made.
func (db *DB) commitOnce(ctx context.Context, meta store.TxMeta, writes []write, undo store.TID) (tid store.TID, sent bool, err error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("pg: commit: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // a no-op once committed
	tid, logCRC, err := db.commitIn(ctx, tx, meta, writes, undo)
	if err != nil {
		return 0, false, err
	}
	// Marked before COMMIT: its notification may reach the listener
	// before this returns. The mark stays until the outcome is known,
	// so a commit that was made is never passed on as another node's.
	db.markOwn(tid)
	// Once COMMIT is sent the outcome must be learnt even if ctx ends: the
	// transaction may be durable, and the caller must learn its TID.
	err = tx.Commit(context.WithoutCancel(ctx))
	if err != nil && outcomeUnknown(err) {
		var made bool
		made, err = db.learnOutcome(context.WithoutCancel(ctx), tid, logCRC, err)
		if made {
			err = nil
		}
	}
	if err != nil {
		// Not made, or not known to be: if it was, the listener passes
		// it on as any commit this handle did not report.
		db.unmarkOwn(tid)
		if errors.Is(err, store.ErrOutcomeUnknown) {
			return 0, true, err
		}
		return 0, true, unavailable(ctx, fmt.Errorf("pg: commit %s: %w", tid, err), "the commit was not made")
	}
	db.seeTID(tid)
	return tid, true, nil
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

// commitIn runs the commit's statements: stage the data, take the commit
// lock, read the last TID and the current serials, write. From the lock
// until the transaction ends no other commit, on any node, runs, and
// each statement sees every commit before this one (READ COMMITTED takes
// a snapshot per statement). Each step is pipelined in one round trip.
//
// It returns the TID and the checksum of the log entry it wrote.
func (db *DB) commitIn(ctx context.Context, tx pgx.Tx, meta store.TxMeta, writes []write, undo store.TID) (store.TID, int64, error) {
	lock := &pgx.Batch{}
	if undo == 0 {
		stageData(lock, writes)
	}
	lock.Queue("SELECT pg_advisory_xact_lock($1)", commitLockKey)
	if err := tx.SendBatch(ctx, lock).Close(); err != nil {
		return 0, 0, fmt.Errorf("pg: commit: stage data and take the commit lock: %w", err)
	}

	reads := &pgx.Batch{}
	if undo != 0 {
		var err error
		if writes, err = undoWrites(ctx, tx, undo); err != nil {
			return 0, 0, err
		}
		stageData(reads, writes)
	}
	n := len(writes)
	oids := make([]int64, n)
	for i, w := range writes {
		oids[i] = int64(w.OID)
	}
	var last int64
	var now time.Time
	// The server's clock, not this node's: TIDs encode time, and nodes'
	// clocks may disagree.
	reads.Queue("SELECT value, clock_timestamp() FROM store_meta WHERE name = 'last_tid'").QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&last, &now); err != nil {
			return fmt.Errorf("pg: commit: read the last TID: %w", err)
		}
		return nil
	})
	current := make(map[store.OID]store.TID, n)
	reads.Queue("SELECT oid, tid, deleted FROM current_object WHERE oid = ANY($1)", oids).Query(func(rows pgx.Rows) error {
		var oid, tid int64
		var deleted bool
		_, err := pgx.ForEachRow(rows, []any{&oid, &tid, &deleted}, func() error {
			if !deleted { // a deleted object counts as absent: serial 0
				current[store.OID(oid)] = store.TID(tid)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("pg: commit: read current serials: %w", err)
		}
		return nil
	})
	if err := tx.SendBatch(ctx, reads).Close(); err != nil {
		return 0, 0, err
	}
	db.seeTID(store.TID(last))
	if err := checkSerials(writes, current); err != nil {
		return 0, 0, err
	}
	tid := store.NextTID(store.TID(last), now)
	if tid > store.MaxTID {
		return 0, 0, fmt.Errorf("pg: commit: TIDs exhausted after %s", store.TID(last))
	}

	prevs, crcs, deleted := make([]int64, n), make([]int64, n), make([]bool, n)
	var maxOID store.OID
	for i, w := range writes {
		prevs[i], deleted[i] = int64(w.Serial), w.deleted
		crcs[i] = recordCRC(w.OID, tid, w.deleted, dataCRC(w.Data))
		maxOID = max(maxOID, w.OID)
	}
	logOIDs := slices.Clone(oids)
	slices.SortFunc(logOIDs, func(a, b int64) int { return cmpOID(store.OID(a), store.OID(b)) })
	user, desc, ext := []byte(meta.User), []byte(meta.Description), encodeExtension(meta.Extension)
	timeNS := now.UnixNano()
	logCRC := txnCRC(tid, timeNS, user, desc, ext, logOIDs)

	stmts := []struct {
		what string
		sql  string
		args []any
	}{
		{"write revisions", `
INSERT INTO object_state (oid, tid, prev_tid, deleted, data, crc)
SELECT w.oid, $1, w.prev, w.deleted, s.data, w.crc
FROM unnest($2::bigint[], $3::bigint[], $4::boolean[], $5::bigint[]) AS w(oid, prev, deleted, crc)
JOIN commit_stage s ON s.oid = w.oid`,
			[]any{int64(tid), oids, prevs, deleted, crcs}},
		{"update current objects", `
INSERT INTO current_object (oid, tid, deleted)
SELECT w.oid, $1, w.deleted FROM unnest($2::bigint[], $3::boolean[]) AS w(oid, deleted)
ON CONFLICT (oid) DO UPDATE SET tid = EXCLUDED.tid, deleted = EXCLUDED.deleted`,
			[]any{int64(tid), oids, deleted}},
		{"write the log entry", `
INSERT INTO transaction (tid, time_ns, username, description, extension, oids, crc)
VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			[]any{int64(tid), timeNS, nonNil(user), nonNil(desc), nonNil(ext), logOIDs, logCRC}},
		{"record the last TID", "UPDATE store_meta SET value = $1 WHERE name = 'last_tid'", []any{int64(tid)}},
		// Delivered when the transaction commits: other nodes' LastTID.
		{"announce the commit", "SELECT pg_notify($1, $2)", []any{db.channel, notifyPayload(tid, meta.Notice)}},
	}
	b := &pgx.Batch{}
	for _, st := range stmts {
		b.Queue(st.sql, st.args...)
	}
	results := tx.SendBatch(ctx, b)
	for i, st := range stmts {
		tag, err := results.Exec()
		if err == nil && i == 0 && tag.RowsAffected() != int64(n) {
			err = fmt.Errorf("%d of %d records were staged", tag.RowsAffected(), n)
		}
		if err != nil {
			results.Close()
			return 0, 0, fmt.Errorf("pg: commit %s: %s: %w", tid, st.what, err)
		}
	}
	if err := results.Close(); err != nil {
		return 0, 0, fmt.Errorf("pg: commit %s: %w", tid, err)
	}
	if err := db.raiseOIDSequence(ctx, tx, maxOID); err != nil {
		return 0, 0, fmt.Errorf("pg: commit %s: %w", tid, err)
	}
	return tid, logCRC, nil
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

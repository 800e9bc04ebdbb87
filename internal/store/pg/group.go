package pg

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"batos/internal/store"
)

// Group commit. Every commit takes the commit lock, the same on every
// node, and holds it through COMMIT's flush: TIDs must become visible in
// the order they were given. So one database makes its commits one at a
// time, and each pays a flush of its own. A node's committer therefore
// makes all the commits its callers queued while the previous group
// committed as one PostgreSQL transaction: one hold of the lock, one
// flush, each commit still with its own TID, log entry, notice and
// conflict check (against the database and the members before it). A
// member refused for a conflict is left out, the others go on; an error
// of the group's transaction fails every member.

// Bounds of a group.
const (
	maxGroupMembers = 64
	maxGroupBytes   = 16 << 20
)

// committer queues a handle's commits and makes them, group by group, on
// a goroutine of its own.
type committer struct {
	db    *DB
	mu    sync.Mutex
	queue []*member
	wake  chan struct{} // a token: the queue has work
	stop  chan struct{}
	done  chan struct{}
}

func (c *committer) start(db *DB) {
	c.db, c.wake, c.stop, c.done = db, make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	go c.run()
}

// close stops the goroutine; every caller's commit has returned (Close
// waited for them).
func (c *committer) close() {
	close(c.stop)
	<-c.done
}

func (c *committer) submit(m *member) {
	c.mu.Lock()
	c.queue = append(c.queue, m)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *committer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		for group := c.next(); group != nil; group = c.next() {
			c.db.commitGroup(group)
			for _, m := range group {
				if m.refused != nil {
					m.tid, m.err = 0, m.refused
				}
				close(m.done)
			}
		}
	}
}

// next takes the next group from the queue: an undo alone, else the
// commits up to the next undo or the bounds. A commit whose caller gave
// up while it waited is answered so and left out.
func (c *committer) next() []*member {
	c.mu.Lock()
	defer c.mu.Unlock()
	var group []*member
	size := 0
	for len(c.queue) > 0 {
		m := c.queue[0]
		if m.ctx.Err() != nil && m.withdraw() || m.state.Load() == memberWithdrawn {
			// Its caller gave up while it waited, and returned or returns.
			c.queue = c.queue[1:]
			m.err = m.ctx.Err()
			close(m.done)
			continue
		}
		bytes := 0
		for _, w := range m.writes {
			bytes += len(w.Data)
		}
		if len(group) > 0 && (m.undo != 0 || group[0].undo != 0 || len(group) == maxGroupMembers || size+bytes > maxGroupBytes) {
			break
		}
		c.queue = c.queue[1:]
		group, size = append(group, m), size+bytes
	}
	return group
}

// groupContext is the context a group's statements run in: it ends when
// every member's caller has given up, not before, since the others'
// commits ride in the same transaction.
func groupContext(group []*member) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var left atomic.Int64
	left.Store(int64(len(group)))
	stops := make([]func() bool, len(group))
	for i, m := range group {
		stops[i] = context.AfterFunc(m.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// member is one commit of a group: the commits a node's callers made
// while the previous group was committing, written together in one
// PostgreSQL transaction under one hold of the commit lock, so they share
// its flush. Each keeps its own TID, log entry and notice.
type member struct {
	ctx    context.Context
	meta   store.TxMeta
	writes []write
	undo   store.TID // an undo commits alone: its writes are read under the lock

	// Set by commitGroupIn: the TID, and the log entry's checksum; or
	// refused, the member's own error (a conflict), the rest going on.
	tid     store.TID
	logCRC  int64
	refused error

	err  error         // the outcome, with tid, once done is closed
	done chan struct{} // closed when the member's commit was made or failed

	// state says whether the caller may still withdraw the commit (it
	// gave up): until its group takes it, past which it may be made.
	state atomic.Int32
}

// A member's states.
const (
	memberQueued    int32 = iota // the caller may withdraw it
	memberTaken                  // in a group that may make it: the caller waits for the outcome
	memberWithdrawn              // the caller gave up: no group makes it
)

// withdraw takes the commit back for a caller that gave up; false when
// a group took it already.
func (m *member) withdraw() bool {
	return m.state.CompareAndSwap(memberQueued, memberWithdrawn)
}

// take keeps the commit in its group for good (once more on a retry);
// false when its caller withdrew it.
func (m *member) take() bool {
	return m.state.CompareAndSwap(memberQueued, memberTaken) || m.state.Load() == memberTaken
}

// stageGroup queues the insertion of the members' data into
// commit_stage, tagged with each member's index.
func stageGroup(b *pgx.Batch, group []*member) {
	var idx []int32
	var oids []int64
	var datas [][]byte
	for i, m := range group {
		for _, w := range m.writes {
			idx, oids, datas = append(idx, int32(i)), append(oids, int64(w.OID)), append(datas, nonNil(w.Data)) // a nil []byte would be NULL
		}
	}
	b.Queue("INSERT INTO commit_stage (idx, oid, data) SELECT * FROM unnest($1::int[], $2::bigint[], $3::bytea[])", idx, oids, datas)
}

// commitGroupIn runs a group's statements in tx: stage every member's
// data, take the commit lock, read the last TID and the current serials,
// refuse the members whose serials are stale (as of the members before
// them), and write the rest, each with its TID. From the lock until the
// transaction ends no other commit, on any node, runs, and each statement
// sees every commit before this one (READ COMMITTED takes a snapshot per
// statement). Each step is pipelined in one round trip. An error fails
// every member; a refusal only its own.
func (db *DB) commitGroupIn(ctx context.Context, tx pgx.Tx, group []*member) error {
	undo := group[0].undo
	if undo != 0 && len(group) != 1 {
		return fmt.Errorf("pg: an undo commits alone, not in a group of %d", len(group))
	}
	lock := &pgx.Batch{}
	if undo == 0 {
		stageGroup(lock, group)
	}
	lock.Queue("SELECT pg_advisory_xact_lock($1)", commitLockKey)
	if err := tx.SendBatch(ctx, lock).Close(); err != nil {
		return fmt.Errorf("pg: commit: stage data and take the commit lock: %w", err)
	}

	reads := &pgx.Batch{}
	if undo != 0 {
		writes, err := undoWrites(ctx, tx, undo)
		if err != nil {
			return err
		}
		group[0].writes = writes
		stageGroup(reads, group)
	}
	var oids []int64
	for _, m := range group {
		for _, w := range m.writes {
			oids = append(oids, int64(w.OID))
		}
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
	current := make(map[store.OID]store.TID, len(oids))
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
		return err
	}
	db.seeTID(store.TID(last))

	// Each member in turn, against the current revisions as the members
	// before it left them.
	var (
		widx                 []int32
		woids, wtids, wprevs []int64
		wcrcs                []int64
		wdeleted             []bool
		maxOID               store.OID
		accepted             []*member
		tid                  = store.TID(last)
		timeNS               = now.UnixNano()
		finalTID             = map[store.OID]store.TID{}
		finalDeleted         = map[store.OID]bool{}
	)
	for i, m := range group {
		if m.ctx.Err() != nil {
			m.withdraw() // a caller that gave up never commits, unless a first try took it already
		}
		if !m.take() {
			m.refused = context.Canceled // its caller gave up and withdrew it
			if err := m.ctx.Err(); err != nil {
				m.refused = err
			}
			continue
		}
		if err := checkSerials(m.writes, current); err != nil {
			m.refused = err
			continue
		}
		tid = store.NextTID(tid, now)
		if tid > store.MaxTID {
			return fmt.Errorf("pg: commit: TIDs exhausted after %s", store.TID(last))
		}
		m.tid = tid
		for _, w := range m.writes {
			widx, woids, wtids, wprevs = append(widx, int32(i)), append(woids, int64(w.OID)), append(wtids, int64(tid)), append(wprevs, int64(w.Serial))
			wdeleted = append(wdeleted, w.deleted)
			wcrcs = append(wcrcs, recordCRC(w.OID, tid, w.deleted, dataCRC(w.Data)))
			maxOID = max(maxOID, w.OID)
			if w.deleted {
				delete(current, w.OID)
			} else {
				current[w.OID] = tid
			}
			finalTID[w.OID], finalDeleted[w.OID] = tid, w.deleted
		}
		accepted = append(accepted, m)
	}
	if len(accepted) == 0 {
		return nil
	}
	// current_object gets each object's last revision of the group: one
	// row per object, as an upsert takes them.
	var coids, ctids []int64
	var cdeleted []bool
	for _, oid := range slices.Sorted(maps.Keys(finalTID)) {
		coids, ctids, cdeleted = append(coids, int64(oid)), append(ctids, int64(finalTID[oid])), append(cdeleted, finalDeleted[oid])
	}

	b := &pgx.Batch{}
	type stmt struct{ what string }
	var stmts []stmt
	queue := func(what, sql string, args ...any) {
		b.Queue(sql, args...)
		stmts = append(stmts, stmt{what})
	}
	queue("write revisions", `
INSERT INTO object_state (oid, tid, prev_tid, deleted, data, crc)
SELECT w.oid, w.tid, w.prev, w.deleted, s.data, w.crc
FROM unnest($1::int[], $2::bigint[], $3::bigint[], $4::bigint[], $5::boolean[], $6::bigint[]) AS w(idx, oid, tid, prev, deleted, crc)
JOIN commit_stage s ON s.idx = w.idx AND s.oid = w.oid`, widx, woids, wtids, wprevs, wdeleted, wcrcs)
	queue("update current objects", `
INSERT INTO current_object (oid, tid, deleted)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::boolean[])
ON CONFLICT (oid) DO UPDATE SET tid = EXCLUDED.tid, deleted = EXCLUDED.deleted`, coids, ctids, cdeleted)
	for _, m := range accepted {
		logOIDs := make([]int64, len(m.writes))
		for i, w := range m.writes {
			logOIDs[i] = int64(w.OID)
		}
		slices.SortFunc(logOIDs, func(a, b int64) int { return cmpOID(store.OID(a), store.OID(b)) })
		user, desc, ext := []byte(m.meta.User), []byte(m.meta.Description), encodeExtension(m.meta.Extension)
		m.logCRC = txnCRC(m.tid, timeNS, user, desc, ext, logOIDs)
		queue("write the log entry", `
INSERT INTO transaction (tid, time_ns, username, description, extension, oids, crc)
VALUES ($1, $2, $3, $4, $5, $6, $7)`, int64(m.tid), timeNS, nonNil(user), nonNil(desc), nonNil(ext), logOIDs, m.logCRC)
		// Delivered when the transaction commits: other nodes' LastTID.
		queue("announce the commit", "SELECT pg_notify($1, $2)", db.channel, notifyPayload(m.tid, m.meta.Notice))
	}
	queue("record the last TID", "UPDATE store_meta SET value = $1 WHERE name = 'last_tid'", int64(tid))
	results := tx.SendBatch(ctx, b)
	for i, st := range stmts {
		tag, err := results.Exec()
		if err == nil && i == 0 && tag.RowsAffected() != int64(len(woids)) {
			err = fmt.Errorf("%d of %d records were staged", tag.RowsAffected(), len(woids))
		}
		if err != nil {
			results.Close()
			return fmt.Errorf("pg: commit %s: %s: %w", tid, st.what, err)
		}
	}
	if err := results.Close(); err != nil {
		return fmt.Errorf("pg: commit %s: %w", tid, err)
	}
	if err := db.raiseOIDSequence(ctx, tx, maxOID); err != nil {
		return fmt.Errorf("pg: commit %s: %w", tid, err)
	}
	return nil
}

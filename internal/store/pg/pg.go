// Package pg is a store.Engine on PostgreSQL, so several batos processes
// ("nodes") can share one image. It is history-preserving, in the manner
// of RelStorage: every revision of every object is a row of object_state,
// current_object names each object's current revision, the log is the
// transaction table, and blobs are content-addressed rows of chunks.
//
// Commits run in one PostgreSQL transaction each, under an advisory lock
// taken at commit (pg_advisory_xact_lock): the holder reads the newest
// TID, allocates the next from it and the database server's clock (one
// clock for every node), and checks each write's serial against
// current_object. Commits are therefore strictly ordered across nodes,
// and conflict detection stays optimistic: readers never lock. Records are
// staged in a temporary table before the lock is taken, so it is held for
// a few short statements, never while data travels. synchronous_commit is
// forced on, so a commit is durable when it returns. Each commit also
// sends a NOTIFY, so every node's LastTID follows the others' commits.
//
// A server restart ends every session. An operation that could not reach
// the server, or lost its connection before anything was done, fails
// with store.ErrUnavailable; one that found a pooled connection dead is
// tried again on another. A commit whose connection was lost during
// COMMIT asks the database, once it answers again, whether it was made,
// and reports that; only if it does not answer within 30 seconds does
// the commit fail with store.ErrOutcomeUnknown.
//
// Open creates the schema in an empty database and migrates an older one;
// it refuses a database whose schema is newer than this code
// (ErrSchemaTooNew). The schema goes into the connection's current
// schema (search_path), so one database can hold several images.
//
// The engine needs session-level connections: a temporary table per
// connection, LISTEN, and pack's session advisory lock. A pooler in
// transaction mode (PgBouncer's pool_mode=transaction) breaks them;
// connect to PostgreSQL directly or in session mode.
package pg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"batos/internal/store"
)

// Options configures Open. The zero value is the default.
type Options struct {
	// MaxConns bounds the connection pool; 0 means pgxpool's default
	// (the larger of 4 and the number of CPUs).
	MaxConns int32
	// Existing refuses a database that holds no image (ErrNoImage)
	// rather than creating the schema there: for commands that only read.
	Existing bool
	// BlobPinTime is how long an uploaded blob no committed revision
	// refers to yet is kept from pack: long enough for the transaction
	// that will refer to it to commit. 0 means 24 hours.
	BlobPinTime time.Duration
}

// DB is an image stored in a PostgreSQL database. It implements
// store.Engine; many DBs, in one process or many, may share a database.
type DB struct {
	pool *pgxpool.Pool
	opts Options

	// lastTID is the newest TID this handle has seen: read at open, by
	// every commit (under the commit lock) and from other nodes' commit
	// notifications.
	lastTID atomic.Uint64
	// oidHigh is a value the OID sequence is known to have passed: a
	// commit writing OIDs at or below it need not raise the sequence.
	oidHigh atomic.Uint64

	// channel is the NOTIFY channel commits announce their TIDs on, and
	// the listener goroutine listens to (stopListening ends it).
	channel string
	// watchMu guards watch: WatchCommits's functions and what the
	// listener has passed on to them.
	watchMu       sync.Mutex
	watch         watchers
	own           ownCommits
	stopListening context.CancelFunc
	listening     chan struct{}
	// committer makes this handle's commits, in groups (group.go).
	committer committer

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
}

var _ store.Engine = (*DB)(nil)

// Open connects to the database at url (a PostgreSQL URL or key=value
// string, as pgx takes it), creating or migrating the schema.
func Open(ctx context.Context, url string, opts *Options) (*DB, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.BlobPinTime <= 0 {
		o.BlobPinTime = 24 * time.Hour
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pg: %w", err)
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	// A commit must be durable when it returns, whatever the server's or
	// the role's default.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	// A node that vanishes mid-transaction (its machine gone, the network
	// cut) must not hold the commit lock every node waits for until the
	// kernel's keepalive gives up, two hours later: the server ends an
	// idle transaction after a minute and probes a silent client within
	// a minute.
	for k, v := range map[string]string{
		"idle_in_transaction_session_timeout": "60000",
		"tcp_keepalives_idle":                 "30",
		"tcp_keepalives_interval":             "10",
		"tcp_keepalives_count":                "3",
	} {
		if cfg.ConnConfig.RuntimeParams[k] == "" {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "batos"
	}
	// Each connection's own staging table for commits (see stageData).
	// Its data is not compressed: object_state compresses it once, when
	// the commit copies it there.
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, `CREATE TEMPORARY TABLE commit_stage (idx integer NOT NULL DEFAULT 0, oid bigint NOT NULL, data bytea NOT NULL) ON COMMIT DELETE ROWS;
ALTER TABLE commit_stage ALTER COLUMN data SET STORAGE EXTERNAL`)
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pg: %w", err)
	}
	db := &DB{pool: pool, opts: o}
	if err := db.init(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pg: open: %w", err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	db.stopListening, db.listening = cancel, make(chan struct{})
	go db.listen(lctx)
	db.committer.start(db)
	return db, nil
}

func (db *DB) init(ctx context.Context) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if err := migrate(ctx, conn.Conn(), db.opts.Existing); err != nil {
		return err
	}
	var last int64
	var schema string
	if err := conn.QueryRow(ctx, "SELECT value, current_schema() FROM store_meta WHERE name = 'last_tid'").Scan(&last, &schema); err != nil {
		return fmt.Errorf("read last_tid: %w", err)
	}
	db.seeTID(store.TID(last))
	// Notifications are per database: the schema keeps images in
	// different schemas of one database apart.
	// A hash, not the name: the server cuts channel names at 63 bytes,
	// and two long schema names sharing a prefix must not share one.
	sum := sha256.Sum256([]byte(schema))
	db.channel = "batos_commit_" + hex.EncodeToString(sum[:16])
	return nil
}

// listen keeps lastTID up to date with other nodes' commits, which
// announce their TIDs with NOTIFY when they commit. It holds a connection
// of its own, outside the pool, and reconnects when it is lost.
func (db *DB) listen(ctx context.Context) {
	defer close(db.listening)
	const firstDelay = 100 * time.Millisecond
	delay := firstDelay
	for {
		// Once listening again, the next loss is a new one: retried soon.
		err := db.listenOnce(ctx, func() { delay = firstDelay })
		if ctx.Err() != nil {
			return
		}
		_ = err // the server restarted, or the network failed: try again
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// listenOnce listens on one connection until it fails, calling listening
// once it listens and has caught up.
func (db *DB) listenOnce(ctx context.Context, listening func()) error {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{db.channel}.Sanitize()); err != nil {
		return err
	}
	// Commits made while no one listened announced nothing we heard:
	// the log has them, up to the database's last_tid.
	if err := db.catchUp(ctx, conn, store.MaxTID, nil); err != nil {
		return err
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if tid, notice, ok := parsePayload(n.Payload); ok {
			if err := db.catchUp(ctx, conn, tid, notice); err != nil {
				return err
			}
		}
	}
}

// seeTID raises lastTID to tid.
func (db *DB) seeTID(tid store.TID) {
	for {
		cur := db.lastTID.Load()
		if uint64(tid) <= cur || db.lastTID.CompareAndSwap(cur, uint64(tid)) {
			return
		}
	}
}

// enter admits an operation unless the store is closed; the caller must
// call the returned function when done. Close waits for those admitted.
func (db *DB) enter() (func(), error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil, store.ErrClosed
	}
	db.inflight.Add(1)
	return db.inflight.Done, nil
}

// Close implements store.Engine: it waits for operations in flight, then
// closes the pool. Safe to call twice.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	db.mu.Unlock()
	db.inflight.Wait()
	db.committer.close()
	db.stopListening()
	<-db.listening
	db.pool.Close()
	return nil
}

// LastTID implements store.Engine: the newest TID this handle knows of.
// Another node's commits show as soon as their notification arrives
// (milliseconds), and at the latest once this handle commits or calls
// Stats.
func (db *DB) LastTID() store.TID { return store.TID(db.lastTID.Load()) }

// LatestTID implements store.Freshener: the newest TID committed by any
// node, read from the database (one round trip). The image layer begins
// each transaction there, so a commit on another node is seen by the
// next transaction here, whatever became of its notification.
func (db *DB) LatestTID(ctx context.Context) (store.TID, error) {
	done, err := db.enter()
	if err != nil {
		return 0, err
	}
	defer done()
	var last int64
	err = db.retryDead(ctx, func() error {
		return db.pool.QueryRow(ctx, "SELECT value FROM store_meta WHERE name = 'last_tid'").Scan(&last)
	})
	if err != nil {
		return 0, unavailable(ctx, fmt.Errorf("pg: read the last TID: %w", err), "cannot read the last TID")
	}
	db.seeTID(store.TID(last))
	return store.TID(last), nil // what the database says, whatever was heard
}

// NewOIDs implements store.Engine, from a sequence shared by every node.
// OIDs handed out but never committed are simply never used.
func (db *DB) NewOIDs(ctx context.Context, n int) ([]store.OID, error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: %d OIDs requested", store.ErrInvalid, n)
	}
	if n == 0 {
		return []store.OID{}, nil
	}
	done, err := db.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	var got []int64
	// Repeatable: an OID handed out and never used is lost, nothing more.
	err = db.retryDead(ctx, func() error { return db.nextOIDs(ctx, n, &got) })
	if err != nil {
		return nil, unavailable(ctx, fmt.Errorf("pg: new OIDs: %w", err), "no OIDs were allocated")
	}
	oids := make([]store.OID, len(got))
	high := uint64(0)
	for i, v := range got {
		oids[i] = store.OID(v)
		high = max(high, uint64(v))
	}
	db.raiseOIDHigh(high)
	return oids, nil
}

// nextOIDs takes n values of the OID sequence.
func (db *DB) nextOIDs(ctx context.Context, n int, got *[]int64) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock_shared($1)", oidLockKey); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT nextval('oid_seq') FROM generate_series(1, $1::integer)", n)
		if err != nil {
			return err
		}
		*got, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
}

func (db *DB) raiseOIDHigh(v uint64) {
	for {
		cur := db.oidHigh.Load()
		if v <= cur || db.oidHigh.CompareAndSwap(cur, v) {
			return
		}
	}
}

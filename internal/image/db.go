package image

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"batos/internal/store"
)

// RootOID is the OID of the root object, which names the system objects.
const RootOID = store.RootOID

// Options configures a DB; nil means the defaults.
type Options struct {
	// MaxRetries bounds how often Update reruns its function after a
	// write conflict; default 8, negative for none.
	MaxRetries int
	// CacheSize bounds how many decoded object states are cached;
	// default 100,000. Negative disables the cache.
	CacheSize int
	// User is recorded in the log for transactions that set none.
	User string
	// OnCommit, if set, is told of every commit of the image, once, after
	// it is durable: of each Update that wrote something and of each
	// Undo (a pack commits nothing). It runs on the committing goroutine,
	// before Update or Undo returns, so it must not block nor use the DB;
	// concurrent commits call it concurrently, not necessarily in TID
	// order.
	OnCommit func(Commit)
}

func (o *Options) withDefaults() Options {
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = 8
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 100_000
	}
	return opts
}

// DB is the image: objects over a store engine. It is safe for concurrent
// use; each transaction belongs to one goroutine.
type DB struct {
	store   store.Engine
	serials store.SerialReader // the store's, if it is one
	opts    Options
	cache   *stateCache
	turns   retryTurns // queues the retries of writers that lost a conflict

	mu     sync.Mutex
	active map[*Tx]store.TID // running transactions and their snapshots
	ended  *sync.Cond
}

// New returns an image over s. The DB does not own s: closing s is the
// caller's job, after the last transaction ends.
func New(s store.Engine, opts *Options) *DB {
	o := opts.withDefaults()
	db := &DB{store: s, opts: o, cache: newStateCache(o.CacheSize), active: make(map[*Tx]store.TID)}
	db.serials, _ = s.(store.SerialReader)
	db.ended = sync.NewCond(&db.mu)
	return db
}

// Store is the engine beneath the image.
func (db *DB) Store() store.Engine { return db.store }

// View runs fn in a read-only transaction on a snapshot of the image.
func (db *DB) View(ctx context.Context, fn func(*Tx) error) error {
	return db.ViewAt(ctx, db.latest(ctx), fn)
}

// latest is the snapshot a transaction begins at: the newest commit. A
// store other processes commit to is asked (one round trip), so what
// another node committed before this transaction began is seen; if it
// cannot answer, the last TID this process knows is used, and reading
// fails, or a commit conflicts, rather than anything being lost.
func (db *DB) latest(ctx context.Context) store.TID {
	if f, ok := db.store.(store.Freshener); ok {
		if tid, err := f.LatestTID(ctx); err == nil {
			return tid
		}
	}
	return db.store.LastTID()
}

// ViewAt runs fn in a read-only transaction seeing the image as it was
// right after transaction at.
func (db *DB) ViewAt(ctx context.Context, at store.TID, fn func(*Tx) error) error {
	tx := db.begin(ctx, at, false)
	defer tx.end()
	return fn(tx)
}

// Update runs fn in a read-write transaction and commits what it changed.
// If fn returns an error or panics, nothing is saved (a panic continues
// after the rollback). A write conflict reruns fn on a fresh snapshot, up
// to Options.MaxRetries times, so fn must not have side effects outside
// the transaction. Between reruns the writer waits its turn behind the
// process's other writers that lost on the same object (see retryTurns),
// so fn must not wait for another Update of this DB that could conflict.
func (db *DB) Update(ctx context.Context, fn func(*Tx) error) error {
	_, err := db.UpdateTID(ctx, fn)
	return err
}

// UpdateTID is Update that also returns the committed TID, or 0 when fn
// changed nothing.
func (db *DB) UpdateTID(ctx context.Context, fn func(*Tx) error) (store.TID, error) {
	var release func()
	defer func() {
		if release != nil {
			release()
		}
	}()
	for attempt := 0; ; attempt++ {
		tid, err := db.updateOnce(ctx, fn)
		if !errors.Is(err, store.ErrConflict) {
			return tid, err
		}
		if attempt >= max(db.opts.MaxRetries, 0) {
			return 0, fmt.Errorf("image: update gave up after %d conflicts: %w", attempt+1, err)
		}
		// The first loss queues this writer behind this process's other
		// losers on the object (retryTurns); the wait spends no retry.
		var ce *store.ConflictError
		if release == nil && errors.As(err, &ce) && len(ce.OIDs) > 0 {
			if release, err = db.turns.take(ctx, ce.OIDs[0]); err != nil {
				return 0, err
			}
		}
		if err := backoff(ctx, attempt); err != nil {
			return 0, err
		}
	}
}

func (db *DB) updateOnce(ctx context.Context, fn func(*Tx) error) (store.TID, error) {
	tx := db.begin(ctx, db.latest(ctx), true)
	defer tx.end()
	if err := fn(tx); err != nil {
		return 0, err
	}
	return tx.commit()
}

// backoff sleeps a jittered delay, growing up to about 25 ms, so
// conflicting writers spread out.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(50*time.Microsecond) << min(attempt, 9)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (db *DB) begin(ctx context.Context, at store.TID, writable bool) *Tx {
	tx := &Tx{db: db, ctx: ctx, snapshot: at, writable: writable}
	db.mu.Lock()
	db.active[tx] = at
	db.mu.Unlock()
	return tx
}

func (db *DB) finish(tx *Tx) {
	db.mu.Lock()
	delete(db.active, tx)
	db.mu.Unlock()
	db.ended.Broadcast()
}

// waitReadersBefore blocks until no transaction runs on a snapshot older
// than tid: such a transaction may hold references to objects a pack
// found unreachable.
func (db *DB) waitReadersBefore(ctx context.Context, tid store.TID) error {
	stop := context.AfterFunc(ctx, func() {
		db.mu.Lock()
		defer db.mu.Unlock()
		db.ended.Broadcast()
	})
	defer stop()
	db.mu.Lock()
	defer db.mu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		old := false
		for _, at := range db.active {
			if at < tid {
				old = true
				break
			}
		}
		if !old {
			return nil
		}
		db.ended.Wait()
	}
}

// Pack drops history superseded before the given time and every object
// and blob no longer reachable from the root. Transactions keep running;
// pack waits for those begun before it to end, so it must not be called
// from inside one.
func (db *DB) Pack(ctx context.Context, before time.Time) (store.PackResult, error) {
	return db.store.Pack(ctx, store.PackOptions{
		Before:      before,
		Root:        RootOID,
		Refs:        Refs,
		BeforeSweep: db.waitReadersBefore,
	})
}

// Undo commits a transaction restoring what tid changed. Undoing the
// transaction that created the root is refused: it would leave no image.
// The undo's commit is told to Options.OnCommit under the topic ctx
// carries (WithTopic).
func (db *DB) Undo(ctx context.Context, tid store.TID, user string) (store.TID, error) {
	revs, err := db.store.History(ctx, RootOID, 0)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	if len(revs) > 0 && revs[len(revs)-1].Serial == tid {
		return 0, &store.UndoError{TID: tid, Reason: "it created the root; undoing it would leave an empty image"}
	}
	if user == "" {
		user = db.opts.User
	}
	var wrote []store.OID
	if db.opts.OnCommit != nil {
		// What the undo will write, should the log not say afterwards.
		if info, err := db.store.Transaction(ctx, tid); err == nil {
			wrote = info.OIDs
		}
	}
	meta := store.TxMeta{User: user, Notice: db.notice(topicOf(ctx, nil))}
	undo, err := db.store.Undo(ctx, tid, meta)
	if err != nil {
		return 0, err
	}
	if db.opts.OnCommit != nil {
		db.undone(ctx, tid, undo, meta, wrote)
	}
	return undo, nil
}

// Verify checks every record, reference and blob of the image, and that
// the root exists.
func (db *DB) Verify(ctx context.Context) (*store.Report, error) {
	rep, err := db.store.Verify(ctx, Refs)
	if err != nil {
		return nil, err
	}
	if _, err := db.store.Load(ctx, RootOID); errors.Is(err, store.ErrNotFound) {
		rep.Problems = append(rep.Problems, store.Problem{Kind: store.DanglingReference, Target: RootOID, Detail: fmt.Sprintf("the root object %s is missing", RootOID)})
	}
	return rep, nil
}

// load returns oid's record as of the snapshot and its state, decoded, or
// from the cache when possible. The slots returned are shared: callers
// clone them before changing anything. When the store can tell the
// revision the snapshot sees (store.SerialReader) and the cache holds
// it, nothing is loaded: the record's Data is the encoding the cache
// keeps, if any (a revision this process committed), else nil.
func (db *DB) load(ctx context.Context, oid store.OID, at store.TID) ([]Slot, store.Record, error) {
	if db.serials != nil {
		if serial, ok := db.serials.SerialAt(oid, at); ok {
			if slots, data, ok := db.cache.get(cacheKey{oid, serial}); ok {
				return slots, store.Record{OID: oid, Serial: serial, Data: data}, nil
			}
		}
	}
	rec, err := db.store.LoadAt(ctx, oid, at)
	if err != nil {
		return nil, rec, err
	}
	key := cacheKey{oid, rec.Serial}
	if slots, _, ok := db.cache.get(key); ok {
		return slots, rec, nil
	}
	slots, err := DecodeState(rec.Data)
	if err != nil {
		return nil, rec, &store.CorruptError{OID: oid, TID: rec.Serial, Detail: err.Error()}
	}
	db.cache.put(key, slots, nil)
	return slots, rec, nil
}

package pg

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"batos/internal/store"
)

// watchers are the functions WatchCommits registered, with what the
// listener has passed on: each other node's commit is handed to them
// once, in TID order, whether its notification arrived or it was found in
// the log after a reconnection. Only the listener goroutine moves
// delivered forward (WatchCommits may raise it while none watch).
type watchers struct {
	fns       map[int]func(store.TxInfo, []byte)
	next      int
	delivered store.TID // the newest TID passed on, or skipped as this handle's own
}

// ownCommits are this handle's commits the listener has not passed yet.
// A commit notes its TID here while it holds the commit lock, so this is
// guarded by a mutex of its own, never by what watchers do.
type ownCommits struct {
	mu   sync.Mutex
	tids map[store.TID]bool
}

// WatchCommits implements store.Watcher.
func (db *DB) WatchCommits(fn func(info store.TxInfo, notice []byte)) (stop func()) {
	db.watchMu.Lock()
	defer db.watchMu.Unlock()
	w := &db.watch
	if w.fns == nil {
		w.fns = map[int]func(store.TxInfo, []byte){}
	}
	if len(w.fns) == 0 {
		// From now on: what came before was not watched.
		w.delivered = max(w.delivered, db.LastTID())
	}
	id := w.next
	w.next++
	w.fns[id] = fn
	return func() {
		db.watchMu.Lock()
		defer db.watchMu.Unlock()
		delete(w.fns, id)
	}
}

// markOwn notes a commit of this handle about to be sent, so the
// listener does not pass it on as another node's; unmarkOwn forgets one
// that failed.
func (db *DB) markOwn(tid store.TID) {
	db.own.mu.Lock()
	defer db.own.mu.Unlock()
	if db.own.tids == nil {
		db.own.tids = map[store.TID]bool{}
	}
	db.own.tids[tid] = true
}

func (db *DB) unmarkOwn(tid store.TID) {
	db.own.mu.Lock()
	defer db.own.mu.Unlock()
	delete(db.own.tids, tid)
}

// takeOwn reports whether tid is this handle's, forgetting it.
func (db *DB) takeOwn(tid store.TID) bool {
	db.own.mu.Lock()
	defer db.own.mu.Unlock()
	mine := db.own.tids[tid]
	delete(db.own.tids, tid)
	return mine
}

// dropOwnUpTo drops the marks of commits up to upTo that never reached
// the log (they failed).
func (db *DB) dropOwnUpTo(upTo store.TID) {
	db.own.mu.Lock()
	defer db.own.mu.Unlock()
	for tid := range db.own.tids {
		if tid <= upTo {
			delete(db.own.tids, tid)
		}
	}
}

// notifyPayload is what a commit announces: its TID, then, after a
// space, its notice when there is one that fits.
func notifyPayload(tid store.TID, notice []byte) string {
	p := strconv.FormatUint(uint64(tid), 10)
	if len(notice) > 0 && len(notice) <= store.MaxNotice && utf8.Valid(notice) && !strings.ContainsRune(string(notice), 0) {
		p += " " + string(notice)
	}
	return p
}

// parsePayload reads notifyPayload's form.
func parsePayload(p string) (store.TID, []byte, bool) {
	head, notice, _ := strings.Cut(p, " ")
	tid, err := strconv.ParseUint(head, 10, 63)
	if err != nil {
		return 0, nil, false
	}
	var n []byte
	if notice != "" {
		n = []byte(notice)
	}
	return store.TID(tid), n, true
}

// catchUpPage bounds the log entries a catch-up reads at once.
const catchUpPage = 1000

// catchUp passes on the commits after the last one delivered, up to
// upTo, read from the log on the listener's connection: notice goes with
// upTo's own entry, the others (their notifications lost) have none. A
// notification is only a wake-up: how far to read is bounded by the
// database's last_tid, so a stray NOTIFY naming a TID from the future
// moves nothing. It runs on the listener goroutine only; the watchers'
// lock is held while they are called, never over a query.
func (db *DB) catchUp(ctx context.Context, conn *pgx.Conn, upTo store.TID, notice []byte) error {
	var last int64
	if err := conn.QueryRow(ctx, "SELECT value FROM store_meta WHERE name = 'last_tid'").Scan(&last); err != nil {
		return err
	}
	db.seeTID(store.TID(last))
	if store.TID(last) < upTo {
		upTo, notice = store.TID(last), nil // not (yet) a commit of this database
	}
	db.watchMu.Lock()
	from, watched := db.watch.delivered, len(db.watch.fns) > 0
	db.watchMu.Unlock()
	if upTo <= from {
		return nil
	}
	if !watched {
		db.setDelivered(upTo)
		db.dropOwnUpTo(upTo)
		return nil
	}
	for from < upTo {
		rows, err := conn.Query(ctx, "SELECT "+txnColumns+" FROM transaction WHERE tid > $1 AND tid <= $2 ORDER BY tid LIMIT $3", int64(from), int64(upTo), catchUpPage)
		if err != nil {
			return err
		}
		var infos []store.TxInfo
		var r txnRow
		if _, err := pgx.ForEachRow(rows, r.dest(), func() error {
			info, err := r.info()
			if err != nil {
				return err
			}
			infos = append(infos, info)
			return nil
		}); err != nil {
			return err
		}
		end := upTo
		if len(infos) == catchUpPage {
			end = infos[len(infos)-1].TID
		}
		db.watchMu.Lock()
		for _, info := range infos {
			if db.takeOwn(info.TID) {
				continue
			}
			var n []byte
			if info.TID == upTo {
				n = notice
			}
			for _, fn := range db.watch.fns {
				fn(info, n)
			}
		}
		db.watch.delivered = max(db.watch.delivered, end)
		db.watchMu.Unlock()
		from = end
	}
	db.dropOwnUpTo(upTo)
	return nil
}

func (db *DB) setDelivered(tid store.TID) {
	db.watchMu.Lock()
	defer db.watchMu.Unlock()
	db.watch.delivered = max(db.watch.delivered, tid)
}

package pg

import (
	"context"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"batos/internal/store"
)

// watchers are the functions WatchCommits registered, with what the
// listener has passed on: each other node's commit is handed to them
// once, in TID order, whether its notification arrived or it was found in
// the log after a reconnection.
type watchers struct {
	fns  map[int]func(store.TxInfo, []byte)
	next int
	// delivered is the newest TID passed on (or skipped as this handle's
	// own); own are this handle's commits the listener has not passed yet.
	delivered store.TID
	own       map[store.TID]bool
}

// WatchCommits implements store.Watcher.
func (db *DB) WatchCommits(fn func(info store.TxInfo, notice []byte)) (stop func()) {
	db.watchMu.Lock()
	defer db.watchMu.Unlock()
	w := &db.watch
	if w.fns == nil {
		w.fns, w.own = map[int]func(store.TxInfo, []byte){}, map[store.TID]bool{}
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
	db.watchMu.Lock()
	defer db.watchMu.Unlock()
	if len(db.watch.fns) > 0 {
		db.watch.own[tid] = true
	}
}

func (db *DB) unmarkOwn(tid store.TID) {
	db.watchMu.Lock()
	defer db.watchMu.Unlock()
	delete(db.watch.own, tid)
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

// catchUp passes on the commits after the last one delivered up to upTo,
// read from the log on the listener's connection: notice goes with upTo's
// own entry, the others (their notifications lost) have none.
func (db *DB) catchUp(ctx context.Context, conn *pgx.Conn, upTo store.TID, notice []byte) error {
	db.watchMu.Lock()
	defer db.watchMu.Unlock()
	w := &db.watch
	if upTo <= w.delivered {
		return nil
	}
	if len(w.fns) == 0 {
		w.delivered = upTo
		clear(w.own)
		return nil
	}
	rows, err := conn.Query(ctx, "SELECT "+txnColumns+" FROM transaction WHERE tid > $1 AND tid <= $2 ORDER BY tid", int64(w.delivered), int64(upTo))
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
	for _, info := range infos {
		if w.own[info.TID] {
			delete(w.own, info.TID)
			continue
		}
		var n []byte
		if info.TID == upTo {
			n = notice
		}
		for _, fn := range w.fns {
			fn(info, n)
		}
	}
	w.delivered = upTo
	for tid := range w.own {
		if tid <= upTo {
			delete(w.own, tid) // passed by without a log entry: failed
		}
	}
	return nil
}

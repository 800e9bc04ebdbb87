package pg

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"batos/internal/store"
)

// querier is what reads need: the pool, a connection or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// revision is one checked row of object_state.
type revision struct {
	tid     store.TID
	deleted bool
	data    []byte
}

// checkRevision checks a row against its CRC.
func checkRevision(oid store.OID, tid store.TID, deleted bool, data []byte, crc int64) error {
	if got := recordCRC(oid, tid, deleted, dataCRC(data)); got != crc {
		return &store.CorruptError{OID: oid, TID: tid, Detail: fmt.Sprintf("checksum mismatch: stored %08x, content has %08x", uint32(crc), uint32(got))}
	}
	return nil
}

// revisionAt reads oid's newest revision with tid <= at.
func revisionAt(ctx context.Context, q querier, oid store.OID, at store.TID) (revision, bool, error) {
	var tid, crc int64
	var r revision
	err := q.QueryRow(ctx, `
SELECT tid, deleted, data, crc FROM object_state
WHERE oid = $1 AND tid <= $2 ORDER BY tid DESC LIMIT 1`, int64(oid), int64(at)).Scan(&tid, &r.deleted, &r.data, &crc)
	if errors.Is(err, pgx.ErrNoRows) {
		return revision{}, false, nil
	}
	if err != nil {
		return revision{}, false, fmt.Errorf("read %s as of %s: %w", oid, at, err)
	}
	r.tid = store.TID(tid)
	if err := checkRevision(oid, r.tid, r.deleted, r.data, crc); err != nil {
		return revision{}, false, err
	}
	return r, true, nil
}

// Load implements store.Engine: the revision current_object names.
func (db *DB) Load(ctx context.Context, oid store.OID) (store.Record, error) {
	done, err := db.enter()
	if err != nil {
		return store.Record{}, err
	}
	defer done()
	var tid int64
	var stateTID, crc *int64 // NULL: current_object names a revision that is not there
	var deleted *bool
	var r revision
	err = db.retryDead(ctx, func() error {
		return db.pool.QueryRow(ctx, `
SELECT c.tid, s.tid, s.deleted, s.data, s.crc FROM current_object c
LEFT JOIN object_state s ON s.oid = c.oid AND s.tid = c.tid
WHERE c.oid = $1`, int64(oid)).Scan(&tid, &stateTID, &deleted, &r.data, &crc)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Record{}, fmt.Errorf("load %s: %w", oid, store.ErrNotFound)
	}
	if err != nil {
		return store.Record{}, unavailable(ctx, fmt.Errorf("pg: load %s: %w", oid, err), "cannot read "+oid.String())
	}
	r.tid = store.TID(tid)
	if stateTID == nil || crc == nil || deleted == nil {
		return store.Record{}, &store.CorruptError{OID: oid, TID: r.tid, Detail: "current_object names this revision, which object_state does not hold"}
	}
	r.deleted = *deleted
	if err := checkRevision(oid, r.tid, r.deleted, r.data, *crc); err != nil {
		return store.Record{}, err
	}
	if r.deleted {
		return store.Record{}, fmt.Errorf("load %s: deleted by %s: %w", oid, r.tid, store.ErrNotFound)
	}
	return store.Record{OID: oid, Serial: r.tid, Data: r.data}, nil
}

// LoadAt implements store.Engine: the newest revision with tid <= at.
func (db *DB) LoadAt(ctx context.Context, oid store.OID, at store.TID) (store.Record, error) {
	done, err := db.enter()
	if err != nil {
		return store.Record{}, err
	}
	defer done()
	var r revision
	var found bool
	err = db.retryDead(ctx, func() (err error) {
		r, found, err = revisionAt(ctx, db.pool, oid, at)
		return err
	})
	switch {
	case err != nil:
		return store.Record{}, unavailable(ctx, err, "cannot read "+oid.String())
	case !found:
		return store.Record{}, fmt.Errorf("load %s as of %s: %w", oid, at, store.ErrNotFound)
	case r.deleted:
		return store.Record{}, fmt.Errorf("load %s as of %s: deleted by %s: %w", oid, at, r.tid, store.ErrNotFound)
	}
	return store.Record{OID: oid, Serial: r.tid, Data: r.data}, nil
}

// History implements store.Engine. Sizes are read without the data; Load
// and Verify check the records.
func (db *DB) History(ctx context.Context, oid store.OID, limit int) ([]store.Revision, error) {
	done, err := db.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	var lim *int64
	if limit > 0 {
		l := int64(limit)
		lim = &l
	}
	rows, err := db.pool.Query(ctx, `
SELECT tid, octet_length(data), deleted FROM object_state
WHERE oid = $1 ORDER BY tid DESC LIMIT $2`, int64(oid), lim)
	if err != nil {
		return nil, fmt.Errorf("pg: history of %s: %w", oid, err)
	}
	var revs []store.Revision
	var tid int64
	var size int
	var deleted bool
	_, err = pgx.ForEachRow(rows, []any{&tid, &size, &deleted}, func() error {
		revs = append(revs, store.Revision{Serial: store.TID(tid), Size: size, Deleted: deleted})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pg: history of %s: %w", oid, err)
	}
	if len(revs) == 0 {
		return nil, fmt.Errorf("history of %s: %w", oid, store.ErrNotFound)
	}
	return revs, nil
}

const txnColumns = "tid, time_ns, username, description, extension, oids, crc"

// txnRow is a row of the transaction table.
type txnRow struct {
	tid, timeNS     int64
	user, desc, ext []byte
	oids            []int64
	crc             int64
}

func (r *txnRow) dest() []any {
	return []any{&r.tid, &r.timeNS, &r.user, &r.desc, &r.ext, &r.oids, &r.crc}
}

// info checks the row against its CRC and decodes it.
func (r *txnRow) info() (store.TxInfo, error) {
	tid := store.TID(r.tid)
	if got := txnCRC(tid, r.timeNS, r.user, r.desc, r.ext, r.oids); got != r.crc {
		return store.TxInfo{}, &store.CorruptError{TID: tid, Detail: fmt.Sprintf("checksum mismatch: stored %08x, content has %08x", uint32(r.crc), uint32(got))}
	}
	ext, err := decodeExtension(r.ext)
	if err != nil {
		return store.TxInfo{}, &store.CorruptError{TID: tid, Detail: err.Error()}
	}
	return store.TxInfo{
		TID:         tid,
		Time:        store.TID(r.timeNS).Time(),
		User:        string(r.user),
		Description: string(r.desc),
		Extension:   ext,
		OIDs:        int64sToOIDs(r.oids),
	}, nil
}

func readTransaction(ctx context.Context, q querier, tid store.TID) (store.TxInfo, error) {
	var r txnRow
	err := q.QueryRow(ctx, "SELECT "+txnColumns+" FROM transaction WHERE tid = $1", int64(tid)).Scan(r.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.TxInfo{}, fmt.Errorf("transaction %s: %w", tid, store.ErrNoTransaction)
	}
	if err != nil {
		return store.TxInfo{}, fmt.Errorf("read transaction %s: %w", tid, err)
	}
	return r.info()
}

// Transaction implements store.Engine.
func (db *DB) Transaction(ctx context.Context, tid store.TID) (store.TxInfo, error) {
	done, err := db.enter()
	if err != nil {
		return store.TxInfo{}, err
	}
	defer done()
	return readTransaction(ctx, db.pool, tid)
}

// Log implements store.Engine: newest first, older than q.Before when
// set, at most q.Limit when set.
func (db *DB) Log(ctx context.Context, q store.LogQuery) ([]store.TxInfo, error) {
	done, err := db.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	before := int64(store.MaxTID)
	if q.Before != 0 {
		before = int64(q.Before) - 1
	}
	var lim *int64
	if q.Limit > 0 {
		l := int64(q.Limit)
		lim = &l
	}
	rows, err := db.pool.Query(ctx, "SELECT "+txnColumns+" FROM transaction WHERE tid <= $1 ORDER BY tid DESC LIMIT $2", before, lim)
	if err != nil {
		return nil, fmt.Errorf("pg: log: %w", err)
	}
	var infos []store.TxInfo
	var r txnRow
	_, err = pgx.ForEachRow(rows, r.dest(), func() error {
		info, err := r.info()
		if err != nil {
			return err
		}
		infos = append(infos, info)
		return nil
	})
	if err != nil {
		var ce *store.CorruptError
		if errors.As(err, &ce) {
			return infos, err
		}
		return infos, fmt.Errorf("pg: log: %w", err)
	}
	return infos, nil
}

// Stats implements store.Engine. FileBytes is the database's size on
// disk. It also brings LastTID up to date with other nodes' commits.
func (db *DB) Stats(ctx context.Context) (store.Stats, error) {
	done, err := db.enter()
	if err != nil {
		return store.Stats{}, err
	}
	defer done()
	var st store.Stats
	var last int64
	err = pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
SELECT (SELECT count(*) FROM current_object),
       (SELECT count(*) FROM object_state),
       (SELECT count(*) FROM transaction),
       (SELECT count(*) FROM blob),
       (SELECT coalesce(sum(size), 0) FROM blob),
       pg_database_size(current_database()),
       (SELECT value FROM store_meta WHERE name = 'last_tid')`).Scan(
			&st.Objects, &st.Revisions, &st.Transactions, &st.Blobs, &st.BlobBytes, &st.FileBytes, &last)
	})
	if err != nil {
		return store.Stats{}, fmt.Errorf("pg: stats: %w", err)
	}
	db.seeTID(store.TID(last))
	st.LastTID = db.LastTID()
	return st, nil
}

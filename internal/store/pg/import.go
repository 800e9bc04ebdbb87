package pg

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"batos/internal/store"
)

// Import implements store.Importer: the transaction is written as the
// engine it comes from recorded it, its TID, time and log entry kept,
// under the commit lock as a commit is, without serial checks.
func (db *DB) Import(ctx context.Context, info store.TxInfo, records []store.ImportRecord) error {
	if err := store.ValidateImport(info, records); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	done, err := db.enter()
	if err != nil {
		return err
	}
	defer done()
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pg: import %s: %w", info.TID, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	writes := make([]write, len(records))
	for i, r := range records {
		writes[i] = write{Write: store.Write{OID: r.OID, Data: r.Data}, deleted: r.Deleted}
	}
	lock := &pgx.Batch{}
	if len(writes) > 0 {
		stageData(lock, writes)
	}
	lock.Queue("SELECT pg_advisory_xact_lock($1)", commitLockKey)
	if err := tx.SendBatch(ctx, lock).Close(); err != nil {
		return fmt.Errorf("pg: import %s: stage data and take the commit lock: %w", info.TID, err)
	}
	var last int64
	if err := tx.QueryRow(ctx, "SELECT value FROM store_meta WHERE name = 'last_tid'").Scan(&last); err != nil {
		return fmt.Errorf("pg: import %s: read the last TID: %w", info.TID, err)
	}
	if info.TID <= store.TID(last) {
		return fmt.Errorf("%w: import of transaction %s: the store is at %s already (imports come in TID order, into a store they do not predate)", store.ErrInvalid, info.TID, store.TID(last))
	}
	n := len(writes)
	oids, crcs, deleted := make([]int64, n), make([]int64, n), make([]bool, n)
	for i, w := range writes {
		oids[i], deleted[i] = int64(w.OID), w.deleted
		crcs[i] = recordCRC(w.OID, info.TID, w.deleted, dataCRC(w.Data))
	}
	logOIDs := oidsToInt64(info.OIDs)
	user, desc, ext := []byte(info.User), []byte(info.Description), encodeExtension(info.Extension)
	timeNS := info.Time.UnixNano()
	tid := int64(info.TID)
	b := &pgx.Batch{}
	if n > 0 {
		// prev_tid is the revision each supersedes, as a commit's serial.
		b.Queue(`
INSERT INTO object_state (oid, tid, prev_tid, deleted, data, crc)
SELECT w.oid, $1, COALESCE(CASE WHEN c.deleted THEN 0 ELSE c.tid END, 0), w.deleted, s.data, w.crc
FROM unnest($2::bigint[], $3::boolean[], $4::bigint[]) AS w(oid, deleted, crc)
JOIN commit_stage s ON s.oid = w.oid
LEFT JOIN current_object c ON c.oid = w.oid`, tid, oids, deleted, crcs)
		b.Queue(`
INSERT INTO current_object (oid, tid, deleted)
SELECT w.oid, $1, w.deleted FROM unnest($2::bigint[], $3::boolean[]) AS w(oid, deleted)
ON CONFLICT (oid) DO UPDATE SET tid = EXCLUDED.tid, deleted = EXCLUDED.deleted`, tid, oids, deleted)
	}
	b.Queue(`INSERT INTO transaction (tid, time_ns, username, description, extension, oids, crc) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		tid, timeNS, nonNil(user), nonNil(desc), nonNil(ext), logOIDs, txnCRC(info.TID, timeNS, user, desc, ext, logOIDs))
	b.Queue("UPDATE store_meta SET value = $1 WHERE name = 'last_tid'", tid)
	b.Queue("SELECT pg_notify($1, $2)", db.channel, strconv.FormatUint(uint64(info.TID), 10))
	results := tx.SendBatch(ctx, b)
	if n > 0 {
		// Every record staged reached object_state, as a commit checks.
		tag, err := results.Exec()
		if err == nil && tag.RowsAffected() != int64(n) {
			err = fmt.Errorf("%d of %d records were staged", tag.RowsAffected(), n)
		}
		if err != nil {
			results.Close()
			return fmt.Errorf("pg: import %s: write revisions: %w", info.TID, err)
		}
	}
	if err := results.Close(); err != nil {
		return fmt.Errorf("pg: import %s: %w", info.TID, err)
	}
	if err := db.raiseOIDSequence(ctx, tx, info.OIDs[len(info.OIDs)-1]); err != nil {
		return fmt.Errorf("pg: import %s: %w", info.TID, err)
	}
	if err := tx.Commit(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("pg: import %s: %w", info.TID, err)
	}
	db.seeTID(info.TID)
	return nil
}

// MarkPacked implements store.Importer: it raises the pack cut, as a
// pack does, under the commit lock.
func (db *DB) MarkPacked(ctx context.Context, before store.TID) error {
	done, err := db.enter()
	if err != nil {
		return err
	}
	defer done()
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pg: mark packed: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", commitLockKey); err != nil {
		return fmt.Errorf("pg: mark packed: take the commit lock: %w", err)
	}
	var last int64
	if err := tx.QueryRow(ctx, "SELECT value FROM store_meta WHERE name = 'last_tid'").Scan(&last); err != nil {
		return fmt.Errorf("pg: mark packed: read the last TID: %w", err)
	}
	if before == 0 || before > store.TID(last) {
		return fmt.Errorf("%w: pack mark %s: not a transaction of this store (last %s)", store.ErrInvalid, before, store.TID(last))
	}
	if _, err := tx.Exec(ctx, "UPDATE store_meta SET value = GREATEST(value, $1) WHERE name = 'packed_before'", int64(before)); err != nil {
		return fmt.Errorf("pg: mark packed: %w", err)
	}
	return tx.Commit(context.WithoutCancel(ctx))
}

// PackedBefore implements store.PackMarker.
func (db *DB) PackedBefore(ctx context.Context) (store.TID, error) {
	done, err := db.enter()
	if err != nil {
		return 0, err
	}
	defer done()
	var cut int64
	if err := db.pool.QueryRow(ctx, "SELECT value FROM store_meta WHERE name = 'packed_before'").Scan(&cut); err != nil {
		return 0, fmt.Errorf("pg: read the pack cut: %w", err)
	}
	return store.TID(cut), nil
}

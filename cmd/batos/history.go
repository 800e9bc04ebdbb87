package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"batos/internal/store"
	"batos/internal/zmqbridge"
)

func init() {
	commands["log"] = command{"list committed transactions, newest first", runLog}
	commands["history"] = command{"list the revisions of an object", runHistory}
	commands["undo"] = command{"undo a transaction by committing its inverse", runUndo}
	commands["pack"] = command{"drop old history and unreachable objects and blobs", runPack}
}

func runLog(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "log", "[-n N] [-before TID] [-json]", "List committed transactions, newest first: TID, time, user, description and\nthe number of objects written.")
	n := fs.Int("n", 20, "show at most N transactions (0 for all)")
	before := fs.String("before", "", "only transactions older than this TID")
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("log takes no arguments (use -n N for a count)")
	}
	if *n < 0 {
		return usageError("-n must be 0 (all) or more, not %d", *n)
	}
	q := store.LogQuery{Limit: *n}
	if *before != "" {
		tid, err := store.ParseTID(*before)
		if err != nil {
			return usageError("%v", err)
		}
		q.Before = tid
	}
	txns, err := readLog(ctx, e, q)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]map[string]any, len(txns))
		for i, t := range txns {
			out[i] = txnJSON(t)
		}
		return printJSON(e.stdout, out)
	}
	for _, t := range txns {
		fmt.Fprintf(e.stdout, "%s  %s  %-10s %s (%d objects)%s\n", t.TID, formatTime(t.Time), t.User, describe(t), len(t.OIDs), extension(t))
	}
	return nil
}

// readLog reads the log from the image, or from the server holding it.
func readLog(ctx context.Context, e *env, q store.LogQuery) ([]store.TxInfo, error) {
	db, err := openImageReadOnly(ctx, e)
	if r, ok := remoteFor(e, err); ok {
		defer r.Close()
		args := map[string]any{"limit": int64(q.Limit)}
		if q.Before != 0 {
			args["before"] = q.Before.String()
		}
		res, err := r.call(ctx, "log", args)
		if err != nil {
			return nil, err
		}
		var txns []store.TxInfo
		for _, x := range list(res) {
			m, _ := x.(map[string]any)
			txns = append(txns, txInfoOf(m))
		}
		return txns, nil
	}
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.Store().Log(ctx, q)
}

func txnJSON(t store.TxInfo) map[string]any {
	oids := make([]string, len(t.OIDs))
	for i, o := range t.OIDs {
		oids[i] = o.String()
	}
	return map[string]any{
		"tid": t.TID.String(), "time": t.Time.Format(time.RFC3339Nano), "user": t.User,
		"description": t.Description, "extension": t.Extension, "oids": oids,
	}
}

func describe(t store.TxInfo) string {
	if t.Description == "" {
		return "-"
	}
	return t.Description
}

func extension(t store.TxInfo) string {
	if len(t.Extension) == 0 {
		return ""
	}
	parts := make([]string, 0, len(t.Extension))
	for k, v := range t.Extension {
		parts = append(parts, k+"="+v)
	}
	return "  [" + strings.Join(parts, " ") + "]"
}

func runHistory(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "history", "[-n N] [-json] OID", "List an object's revisions, newest first, with the transaction that wrote each.")
	n := fs.Int("n", 20, "show at most N revisions (0 for all)")
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("history takes one OID (oid:N or N)")
	}
	if *n < 0 {
		return usageError("-n must be 0 (all) or more, not %d", *n)
	}
	oid, err := parseOID(fs.Arg(0))
	if err != nil {
		return err
	}
	revs, txns, err := readHistory(ctx, e, oid, *n)
	if err != nil {
		return err
	}
	var out []map[string]any
	for i, r := range revs {
		t := txns[i]
		state := fmt.Sprintf("%d bytes", r.Size)
		if r.Deleted {
			state = "deleted"
		}
		if *asJSON {
			m := txnJSON(t)
			delete(m, "oids")
			m["size"], m["deleted"] = r.Size, r.Deleted
			out = append(out, m)
			continue
		}
		fmt.Fprintf(e.stdout, "%s  %s  %-10s %-12s %s\n", r.Serial, formatTime(t.Time), t.User, state, describe(t))
	}
	if *asJSON {
		return printJSON(e.stdout, out)
	}
	return nil
}

func runUndo(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "undo", "TID", "Commit a new transaction that restores every object TID changed to its state\nbefore TID. Refused, naming the objects, if a later transaction changed them.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("undo takes one TID (as batos log prints it)")
	}
	tid, err := store.ParseTID(fs.Arg(0))
	if err != nil {
		return usageError("%v", err)
	}
	db, err := openImage(ctx, e, false)
	if r, ok := remoteFor(e, err); ok {
		defer r.Close()
		res, err := r.call(ctx, "undo", map[string]any{"tid": tid.String()})
		if err != nil {
			return err
		}
		m, _ := res.(map[string]any)
		fmt.Fprintf(e.stdout, "undid %s as %s\n", tid, str(m["tid"]))
		return nil
	}
	if err != nil {
		return err
	}
	defer db.Close()
	undone, err := db.Store().Transaction(ctx, tid)
	if err != nil {
		return err
	}
	newTID, err := db.Undo(ctx, tid, currentUser())
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "undid %s (%s) as %s, restoring %d objects\n", tid, describe(undone), newTID, len(undone.OIDs))
	return nil
}

func runPack(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "pack", "-before TIME [-compact] | -compact", `Drop revisions superseded before TIME, objects no longer reachable from the root,
and blobs nothing refers to. History before TIME can no longer be read or undone.
TIME is a TID (as batos log prints it: the history older than that transaction),
RFC 3339 (2026-11-29T12:00:00Z), a date (2026-11-29), "now", or an age such as
36h or 7d (meaning that long ago). The file keeps its size (the space freed is
reused); -compact then rewrites it without the free space, and alone it only
compacts. While batos run holds the image, the pack runs in that server, and its
sends go on meanwhile (commits wait while the file is rewritten).`)
	beforeFlag := fs.String("before", "", "pack history older than TIME")
	compact := fs.Bool("compact", false, "rewrite the file without its free space, after the pack if -before is given")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*beforeFlag == "" && !*compact) || fs.NArg() > 0 {
		return usageError("pack needs -before TIME, -compact or both, and no arguments")
	}
	var before time.Time
	if *beforeFlag != "" {
		var err error
		if before, err = zmqbridge.ParseBefore(*beforeFlag, time.Now()); err != nil {
			return usageError("%v", err)
		}
	}
	start := time.Now()
	var res packOutcome
	err := withProgress(e, "packing "+e.image, func() error {
		var err error
		res, err = packImage(ctx, e, before, *compact)
		return err
	})
	if err != nil {
		return err
	}
	took := time.Since(start).Round(time.Millisecond)
	if res.compactErr != nil {
		// Said plainly: the pack's changes are saved, only the copy failed.
		return fmt.Errorf("the pack is done and saved (dropped %d revisions, %d unreachable objects), but the compaction failed (it needs room for a copy of the file beside it): %w", res.pack.Revisions, res.pack.Objects, res.compactErr)
	}
	if !before.IsZero() {
		p := res.pack
		fmt.Fprintf(e.stdout, "packed history before %s in %s: dropped %d revisions, %d unreachable objects, %d log entries, %d blobs (%s)\n",
			formatTime(before), took, p.Revisions, p.Objects, p.Transactions, p.Blobs, byteSize(p.BlobBytes))
	}
	if *compact {
		fmt.Fprintf(e.stdout, "compacted %s: %s -> %s\n", e.image, byteSize(res.compact.BytesBefore), byteSize(res.compact.BytesAfter))
	}
	return nil
}

// packTimeout bounds how long batos pack waits for the server's pack; a
// server that exits meanwhile ends the wait at once.
const packTimeout = 24 * time.Hour

type packOutcome struct {
	pack       store.PackResult
	compact    store.CompactResult
	compactErr error // the compaction failed after a pack that succeeded
}

// packImage packs and compacts the image, or has the server holding it
// do so. A zero before skips the pack.
func packImage(ctx context.Context, e *env, before time.Time, compact bool) (packOutcome, error) {
	var out packOutcome
	db, err := openImage(ctx, e, false)
	if r, ok := remoteFor(e, err); ok {
		defer r.Close()
		args := map[string]any{"compact": compact}
		if !before.IsZero() {
			args["before"] = before.UTC().Format(time.RFC3339Nano)
		}
		v, err := r.callFor(ctx, packTimeout, "pack", args)
		if err != nil {
			return out, err
		}
		m, _ := v.(map[string]any)
		count := func(k string) int64 { n, _ := m[k].(int64); return n }
		out.pack = store.PackResult{Revisions: int(count("revisions")), Objects: int(count("objects")), Transactions: int(count("transactions")),
			Blobs: int(count("blobs")), BlobBytes: count("blob_bytes")}
		out.compact = store.CompactResult{BytesBefore: count("bytes_before"), BytesAfter: count("bytes_after")}
		return out, nil
	}
	if err != nil {
		return out, err
	}
	defer db.Close()
	if !before.IsZero() {
		if out.pack, err = db.Pack(ctx, before); err != nil {
			return out, err
		}
	}
	if compact {
		out.compact, err = db.store.Compact(ctx)
		if err != nil && !before.IsZero() {
			out.compactErr, err = err, nil
		}
	}
	return out, err
}

// readHistory reads an object's revisions and the transaction of each,
// from the image or from the server holding it.
func readHistory(ctx context.Context, e *env, oid store.OID, limit int) ([]store.Revision, []store.TxInfo, error) {
	db, err := openImageReadOnly(ctx, e)
	if r, ok := remoteFor(e, err); ok {
		defer r.Close()
		res, err := r.call(ctx, "history", map[string]any{"target": oid.String(), "limit": int64(limit)})
		if err != nil {
			return nil, nil, err
		}
		var revs []store.Revision
		var txns []store.TxInfo
		for _, x := range list(res) {
			m, _ := x.(map[string]any)
			t := txInfoOf(m)
			size, _ := m["size"].(int64)
			deleted, _ := m["deleted"].(bool)
			revs = append(revs, store.Revision{Serial: t.TID, Size: int(size), Deleted: deleted})
			txns = append(txns, t)
		}
		return revs, txns, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer db.Close()
	revs, err := db.Store().History(ctx, oid, limit)
	if err != nil {
		return nil, nil, err
	}
	txns := make([]store.TxInfo, len(revs))
	for i, r := range revs {
		t, err := db.Store().Transaction(ctx, r.Serial)
		if errors.Is(err, store.ErrNoTransaction) {
			t = store.TxInfo{TID: r.Serial, Time: r.Serial.Time(), Description: "(its log entry is missing: damage, which batos verify reports)"}
		} else if err != nil {
			return nil, nil, err
		}
		txns[i] = t
	}
	return revs, txns, nil
}

package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"batos/internal/command"
	"batos/internal/store"
)

func init() {
	commands["log"] = cliCommand{"list committed transactions, newest first", runLog}
	commands["history"] = cliCommand{"list the revisions of an object", runHistory}
	commands["undo"] = cliCommand{"undo a transaction by committing its inverse", runUndo}
	commands["pack"] = cliCommand{"drop old history and unreachable objects and blobs", runPack}
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
	s, err := openSession(ctx, e, readOnly)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Log(ctx, q)
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
	revs, err := readHistory(ctx, e, oid, *n)
	if err != nil {
		return err
	}
	var out []map[string]any
	for _, r := range revs {
		t := r.Tx
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
	s, err := openSession(ctx, e, readWrite)
	if err != nil {
		return err
	}
	defer s.Close()
	u, err := s.Undo(ctx, tid)
	if err != nil {
		return err
	}
	if u.Objects < 0 {
		fmt.Fprintf(e.stdout, "undid %s as %s\n", tid, u.TID)
		return nil
	}
	desc := u.Description
	if desc == "" {
		desc = "-"
	}
	fmt.Fprintf(e.stdout, "undid %s (%s) as %s, restoring %d objects\n", tid, desc, u.TID, u.Objects)
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
		if before, err = command.ParseBefore(*beforeFlag, time.Now()); err != nil {
			return usageError("%v", err)
		}
	}
	var res command.Packed
	err := withProgress(e, "packing "+e.image, func() error {
		s, err := openSession(ctx, e, readWrite)
		if err != nil {
			return err
		}
		defer s.Close()
		res, err = s.Pack(ctx, command.PackRequest{Before: before, Compact: *compact})
		return err
	})
	if err != nil {
		return err
	}
	took := res.Took.Round(time.Millisecond)
	if !before.IsZero() {
		p := res.Pack
		fmt.Fprintf(e.stdout, "packed history before %s in %s: dropped %d revisions, %d unreachable objects, %d log entries, %d blobs (%s)\n",
			formatTime(before), took, p.Revisions, p.Objects, p.Transactions, p.Blobs, byteSize(p.BlobBytes))
	}
	if *compact {
		fmt.Fprintf(e.stdout, "compacted %s: %s -> %s\n", e.image, byteSize(res.Compact.BytesBefore), byteSize(res.Compact.BytesAfter))
	}
	return nil
}

// readHistory reads an object's revisions and the transaction of each,
// from the image or from the server holding it.
func readHistory(ctx context.Context, e *env, oid store.OID, limit int) ([]command.Revision, error) {
	s, err := openSession(ctx, e, readOnly)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.History(ctx, oid.String(), limit)
}

package main

import (
	"context"
	"fmt"

	"batos/internal/command"
	"batos/internal/store"
)

func init() {
	commands["history"] = cliCommand{"list the revisions of an object", runHistory}
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

package main

import (
	"context"
	"fmt"
	"strings"

	"batos/internal/command"
)

func init() {
	commands["history"] = cliCommand{"list the revisions of an object", runHistory}
}

func runHistory(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "history", "[-n N] [-json] OBJECT", `List an object's revisions, newest first, with the transaction that wrote each.
OBJECT is an OID (oid:7 or 7), a root name (genesis) or a dotted path from one
through slots holding objects (genesis.child).`)
	n := fs.Int("n", 20, "show at most N revisions (0 for all)")
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("history takes one object: an OID (oid:N or N), a root name or a dotted path (genesis.child)")
	}
	if *n < 0 {
		return usageError("-n must be 0 (all) or more, not %d", *n)
	}
	target := idArg(fs, 0)
	if target == "" || strings.HasPrefix(strings.ToLower(target), "oid:") || (target[0] >= '0' && target[0] <= '9') {
		oid, err := parseOID(target)
		if err != nil {
			return err
		}
		target = oid.String()
	}
	revs, err := readHistory(ctx, e, target, *n)
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

// readHistory reads the revisions of target (an OID, a name or a path)
// and the transaction of each, from the image or from the server holding
// it.
func readHistory(ctx context.Context, e *env, target string, limit int) ([]command.Revision, error) {
	s, err := openSession(ctx, e, readOnly)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.History(ctx, target, limit)
}

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
}

func runLog(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "log", "[-n N] [-before TID] [-json]", "List committed transactions, newest first: TID, time, user, description and\nthe number of objects written.")
	n := fs.Int("n", 20, "show at most N transactions (0 for all)")
	before := fs.String("before", "", "only transactions older than this TID (or the one its first digits name)")
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
	if *before != "" {
		if _, err := command.CheckTIDText(*before); err != nil {
			return usageError("-before: %s", command.Message(err))
		}
	}
	txns, err := readLog(ctx, e, store.LogQuery{Limit: *n}, *before)
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

// readLog reads the log from the image, or from the server holding it;
// before, if set, is a TID or the first digits of one, as undo takes it.
func readLog(ctx context.Context, e *env, q store.LogQuery, before string) ([]store.TxInfo, error) {
	s, err := openSession(ctx, e, readOnly)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if before != "" {
		if q.Before, err = command.ResolveTID(ctx, s, before); err != nil {
			return nil, err
		}
	}
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

package main

import (
	"context"
	"fmt"
	"time"

	"batos/internal/store"
	"batos/internal/uvm"
)

func init() {
	commands["verify"] = cliCommand{"check every record, reference and blob (same as image verify)", runVerify}
}

func runVerify(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "verify", "[-json]", "Read every record, log entry and blob, check checksums and digests, and follow\nevery reference. Exits 1 if anything is wrong.")
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("verify takes no arguments")
	}
	sess, err := openSession(ctx, e, toVerify)
	if err != nil {
		return err
	}
	defer sess.Close()
	rep, err := verifyAndReport(ctx, e, sess.Verify, *asJSON)
	if err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("%d problems found in %s", len(rep.Problems), uvm.DisplayName(e.image))
	}
	if !*asJSON {
		fmt.Fprintln(e.stdout, "ok")
	}
	return nil
}

// verifyAndReport verifies with progress on a terminal and prints what it
// found, as JSON or as text; what the problems mean is the caller's to
// say.
func verifyAndReport(ctx context.Context, e *env, verify func(context.Context) (*store.Report, error), asJSON bool) (*store.Report, error) {
	start := time.Now()
	var rep *store.Report
	err := withProgress(e, "verifying "+uvm.DisplayName(e.image), func() error {
		var err error
		rep, err = verify(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	if asJSON {
		problems := make([]string, len(rep.Problems))
		for i, p := range rep.Problems {
			problems[i] = p.String()
		}
		return rep, printJSON(e.stdout, map[string]any{
			"ok": rep.OK(), "objects": rep.Objects, "revisions": rep.Revisions,
			"transactions": rep.Transactions, "blobs": rep.Blobs, "problems": problems,
		})
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(e.stdout, p)
	}
	fmt.Fprintf(e.stdout, "checked %d objects (%d revisions), %d transactions, %d blobs (%s) in %s\n",
		rep.Objects, rep.Revisions, rep.Transactions, rep.Blobs, byteSize(rep.BlobBytes), time.Since(start).Round(time.Millisecond))
	return rep, nil
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/uvm"
)

func init() {
	commands["image"] = cliCommand{"manage the image file: init, stats, verify, log, history, undo, pack", runImage}
	commands["stats"] = cliCommand{"count what the image holds (same as image stats)", runStats}
	commands["verify"] = cliCommand{"check every record, reference and blob (same as image verify)", runVerify}
}

// imageCommands are the subcommands of "batos image"; log, history, undo
// and pack are also top-level commands.
var imageCommands = map[string]func(context.Context, *env, []string) error{
	"init":    runInit,
	"stats":   runStats,
	"verify":  runVerify,
	"log":     runLog,
	"history": runHistory,
	"undo":    runUndo,
	"pack":    runPack,
}

func runImage(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || imageCommands[args[0]] == nil {
		return usageError("batos image init|stats|verify|log|history|undo|pack [ARGS]")
	}
	return imageCommands[args[0]](ctx, e, args[1:])
}

func runInit(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "image init", "", "Create the primordial image: the root, the system objects, traits behaviour and\nthe seeded personas. On an existing image it upgrades batos's own system objects\nand leaves everything else alone.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("image init takes no arguments")
	}
	u, created, err := uvm.Open(ctx, e.image, &uvm.Options{User: currentUser()})
	if err != nil {
		return err
	}
	defer u.Close()
	if !created {
		fmt.Fprintf(e.stdout, "image %s already exists; system objects are in place\n", e.image)
		return nil
	}
	fmt.Fprintf(e.stdout, "created image %s (root %s naming %s)\n", e.image, image.RootOID, strings.Join(image.SystemNames, ", "))
	return nil
}

// jsonFlag adds the -json flag every listing command has.
func jsonFlag(fs interface {
	Bool(string, bool, string) *bool
}) *bool {
	return fs.Bool("json", false, "print JSON instead of text")
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runStats(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "stats", "[-json]", "Count the objects, revisions, transactions and blobs in the image.")
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("stats takes no arguments")
	}
	sess, err := openSession(ctx, e, readOnly)
	if err != nil {
		return err
	}
	defer sess.Close()
	st, err := sess.Stats(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, map[string]any{
			"image": e.image, "objects": st.Objects, "revisions": st.Revisions,
			"transactions": st.Transactions, "blobs": st.Blobs, "blob_bytes": st.BlobBytes,
			"file_bytes": st.FileBytes, "last_tid": st.LastTID.String(),
		})
	}
	fmt.Fprintf(e.stdout, "image         %s\n", e.image)
	fmt.Fprintf(e.stdout, "objects       %d\n", st.Objects)
	fmt.Fprintf(e.stdout, "revisions     %d\n", st.Revisions)
	fmt.Fprintf(e.stdout, "transactions  %d\n", st.Transactions)
	fmt.Fprintf(e.stdout, "blobs         %d (%s)\n", st.Blobs, byteSize(st.BlobBytes))
	fmt.Fprintf(e.stdout, "file          %s\n", byteSize(st.FileBytes))
	if st.LastTID != 0 {
		fmt.Fprintf(e.stdout, "last commit   %s at %s\n", st.LastTID, formatTime(st.LastTID.Time()))
	}
	return nil
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
		return fmt.Errorf("%d problems found in %s", len(rep.Problems), e.image)
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
	err := withProgress(e, "verifying "+e.image, func() error {
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

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func formatTime(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05.000") }

// parseOID accepts the forms users see: oid:N or N.
func parseOID(s string) (store.OID, error) {
	oid, err := store.ParseOID(s)
	if err != nil {
		return 0, usageError("%v", err)
	}
	return oid, nil
}

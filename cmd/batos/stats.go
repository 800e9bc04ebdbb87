package main

import (
	"context"
	"fmt"

	"batos/internal/uvm"
)

func init() {
	commands["stats"] = cliCommand{"count what the image holds (same as image stats)", runStats}
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
			"image": uvm.DisplayName(e.image), "objects": st.Objects, "revisions": st.Revisions,
			"transactions": st.Transactions, "blobs": st.Blobs, "blob_bytes": st.BlobBytes,
			"file_bytes": st.FileBytes, "last_tid": st.LastTID.String(),
		})
	}
	fmt.Fprintf(e.stdout, "image         %s\n", uvm.DisplayName(e.image))
	fmt.Fprintf(e.stdout, "objects       %d\n", st.Objects)
	fmt.Fprintf(e.stdout, "revisions     %d\n", st.Revisions)
	fmt.Fprintf(e.stdout, "transactions  %d\n", st.Transactions)
	fmt.Fprintf(e.stdout, "blobs         %d (%s)\n", st.Blobs, byteSize(st.BlobBytes))
	if uvm.IsDatabase(e.image) {
		fmt.Fprintf(e.stdout, "database      %s\n", byteSize(st.FileBytes)) // the database's size on disk
	} else {
		fmt.Fprintf(e.stdout, "file          %s\n", byteSize(st.FileBytes))
	}
	if st.LastTID != 0 {
		fmt.Fprintf(e.stdout, "last commit   %s at %s\n", st.LastTID, formatTime(st.LastTID.Time()))
	}
	return nil
}

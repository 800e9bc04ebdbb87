package main

import (
	"context"
	"fmt"
	"time"

	"batos/internal/command"
)

func runCatalogReindex(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "catalog reindex", "", `Rebuild the knowledge catalog's indexes (full text, vectors, methods) from the
image. They are derived data beside the image (live_image.db.index/), kept in
step with it and rebuilt by themselves when missing or damaged; this rebuilds
them now.`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("catalog reindex takes no arguments")
	}
	sess, err := catalogSession(ctx, e)
	if err != nil {
		return err
	}
	defer sess.Close()
	var rep command.CatalogReindexed
	err = withProgress(e, "rebuilding the catalog's indexes", func() (err error) { rep, err = sess.CatalogReindex(ctx); return })
	if err != nil {
		return err
	}
	took := (time.Duration(rep.TookMS * float64(time.Millisecond))).Round(time.Millisecond)
	switch {
	case rep.Rebuilt:
		fmt.Fprintf(e.stdout, "catalog index rebuilt in %s (%s)\n", took, rep.Reason)
	case rep.Replayed > 0:
		fmt.Fprintf(e.stdout, "catalog index caught up with %d transactions in %s\n", rep.Replayed, took)
	default:
		fmt.Fprintln(e.stdout, "catalog index up to date")
	}
	printNote(e, rep.CatalogMode, false)
	return nil
}

package main

import (
	"context"
	"fmt"

	"batos/internal/command"
)

func runCatalogRemove(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "catalog remove", "DOC", `Take a document, named by its ID (batos catalog list) or its path, out of the
knowledge catalog in one transaction. Its chunks stay in the image's history
until a pack.`)
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("catalog remove needs one DOC: a document ID or path")
	}
	sess, err := catalogSession(ctx, e)
	if err != nil {
		return err
	}
	defer sess.Close()
	var removed command.CatalogRemoved
	err = onDoc(fs.Arg(0), func(ref string) (err error) { removed, err = sess.CatalogRemove(ctx, ref); return })
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "removed %s %s (%s)\n", removed.Doc.ID, shownPath(removed.Doc.Path), count(removed.Doc.Chunks, "chunk"))
	printNote(e, removed.CatalogMode, false)
	return nil
}

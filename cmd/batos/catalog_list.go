package main

import (
	"context"
	"fmt"
	"text/tabwriter"
)

func runCatalogList(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "catalog list", "[-json]", `List the knowledge catalog's documents, in the order they were first added: ID,
chunks, size, kind, how they were chunked (semantic or fixed-size), when added
and path.`)
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("catalog list takes no arguments")
	}
	sess, err := catalogSession(ctx, e)
	if err != nil {
		return err
	}
	defer sess.Close()
	list, err := sess.CatalogList(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		err = printJSON(e.stdout, list)
		printNote(e, list.CatalogMode, true)
		return err
	}
	if len(list.Docs) == 0 {
		fmt.Fprintln(e.stdout, "the catalog is empty: batos catalog add PATH adds files")
	} else {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCHUNKS\tSIZE\tKIND\tCHUNKING\tADDED\tPATH")
		for _, d := range list.Docs {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Chunks, formatBytes(int64(d.Size)), d.Kind, chunkingText(d), formatTime(d.Added), shownPath(d.Path))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	printNote(e, list.CatalogMode, false)
	return nil
}

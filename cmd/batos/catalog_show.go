package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"batos/internal/command"
)

func runCatalogShow(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "catalog show", "DOC [-json]", `Show a document of the knowledge catalog, named by its ID (batos catalog list)
or its path: what it is, how it was chunked, and every chunk with its place in
the file.`)
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("catalog show needs one DOC: a document ID or path")
	}
	sess, err := catalogSession(ctx, e)
	if err != nil {
		return err
	}
	defer sess.Close()
	var doc command.CatalogDocument
	err = onDoc(fs.Arg(0), func(ref string) (err error) { doc, err = sess.CatalogShow(ctx, ref); return })
	if err != nil {
		return err
	}
	if *asJSON {
		err = printJSON(e.stdout, doc)
		printNote(e, doc.CatalogMode, true)
		return err
	}
	w, d := e.stdout, doc.Doc
	fmt.Fprintf(w, "%s (%s)\n", d.Title, d.ID)
	fmt.Fprintf(w, "path:      %s\n", shownPath(d.Path))
	fmt.Fprintf(w, "content:   %s, %s, %d tokens, sha256 %s\n", d.Kind, formatBytes(int64(d.Size)), d.Tokens, d.SHA256)
	chunking := fmt.Sprintf("fixed-size sentence windows of %d to %d tokens", d.MinTokens, d.MaxTokens)
	if d.ChunkedBy != "" {
		chunking = fmt.Sprintf("semantic, at %s's breakpoints (percentile %g), %d to %d tokens", d.ChunkedBy, d.Percentile, d.MinTokens, d.MaxTokens)
	}
	fmt.Fprintf(w, "chunks:    %d, %s\n", d.Chunks, chunking)
	if d.EmbedModel != "" {
		fmt.Fprintf(w, "embedded:  by %s\n", d.EmbedModel)
	}
	if len(d.Meta) > 0 {
		fmt.Fprintf(w, "meta:      %s\n", metaText(d.Meta))
	}
	fmt.Fprintf(w, "added:     %s (transaction %s)\n", formatTime(d.Added), d.Serial)
	for _, c := range doc.Chunks {
		fmt.Fprintf(w, "\n#%d  bytes %d-%d, %d tokens, %s\n%s\n", c.Position, c.Span.Start, c.Span.End, c.Tokens, c.OID, indent(c.Text))
	}
	printNote(e, doc.CatalogMode, false)
	return nil
}

func metaText(meta map[string]string) string {
	pairs := make([]string, 0, len(meta))
	for k, v := range meta {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, " ")
}

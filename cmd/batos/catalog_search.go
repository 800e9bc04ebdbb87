package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"batos/internal/catalog/library"
	"batos/internal/command"
)

func runCatalogSearch(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "catalog search", "QUERY... [-k N] [-methods] [-doc DOC] [-meta KEY=VALUE]... [-json]", `Search the knowledge catalog: the passages that best match the query's words,
and, with an embedding model, its meaning (hybrid search). Each hit shows its
rank, score, citation (title#position), document path and the text around the
match, the matched words in bold (**word** when not on a terminal). -methods
searches the image's methods instead. -doc keeps to one document (its ID or
path), -meta to documents whose metadata holds every pair given.`)
	k := fs.Int("k", library.DefaultK, fmt.Sprintf("the most hits, 1 to %d", library.MaxK))
	methods := fs.Bool("methods", false, "search the image's methods, not the documents")
	doc := fs.String("doc", "", "search only this document (an ID, or a path)")
	meta := metaFlag{}
	fs.Var(meta, "meta", "KEY=VALUE a document's metadata must hold (repeat for more)")
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	query := strings.Join(fs.Args(), " ")
	switch {
	case strings.TrimSpace(query) == "":
		return usageError("catalog search needs a QUERY")
	case *k < 1 || *k > library.MaxK:
		return usageError("-k %d: want 1 to %d", *k, library.MaxK)
	}
	sess, err := catalogSession(ctx, e)
	if err != nil {
		return err
	}
	defer sess.Close()
	req := command.CatalogSearchRequest{Query: query, K: *k, Methods: *methods, Doc: *doc, Meta: meta.pairs()}
	var res command.CatalogSearchResult
	search := func(doc string) (err error) {
		req.Doc = doc
		res, err = sess.CatalogSearch(ctx, req)
		return err
	}
	if *doc != "" {
		err = onDoc(*doc, search)
	} else {
		err = search("")
	}
	if err != nil {
		return err
	}
	if *asJSON {
		err = printJSON(e.stdout, res)
	} else {
		printHits(e.stdout, res, *methods, isTerminal(e.stdout))
	}
	printNote(e, res.CatalogMode, *asJSON)
	return err
}

// printHits prints each hit: its rank, score, citation and path, then
// the text around the match.
func printHits(w io.Writer, res command.CatalogSearchResult, methods, bold bool) {
	if len(res.Hits) == 0 {
		what := "passages"
		if methods {
			what = "methods"
		}
		fmt.Fprintf(w, "no %s found\n", what)
		return
	}
	for i, h := range res.Hits {
		where := shownPath(h.Path)
		if h.Selector != "" {
			where = "method of " + h.Object
		}
		fmt.Fprintf(w, "%d. %.4f  %s  %s%s\n", i+1, h.Score, h.Cite, where, ranks(h))
		fmt.Fprintf(w, "   %s\n", marked(h.Fragment, h.Marks, bold))
	}
}

// ranks says where a hybrid search found a hit.
func ranks(h command.CatalogHit) string {
	if h.VectorRank == 0 {
		return ""
	}
	text := "-"
	if h.TextRank > 0 {
		text = fmt.Sprintf("#%d", h.TextRank)
	}
	return fmt.Sprintf("  (text %s, vector #%d, similarity %.3f)", text, h.VectorRank, h.Similarity)
}

// marked is a fragment on one line with its matched words in bold: as
// a terminal shows it, or as **word**.
func marked(frag string, marks []command.CatalogSpan, bold bool) string {
	on, off := "**", "**"
	if bold {
		on, off = "\033[1m", "\033[0m"
	}
	var b strings.Builder
	at := 0
	for _, m := range marks {
		if m.Start < at || m.End > len(frag) || m.Start >= m.End {
			continue // not a span of this fragment: shown plain
		}
		b.WriteString(frag[at:m.Start])
		b.WriteString(on + frag[m.Start:m.End] + off)
		at = m.End
	}
	b.WriteString(frag[at:])
	return strings.Join(strings.Fields(b.String()), " ")
}

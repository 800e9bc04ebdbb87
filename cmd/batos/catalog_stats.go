package main

import (
	"context"
	"fmt"
)

func runCatalogStats(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "catalog stats", "[-json]", `Count what the knowledge catalog holds (documents, chunks, bytes, tokens), what
its indexes hold, its embedding model and the embedding calls it made.`)
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("catalog stats takes no arguments")
	}
	sess, err := catalogSession(ctx, e)
	if err != nil {
		return err
	}
	defer sess.Close()
	st, err := sess.CatalogStats(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		err = printJSON(e.stdout, st)
		printNote(e, st.CatalogMode, true)
		return err
	}
	w := e.stdout
	model := "none"
	if st.EmbedModel != "" {
		model = st.EmbedModel
	}
	fmt.Fprintf(w, "documents        %d\n", st.Documents)
	if st.Malformed > 0 {
		fmt.Fprintf(w, "malformed        %d entries of knowledge_catalog.documents are not documents (batos catalog remove ID takes one out)\n", st.Malformed)
	}
	fmt.Fprintf(w, "chunks           %d\n", st.Chunks)
	fmt.Fprintf(w, "bytes            %s\n", formatBytes(int64(st.Bytes)))
	fmt.Fprintf(w, "tokens           %d\n", st.Tokens)
	fmt.Fprintf(w, "embedding model  %s (search: %s)\n", model, st.Mode)
	ix := st.Index
	fmt.Fprintf(w, "index            %d documents, %d chunks, %d methods, %d entries, %s on disk\n", ix.Documents, ix.Chunks, ix.Methods, ix.Entries, formatBytes(ix.Bytes))
	if ix.Vectors > 0 || ix.Model != "" {
		fmt.Fprintf(w, "vectors          %d of %d dimensions (%s)\n", ix.Vectors, ix.Dims, ix.Model)
	}
	if ix.LastTID != "" {
		fmt.Fprintf(w, "indexed up to    %s\n", ix.LastTID)
	}
	u := st.Usage
	if u.Calls > 0 || u.Texts > 0 {
		mean := 0.0
		if u.Calls > 0 {
			mean = u.LatencyMS / float64(u.Calls)
		}
		fmt.Fprintf(w, "embedding usage  %d calls, %d failed, %d tokens, %d texts (%d from the cache), mean latency %.0f ms\n",
			u.Calls, u.Failures, u.PromptTokens, u.Texts, u.Cached, mean)
	}
	printNote(e, st.CatalogMode, false)
	return nil
}

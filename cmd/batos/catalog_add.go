package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"batos/internal/command"
)

func runCatalogAdd(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "catalog add", "PATH... [-meta KEY=VALUE]... [-json]", `Add files to the knowledge catalog, and the files under directories (hidden
names left out). Each file is split into sentences, grouped into chunks (at an
embedding model's semantic breakpoints when the image records one: batos run
-embed-model NAME; else fixed-size windows) and added whole in one transaction,
under its absolute path. Adding a file again changes nothing when its content
is the same, and replaces its chunks when not. Binary and empty files are
skipped; a file that cannot be added fails alone, and batos exits 1.
While batos run holds the image, it reads the files itself: batos sends their
absolute paths, which must be readable where batos run runs.`)
	meta := metaFlag{}
	fs.Var(meta, "meta", "KEY=VALUE recorded on every document added (repeat for more)")
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError("catalog add needs a PATH: a file or a directory")
	}
	req := command.CatalogAddRequest{Meta: meta.pairs()}
	for _, p := range fs.Args() {
		// The process holding the image reads the files: batos run,
		// perhaps, in another directory.
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		req.Paths = append(req.Paths, abs)
	}
	sess, err := catalogSession(ctx, e)
	if err != nil {
		return err
	}
	defer sess.Close()
	bar := newByteProgress(e, "adding")
	req.Progress = func(o command.CatalogOutcome, doneFiles, totalFiles int, doneBytes, totalBytes int64) {
		bar.label = fmt.Sprintf("adding %d/%d files", doneFiles, totalFiles)
		bar.update(doneBytes, totalBytes)
	}
	var res command.CatalogAddResult
	add := func() (err error) { res, err = sess.CatalogAdd(ctx, req); return }
	if sess.local == nil {
		// The server tells no progress: show that it works.
		err = withProgress(e, "adding", add)
	} else {
		err = add()
	}
	bar.done()
	if err != nil {
		// An add stopped half-way (Ctrl-C) says what the files done became.
		if len(res.Files) > 0 && !*asJSON {
			printOutcomes(e.stdout, res)
		}
		return err
	}
	if *asJSON {
		if err := printJSON(e.stdout, res); err != nil {
			return err
		}
	} else {
		printOutcomes(e.stdout, res)
	}
	printNote(e, res.CatalogMode, *asJSON)
	if n := res.Failed(); n > 0 {
		return fmt.Errorf("%d of %s could not be added", n, count(len(res.Files), "file"))
	}
	return nil
}

// printOutcomes prints a line per file and a summary.
func printOutcomes(w io.Writer, res command.CatalogAddResult) {
	counts := map[command.CatalogResult]int{}
	var chunks, calls, cached int
	semantic := false
	for _, f := range res.Files {
		counts[f.Result]++
		calls += f.EmbedCalls
		cached += f.EmbedCached
		switch f.Result {
		case command.CatalogAdded, command.CatalogReplaced:
			chunks += f.Chunks
			semantic = semantic || f.Semantic
			fmt.Fprintf(w, "%-9s %s  (%s, %s, %s)\n", f.Result, shownPath(f.Path), count(f.Chunks, "chunk"), formatBytes(int64(f.Bytes)), f.Doc)
		case command.CatalogUnchanged:
			fmt.Fprintf(w, "%-9s %s  (%s)\n", f.Result, shownPath(f.Path), f.Doc)
		case command.CatalogSkipped:
			fmt.Fprintf(w, "%-9s %s: %s\n", f.Result, shownPath(f.Path), f.Reason)
		default:
			fmt.Fprintf(w, "%-9s %s: %s\n", f.Result, shownPath(f.Path), f.Error)
		}
	}
	var parts []string
	for _, r := range []command.CatalogResult{command.CatalogAdded, command.CatalogReplaced, command.CatalogUnchanged, command.CatalogSkipped, command.CatalogFailed} {
		if counts[r] > 0 || r == command.CatalogAdded {
			parts = append(parts, fmt.Sprintf("%d %s", counts[r], r))
		}
	}
	summary := fmt.Sprintf("%s: %s", count(len(res.Files), "file"), strings.Join(parts, ", "))
	if chunks > 0 {
		how := "fixed-size"
		if semantic {
			how = "semantic"
		}
		summary += fmt.Sprintf("; %s written", count(chunks, how+" chunk"))
	}
	if calls > 0 || cached > 0 {
		summary += fmt.Sprintf("; %s, %s from the cache", count(calls, "embedding call"), count(cached, "text"))
	}
	fmt.Fprintln(w, summary)
}

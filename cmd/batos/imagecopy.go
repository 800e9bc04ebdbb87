package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/store/bolt"
	"batos/internal/store/storecopy"
	"batos/internal/uvm"
)

// copyReport is what batos image copy did.
type copyReport struct {
	Source       string `json:"source"`
	Destination  string `json:"destination"`
	Transactions int    `json:"transactions"`
	Revisions    int    `json:"revisions"`
	Blobs        int    `json:"blobs"`
	BlobBytes    int64  `json:"blob_bytes"`
	Missing      int    `json:"missing_revisions"`
	// Through is the newest transaction copied: SRC as it was when the
	// copy began (a database's nodes may go on committing meanwhile).
	Through  string  `json:"through"`
	Seconds  float64 `json:"seconds"`
	Verified bool    `json:"verified"`
}

func runImageCopy(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "image copy", "[-json] SRC DST", `Copy the image SRC into a new image DST with its whole history: every
transaction of SRC's log, in order, with its TID, time, user, description and
extension, every revision, and every blob. Each is an image file's path or a
PostgreSQL database's URL (postgres://USER@HOST/DB), so an image moves between
engines either way. A file DST must not exist yet; a database DST must hold no
image. No batos run may hold an image file SRC (stop it first); a database SRC
may be in use by its nodes: it is copied as it was when the copy began, and what
they commit meanwhile is not in the copy. At the end DST is verified and read
against SRC as of that transaction (the same log, the same history for every
object); any difference fails the copy. A copy that fails halfway removes DST.
A terminal shows a progress bar.`)
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageError("image copy takes SRC and DST")
	}
	srcName, dstName := fs.Arg(0), fs.Arg(1)
	if srcName == dstName {
		return usageError("image copy: SRC and DST are the same image")
	}
	if !uvm.IsDatabase(dstName) {
		// The image and what its engine keeps beside it: a failed copy
		// removes these, so none may be there already.
		for _, p := range imageFiles(dstName) {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("image copy: %s exists: copy into a new image (remove it first if it is an old copy)", p)
			} else if !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("image copy: %w", err)
			}
		}
	}
	if !uvm.IsDatabase(srcName) {
		if _, err := os.Stat(srcName); err != nil {
			return fmt.Errorf("image copy: source: %w", err)
		}
	}
	src, err := uvm.OpenStore(ctx, srcName, &bolt.Options{ReadOnly: true}, true)
	if err != nil {
		return fmt.Errorf("image copy: open the source: %w", err)
	}
	defer src.Close()
	dst, err := uvm.OpenStore(ctx, dstName, nil, false)
	if err != nil {
		return fmt.Errorf("image copy: create the destination: %w", err)
	}
	srcName, dstName = uvm.DisplayName(srcName), uvm.DisplayName(dstName)
	start := time.Now()
	progress := newCountProgress(e, "copying "+srcName, "transactions")
	res, err := storecopy.Copy(ctx, src, dst, storecopy.Options{Refs: image.Refs, Progress: func(done, total int) {
		progress.update(int64(done), int64(total))
	}})
	progress.done()
	if err != nil {
		dst.Close()
		if errors.Is(err, storecopy.ErrNotEmpty) || uvm.IsDatabase(fs.Arg(1)) {
			if errors.Is(err, storecopy.ErrNotEmpty) {
				return fmt.Errorf("image copy: %s: %w", dstName, err)
			}
			return fmt.Errorf("image copy: %w (the database %s holds part of the copy: drop and create it again before retrying)", err, dstName)
		}
		// Half a copy is no copy: it goes, so a retry starts clean.
		removeImage(fs.Arg(1))
		return fmt.Errorf("image copy: %w (%s removed)", err, dstName)
	}
	rep := copyReport{Source: srcName, Destination: dstName, Transactions: res.Transactions, Revisions: res.Revisions,
		Blobs: res.Blobs, BlobBytes: res.BlobBytes, Missing: res.Missing, Through: res.Through.String()}
	err = withProgress(e, "verifying "+dstName, func() error {
		v, err := dst.Verify(ctx, image.Refs)
		if err != nil {
			return err
		}
		if !v.OK() {
			return fmt.Errorf("the copy has %d problems: %s", len(v.Problems), problemList(v.Problems))
		}
		return storecopy.Compare(ctx, src, dst, res.Through)
	})
	if cerr := dst.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("image copy: %s does not read as %s: %w (the copy is kept for inspection)", dstName, srcName, err)
	}
	rep.Verified = true
	rep.Seconds = time.Since(start).Seconds()
	if *asJSON {
		return printJSON(e.stdout, rep)
	}
	fmt.Fprintf(e.stdout, "copied %s to %s: %d transactions, %d revisions, %d blobs (%s) in %.1fs; verified, log and histories identical through %s\n",
		srcName, dstName, rep.Transactions, rep.Revisions, rep.Blobs, formatBytes(rep.BlobBytes), rep.Seconds, rep.Through)
	if rep.Missing > 0 {
		fmt.Fprintf(e.stdout, "%d revisions the source's log names were packed away before the copy; the copy has the same gaps\n", rep.Missing)
	}
	return nil
}

// problemList names the first problems of a report.
func problemList(ps []store.Problem) string {
	var parts []string
	for i, p := range ps {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(ps)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %s at %s: %s", p.Kind, p.OID, p.TID, p.Detail))
	}
	return strings.Join(parts, "; ")
}

// walSegment is the name of one of an image file's log segments.
var walSegment = regexp.MustCompile(`\.wal\.[0-9]{8}$`)

// imageFiles are an image file and what its engine keeps beside it: its
// blobs, lock and log segments (those there now).
func imageFiles(path string) []string {
	files := []string{path, path + ".blobs", path + ".lock"}
	wal, _ := filepath.Glob(path + ".wal.*")
	for _, w := range wal {
		if walSegment.MatchString(w) && strings.HasPrefix(w, path) && len(w) == len(path)+len(".wal.00000000") {
			files = append(files, w)
		}
	}
	return files
}

// removeImage removes an image file the copy created and what its
// engine wrote beside it; the copy checked none of them was there.
func removeImage(path string) {
	for _, p := range imageFiles(path) {
		os.RemoveAll(p)
	}
}

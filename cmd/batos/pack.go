package main

import (
	"context"
	"fmt"
	"time"

	"batos/internal/command"
	"batos/internal/uvm"
)

func init() {
	commands["pack"] = cliCommand{"drop old history and unreachable objects and blobs", runPack}
}

func runPack(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "pack", "-before TIME [-compact] | -compact", `Drop revisions superseded before TIME, objects no longer reachable from the root,
and blobs nothing refers to. History before TIME can no longer be read or undone.
TIME is a TID (as batos log prints it: the history older than that transaction),
RFC 3339 (2026-11-29T12:00:00Z), a date (2026-11-29), "now", or an age such as
36h or 7d (meaning that long ago). The file keeps its size (the space freed is
reused); -compact then rewrites it without the free space, and alone it only
compacts. While batos run holds the image, the pack runs in that server, and its
sends go on meanwhile (commits wait while the file is rewritten).`)
	beforeFlag := fs.String("before", "", "pack history older than TIME")
	compact := fs.Bool("compact", false, "rewrite the file without its free space, after the pack if -before is given")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*beforeFlag == "" && !*compact) || fs.NArg() > 0 {
		return usageError("pack needs -before TIME, -compact or both, and no arguments")
	}
	var before time.Time
	if *beforeFlag != "" {
		var err error
		if before, err = command.ParseBefore(*beforeFlag, time.Now()); err != nil {
			return usageError("%v", err)
		}
	}
	var res command.Packed
	err := withProgress(e, "packing "+uvm.DisplayName(e.image), func() error {
		s, err := openSession(ctx, e, readWrite)
		if err != nil {
			return err
		}
		defer s.Close()
		res, err = s.Pack(ctx, command.PackRequest{Before: before, Compact: *compact})
		return err
	})
	if err != nil {
		return err
	}
	took := res.Took.Round(time.Millisecond)
	if !before.IsZero() {
		p := res.Pack
		fmt.Fprintf(e.stdout, "packed history before %s in %s: dropped %d revisions, %d unreachable objects, %d log entries, %d blobs (%s)\n",
			formatTime(before), took, p.Revisions, p.Objects, p.Transactions, p.Blobs, byteSize(p.BlobBytes))
	}
	if *compact {
		fmt.Fprintf(e.stdout, "compacted %s: %s -> %s\n", uvm.DisplayName(e.image), byteSize(res.Compact.BytesBefore), byteSize(res.Compact.BytesAfter))
	}
	return nil
}

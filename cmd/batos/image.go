package main

import (
	"context"
	"fmt"
	"strings"

	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/uvm"
)

func init() {
	g := &group{name: "image", about: "Manage the image file.", subs: []subcommand{
		{"init", "", "create the primordial image, or upgrade its system objects", runInit, false},
		{"stats", "[-json]", "count what the image holds (also batos stats)", runStats, false},
		{"verify", "[-json]", "check every record, reference and blob (also batos verify)", runVerify, false},
		{"log", "[-n N] [-before TID] [-json]", "list committed transactions, newest first (also batos log)", runLog, false},
		{"history", "[-n N] [-json] OBJECT", "list the revisions of an object (also batos history)", runHistory, false},
		{"undo", "TID", "undo a transaction by committing its inverse (also batos undo)", runUndo, false},
		{"pack", "-before TIME [-compact] | -compact", "drop old history and unreachable objects and blobs (also batos pack)", runPack, false},
		{"copy", "[-json] SRC DST", "copy an image into a new one with its whole history and blobs, verified", runImageCopy, false},
	}}
	commands["image"] = cliCommand{"manage the image file: init, stats, verify, log, history, undo, pack, copy", g.run}
}

func runInit(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "image init", "", "Create the primordial image: the root, the system objects, traits behaviour and\nthe seeded personas. On an existing image it upgrades batos's own system objects\nand leaves everything else alone.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("image init takes no arguments")
	}
	u, created, err := uvm.Open(ctx, e.image, &uvm.Options{User: currentUser()})
	if err != nil {
		return err
	}
	defer u.Close()
	if !created {
		fmt.Fprintf(e.stdout, "image %s already exists; system objects are in place\n", uvm.DisplayName(e.image))
		return nil
	}
	fmt.Fprintf(e.stdout, "created image %s (root %s naming %s)\n", uvm.DisplayName(e.image), image.RootOID, strings.Join(image.SystemNames, ", "))
	return nil
}

// parseOID accepts the forms users see: oid:N or N.
func parseOID(s string) (store.OID, error) {
	oid, err := store.ParseOID(s)
	if err != nil {
		return 0, usageError("%v", err)
	}
	return oid, nil
}

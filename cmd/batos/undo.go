package main

import (
	"context"
	"fmt"

	"batos/internal/store"
)

func init() {
	commands["undo"] = cliCommand{"undo a transaction by committing its inverse", runUndo}
}

func runUndo(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "undo", "TID", "Commit a new transaction that restores every object TID changed to its state\nbefore TID. Refused, naming the objects, if a later transaction changed them.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("undo takes one TID (as batos log prints it)")
	}
	tid, err := store.ParseTID(fs.Arg(0))
	if err != nil {
		return usageError("%v", err)
	}
	s, err := openSession(ctx, e, readWrite)
	if err != nil {
		return err
	}
	defer s.Close()
	u, err := s.Undo(ctx, tid)
	if err != nil {
		return err
	}
	if u.Objects < 0 {
		fmt.Fprintf(e.stdout, "undid %s as %s\n", tid, u.TID)
		return nil
	}
	desc := u.Description
	if desc == "" {
		desc = "-"
	}
	fmt.Fprintf(e.stdout, "undid %s (%s) as %s, restoring %d objects\n", tid, desc, u.TID, u.Objects)
	return nil
}

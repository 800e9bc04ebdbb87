package main

import (
	"context"
	"fmt"

	"batos/internal/command"
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
	text := idArg(fs, 0)
	if _, err := command.CheckTIDText(text); err != nil {
		return usageError("%s", command.Message(err))
	}
	s, err := openSession(ctx, e, readWrite)
	if err != nil {
		return err
	}
	defer s.Close()
	tid, err := command.ResolveTID(ctx, s, text)
	if err != nil {
		return err
	}
	u, err := s.Undo(ctx, tid)
	if err != nil {
		return err
	}
	if u.Objects < 0 {
		fmt.Fprintf(e.stdout, "undid %s as %s\n", u.Undone, u.TID)
		return nil
	}
	desc := u.Description
	if desc == "" {
		desc = "-"
	}
	fmt.Fprintf(e.stdout, "undid %s (%s) as %s, restoring %d objects\n", u.Undone, desc, u.TID, u.Objects)
	return nil
}

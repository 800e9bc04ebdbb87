package main

import (
	"context"
	"fmt"
)

func runCycleCancel(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "cycle cancel", "ID", `Cancel an unfinished cycle: it is recorded FAILED with the reason "cancelled",
nothing is installed, and a model call in flight for it is abandoned. A sender
waiting for it gets the failure.`)
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	id, err := cycleID(fs, "cancel")
	if err != nil {
		return err
	}
	was, err := cancelCycle(ctx, e, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "cycle %d cancelled (it was %s); nothing was installed\n", id, was)
	return nil
}

func cancelCycle(ctx context.Context, e *env, id int64) (was string, err error) {
	s, err := openSession(ctx, e, readWrite)
	if err != nil {
		return "", err
	}
	defer s.Close()
	c, err := s.CancelCycle(ctx, id)
	return c.Was, err
}

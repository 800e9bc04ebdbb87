package main

import (
	"context"

	"batos/internal/cycle"
)

func init() {
	commands["cycle"] = cliCommand{"cognitive cycles: cycle list [-all] | show ID | retry ID | cancel ID", runCycle}
}

func runCycle(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageError("batos cycle list [-json] [-all] | show [-json] ID | retry ID | cancel ID")
	}
	switch args[0] {
	case "list":
		return runCycleList(ctx, e, args[1:])
	case "show":
		return runCycleShow(ctx, e, args[1:])
	case "retry":
		return runCycleRetry(ctx, e, args[1:])
	case "cancel":
		return runCycleCancel(ctx, e, args[1:])
	}
	return usageError("unknown cycle command %q: want list, show, retry or cancel", args[0])
}

// cycleID reads the one ID argument of show, retry and cancel.
func cycleID(fs interface {
	NArg() int
	Arg(int) string
}, what string) (int64, error) {
	if fs.NArg() != 1 {
		return 0, usageError("cycle %s takes one cycle ID (batos cycle list shows them)", what)
	}
	id, err := cycle.ParseID(fs.Arg(0))
	if err != nil {
		return 0, usageError("%v", err)
	}
	return id, nil
}

package main

import (
	"flag"

	"batos/internal/cycle"
)

func init() {
	g := &group{name: "cycle", about: "The cognitive cycles: how the mind learned (or failed to learn) a message.", subs: []subcommand{
		{"list", "[-json] [-all | -n N]", "list the cognitive cycles, newest first", runCycleList, false},
		{"show", "[-json] ID", "show a cycle with everything it recorded", runCycleShow, false},
		{"retry", "ID", "run a FAILED cycle again from the state it failed in", runCycleRetry, false},
		{"cancel", "ID", "cancel an unfinished cycle", runCycleCancel, false},
	}}
	commands["cycle"] = cliCommand{"cognitive cycles: cycle list [-all] | show ID | retry ID | cancel ID", g.run}
}

// cycleID reads the one ID argument of show, retry and cancel.
func cycleID(fs *flag.FlagSet, what string) (int64, error) {
	if fs.NArg() != 1 {
		return 0, usageError("cycle %s takes one cycle ID (batos cycle list shows them)", what)
	}
	id, err := cycle.ParseID(idArg(fs, 0))
	if err != nil {
		return 0, usageError("%v", err)
	}
	return id, nil
}

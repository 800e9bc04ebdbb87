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
	commands["image"] = cliCommand{"manage the image file: init, stats, verify, log, history, undo, pack", runImage}
}

// imageCommands are the subcommands of "batos image"; log, history, undo
// and pack are also top-level commands.
var imageCommands = map[string]func(context.Context, *env, []string) error{
	"init":    runInit,
	"stats":   runStats,
	"verify":  runVerify,
	"log":     runLog,
	"history": runHistory,
	"undo":    runUndo,
	"pack":    runPack,
}

func runImage(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || imageCommands[args[0]] == nil {
		return usageError("batos image init|stats|verify|log|history|undo|pack [ARGS]")
	}
	return imageCommands[args[0]](ctx, e, args[1:])
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
		fmt.Fprintf(e.stdout, "image %s already exists; system objects are in place\n", e.image)
		return nil
	}
	fmt.Fprintf(e.stdout, "created image %s (root %s naming %s)\n", e.image, image.RootOID, strings.Join(image.SystemNames, ", "))
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

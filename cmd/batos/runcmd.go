package main

import (
	"context"
	"fmt"
	"time"
)

func init() {
	commands["run"] = command{"awaken the image and keep it open until interrupted", runRun}
}

// runRun awakens the image (creating it on first run) and holds it until
// SIGINT or SIGTERM, then closes it cleanly. The network bridges that serve
// it attach here as they are built.
func runRun(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "run", "", "Awaken the image, creating it on first run, and hold it open until interrupted\n(Ctrl-C or SIGTERM). While it runs, other batos processes get an error naming it.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("run takes no arguments")
	}
	u, err := awakenImage(ctx, e, true)
	if err != nil {
		return err
	}
	st, err := u.Store().Stats(ctx)
	if err != nil {
		u.Close()
		return err
	}
	fmt.Fprintf(e.stdout, "batos: image %s awake: %d objects, %d transactions, last commit %s\n", e.image, st.Objects, st.Transactions, st.LastTID)
	fmt.Fprintln(e.stdout, "batos: running; press Ctrl-C to stop")
	<-ctx.Done()
	// Sends in flight get a few seconds to finish.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := u.Shutdown(sctx); err != nil {
		return fmt.Errorf("close image: %w", err)
	}
	fmt.Fprintln(e.stdout, "batos: image closed")
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"batos/internal/image"
	"batos/internal/store/bolt"
)

func init() {
	commands["recover"] = cliCommand{"open a damaged image keeping what is provably intact, and say what was lost", runRecover}
}

// runRecover is the way out when opening refuses an image as damaged. It
// rebuilds the bbolt file from its intact records when the file itself is
// damaged, keeps every intact transaction of a damaged write-ahead log,
// moves the damaged files aside (nothing is deleted), and verifies the
// result, so what was lost is named.
func runRecover(ctx context.Context, e *env, args []string) error {
	fl := flags(e, "recover", "", `Open an image that batos refuses as damaged, keeping what is provably intact:
  - a damaged bbolt file is rebuilt from every record and log entry that
    passes its checksum; the damaged file is kept as PATH.damaged-TIME;
  - every intact transaction of a damaged write-ahead log is kept, before
    and after the damage; damaged segments are kept as PATH.wal.N.damaged-TIME;
  - a file older than what was acknowledged (a damaged newest meta page) is
    accepted as it is, and the commits it lacks are named.
Then the image is verified: what the damage took shows as problems.
batos run must be stopped.`)
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return usageError("recover takes no arguments")
	}
	if _, err := os.Stat(e.image); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no image at %s", e.image)
	}
	rebuild, why, err := bolt.NeedsSalvage(ctx, e.image)
	if err != nil {
		return err
	}
	if rebuild {
		fmt.Fprintf(e.stdout, "the image file is damaged (%s); rebuilding it from its intact records\n", why)
		rep, err := bolt.Salvage(e.image)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "rebuilt %s from %d intact revisions and %d intact log entries (%d pages read); the damaged file is kept as %s\n",
			e.image, rep.Revisions, rep.Transactions, rep.Pages, rep.MovedAside)
	}
	s, rep, err := bolt.OpenRecovering(e.image, nil)
	if err != nil {
		return err
	}
	db := image.New(s, &image.Options{User: currentUser()})
	defer s.Close()
	for _, d := range rep.Damage {
		fmt.Fprintf(e.stdout, "lost: %v\n", d)
	}
	for _, name := range rep.MovedAside {
		fmt.Fprintf(e.stdout, "kept aside: %s\n", name)
	}
	if rep.Replayed > 0 {
		fmt.Fprintf(e.stdout, "replayed %d transactions from the write-ahead log\n", rep.Replayed)
	}
	if !rebuild && len(rep.Damage) == 0 {
		fmt.Fprintln(e.stdout, "no damage that opening refuses was found")
	}
	vr, err := verifyAndReport(ctx, e, db.Verify, false)
	if err != nil {
		return err
	}
	if !vr.OK() {
		return fmt.Errorf("the image opens again, but verify finds %d problems left by the damage (listed above)", len(vr.Problems))
	}
	fmt.Fprintln(e.stdout, "ok")
	return nil
}

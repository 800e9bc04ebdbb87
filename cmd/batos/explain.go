package main

import (
	"errors"
	"fmt"

	"batos/internal/command"
	"batos/internal/mind"
	"batos/internal/store"
	"batos/internal/vm"
)

// explain adds to a command's error what the user can do about it: the
// batos command that follows a cycle, and for the store's errors about
// its files what to do next. The library's errors name no CLI command (a
// client in another language is told the same facts). It reads them alike whether the
// image was opened here or reached through its server, whose error
// replies match the same sentinels (command.Error).
func explain(err error) error {
	var de *store.DamageError
	var nu *vm.NotUnderstoodError
	id := command.CycleOf(err)
	switch {
	case errors.As(err, &nu):
		return fmt.Errorf("%w (batos run with an inference server learns it, and sends go through it; batos doctor says how to start one)", err)
	case errors.Is(err, mind.ErrNoModel):
		return fmt.Errorf("%w (batos persona set NAME -model MODEL, batos run -model MODEL, or batos model import FILE.gguf)", err)
	case errors.Is(err, vm.ErrNoMind):
		return fmt.Errorf("%w; batos doctor says more", err)
	case id > 0 && command.KindOf(err) == command.KindStillLearning:
		return fmt.Errorf("%w; follow it with batos cycle show %d", err, id)
	case id > 0 && command.KindOf(err) == command.KindLearningFailed:
		return fmt.Errorf("%w (batos cycle show %d)", err, id)
	case id > 0 && command.KindOf(err) == command.KindShuttingDown:
		return fmt.Errorf("%w (batos cycle show %d)", err, id)
	case errors.Is(err, store.ErrNoSpace):
		where := "the image"
		if path := command.PathOf(err); path != "" {
			where = path
		}
		return fmt.Errorf("%w\nthe file system holding %s is full: what could not be written was not saved, and nothing unsaved was reported saved; everything reported saved is intact. Free space there and run the command again", err, where)
	case errors.As(err, &de):
		return fmt.Errorf("%w\nnothing was changed. With batos run stopped, batos recover keeps every intact transaction, moves the damaged files aside and names what was lost", err)
	case errors.Is(err, store.ErrCorrupt):
		return fmt.Errorf("%w\nthe image holds damaged data; nothing was changed. With batos run stopped, batos verify names every damaged page, record and blob, and batos recover rebuilds the image from what is intact", err)
	}
	return err
}

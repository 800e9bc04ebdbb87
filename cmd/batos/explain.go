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
// replies match the same sentinels (command.Error). Its message is
// command.Message's, as the server's replies carry it, without Go
// package prefixes; the error still matches err's sentinels.
func explain(err error) error {
	if err == nil {
		return nil
	}
	var de *store.DamageError
	var nu *vm.NotUnderstoodError
	id := command.CycleOf(err)
	var advice string
	switch {
	case errors.As(err, &nu):
		advice = " (batos run with an inference server learns it, and sends go through it; batos doctor says how to start one)"
	case errors.Is(err, mind.ErrNoModel):
		advice = " (batos persona set NAME -model MODEL, batos run -model MODEL, or batos model import FILE.gguf)"
	case errors.Is(err, vm.ErrNoMind):
		advice = "; batos doctor says more"
	case id > 0 && command.KindOf(err) == command.KindStillLearning:
		advice = fmt.Sprintf("; follow it with batos cycle show %d", id)
	case id > 0 && command.KindOf(err) == command.KindLearningFailed:
		advice = fmt.Sprintf(" (batos cycle show %d)", id)
	case id > 0 && command.KindOf(err) == command.KindShuttingDown:
		advice = fmt.Sprintf(" (batos cycle show %d)", id)
	case errors.Is(err, store.ErrNoSpace):
		where := "the image"
		if path := command.PathOf(err); path != "" {
			where = path
		}
		advice = fmt.Sprintf("\nthe file system holding %s is full: what could not be written was not saved, and nothing unsaved was reported saved; everything reported saved is intact. Free space there and run the command again", where)
	case errors.As(err, &de):
		advice = "\nnothing was changed. With batos run stopped, batos recover keeps every intact transaction, moves the damaged files aside and names what was lost"
	case errors.Is(err, store.ErrCorrupt):
		advice = "\nthe image holds damaged data; nothing was changed. With batos run stopped, batos verify names every damaged page, record and blob, and batos recover rebuilds the image from what is intact"
	}
	return &shownError{msg: command.Message(err) + advice, err: err}
}

// shownError is an error as the CLI shows it, matching the error it
// shows.
type shownError struct {
	msg string
	err error
}

func (e *shownError) Error() string { return e.msg }
func (e *shownError) Unwrap() error { return e.err }

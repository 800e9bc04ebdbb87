package main

import (
	"errors"
	"fmt"

	"batos/internal/store"
	"batos/internal/zmqbridge"
)

// explain adds to a command's error what the user can do about it, for
// the store's errors about its files. It reads them alike whether the
// image was opened here or reached through its server, whose error
// replies match the same sentinels (zmqbridge.ReplyError).
func explain(err error) error {
	var de *store.DamageError
	switch {
	case errors.Is(err, store.ErrNoSpace):
		where := "the image"
		if path := errorPath(err); path != "" {
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

// errorPath is the file a store error is about, as the store or the
// server's reply names it, or "".
func errorPath(err error) string {
	var ns *store.NoSpaceError
	var re *zmqbridge.ReplyError
	switch {
	case errors.As(err, &ns):
		return ns.Path
	case errors.As(err, &re):
		return re.Path
	}
	return ""
}

package uvm

import (
	"errors"

	"batos/internal/store"
	"batos/internal/vm"
)

// keepUnreturned sets a ReplyLimit error aside, for the transaction to
// commit: the execution finished, only its result is too big to return.
func keepUnreturned(err error, kept **vm.LimitError) error {
	*kept = nil
	if err == nil {
		return nil
	}
	var le *vm.LimitError
	if errors.As(err, &le) && le.Limit == vm.ReplyLimit {
		*kept = le
		return nil
	}
	return err
}

// unreturned is the error of a send or eval whose result was set aside
// as too big, naming the transaction that saved its changes (none when
// tid is 0: it changed nothing).
func unreturned(err error, kept *vm.LimitError, tid store.TID) error {
	if err != nil || kept == nil {
		return err
	}
	le := *kept
	le.TID = tid
	return &le
}

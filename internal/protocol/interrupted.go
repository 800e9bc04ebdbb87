package protocol

import (
	"context"
	"errors"
	"strconv"

	"batos/internal/command"
)

// interrupted reads a failed request's error in the light of its
// context: a request whose context was cancelled (by its client, its
// connection closing, or the server stopping) failed because of that,
// whatever its own error says (context canceled, a learning wait given
// up).
func interrupted(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	cause := context.Cause(ctx)
	if !errors.Is(cause, command.ErrCancelled) && !errors.Is(cause, command.ErrShuttingDown) {
		return err
	}
	if id := command.CycleOf(err); id > 0 {
		// The cycle itself goes on (or resumes with the next server).
		return &cycleCancelled{cause: cause, cycle: id}
	}
	return cause
}

// cycleCancelled is a send that waited for the cycle learning its
// message and was cancelled: the cycle is not.
type cycleCancelled struct {
	cause error
	cycle int64
}

func (e *cycleCancelled) Error() string {
	return e.cause.Error() + "; cycle " + strconv.FormatInt(e.cycle, 10) + " learning the message goes on"
}

func (e *cycleCancelled) Unwrap() error { return e.cause }

// CycleID is the cycle the send waited for (command.CycleOf reads it).
func (e *cycleCancelled) CycleID() int64 { return e.cycle }

package command

import (
	"context"
	"time"

	"batos/internal/cycle"
)

// AwaitCycle reads cycle id through svc until it is finished: FAILED, or
// COMPLETE with every message it answers itself answered. onState, if
// set, is told each state read. At ctx's end it returns the cycle as last
// read with ctx's error.
func AwaitCycle(ctx context.Context, svc Service, id int64, onState func(state string)) (*CycleView, error) {
	// Cycles take from milliseconds (scripted) to minutes (a real model):
	// look often at first, then every half second.
	wait := 10 * time.Millisecond
	for {
		v, err := svc.ShowCycle(ctx, id)
		if err != nil {
			return v, err
		}
		if onState != nil {
			onState(v.State)
		}
		if v.Finished() {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// Finished reports whether the cycle is done: FAILED, or COMPLETE with
// every message it answers itself answered.
func (v *CycleView) Finished() bool {
	return v.State == cycle.Failed.String() || (v.State == cycle.Complete.String() && v.Pending == 0)
}

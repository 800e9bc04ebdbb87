package uvm

import (
	"context"
	"fmt"
	"sync"
	"time"

	"batos/internal/command"
	"batos/internal/cycle"
	"batos/internal/heartbeat"
	"batos/internal/image"
	"batos/internal/mind"
	"batos/internal/store/lease"
	"batos/internal/vm"
)

// TelemetryFlush is how often the VM's method telemetry is saved into
// the image by a served image (batos run); the last is saved at close.
var TelemetryFlush = 30 * time.Second

// heartbeatParts are the heartbeat and what it runs on, made when the
// image is opened writable.
type heartbeatParts struct {
	beat     *heartbeat.Heartbeat
	replayer *heartbeat.Replayer
	flushMu  sync.Mutex // one flush at a time: Drain and Restore pair up
	stop     context.CancelFunc
	done     chan struct{}
}

// startHeartbeat makes the heartbeat. The replay VM counts nothing and
// learns nothing: a replayed call is no real call, and a message nothing
// understands there is a difference to report, not a mission.
func (u *UVM) startHeartbeat() {
	replayOpts := u.vmOpts
	replayOpts.Telemetry, replayOpts.Handler = nil, nil
	u.hb.replayer = heartbeat.NewReplayer(u.db, vm.New(&replayOpts))
	u.hb.beat = heartbeat.New(u.db, &heartbeat.Options{Mind: u.auditMind, Replayer: u.hb.replayer, Logger: u.log})
}

// Heartbeat runs audits and decides proposals; nil on an image opened
// read-only.
func (u *UVM) Heartbeat() *heartbeat.Heartbeat { return u.hb.beat }

// auditMind is the mind as audits use it: ALFRED and the cycle machine,
// an on-demand mind connected now.
func (u *UVM) auditMind(ctx context.Context) (cycle.Asker, *cycle.Machine, error) {
	u.mindMu.Lock()
	defer u.mindMu.Unlock()
	if u.cycles != nil {
		return u.mind, u.cycles, nil
	}
	if u.connect == nil {
		return nil, nil, &vm.NoMindError{Doing: "run an audit (it asks ALFRED)"}
	}
	server, err := u.connect(ctx)
	if err != nil {
		return nil, nil, &vm.NoMindError{Doing: "run an audit (it asks ALFRED)", Why: mind.Unanswered(err)}
	}
	if err := u.enableMindLocked(server, u.connectOpts, nil); err != nil {
		return nil, nil, err
	}
	return u.mind, u.cycles, nil
}

// FlushTelemetry saves what the VM counted since the last flush into the
// image, in one transaction; what cannot be saved stays counted for the
// next.
func (u *UVM) FlushTelemetry(ctx context.Context) error {
	t := u.Telemetry()
	if t == nil || u.hb.beat == nil {
		return nil
	}
	u.hb.flushMu.Lock()
	defer u.hb.flushMu.Unlock()
	if !t.Pending() {
		return nil
	}
	ds := t.Drain()
	err := u.db.Update(ctx, func(tx *image.Tx) error {
		tx.SetUser("batos")
		tx.SetTopic(command.TopicTelemetry, map[string]any{"methods": len(ds)})
		tx.Note(fmt.Sprintf("telemetry: %d methods", len(ds)))
		return heartbeat.Save(tx, ds)
	})
	if err != nil {
		t.Restore(ds)
	}
	return err
}

// flushEvery saves the telemetry every interval until stopped.
func (u *UVM) flushEvery(interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	u.hb.stop, u.hb.done = cancel, make(chan struct{})
	go func() {
		defer close(u.hb.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := u.FlushTelemetry(ctx); err != nil && ctx.Err() == nil {
					u.log.Error("telemetry: cannot save", "err", err)
				}
			}
		}
	}()
}

// stopHeartbeat stops the audits' goroutines and the flushes, and saves
// the telemetry one last time.
func (u *UVM) stopHeartbeat() error {
	if u.hb.beat == nil {
		return nil
	}
	u.hb.beat.Close()
	if u.hb.stop != nil {
		u.hb.stop()
		<-u.hb.done
	}
	return u.FlushTelemetry(context.Background())
}

// RunHeartbeat audits the image every interval until ctx ends (batos run
// -heartbeat), after resuming what a restart interrupted. On a database
// several nodes share, it runs on the node holding the heartbeat's lease
// (the others wait to take it up should that node die): resuming there
// would fail the audit the holder is running as interrupted. Interval 0
// only resumes (on the lease's node), and runs no audit.
func (u *UVM) RunHeartbeat(ctx context.Context, interval time.Duration) {
	if u.hb.beat == nil {
		return
	}
	ctx = image.WithTopic(ctx, command.TopicHeartbeat, nil)
	if u.leases == nil {
		u.beat(ctx, interval)
		return
	}
	for ctx.Err() == nil {
		held, ok, err := lease.Take(ctx, u.leases, heartbeatLease, u.beatHolder, u.leaseTTL, u.log)
		if err != nil && ctx.Err() == nil {
			u.log.Warn("heartbeat: cannot take its lease; trying again", "err", err)
		}
		if ok {
			if interval > 0 {
				u.log.Info("heartbeat: this node runs it", "node", u.beatHolder)
			}
			u.beat(held.Context(), interval)
			held.Release()
			if interval <= 0 {
				return
			}
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(u.leaseTTL / 4):
		}
	}
}

// heartbeatLease names the lease of the node that runs the heartbeat.
const heartbeatLease = "heartbeat"

func (u *UVM) beat(ctx context.Context, interval time.Duration) {
	if err := u.hb.beat.Resume(ctx); err != nil && ctx.Err() == nil {
		u.log.Error("heartbeat: resume", "err", err)
	}
	u.hb.beat.Run(ctx, interval)
}

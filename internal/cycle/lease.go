package cycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"batos/internal/image"
	"batos/internal/store/lease"
)

// Leases: on an image several nodes share (a database), every node's
// machine may launch a cycle: the node that opened it, a node whose send
// joined it, every node resuming at start. Only the node holding the
// cycle's lease drives it. It renews the lease while it runs and gives
// it up when it stops; a node that dies stops renewing, the lease
// expires, and another node's sweep takes the cycle up from its last
// recorded step, as a restart would.
//
// The lease says who should run; the cycle object says who may record.
// A node taking a cycle up writes itself into the object as its runner
// (node and lease generation), and every record a drive makes checks,
// in its own transaction, that it is still the runner. A node that lost
// its lease unawares (paused past its expiry, say) thus records nothing
// after the next holder took the cycle up: its commit conflicts with the
// take-up, and the retry finds another runner.

// DefaultLeaseTTL is how long a cycle's lease lasts unless renewed: the
// longest a cycle waits for another node after its node dies.
const DefaultLeaseTTL = 15 * time.Second

// errLeaseLost ends a drive whose node no longer holds the cycle's lease.
var errLeaseLost = errors.New("cycle: this node no longer holds the cycle's lease")

// fence is what a drive holding a lease may record as: the cycle and the
// runner it wrote into it.
type fence struct {
	id     int64
	runner string
}

type fenceKey struct{}

// checkFence refuses a record made under a lease when the cycle has
// another runner by now.
func checkFence(ctx context.Context, c *Cycle) error {
	if f, ok := ctx.Value(fenceKey{}).(fence); ok && f.id == c.ID && c.Runner != f.runner {
		return fmt.Errorf("%w: cycle %d is run by %s now", errLeaseLost, c.ID, c.Runner)
	}
	return nil
}

func leaseName(id int64) string { return "cycle/" + strconv.FormatInt(id, 10) }

// DefaultNode names this process among nodes: its host and process.
// Leases are held under the name and a random suffix (lease.Holder), so
// two processes named alike are still two holders.
func DefaultNode() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// hold takes cycle id's lease for this node and makes the node the
// cycle's runner. ok is false when another node holds the lease, or the
// cycle has nothing left to run. The context it returns ends when the
// lease is lost; release stops renewing and gives the lease up. A lease
// the store could not be asked for is asked for again every quarter
// lease until ctx ends: a machine that does not sweep (a one-shot
// command's) would otherwise leave the cycle it opened unrun.
func (m *Machine) hold(ctx context.Context, id int64) (_ context.Context, release func(), ok bool) {
	var held *lease.Held
	for told := false; ; told = true {
		var err error
		held, ok, err = lease.Take(ctx, m.opts.Leases, leaseName(id), m.holder, m.opts.LeaseTTL, m.opts.Logger)
		if err == nil {
			break
		}
		if !told && ctx.Err() == nil {
			m.opts.Logger.Warn("cycle: cannot take its lease; trying again", "id", id, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx, nil, false
		case <-time.After(m.opts.LeaseTTL / 4):
		}
	}
	if !ok {
		return ctx, nil, false // another node runs it
	}
	runner := fmt.Sprintf("%s #%d", held.Lease.Holder, held.Lease.Generation)
	if err := m.takeUp(held.Context(), id, runner); err != nil {
		held.Release()
		if !errors.Is(err, errStale) && ctx.Err() == nil {
			m.opts.Logger.Error("cycle: cannot take it up", "id", id, "err", err)
		}
		return ctx, nil, false
	}
	return context.WithValue(held.Context(), fenceKey{}, fence{id: id, runner: runner}), held.Release, true
}

// takeUp records runner as cycle id's runner, unless it is already, or
// the cycle has nothing left to run (errStale).
func (m *Machine) takeUp(ctx context.Context, id int64, runner string) error {
	return m.db.Update(ctx, func(tx *image.Tx) error {
		tx.SetUser("batos")
		tx.SetTopic(CommitTopic, map[string]any{"id": id})
		o, err := cycleObject(tx, id)
		if err != nil {
			return err
		}
		c, err := decode(o)
		if err != nil {
			return err
		}
		if !c.hasWork() {
			return errStale
		}
		if c.Runner == runner {
			return nil
		}
		if c.Runner == "" {
			tx.Note(fmt.Sprintf("cycle %d: run by %s", id, runner))
		} else {
			tx.Note(fmt.Sprintf("cycle %d: taken up by %s from %s", id, runner, c.Runner))
		}
		c.Runner = runner
		return encode(o, c)
	})
}

// sweep launches, every quarter lease, the unfinished cycles no node of
// this process runs: those whose node died are taken up once their lease
// expired; the others stay with their nodes (their lease is refused).
func (m *Machine) sweep() {
	defer m.wg.Done()
	t := time.NewTicker(m.opts.LeaseTTL / 4)
	defer t.Stop()
	for {
		select {
		case <-m.base.Done():
			return
		case <-t.C:
		}
		ids, _ := m.resumable(m.base) // unreadable cycles were logged at start
		for _, id := range ids {
			m.mu.Lock()
			_, running := m.runs[id]
			m.mu.Unlock()
			if !running {
				m.launch(id)
			}
		}
	}
}

// Observe tells the machine that another node committed to cycle id
// (0: to some cycle): senders waiting here for it look again, and a run
// here of a cycle cancelled there stops.
func (m *Machine) Observe(id int64) {
	m.broadcast()
	m.mu.Lock()
	r, running := m.runs[id]
	closed := m.closed
	if running && !closed {
		m.wg.Add(1)
	}
	m.mu.Unlock()
	if !running || closed {
		return
	}
	go func() {
		defer m.wg.Done()
		if c, err := m.Get(m.base, id); err == nil && !c.hasWork() {
			r.cancel()
		}
	}()
}

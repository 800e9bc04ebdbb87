package bolt

import (
	"cmp"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"batos/internal/store"
)

// The commit pipeline. The committer stages a group, writes its frame to
// the log and moves on to the next group while the syncer makes the frame
// durable: the fdatasync of one group overlaps the staging of the next, and
// one fdatasync covers every frame written before it. Only after its
// fdatasync is a group published to readers (overlay, LastTID) and
// answered, in order.
//
// If a write or fdatasync of the log fails (a full disk, an I/O error),
// the groups it concerns and every group after it are refused, never
// acknowledged; groups written before it are synced and answered as
// usual. Before the next commit the committer cuts the segment back to
// the frames known durable and syncs that, so nothing refused can be
// replayed; once that and a write succeed, commits go on — freeing space
// is enough, no restart is needed.

var errNotWritten = errors.New("store: commit not saved: the write-ahead log refused it")

// pipeline is the committer's staging state plus the syncer's queue.
type pipeline struct {
	db       *DB
	staged   store.TID                    // newest TID handed out
	written  uint64                       // groups written to the log
	inflight map[store.OID]inflightSerial // what staged groups wrote
	jobs     chan *syncJob
	acked    atomic.Uint64 // groups the syncer has finished
	ackedCh  chan struct{} // pulsed after each finish
	broken   atomic.Pointer[error]
	// troubled is set from a failure until a frame is synced again: one
	// log line when the trouble starts, one when it ends, however many
	// commits are refused in between.
	troubled atomic.Bool
	syncer   sync.WaitGroup
}

type inflightSerial struct {
	serial store.TID // 0: deleted
	seq    uint64    // the group that wrote it
}

// syncJob is one group's frame, written, waiting for its fdatasync.
type syncJob struct {
	seq    uint64
	log    *wal
	end    int64 // where its frame ends in log; 0 if it was not written
	txs    []walTx
	reqs   []*commitRequest
	last   store.TID
	maxOID store.OID
}

func (p *pipeline) start(db *DB) {
	p.db = db
	p.staged = db.LastTID()
	p.inflight = make(map[store.OID]inflightSerial)
	p.jobs = make(chan *syncJob, 256)
	p.ackedCh = make(chan struct{}, 1)
	p.syncer.Add(1)
	go p.syncLoop()
}

// failed reports the error that stopped the pipeline, if any.
func (p *pipeline) failed() error {
	if e := p.broken.Load(); e != nil {
		return *e
	}
	return nil
}

// fail stops the pipeline with err, unless it is already stopped; the
// first failure of a run is logged, since the log may fail with no commit
// waiting to be told.
func (p *pipeline) fail(err error) {
	if p.broken.CompareAndSwap(nil, &err) && !p.troubled.Swap(true) {
		p.db.opts.Logger.Error("store: write-ahead log failed; commits are refused until a write succeeds again", "image", p.db.path, "err", err)
	}
}

// repair cuts the log back to the frames known durable once every group
// in flight has been answered, and lets commits go on. Caller: the
// committer.
func (p *pipeline) repair() error {
	cause := p.failed()
	if cause == nil {
		return nil
	}
	p.drain()
	if err := p.db.wal.truncateToSynced(); err != nil {
		return fmt.Errorf("store: commit not saved: the write-ahead log failed (%w) and cannot be cut back yet: %w", cause, err)
	}
	clear(p.inflight)
	p.broken.Store(nil)
	return nil
}

// submit writes a job's frame and queues it for the syncer. Caller: the
// committer.
func (p *pipeline) submit(log *wal, job *syncJob) {
	p.written++
	job.seq, job.log = p.written, log
	if err := p.failed(); err == nil {
		if err := log.write(encodeGroup(job.txs)); err != nil {
			p.fail(fmt.Errorf("store: commit not saved: %w", err))
		} else {
			job.end = log.size
		}
	}
	p.jobs <- job
	if len(p.inflight) > 1<<16 {
		p.forgetAcked()
	}
}

// drain waits until every group written has been synced and answered.
// Caller: the committer.
func (p *pipeline) drain() {
	for p.acked.Load() < p.written {
		<-p.ackedCh
	}
	clear(p.inflight)
}

// forgetAcked drops in-flight entries of groups already synced: the
// overlay or the file now says the same.
func (p *pipeline) forgetAcked() {
	acked := p.acked.Load()
	for oid, s := range p.inflight {
		if s.seq <= acked {
			delete(p.inflight, oid)
		}
	}
}

// stop waits for the syncer to finish everything queued. Caller: the
// committer, on its way out.
func (p *pipeline) stop() {
	close(p.jobs)
	p.syncer.Wait()
}

// syncLoop syncs what the committer wrote, in batches. Writers answered
// by one sync come back at about the same time, each with its next
// commit; syncing as soon as the first is written would split them into
// two cohorts, each synced while the other computes, each sync covering
// half of them. So a batch waits, up to Options.Linger, until it holds
// as many commits as were in flight at the last sync: those it answered
// and those written while it ran, when they were more than two. A lone
// writer never waits.
func (p *pipeline) syncLoop() {
	defer p.syncer.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	inFlight := 0          // commits answered by the last sync plus those written meanwhile
	var waiting []*syncJob // what the committer wrote while the last sync ran
	for {
		batch := waiting
		if len(batch) == 0 {
			job, ok := <-p.jobs
			if !ok {
				return
			}
			batch = []*syncJob{job}
		}
		batch, open := p.gatherJobs(batch, inFlight, timer)
		n := syncedCommits(batch)
		p.finish(batch)
		if !open {
			return
		}
		// A stop seen here is seen again by the next round's gather,
		// which syncs what is waiting first.
		waiting, _ = p.takeWritten(nil)
		inFlight = n + syncedCommits(waiting)
		if inFlight <= 2 {
			// Two writers split into halves lose little, and a pair
			// of commits made together (a cycle's two answers) would
			// make the lone commit after them wait for nothing.
			inFlight = 0
		}
	}
}

// gatherJobs adds to batch every job written, and lingers for more while
// it carries fewer than want commits. It reports false once the
// committer has stopped.
func (p *pipeline) gatherJobs(batch []*syncJob, want int, timer *time.Timer) ([]*syncJob, bool) {
	batch, open := p.takeWritten(batch)
	if !open || syncedCommits(batch) >= want {
		return batch, open
	}
	timer.Reset(p.db.opts.Linger)
	defer timer.Stop()
	for syncedCommits(batch) < want {
		select {
		case j, ok := <-p.jobs:
			if !ok {
				return batch, false
			}
			batch = append(batch, j)
		case <-timer.C:
			return batch, true
		}
	}
	return batch, true
}

// takeWritten adds the jobs already queued to batch, without waiting.
func (p *pipeline) takeWritten(batch []*syncJob) ([]*syncJob, bool) {
	for {
		select {
		case j, ok := <-p.jobs:
			if !ok {
				return batch, false
			}
			batch = append(batch, j)
		default:
			return batch, true
		}
	}
}

// finish syncs the log once for a batch of written jobs, then publishes and
// answers them in order. Jobs written before a failure are synced and
// acknowledged; the rest are refused.
func (p *pipeline) finish(batch []*syncJob) {
	written := 0
	for written < len(batch) && batch[written].end > 0 {
		written++
	}
	if written > 0 {
		// Jobs of one batch share a segment: the committer rotates only
		// with nothing in flight.
		last := batch[written-1]
		start := time.Now()
		err := last.log.sync()
		fsyncSeconds.Observe(time.Since(start))
		if err != nil {
			p.fail(fmt.Errorf("store: commit not acknowledged: the write-ahead log could not be synced, and what it holds past the last synced frame is cut off before the next commit: %w", err))
			written = 0
		} else {
			groupCommits.ObserveValue(float64(syncedCommits(batch[:written])))
			last.log.synced.Store(last.end)
			if p.troubled.Swap(false) {
				p.db.opts.Logger.Info("store: write-ahead log writable again", "image", p.db.path)
			}
		}
	}
	db := p.db
	for i, job := range batch {
		if i < written {
			db.overlay.add(job.txs)
			db.serials.wrote(job.txs)
			db.lastTID.Store(uint64(job.last))
			db.raiseNextOID(job.maxOID)
		}
		for j, req := range job.reqs {
			if i < written {
				req.done <- commitResult{tid: job.txs[j].tid}
			} else {
				req.done <- commitResult{err: cmp.Or(p.failed(), errNotWritten)}
			}
		}
	}
	p.acked.Store(batch[len(batch)-1].seq)
	select {
	case p.ackedCh <- struct{}{}:
	default:
	}
}

// syncedCommits is how many commits the jobs carry.
func syncedCommits(jobs []*syncJob) int {
	n := 0
	for _, j := range jobs {
		n += len(j.reqs)
	}
	return n
}

package bolt

import (
	"fmt"
	"sync"
	"sync/atomic"

	"batos/internal/store"
)

// The commit pipeline. The committer stages a group, writes its frame to
// the log and moves on to the next group while the syncer makes the frame
// durable: the fdatasync of one group overlaps the staging of the next, and
// one fdatasync covers every frame written before it. Only after its
// fdatasync is a group published to readers (overlay, LastTID) and
// answered, in order.
//
// If a write or fdatasync of the log fails, what reached the disk is
// unknown, so the pipeline stops: every commit after it fails until the
// image is closed and reopened, when recovery reads what the log holds.

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
		return fmt.Errorf("store: write-ahead log failed; commits since may or may not have been saved (close and reopen the image to find out): %w", *e)
	}
	return nil
}

func (p *pipeline) fail(err error) { p.broken.CompareAndSwap(nil, &err) }

// submit writes a job's frame and queues it for the syncer. Caller: the
// committer.
func (p *pipeline) submit(log *wal, job *syncJob) {
	p.written++
	job.seq, job.log = p.written, log
	if err := p.failed(); err == nil {
		if err := log.write(encodeGroup(job.txs)); err != nil {
			p.fail(err)
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

func (p *pipeline) syncLoop() {
	defer p.syncer.Done()
	for job := range p.jobs {
		batch := []*syncJob{job}
	more:
		for {
			select {
			case j, ok := <-p.jobs:
				if !ok {
					break more
				}
				batch = append(batch, j)
			default:
				break more
			}
		}
		p.finish(batch)
	}
}

// finish syncs the log once for a batch of written jobs, then publishes and
// answers them in order.
func (p *pipeline) finish(batch []*syncJob) {
	err := p.failed()
	if err == nil {
		// Jobs of one batch share a segment: the committer rotates only
		// with nothing in flight.
		if serr := batch[len(batch)-1].log.sync(); serr != nil {
			p.fail(serr)
			err = p.failed()
		}
	}
	db := p.db
	for _, job := range batch {
		if err == nil {
			db.overlay.add(job.txs)
			db.lastTID.Store(uint64(job.last))
			db.raiseNextOID(job.maxOID)
		}
		for i, req := range job.reqs {
			if err != nil {
				req.done <- commitResult{err: err}
			} else {
				req.done <- commitResult{tid: job.txs[i].tid}
			}
		}
	}
	p.acked.Store(batch[len(batch)-1].seq)
	select {
	case p.ackedCh <- struct{}{}:
	default:
	}
}

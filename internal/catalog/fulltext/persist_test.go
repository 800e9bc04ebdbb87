package fulltext

import (
	"errors"
	"testing"
	"time"
)

// A batch counts as unpersisted from when Batch accepts it until scorch
// says it is persisted, whichever comes first; one Batch refused never
// counts, whatever scorch says of it.
func TestPersistenceCounts(t *testing.T) {
	ix := newTestIndex(t)
	var p persistence
	p.init()
	late := ix.bi.NewBatch()
	s := p.track(late)
	p.applied(s)
	if p.unpersisted != 1 {
		t.Fatalf("applied, not persisted: %d unpersisted, want 1", p.unpersisted)
	}
	early := ix.bi.NewBatch()
	e := p.track(early)
	early.PersistedCallback()(nil) // persisted before Batch returned
	p.applied(e)
	refused := ix.bi.NewBatch()
	p.track(refused)
	refused.PersistedCallback()(nil)
	if p.unpersisted != 1 {
		t.Fatalf("%d unpersisted, want 1 (the early and the refused batch do not count)", p.unpersisted)
	}

	// Flush waits for the last; an error of the background work ends the
	// wait with it.
	done := make(chan error, 1)
	go func() { done <- p.wait(0) }()
	boom := errors.New("disk full")
	time.Sleep(10 * time.Millisecond)
	p.failed(boom)
	if err := <-done; !errors.Is(err, boom) {
		t.Fatalf("wait ended with %v, want %v", err, boom)
	}
	go func() { done <- p.wait(0) }()
	late.PersistedCallback()(nil)
	if err := <-done; err != nil || p.unpersisted != 0 {
		t.Fatalf("wait ended with %v and %d unpersisted, want nil and 0", err, p.unpersisted)
	}
}

// Put returns before its batch is durable; Flush and Close make it so.
func TestFlush(t *testing.T) {
	dir := t.TempDir() + "/text"
	ix, err := Create(dir)
	must(t, err)
	put(t, ix, sampleEntries(10)...)
	must(t, ix.Flush())
	if ix.persist.unpersisted != 0 {
		t.Errorf("%d batches unpersisted after Flush", ix.persist.unpersisted)
	}
	put(t, ix, sampleEntries(20)...)
	must(t, ix.Close())
	if err := ix.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close: %v, want ErrClosed", err)
	}
	ix, err = Open(dir)
	must(t, err)
	defer ix.Close()
	if n := count(t, ix); n != 20 {
		t.Errorf("%d entries after reopening, want 20", n)
	}
}

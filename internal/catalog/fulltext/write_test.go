package fulltext

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPutReplaces(t *testing.T) {
	ix := newTestIndex(t)
	put(t, ix, Entry{ID: "a", Title: "Apples", Text: "Red apples grow on trees.", Fields: map[string]string{"kind": "chunk", "doc": "d1"}})
	put(t, ix, Entry{ID: "a", Title: "Pears", Text: "Green pears ripen slowly.", Fields: map[string]string{"kind": "chunk", "doc": "d2"}})
	if got := count(t, ix); got != 1 {
		t.Errorf("got %d entries, want 1", got)
	}
	if got := ids(t, ix, Query{Text: "apples"}); len(got) != 0 {
		t.Errorf("apples: got %v, want the old text gone", got)
	}
	if got := ids(t, ix, Query{Text: "pear"}); !slices.Equal(got, []string{"a"}) {
		t.Errorf("pear: got %v, want [a]", got)
	}
	if got := ids(t, ix, Query{Text: "pear", Filter: map[string]string{"doc": "d1"}}); len(got) != 0 {
		t.Errorf("old field doc=d1: got %v, want none", got)
	}
	if got := ids(t, ix, Query{Text: "pear", Filter: map[string]string{"doc": "d2"}}); !slices.Equal(got, []string{"a"}) {
		t.Errorf("new field doc=d2: got %v, want [a]", got)
	}
}

func TestPutDuplicateIDs(t *testing.T) {
	ix := newTestIndex(t)
	put(t, ix,
		Entry{ID: "a", Text: "first version"},
		Entry{ID: "b", Text: "another entry"},
		Entry{ID: "a", Text: "second version"},
	)
	if got := count(t, ix); got != 2 {
		t.Errorf("got %d entries, want 2", got)
	}
	if got := ids(t, ix, Query{Text: "first"}); len(got) != 0 {
		t.Errorf("first: got %v, want the later entry to win", got)
	}
	if got := ids(t, ix, Query{Text: "second"}); !slices.Equal(got, []string{"a"}) {
		t.Errorf("second: got %v, want [a]", got)
	}
}

func TestPutHugeWord(t *testing.T) {
	ix := newTestIndex(t)
	huge := strings.Repeat("abcdefgh", 1<<10) // under the query limit, over the fragment's
	put(t, ix, Entry{ID: "huge", Title: huge, Text: "alpha " + huge + " omega"})
	if got := ids(t, ix, Query{Text: huge}); !slices.Equal(got, []string{"huge"}) {
		t.Errorf("the huge word: got %v, want [huge]", got)
	}
	hits, err := ix.Search(context.Background(), Query{Text: "omega", Snippet: true})
	if err != nil || len(hits) != 1 {
		t.Fatalf("omega: %v %v", hits, err)
	}
	checkFragment(t, ix, hits[0], "omega")
	if len(ix.an.terms) > 10 {
		t.Errorf("%d words cached, want the huge one not", len(ix.an.terms))
	}
}

func TestPutRefusesEmptyID(t *testing.T) {
	ix := newTestIndex(t)
	if err := ix.Put([]Entry{{ID: "a", Text: "fine"}, {Text: "no id"}}); err == nil {
		t.Fatal("Put of an entry without an ID succeeded")
	}
	if got := count(t, ix); got != 0 {
		t.Errorf("got %d entries after a refused batch, want 0", got)
	}
	if err := ix.Put(nil); err != nil {
		t.Errorf("Put(nil): %v", err)
	}
}

func TestDelete(t *testing.T) {
	ix := newTestIndex(t)
	put(t, ix, sampleEntries(9)...)
	if err := ix.Delete([]string{"c1", "c4", "nope", "c4", ""}); err != nil {
		t.Fatal(err)
	}
	if got := count(t, ix); got != 7 {
		t.Errorf("got %d entries, want 7", got)
	}
	got := ids(t, ix, Query{Text: "chunk", K: 100})
	slices.Sort(got)
	want := []string{"c0", "c2", "c3", "c5", "c6", "c7", "c8"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("hits (-got +want):\n%s", diff)
	}
	if err := ix.Delete(nil); err != nil {
		t.Errorf("Delete(nil): %v", err)
	}
	if err := ix.Delete([]string{"never"}); err != nil {
		t.Errorf("Delete of an unknown ID: %v", err)
	}
	// Deleting everything leaves an index that searches to nothing.
	var all []string
	for i := range 9 {
		all = append(all, fmt.Sprintf("c%d", i))
	}
	if err := ix.Delete(all); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, ix, Query{Text: "chunk"}); len(got) != 0 {
		t.Errorf("empty index: got %v", got)
	}
}

// TestConcurrentSearchPut searches while other goroutines put, replace
// and delete; run with -race. Every search must succeed, and an entry
// that is never touched must always be found.
func TestConcurrentSearchPut(t *testing.T) {
	ix := newTestIndex(t)
	put(t, ix, Entry{ID: "anchor", Title: "Anchor", Text: "The anchor entry holds steady."})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil && i < 40; i++ {
				es := sampleEntries(20)
				for j := range es {
					es[j].ID = fmt.Sprintf("w%d-%s", w, es[j].ID)
				}
				if err := ix.Put(es); err != nil {
					errs <- err
					return
				}
				if err := ix.Delete([]string{es[i%20].ID}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for i := 0; i < 100; i++ {
				hits, err := ix.Search(ctx, Query{Text: "anchor chunk segment", K: 50, Snippet: true})
				if err != nil {
					errs <- err
					return
				}
				if !slices.ContainsFunc(hits, func(h Hit) bool { return h.ID == "anchor" }) {
					errs <- fmt.Errorf("search %d lost the anchor: %d hits", i, len(hits))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, err := ix.Count(); err != nil {
		t.Error(err)
	}
}

// TestCloseWaitsForSearches closes while searches run: each search either
// finishes or reports ErrClosed.
func TestCloseWaitsForSearches(t *testing.T) {
	ix, err := Create(filepath.Join(t.TempDir(), "text"))
	if err != nil {
		t.Fatal(err)
	}
	put(t, ix, sampleEntries(50)...)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				_, err := ix.Search(context.Background(), Query{Text: "segment", Snippet: true})
				if err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("search: %v", err)
					}
					return
				}
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// The child process of TestCrashLosesNoAcknowledgedBatch: it puts
// batches into the index in $crashDirEnv and prints each one's number
// once Flush has returned after it, until it is killed.
const crashDirEnv = "BATOS_FULLTEXT_CRASH_DIR"

func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrashLosesNoAcknowledgedBatch")
	}
	ix, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	for b := 0; ; b++ {
		es := sampleEntries(50)
		for i := range es {
			es[i].ID = fmt.Sprintf("b%d-%d", b, i)
		}
		if err := ix.Put(es); err != nil {
			t.Fatal(err)
		}
		if b%3 == 2 {
			// Deletes, so that merges have deletions to carry.
			if err := ix.Delete([]string{fmt.Sprintf("b%d-0", b)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := ix.Flush(); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("acked %d\n", b)
	}
}

// TestCrashLosesNoAcknowledgedBatch kills a process that is putting
// batches, at a random moment, and checks that the index opens with every
// batch a Flush had returned after.
func TestCrashLosesNoAcknowledgedBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills processes")
	}
	for round := range 3 {
		dir := filepath.Join(t.TempDir(), "text")
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := make(chan int, 1000)
		go func() {
			defer close(acked)
			buf := make([]byte, 0, 4096)
			tmp := make([]byte, 512)
			for {
				n, err := out.Read(tmp)
				buf = append(buf, tmp[:n]...)
				for {
					i := slices.Index(buf, '\n')
					if i < 0 {
						break
					}
					if s, ok := strings.CutPrefix(string(buf[:i]), "acked "); ok {
						if b, err := strconv.Atoi(s); err == nil {
							acked <- b
						}
					}
					buf = buf[i+1:]
				}
				if err != nil {
					return
				}
			}
		}()
		last := -1
		deadline := time.After(10 * time.Second)
	wait:
		for last < 5+round*7 {
			select {
			case b, ok := <-acked:
				if !ok {
					break wait
				}
				last = b
			case <-deadline:
				break wait
			}
		}
		cmd.Process.Kill()
		for b := range acked {
			last = b
		}
		cmd.Wait()
		if last < 0 {
			t.Fatal("the child acknowledged no batch")
		}

		ix, err := Open(dir)
		if err != nil {
			// A crash must not damage what scorch had committed.
			t.Fatalf("round %d: open after the crash: %v", round, err)
		}
		checkIndex(t, ix)
		for b := 0; b <= last; b++ {
			id := fmt.Sprintf("b%d-1", b)
			if !slices.Contains(ids(t, ix, Query{Text: "segment", K: 1 << 20}), id) {
				t.Errorf("round %d: batch %d was acknowledged but %s is missing", round, b, id)
				break
			}
		}
		ix.Close()
	}
}

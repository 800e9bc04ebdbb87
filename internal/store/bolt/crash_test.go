package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/store"
	"batos/internal/store/bolt"
	"batos/internal/store/storetest"
)

// crashChildEnv names the store TestCrashChild commits to; it is set only
// in the child processes TestCrashDurability starts and kills.
const crashChildEnv = "BATOS_CRASH_CHILD"

const (
	crashRounds  = 20
	crashWriters = 8
	crashShared  = 3 // objects every writer of a child competes for
)

// crashCommit is one commit a child reported after Commit returned.
type crashCommit struct {
	line   string
	tid    store.TID
	writes map[store.OID]string // object -> payload written
	blobs  []store.Digest
}

// TestCrashDurability kills a child process committing under load, again
// and again on one store, and checks after each kill that the file is
// consistent and holds every commit the child saw return.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills child processes")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var all []crashCommit
	var last store.TID
	for round := range crashRounds {
		delay := time.Duration(50+rng.IntN(351)) * time.Millisecond
		commits := parseCrashLines(t, runCrashChild(t, path, delay))
		for _, c := range commits {
			if c.tid <= last {
				t.Errorf("round %d: child committed %s, not after %s committed before the previous kill", round, c.tid, last)
			}
		}
		last = checkCrashedStore(t, path, commits)
		all = append(all, commits...)
		t.Logf("round %d: killed %v after the first commit; %d commits confirmed, %d of them retried after a conflict", round, delay, len(commits), countRetried(commits))
		if t.Failed() {
			return
		}
	}
	// Later crashes must not have damaged what earlier rounds confirmed.
	checkCrashedStore(t, path, all)
	blobs := 0
	for _, c := range all {
		blobs += len(c.blobs)
	}
	t.Logf("%d commits confirmed in %d rounds, %d of them with a new blob", len(all), crashRounds, blobs)
}

// countRetried counts commits that wrote a shared object only after a
// conflict: the child tags such a write with its attempt number.
func countRetried(commits []crashCommit) int {
	n := 0
	for _, c := range commits {
		for _, payload := range c.writes {
			if strings.Contains(payload, ".shared") && !strings.HasSuffix(payload, ".shared0") {
				n++
				break
			}
		}
	}
	return n
}

// runCrashChild starts the child on path, lets it commit for delay after
// its first reported commit, kills it and returns its complete lines.
func runCrashChild(t *testing.T, path string, delay time.Duration) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	stdout := newLineBuffer()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-stdout.first:
	case err := <-exited:
		t.Fatalf("child exited before reporting a commit: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("child reported no commit within 30s\nstderr:\n%s", stderr.String())
	}
	time.Sleep(delay)
	cmd.Process.Kill() // an error means it exited by itself, reported below
	err := <-exited
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !killed(ee) {
		t.Fatalf("child ended with %v, want killed by SIGKILL\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("child wrote to stderr:\n%s", stderr.String())
	}
	return stdout.lines()
}

func killed(ee *exec.ExitError) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// parseCrashLines decodes "TID oid:N=payload ... blob=sha256:HEX ..."
// lines; anything else the child printed fails the test.
func parseCrashLines(t *testing.T, lines []string) []crashCommit {
	t.Helper()
	var commits []crashCommit
	for _, line := range lines {
		c, err := parseCrashLine(line)
		if err != nil {
			t.Errorf("child printed %q: %v", line, err)
			continue
		}
		commits = append(commits, c)
	}
	return commits
}

func parseCrashLine(line string) (crashCommit, error) {
	c := crashCommit{line: line, writes: map[store.OID]string{}}
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return c, errors.New("want a TID and at least one write")
	}
	var err error
	if c.tid, err = store.ParseTID(fields[0]); err != nil {
		return c, err
	}
	for _, f := range fields[1:] {
		key, val, ok := strings.Cut(f, "=")
		if !ok {
			return c, fmt.Errorf("field %q is not key=value", f)
		}
		if key == "blob" {
			d, err := store.ParseDigest(val)
			if err != nil {
				return c, err
			}
			c.blobs = append(c.blobs, d)
			continue
		}
		oid, err := store.ParseOID(key)
		if err != nil {
			return c, err
		}
		c.writes[oid] = val
	}
	return c, nil
}

// checkCrashedStore opens the store a child was killed on, checks it and
// every commit in commits, and returns its last TID.
func checkCrashedStore(t *testing.T, path string, commits []crashCommit) store.TID {
	t.Helper()
	db, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatalf("open after kill: %v", err)
	}
	defer db.Close()
	rep, err := db.Verify(t.Context(), storetest.Refs)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	for _, p := range rep.Problems {
		t.Errorf("verify: %s", p)
	}
	mustCheck(t, db)
	for _, c := range commits {
		checkCrashCommit(t, db, c)
	}
	if err := db.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	return db.LastTID()
}

func checkCrashCommit(t *testing.T, db *bolt.DB, c crashCommit) {
	t.Helper()
	ctx := t.Context()
	info, err := db.Transaction(ctx, c.tid)
	if err != nil {
		t.Errorf("reported commit %q: transaction: %v", c.line, err)
		return
	}
	want := slices.Sorted(func(yield func(store.OID) bool) {
		for oid := range c.writes {
			if !yield(oid) {
				return
			}
		}
	})
	if diff := cmp.Diff(info.OIDs, want); diff != "" {
		t.Errorf("reported commit %q: objects in the log (-got +want):\n%s", c.line, diff)
	}
	var referenced []store.Digest
	for oid, payload := range c.writes {
		rec, err := db.LoadAt(ctx, oid, c.tid)
		if err != nil {
			t.Errorf("reported commit %q: load %s: %v", c.line, oid, err)
			continue
		}
		if got := storetest.Payload(rec.Data); rec.Serial != c.tid || got != payload {
			t.Errorf("reported commit %q: %s is %q at %s, want %q at %s", c.line, oid, got, rec.Serial, payload, c.tid)
		}
		_, blobs, _ := storetest.Refs(rec.Data)
		referenced = append(referenced, blobs...)
	}
	for _, d := range c.blobs {
		if !slices.Contains(referenced, d) {
			t.Errorf("reported commit %q: no record refers to blob %s", c.line, d)
		}
		if err := readBlob(ctx, db, d); err != nil {
			t.Errorf("reported commit %q: %v", c.line, err)
		}
	}
}

// readBlob reads a blob to the end, which checks it against its digest.
func readBlob(ctx context.Context, db *bolt.DB, d store.Digest) error {
	rc, err := db.OpenBlob(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("read blob %s: %w", d, err)
	}
	return nil
}

// lineBuffer collects a child's stdout and signals its first line.
type lineBuffer struct {
	mu    sync.Mutex
	buf   []byte
	once  sync.Once
	first chan struct{}
}

func newLineBuffer() *lineBuffer { return &lineBuffer{first: make(chan struct{})} }

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	b.buf = append(b.buf, p...)
	complete := bytes.IndexByte(b.buf, '\n') >= 0
	b.mu.Unlock()
	if complete {
		b.once.Do(func() { close(b.first) })
	}
	return len(p), nil
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// lines returns the complete lines: one cut short by the kill is dropped.
func (b *lineBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	complete := b.buf[:bytes.LastIndexByte(b.buf, '\n')+1]
	if len(complete) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(complete), "\n"), "\n")
}

// TestCrashChild is the process TestCrashDurability kills. Without
// BATOS_CRASH_CHILD it does nothing.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		return
	}
	db, err := bolt.Open(path, nil)
	if err != nil {
		crashChildFail(err)
	}
	// The parent kills this process; the deadline only ends a child whose
	// parent died first.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out := &commitPrinter{}
	shared, err := db.NewOIDs(ctx, crashShared)
	if err != nil {
		crashChildFail(err)
	}
	var writes []store.Write
	for i, oid := range shared {
		writes = append(writes, store.Write{OID: oid, Data: storetest.Rec(fmt.Sprint("shared", i))})
	}
	tid, err := db.Commit(ctx, store.TxMeta{User: "crash child"}, writes)
	if err != nil {
		crashChildFail(err)
	}
	out.print(tid, writes, nil)
	var wg sync.WaitGroup
	for g := range crashWriters {
		wg.Go(func() {
			w := &crashWriter{db: db, g: g, shared: shared, out: out, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(g)))}
			if err := w.run(ctx); err != nil && ctx.Err() == nil {
				crashChildFail(err)
			}
		})
	}
	wg.Wait()
	db.Close()
}

// crashChildFail reports on stderr, which the parent checks, and exits
// before the parent's kill can hide the failure.
func crashChildFail(err error) {
	fmt.Fprintf(os.Stderr, "crash child: %v\n", err)
	os.Exit(2)
}

// commitPrinter prints one line per returned commit, whole lines only.
type commitPrinter struct{ mu sync.Mutex }

func (p *commitPrinter) print(tid store.TID, writes []store.Write, blobs []store.Digest) {
	var b strings.Builder
	b.WriteString(tid.String())
	for _, w := range writes {
		fmt.Fprintf(&b, " %s=%s", w.OID, storetest.Payload(w.Data))
	}
	for _, d := range blobs {
		fmt.Fprintf(&b, " blob=%s", d)
	}
	b.WriteByte('\n')
	p.mu.Lock()
	defer p.mu.Unlock()
	// One unbuffered write: the line is out before the next commit starts.
	os.Stdout.WriteString(b.String())
}

// crashWriter is one goroutine of the child: each commit creates objects,
// rewrites the writer's own objects and sometimes shared ones (retrying on
// conflict) or a record referring to a new blob.
type crashWriter struct {
	db     *bolt.DB
	g      int
	shared []store.OID
	out    *commitPrinter
	rng    *rand.Rand

	own map[store.OID]store.TID // the writer's objects and their serials
}

func (w *crashWriter) run(ctx context.Context) error {
	oids, err := w.db.NewOIDs(ctx, 2)
	if err != nil {
		return err
	}
	w.own = map[store.OID]store.TID{oids[0]: 0, oids[1]: 0}
	for i := 0; ctx.Err() == nil; i++ {
		if err := w.commit(ctx, fmt.Sprintf("g%d.%d", w.g, i)); err != nil {
			return err
		}
	}
	return nil
}

func (w *crashWriter) commit(ctx context.Context, tag string) error {
	fresh, err := w.db.NewOIDs(ctx, 1+w.rng.IntN(3))
	if err != nil {
		return err
	}
	var writes []store.Write
	for j, oid := range fresh {
		writes = append(writes, store.Write{OID: oid, Data: storetest.Rec(fmt.Sprint(tag, ".new", j), w.shared[0])})
	}
	for oid, serial := range w.own {
		writes = append(writes, store.Write{OID: oid, Serial: serial, Data: storetest.Rec(tag + ".own")})
	}
	var blobs []store.Digest
	if w.rng.IntN(12) == 0 {
		blob, err := w.putBlob(ctx)
		if err != nil {
			return err
		}
		writes[0].Data = storetest.RecBlobs(tag+".blob", blob.Digest)
		blobs = append(blobs, blob.Digest)
	}
	var shared []store.OID
	if w.rng.IntN(3) == 0 {
		shared = w.shared[:1+w.rng.IntN(len(w.shared))]
	}
	for attempt := 0; ; attempt++ {
		all := slices.Clone(writes)
		for _, oid := range shared {
			rec, err := w.db.Load(ctx, oid)
			if err != nil {
				return err
			}
			all = append(all, store.Write{OID: oid, Serial: rec.Serial, Data: storetest.Rec(fmt.Sprint(tag, ".shared", attempt))})
		}
		tid, err := w.db.Commit(ctx, store.TxMeta{User: tag}, all)
		// Only shared objects may conflict: a conflict on a fresh object
		// would mean NewOIDs handed out one that exists.
		var ce *store.ConflictError
		if errors.As(err, &ce) && subset(ce.OIDs, shared) {
			continue
		}
		if err != nil {
			return fmt.Errorf("commit %s: %w", tag, err)
		}
		for oid := range w.own {
			w.own[oid] = tid
		}
		w.out.print(tid, all, blobs)
		return nil
	}
}

func subset(oids, of []store.OID) bool {
	for _, o := range oids {
		if !slices.Contains(of, o) {
			return false
		}
	}
	return true
}

func (w *crashWriter) putBlob(ctx context.Context) (store.Blob, error) {
	content := make([]byte, 1+w.rng.IntN(16<<10))
	for i := range content {
		content[i] = byte(w.rng.Uint32())
	}
	return w.db.PutBlob(ctx, bytes.NewReader(content))
}

package library_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"batos/internal/catalog"
	"batos/internal/catalog/embed"
	"batos/internal/catalog/library"
	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/llm/llmtest"
	"batos/internal/store/bolt"
)

// crashDirEnv names the directory TestCrashChild adds files from: its
// image, index, cache and files live there.
const crashDirEnv = "BATOS_LIBRARY_CRASH_DIR"

const crashFiles = 400

// crashText is the content of file i: prose naming a word of its own.
func crashText(i int) string {
	return sentences(fmt.Sprintf("zebra%03d", i), 4+i%5)
}

// TestCrashMidAdd kills a process in the middle of adding many files
// with an embedding model: the image it leaves has each document whole
// or not at all, and the catalog opens again and finds every document
// it has.
func TestCrashMidAdd(t *testing.T) {
	dir := t.TempDir()
	for i := range crashFiles {
		writeFile(t, filepath.Join(dir, "files", fmt.Sprintf("f%03d.txt", i)), crashText(i))
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	added, deadline := 0, time.After(20*time.Second)
	for added < 5 {
		select {
		case line, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("the child ended after %d files before the kill\nstderr:\n%s", added, stderr.String())
			}
			if strings.HasPrefix(line, "added ") {
				added++
			}
		case <-deadline:
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the child added %d files in 20s\nstderr:\n%s", added, stderr.String())
		}
	}
	// Somewhere in the middle of the next few files.
	time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond)
	cmd.Process.Kill()
	for range lines { // drain, so the reader ends
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if ws, ok := exitStatus(err, &ee); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the child ended with %v, want killed\nstderr:\n%s", err, stderr.String())
	}

	s, err := bolt.Open(filepath.Join(dir, "live_image.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	db := image.New(s, nil)
	t.Cleanup(func() {
		imagetest.Verify(t, db)
		s.Close()
	})
	docs := checkWhole(t, db, fileContent)
	if len(docs) < 5 || len(docs) >= crashFiles {
		t.Fatalf("%d documents after the kill, want at least the 5 reported and fewer than all %d", len(docs), crashFiles)
	}
	t.Logf("%d documents of %d after the kill", len(docs), crashFiles)
	for _, d := range docs {
		_, ps, err := get(db, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if len(p.Vector) != dims || d.EmbedModel != model {
				t.Errorf("%s: chunk %d has a vector of %d dimensions by %q", d.Path, p.Position, len(p.Vector), d.EmbedModel)
			}
		}
	}

	// The catalog opens over what the child left, and its search finds
	// every document there is, and none that is not.
	l := openLibrary(t, db, &library.Options{IndexDir: filepath.Join(dir, "live_image.db.index"),
		Embedder: newEmbedder(t, &llmtest.Model{Dim: dims, Vectors: llmtest.WordVector}, nil)})
	have := map[string]bool{}
	for _, d := range docs {
		have[d.Path] = true
	}
	// Files are added in order: those after the last added are not there.
	for i := range min(len(docs)+20, crashFiles) {
		path := filepath.Join(dir, "files", fmt.Sprintf("f%03d.txt", i))
		res := search(t, l, library.Query{Text: fmt.Sprintf("zebra%03d", i), K: 3})
		found := false
		for _, h := range res.Hits {
			found = found || h.TextRank > 0 && h.Doc.Path == path
		}
		if found != have[path] {
			t.Errorf("%s: in the catalog %v, found by its word %v (%+v)", path, have[path], found, res.Hits)
		}
	}
}

// get reads a document and its chunks.
func get(db *image.DB, id string) (*catalog.Doc, []catalog.Passage, error) {
	var d *catalog.Doc
	var ps []catalog.Passage
	err := db.View(context.Background(), func(tx *image.Tx) (err error) {
		d, ps, err = catalog.Get(tx, id)
		return err
	})
	return d, ps, err
}

func exitStatus(err error, ee **exec.ExitError) (syscall.WaitStatus, bool) {
	if !errors.As(err, ee) {
		return 0, false
	}
	ws, ok := (*ee).Sys().(syscall.WaitStatus)
	return ws, ok
}

// TestCrashChild is the process TestCrashMidAdd kills: it adds the files
// in $BATOS_LIBRARY_CRASH_DIR/files, saying "added" after each. Without
// the variable it does nothing.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		return
	}
	// The parent kills this process; the deadline only ends a child
	// whose parent died first.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	s, err := bolt.Open(filepath.Join(dir, "live_image.db"), nil)
	if err != nil {
		fail(err)
	}
	db := image.New(s, nil)
	if _, err := db.Init(ctx); err != nil {
		fail(err)
	}
	cache, err := embed.OpenCache(filepath.Join(dir, "embeddings"))
	if err != nil {
		fail(err)
	}
	emb := embed.New(&llmtest.Model{Dim: dims, Vectors: llmtest.WordVector}, model, cache, nil)
	l, _, err := library.Open(ctx, db, &library.Options{IndexDir: filepath.Join(dir, "live_image.db.index"), Embedder: emb, Bounds: bounds})
	if err != nil {
		fail(err)
	}
	_, err = l.AddPaths(ctx, []string{filepath.Join(dir, "files")}, nil, func(o library.Outcome, done, total int, _, _ int64) {
		if !o.OK() {
			fail(fmt.Errorf("%s: %+v", o.Path, o))
		}
		fmt.Printf("added %d of %d\n", done, total)
	})
	fail(fmt.Errorf("the add ended before the kill: %v", err))
}

package bolt

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"batos/internal/store"
)

// The benchmarks below measure what the structural check costs on a large
// image, to decide what opening runs. BATOS_BENCH_IMAGE names an image to
// use (built there on first use, kept for later runs); without it one of
// benchObjects objects is built in a temporary directory.
//
//	go test -run=NONE -bench=Check -benchtime=5x ./internal/store/bolt
const benchObjects = 1_000_000

func benchImage(b *testing.B) string {
	b.Helper()
	path := os.Getenv("BATOS_BENCH_IMAGE")
	if path == "" {
		path = filepath.Join(b.TempDir(), "bench.db")
	}
	if _, err := os.Stat(path); err == nil {
		return path
	}
	ctx := context.Background()
	db, err := Open(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const batch = 100_000
	for done := 0; done < benchObjects; done += batch {
		oids, err := db.NewOIDs(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		writes := make([]store.Write, batch)
		for i, oid := range oids {
			// About the size of an image object of a few slots.
			writes[i] = store.Write{OID: oid, Data: fmt.Appendf(nil, `{"class":"oid:1","slots":{"name":"object-%d","count":%d,"weight":%g,"tags":["bench",%d],"active":true}}`, done+i, done+i, float64(done+i)/7, i%10)}
		}
		if _, err := db.Commit(ctx, store.TxMeta{User: "bench"}, writes); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

func BenchmarkCheckQuick(b *testing.B) { benchmarkCheck(b, false) }
func BenchmarkCheckFull(b *testing.B)  { benchmarkCheck(b, true) }

func benchmarkCheck(b *testing.B, deep bool) {
	path := benchImage(b)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	b.ResetTimer()
	for b.Loop() {
		pf, err := openPageFile(f)
		if err != nil {
			b.Fatal(err)
		}
		c := newPageCheck(pf, *pf.meta, deep)
		if err := c.run(); err != nil {
			b.Fatal(err)
		}
		if len(c.problems) > 0 {
			b.Fatalf("problems: %v", c.problems)
		}
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
}

// BenchmarkOpen opens and closes the image: what the check adds to.
func BenchmarkOpen(b *testing.B) {
	path := benchImage(b)
	for b.Loop() {
		db, err := Open(path, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

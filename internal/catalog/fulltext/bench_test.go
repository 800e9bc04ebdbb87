package fulltext

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2/index/scorch"
)

var (
	benchEntries = flag.Int("fulltext.entries", 100_000, "entries in BenchmarkSearch's index")
	benchDir     = flag.String("fulltext.dir", "", "keep BenchmarkSearch's index in this directory, and reuse it when it is there")
)

// corpus makes English-shaped text: stop words about as often as in
// English prose, and content words (made-up, from syllables) drawn from a
// Zipf distribution whose head is as common as English's commonest content
// words (the commonest in about half of all chunks).
type corpus struct {
	r     *rand.Rand
	zipf  *rand.Zipf
	vocab []string
}

var stopWords = strings.Fields("the of and a to in is that it for was on are as with be at by this have from or an but not they which you were all")

func newCorpus(seed uint64) *corpus {
	r := rand.New(rand.NewPCG(seed, 1))
	const vocab = 30_000
	c := &corpus{r: r, zipf: rand.NewZipf(r, 1.07, 10, vocab-1)}
	syll := strings.Fields("ba ke lo mi nu ra se ti vo zu da fe go hi ju pa qui ro sa te")
	for i := range vocab {
		var b strings.Builder
		for n := i + len(syll); n > 0; n /= len(syll) {
			b.WriteString(syll[n%len(syll)])
		}
		b.WriteString("n") // a consonant end keeps Porter from merging words
		c.vocab = append(c.vocab, b.String())
	}
	return c
}

func (c *corpus) word() string { return c.vocab[c.zipf.Uint64()] }

// text returns n words of prose, in sentences.
func (c *corpus) text(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		if c.r.Float64() < 0.45 {
			b.WriteString(stopWords[c.r.IntN(len(stopWords))])
		} else {
			b.WriteString(c.word())
		}
		if c.r.IntN(15) == 0 {
			b.WriteByte('.')
		}
	}
	b.WriteByte('.')
	return b.String()
}

// entries returns chunks [from, to) of documents of ten chunks each.
func (c *corpus) entries(from, to int) []Entry {
	es := make([]Entry, 0, to-from)
	for i := from; i < to; i++ {
		doc := fmt.Sprintf("d%d", i/10)
		es = append(es, Entry{
			ID:     fmt.Sprintf("c%d", i),
			Title:  c.text(4),
			Text:   c.text(150),
			Fields: map[string]string{"kind": "chunk", "doc": doc, "meta.lang": "en"},
		})
	}
	return es
}

// fill puts n entries in batches and returns the entries per second of
// Put.
func fill(tb testing.TB, ix *Index, c *corpus, n, batch int) float64 {
	tb.Helper()
	var took time.Duration
	for i := 0; i < n; i += batch {
		es := c.entries(i, min(n, i+batch))
		start := time.Now()
		if err := ix.Put(es); err != nil {
			tb.Fatal(err)
		}
		took += time.Since(start)
	}
	return float64(n) / took.Seconds()
}

// The index BenchmarkSearch searches is built once per process.
var big struct {
	once sync.Once
	dir  string
	ix   *Index
	rate float64
	err  error
}

func bigIndex(b *testing.B) *Index {
	big.once.Do(func() {
		if *benchDir != "" {
			if big.ix, big.err = Open(*benchDir); big.err == nil {
				b.Logf("reusing the index in %s", *benchDir)
				return
			}
			big.ix, big.err = Create(*benchDir)
		} else if big.dir, big.err = os.MkdirTemp("", "fulltext-bench"); big.err == nil {
			big.ix, big.err = Create(filepath.Join(big.dir, "text"))
		}
		if big.err != nil {
			return
		}
		start := time.Now()
		big.rate = fill(b, big.ix, newCorpus(1), *benchEntries, 500)
		b.Logf("indexed %d entries in %v: %.0f entries/s in Put", *benchEntries, time.Since(start).Round(time.Millisecond), big.rate)
		start = time.Now()
		segs := settle(b, big.ix)
		b.Logf("merges settled after %v more: %d segments", time.Since(start).Round(time.Millisecond), segs)
	})
	if big.err != nil {
		b.Fatal(big.err)
	}
	return big.ix
}

// settle waits for scorch's background merging and persisting to finish,
// so that searches are timed on a quiet index, and returns the number of
// segments.
func settle(tb testing.TB, ix *Index) uint64 {
	tb.Helper()
	adv, err := ix.bi.Advanced()
	if err != nil {
		tb.Fatal(err)
	}
	s := adv.(*scorch.Scorch)
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		m := s.StatsMap()
		if active, _ := m["index_bgthreads_active"].(bool); !active {
			n, _ := m["num_root_filesegments"].(uint64)
			return n
		}
	}
	tb.Fatal("merging did not settle in 5 minutes")
	return 0
}

func TestMain(m *testing.M) {
	code := m.Run()
	if big.ix != nil {
		big.ix.Close()
	}
	if big.dir != "" {
		os.RemoveAll(big.dir)
	}
	os.Exit(code)
}

// BenchmarkSearch searches an index of -fulltext.entries chunks of 150
// words with queries of three content words, as the catalog's hybrid
// search does (filtered to chunks, 40 deep, with fragments) and plainly
// (10 hits, no filter, no fragments); it reports the median and 99th
// percentile latency.
func BenchmarkSearch(b *testing.B) {
	ix := bigIndex(b)
	for _, bc := range []struct {
		name string
		q    Query
	}{
		{"hybrid", Query{K: 40, Filter: map[string]string{"kind": "chunk"}, Snippet: true}},
		{"plain", Query{K: 10}},
		{"doc", Query{K: 10, Filter: map[string]string{"doc": "d4242"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := newCorpus(2)
			lat := make([]time.Duration, 0, b.N)
			ctx := context.Background()
			cpu := cpuTime(b)
			b.ResetTimer()
			for range b.N {
				q := bc.q
				q.Text = c.word() + " " + c.word() + " " + c.word()
				start := time.Now()
				if _, err := ix.Search(ctx, q); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime(b)-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkPut puts batches of new entries into a growing index, b.N
// batches of 500 (a rebuild that gathers documents) or of 10 (a document
// at a time), and reports entries per second of Put and per second of
// the process's CPU (which includes making the entries).
func BenchmarkPut(b *testing.B) {
	for _, batch := range []int{500, 10} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ix, err := Create(filepath.Join(b.TempDir(), "text"))
			if err != nil {
				b.Fatal(err)
			}
			defer ix.Close()
			c := newCorpus(3)
			cpu := cpuTime(b)
			b.ResetTimer()
			rate := fill(b, ix, c, batch*b.N, batch)
			b.StopTimer()
			b.ReportMetric(rate, "entries/s")
			b.ReportMetric(float64(batch*b.N)/(cpuTime(b)-cpu).Seconds(), "entries/cpu-s")
		})
	}
}

// cpuTime returns the CPU time the process has used, which other work on
// the machine does not inflate as it does latency.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

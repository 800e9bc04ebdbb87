package vector

import (
	"flag"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/coder/hnsw"
)

// The measurements the package comment quotes, at the catalog's scale:
//
//	go test -run Big -v -timeout 60m ./internal/catalog/vector -vector.big
//
// They take minutes and many hundreds of MB, so they are off by default.
// Timings are reported, never tested; recall is held to the catalog's
// 0.95 on clustered vectors.
var (
	big      = flag.Bool("vector.big", false, "measure at -vector.n vectors (minutes)")
	bigN     = flag.Int("vector.n", 100_000, "vectors for -vector.big")
	bigDims  = flag.Int("vector.dims", 384, "dimensions for -vector.big")
	bigEfs   = flag.String("vector.efs", "16,32,48,64,96,128", "efSearch values whose recall -vector.big lists")
	bigEfc   = flag.Int("vector.efc", efConstruction, "efConstruction for -vector.big")
	bigCoder = flag.Bool("vector.coder", false, "with -vector.big, also measure coder/hnsw's own Graph")
)

func TestBig(t *testing.T) {
	if !*big {
		t.Skip("measurements; run with -vector.big")
	}
	t.Run("clustered", func(t *testing.T) { measure(t, clustered(*bigDims, 1), true) })
	t.Run("uniform", func(t *testing.T) { measure(t, uniform(*bigDims, 1), false) })
	if *bigCoder {
		t.Run("coder-hnsw", func(t *testing.T) { measureCoder(t, clustered(*bigDims, 1)) })
	}
}

func measure(t *testing.T, c *corpus, files bool) {
	n, dims := *bigN, *bigDims
	base := heapInUse()
	ix := New(dims)
	ix.g.efc = *bigEfc
	start, cpu := time.Now(), cpuTime()
	for i := range n {
		// Vectors are made one at a time and dropped, so that the heap
		// measured is the index's.
		if err := ix.Add(uint64(i), c.next()); err != nil {
			t.Fatal(err)
		}
	}
	took, cpu := time.Since(start), cpuTime()-cpu
	t.Logf("insert %d×%d (efConstruction %d): %v, %.0f vectors/s; CPU time %v (%.0f vectors/CPU-s); load average %s",
		n, dims, ix.g.efc, took.Round(time.Millisecond), float64(n)/took.Seconds(), cpu.Round(time.Millisecond), float64(n)/cpu.Seconds(), loadAverage())
	t.Logf("heap in use: %.1f MB (vectors alone %.1f MB)", float64(heapInUse()-base)/1e6, float64(n*dims*4)/1e6)

	queries := c.take(300)
	// Vague queries are farther from every chunk than chunks are from
	// each other, as a short question is from the passages that answer it.
	vague := make([][]float32, 300)
	for i := range vague {
		vague[i] = c.vague()
	}
	for _, ef := range splitInts(*bigEfs) {
		ix.ef = ef
		rc, err := Recall(ix, queries, 10)
		if err != nil {
			t.Fatal(err)
		}
		rv, _ := Recall(ix, vague, 10)
		p50, p99 := latency(t, ix, queries)
		t.Logf("efSearch %3d: recall@10 %.4f (vague queries %.4f), search p50 %v, p99 %v", ef, rc, rv, p50, p99)
	}
	ix.ef = efSearch
	rc, _ := Recall(ix, queries, 10)
	p50, p99 := latency(t, ix, queries)
	t.Logf("as shipped, efSearch %d: recall@10 %.4f, search p50 %v, p99 %v", efSearch, rc, p50, p99)
	// How much worse the misses are: the mean score of Search's ten
	// against Exact's.
	var sa, se float64
	for _, q := range queries {
		a, _ := ix.Search(q, 10)
		b, _ := ix.Exact(q, 10)
		for i := range b {
			sa += float64(a[i].Score)
			se += float64(b[i].Score)
		}
	}
	t.Logf("mean score of the top 10: Search %.4f, Exact %.4f", sa/float64(10*len(queries)), se/float64(10*len(queries)))
	var lat []time.Duration
	for _, q := range queries[:50] {
		s := time.Now()
		ix.Exact(q, 10)
		lat = append(lat, time.Since(s))
	}
	slices.Sort(lat)
	t.Logf("Exact p50 %v", lat[len(lat)/2])
	if files && rc < 0.95 {
		t.Errorf("recall@10 %.4f on clustered vectors, want >= 0.95", rc)
	}
	if !files {
		return
	}

	path := filepath.Join(t.TempDir(), "vectors")
	start = time.Now()
	if err := ix.Save(path); err != nil {
		t.Fatal(err)
	}
	saved := time.Since(start)
	fi, _ := os.Stat(path)
	// The best of three: the first may read the disk, the others the page
	// cache, as a Load at start-up usually does after a Save at shutdown.
	var got *Index
	loaded := time.Hour
	for range 3 {
		got = nil
		heapInUse()
		start = time.Now()
		var err error
		if got, err = Load(path); err != nil {
			t.Fatal(err)
		}
		loaded = min(loaded, time.Since(start))
	}
	t.Logf("Save %v, Load %v, file %.1f MB; rebuilding by insertion instead of Load: %v",
		saved.Round(time.Millisecond), loaded.Round(time.Millisecond), float64(fi.Size())/1e6, took.Round(time.Second))
	for _, q := range queries[:20] {
		a, _ := ix.Search(q, 10)
		b, _ := got.Search(q, 10)
		if !slices.Equal(a, b) {
			t.Fatalf("loaded index answers differently")
		}
	}
	check(t, got)
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return string(b[:min(len(b), 14)])
}

func latency(t *testing.T, ix *Index, queries [][]float32) (p50, p99 time.Duration) {
	var lat []time.Duration
	for range 3 {
		for _, q := range queries {
			s := time.Now()
			if _, err := ix.Search(q, 10); err != nil {
				t.Fatal(err)
			}
			lat = append(lat, time.Since(s))
		}
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}

// heapInUse returns the live heap. It collects twice: a sync.Pool (an
// Index has one) keeps its owner reachable until the second collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// measureCoder measures coder/hnsw v0.6.1's own Graph on the same
// vectors: why this package keeps its own graph (see the package
// comment).
func measureCoder(t *testing.T, c *corpus) {
	n := *bigN
	vs := c.take(n)
	queries := c.take(200)
	ix := build(t, *bigDims, vs)
	truth := make([][]Hit, len(queries))
	for i, q := range queries {
		truth[i], _ = ix.Exact(q, 10)
	}
	for _, p := range []struct{ m, ef int }{{16, 20}, {16, 100}, {32, 100}} {
		g := hnsw.NewGraph[uint64]()
		g.M, g.EfSearch, g.Rng = p.m, p.ef, rand.New(rand.NewSource(1))
		start := time.Now()
		for i, v := range vs {
			g.Add(hnsw.MakeNode(uint64(i), v))
		}
		took := time.Since(start)
		for _, k := range []int{10, 100} {
			var found, all int
			var lat []time.Duration
			for i, q := range queries {
				s := time.Now()
				res := g.Search(q, k)
				lat = append(lat, time.Since(s))
				in := map[uint64]bool{}
				for _, r := range res {
					in[r.Key] = true
				}
				for _, h := range truth[i] {
					all++
					if in[h.Key] {
						found++
					}
				}
			}
			slices.Sort(lat)
			t.Logf("coder/hnsw M=%d EfSearch=%d: insert %.0f/s; Search(q, %d) recall@10 %.3f, p50 %v",
				p.m, p.ef, float64(n)/took.Seconds(), k, float64(found)/float64(all), lat[len(lat)/2])
		}
		path := filepath.Join(t.TempDir(), "graph")
		sg := &hnsw.SavedGraph[uint64]{Graph: g, Path: path}
		start = time.Now()
		if err := sg.Save(); err != nil {
			t.Fatal(err)
		}
		exported := time.Since(start)
		start = time.Now()
		if _, err := hnsw.LoadSavedGraph[uint64](path); err != nil {
			t.Fatal(err)
		}
		t.Logf("coder/hnsw M=%d: Export %v, Import %v", p.m, exported.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}
}

func splitInts(s string) []int {
	var out []int
	n, in := 0, false
	for _, c := range s + "," {
		if c >= '0' && c <= '9' {
			n, in = n*10+int(c-'0'), true
		} else if in {
			out = append(out, n)
			n, in = 0, false
		}
	}
	return out
}

// benchN is the size of the index the benchmarks use: big enough that
// Search takes the graph, small enough to build in seconds.
const benchN = 10_000

func BenchmarkSearch(b *testing.B) {
	c := clustered(384, 1)
	ix := build(b, 384, c.take(benchN))
	qs := c.take(256)
	i := 0
	for b.Loop() {
		if _, err := ix.Search(qs[i%len(qs)], 10); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkAdd(b *testing.B) {
	c := clustered(384, 1)
	ix := build(b, 384, c.take(benchN))
	vs := c.take(4096)
	i := 0
	for b.Loop() {
		if err := ix.Add(uint64(benchN+i), vs[i%len(vs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

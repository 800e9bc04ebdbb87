package vector

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func TestRecall(t *testing.T) {
	const dims = 384
	for _, tc := range []struct {
		name string
		n    int
		c    *corpus
		want float64
	}{
		{"clustered", 2500, clustered(dims, 1), 0.95},
		// Uniform vectors are the hard case (the package comment says
		// why); they are held only to a floor that catches a broken graph.
		{"uniform", 1500, uniform(dims, 1), 0.6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := tc.n
			ix := build(t, dims, tc.c.take(n))
			got, err := Recall(ix, tc.c.take(100), 10)
			if err != nil {
				t.Fatal(err)
			}
			vague := make([][]float32, 100)
			for i := range vague {
				vague[i] = tc.c.vague()
			}
			gotVague, err := Recall(ix, vague, 10)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("recall@10 at %d×%d: %.4f, vague queries %.4f", n, dims, got, gotVague)
			if got < tc.want || gotVague < tc.want {
				t.Errorf("recall@10 = %.4f, vague queries %.4f; want >= %.2f", got, gotVague, tc.want)
			}
			check(t, ix)
		})
	}
}

func TestSearchOrderAndScores(t *testing.T) {
	c := clustered(32, 2)
	vs := c.take(1000)
	ix := build(t, 32, vs)
	ix.scanBelow = 0
	q := c.next()
	for _, search := range []func([]float32, int) ([]Hit, error){ix.Search, ix.Exact} {
		hs, err := search(q, 20)
		if err != nil {
			t.Fatal(err)
		}
		if len(hs) != 20 {
			t.Fatalf("got %d hits, want 20", len(hs))
		}
		for i, h := range hs {
			if want := cosine(q, vs[h.Key]); math.Abs(float64(h.Score)-want) > 1e-5 {
				t.Errorf("hit %d, key %d: score %v, want %v", i, h.Key, h.Score, want)
			}
			if i > 0 && h.Score > hs[i-1].Score {
				t.Errorf("hit %d scores %v, over hit %d's %v", i, h.Score, i-1, hs[i-1].Score)
			}
		}
	}
	// The vector itself is its own nearest, at cosine 1.
	hs, _ := ix.Search(vs[7], 1)
	if len(hs) != 1 || hs[0].Key != 7 || math.Abs(float64(hs[0].Score)-1) > 1e-5 {
		t.Errorf("Search(vs[7], 1) = %v, want key 7 at 1", hs)
	}
}

// cosine is the reference similarity, in float64.
func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

func TestAddReplaces(t *testing.T) {
	c := clustered(16, 3)
	ix := build(t, 16, c.take(800))
	ix.scanBelow = 0
	old, repl := c.next(), c.next()
	if err := ix.Add(5, old); err != nil {
		t.Fatal(err)
	}
	if err := ix.Add(5, repl); err != nil {
		t.Fatal(err)
	}
	if got := ix.Len(); got != 800 {
		t.Errorf("Len() = %d after replacing, want 800", got)
	}
	hs, _ := ix.Search(repl, 1)
	if len(hs) != 1 || hs[0].Key != 5 || hs[0].Score < 0.9999 {
		t.Errorf("Search(new vector) = %v, want key 5 at 1", hs)
	}
	hs, _ = ix.Exact(old, 800)
	for _, h := range hs {
		if h.Key == 5 && h.Score > 0.9999 && cosine(old, repl) < 0.999 {
			t.Errorf("the replaced vector is still found: %v", h)
		}
	}
	check(t, ix)
}

func TestAddKeepsNoReference(t *testing.T) {
	ix := New(4)
	v := []float32{1, 0, 0, 0}
	if err := ix.Add(1, v); err != nil {
		t.Fatal(err)
	}
	v[0], v[1] = 0, 1
	hs, _ := ix.Search([]float32{1, 0, 0, 0}, 1)
	if len(hs) != 1 || hs[0].Score < 0.9999 {
		t.Errorf("after the caller changed its slice: %v, want key 1 at 1", hs)
	}
}

func TestScaleDoesNotMatter(t *testing.T) {
	ix := New(3)
	ix.Add(1, []float32{1e30, 2e30, 3e30}) // squares overflow float32
	ix.Add(2, []float32{1e-30, -2e-30, 0})
	hs, err := ix.Search([]float32{1, 2, 3}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 2 || hs[0].Key != 1 || math.Abs(float64(hs[0].Score)-1) > 1e-6 {
		t.Errorf("got %v, want key 1 at 1 first", hs)
	}
	check(t, ix)
}

func TestDelete(t *testing.T) {
	c := clustered(16, 4)
	vs := c.take(1000)
	ix := build(t, 16, vs)
	ix.scanBelow = 0
	if !ix.Delete(10) {
		t.Error("Delete(10) = false, want true")
	}
	if ix.Delete(10) {
		t.Error("Delete(10) again = true, want false")
	}
	if ix.Delete(5000) {
		t.Error("Delete(absent) = true, want false")
	}
	if got := ix.Len(); got != 999 {
		t.Errorf("Len() = %d, want 999", got)
	}
	for _, search := range []func([]float32, int) ([]Hit, error){ix.Search, ix.Exact} {
		hs, _ := search(vs[10], 5)
		for _, h := range hs {
			if h.Key == 10 {
				t.Errorf("deleted key 10 found: %v", hs)
			}
		}
	}
	// A deleted key can come back.
	ix.Add(10, vs[10])
	if hs, _ := ix.Search(vs[10], 1); len(hs) != 1 || hs[0].Key != 10 {
		t.Errorf("re-added key 10 not found first: %v", hs)
	}
	check(t, ix)
}

// TestManyDeletes deletes most of an index in random order, searching
// as it goes: no deleted key comes back, recall holds, and the graph is
// rebuilt when the dead outnumber the living.
func TestManyDeletes(t *testing.T) {
	const n, dims = 2000, 32
	c := clustered(dims, 5)
	ix := build(t, dims, c.take(n))
	ix.scanBelow = 0 // the graph even when few are left
	r := rand.New(rand.NewPCG(5, 5))
	order := r.Perm(n)
	deleted := map[uint64]bool{}
	queries := c.take(20)
	compacted := false
	for i, k := range order[:n-50] {
		ix.Delete(uint64(k))
		deleted[uint64(k)] = true
		if ix.g.dead == 0 {
			compacted = true
		}
		if i%200 != 0 {
			continue
		}
		for _, q := range queries {
			hs, err := ix.Search(q, 10)
			if err != nil {
				t.Fatal(err)
			}
			if want := min(10, n-len(deleted)); len(hs) != want {
				t.Fatalf("after %d deletes: %d hits, want %d", i+1, len(hs), want)
			}
			for _, h := range hs {
				if deleted[h.Key] {
					t.Fatalf("after %d deletes: deleted key %d found", i+1, h.Key)
				}
			}
		}
		rc, err := Recall(ix, queries, 10)
		if err != nil {
			t.Fatal(err)
		}
		if rc < 0.9 {
			t.Errorf("after %d deletes: recall %.3f", i+1, rc)
		}
	}
	if !compacted {
		t.Error("the graph was never rebuilt")
	}
	if got := ix.Len(); got != 50 {
		t.Errorf("Len() = %d, want 50", got)
	}
	check(t, ix)
}

func TestDeleteAll(t *testing.T) {
	for _, n := range []int{1, 7, 600} {
		c := clustered(8, 6)
		ix := build(t, 8, c.take(n))
		for k := range n {
			ix.Delete(uint64(k))
		}
		for _, search := range []func([]float32, int) ([]Hit, error){ix.Search, ix.Exact} {
			if hs, err := search(c.next(), 3); err != nil || len(hs) != 0 {
				t.Errorf("n=%d: search of an emptied index = %v, %v", n, hs, err)
			}
		}
		// and it fills again
		ix.Add(1, c.next())
		if hs, _ := ix.Search(c.next(), 3); len(hs) != 1 {
			t.Errorf("n=%d: %d hits after one Add, want 1", n, len(hs))
		}
		check(t, ix)
	}
}

func TestErrDims(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, tc := range []struct {
		name string
		v    []float32
	}{
		{"nil", nil},
		{"empty", []float32{}},
		{"short", []float32{1, 2}},
		{"long", []float32{1, 2, 3, 4}},
		{"NaN", []float32{1, nan, 3}},
		{"+Inf", []float32{inf, 0, 0}},
		{"-Inf", []float32{0, -inf, 0}},
		{"zero", []float32{0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := New(3)
			ix.Add(1, []float32{1, 0, 0})
			if err := ix.Add(2, tc.v); !errors.Is(err, ErrDims) {
				t.Errorf("Add: %v, want ErrDims", err)
			}
			if _, err := ix.Search(tc.v, 1); !errors.Is(err, ErrDims) {
				t.Errorf("Search: %v, want ErrDims", err)
			}
			if _, err := ix.Exact(tc.v, 1); !errors.Is(err, ErrDims) {
				t.Errorf("Exact: %v, want ErrDims", err)
			}
			if ix.Len() != 1 {
				t.Errorf("Len() = %d after a refused Add, want 1", ix.Len())
			}
			check(t, ix)
		})
	}
}

func TestNewPanicsOnBadDims(t *testing.T) {
	for _, dims := range []int{0, -1, maxDims + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d) did not panic", dims)
				}
			}()
			New(dims)
		}()
	}
}

func TestSmallAndEmpty(t *testing.T) {
	ix := New(4)
	for _, search := range []func([]float32, int) ([]Hit, error){ix.Search, ix.Exact} {
		if hs, err := search([]float32{1, 2, 3, 4}, 10); err != nil || len(hs) != 0 {
			t.Errorf("empty index: %v, %v; want no hits", hs, err)
		}
	}
	ix.Add(1, []float32{1, 0, 0, 0})
	ix.Add(2, []float32{0, 1, 0, 0})
	ix.Add(3, []float32{0, 0, 1, 0})
	for _, k := range []int{0, -3} {
		if hs, err := ix.Search([]float32{1, 0, 0, 0}, k); err != nil || len(hs) != 0 {
			t.Errorf("k=%d: %v, %v; want no hits", k, hs, err)
		}
	}
	hs, err := ix.Search([]float32{1, 1, 0, 0}, 100)
	if err != nil {
		t.Fatal(err)
	}
	// 1 and 2 tie at 0.707; ties go by key.
	want := []uint64{1, 2, 3}
	if got := keys(hs); !slices.Equal(got, want) {
		t.Errorf("k > Len: keys %v, want %v", got, want)
	}
}

// TestKOverLenOnTheGraph asks the graph (not a scan) for more than there is.
func TestKOverLenOnTheGraph(t *testing.T) {
	c := clustered(16, 7)
	ix := build(t, 16, c.take(700))
	ix.scanBelow = 0
	for _, k := range []int{699, 700, 701, 5000} {
		hs, err := ix.Search(c.next(), k)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(k, 700); len(hs) != want {
			t.Errorf("k=%d: %d hits, want %d", k, len(hs), want)
		}
	}
}

func keys(hs []Hit) []uint64 {
	var out []uint64
	for _, h := range hs {
		out = append(out, h.Key)
	}
	return out
}

// TestConcurrent searches while other goroutines add and delete; run
// with -race.
func TestConcurrent(t *testing.T) {
	const dims = 16
	c := clustered(dims, 8)
	ix := build(t, dims, c.take(1000))
	queries := c.take(50)
	adds := c.take(600)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i, v := range adds {
			if err := ix.Add(uint64(1000+i), v); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		for k := range 500 {
			ix.Delete(uint64(k))
		}
	})
	for range 2 {
		wg.Go(func() {
			for i := range 300 {
				q := queries[i%len(queries)]
				if _, err := ix.Search(q, 10); err != nil {
					t.Error(err)
					return
				}
				if i%50 == 0 {
					ix.Exact(q, 5)
					ix.Len()
				}
			}
		})
	}
	wg.Wait()
	if got := ix.Len(); got != 1100 {
		t.Errorf("Len() = %d, want 1100", got)
	}
	check(t, ix)
}

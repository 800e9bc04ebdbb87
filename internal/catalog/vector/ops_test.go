package vector

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// opsDims is small so that the fuzzer's bytes make whole vectors, and a
// few distinct values make many ties.
const opsDims = 4

// runOps interprets b as adds, replaces, deletes and searches on an index
// whose searches always use the graph and which rebuilds early, checking
// each answer against a plain map of the vectors.
func runOps(t *testing.T, b []byte) {
	ix := New(opsDims)
	ix.scanBelow, ix.compactMin = 0, 4
	model := map[uint64][]float32{}
	next := func() byte {
		if len(b) == 0 {
			return 0
		}
		c := b[0]
		b = b[1:]
		return c
	}
	vec := func() []float32 {
		v := make([]float32, opsDims)
		for i := range v {
			v[i] = float32(int8(next())) / 16
		}
		return v
	}
	for len(b) > 0 {
		op, key := next(), uint64(next()%48)
		switch op % 4 {
		case 0, 1:
			v := vec()
			err := ix.Add(key, v)
			if isZero(v) {
				if !errors.Is(err, ErrDims) {
					t.Fatalf("Add(zero vector) = %v, want ErrDims", err)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			model[key] = v
		case 2:
			_, had := model[key]
			if got := ix.Delete(key); got != had {
				t.Fatalf("Delete(%d) = %v, want %v", key, got, had)
			}
			delete(model, key)
		case 3:
			q := vec()
			if isZero(q) {
				continue
			}
			k := int(key%12) + 1
			checkSearch(t, ix, model, q, k)
		}
		if ix.Len() != len(model) {
			t.Fatalf("Len() = %d, want %d", ix.Len(), len(model))
		}
	}
	check(t, ix)
}

func isZero(v []float32) bool {
	return !slices.ContainsFunc(v, func(x float32) bool { return x != 0 })
}

// checkSearch checks Search and Exact for q against the model: Exact's
// scores are the model's best, rank for rank (keys may differ in ties);
// Search's hits are live, scored right, best first, and as many.
func checkSearch(t *testing.T, ix *Index, model map[uint64][]float32, q []float32, k int) {
	t.Helper()
	var want []float64
	for _, v := range model {
		want = append(want, cosine(q, v))
	}
	slices.SortFunc(want, func(a, b float64) int {
		if a > b {
			return -1
		}
		if a < b {
			return 1
		}
		return 0
	})
	want = want[:min(k, len(want))]
	exact, err := ix.Exact(q, k)
	if err != nil {
		t.Fatal(err)
	}
	if len(exact) != len(want) {
		t.Fatalf("Exact: %d hits, want %d", len(exact), len(want))
	}
	for i, h := range exact {
		if math.Abs(float64(h.Score)-want[i]) > 1e-5 {
			t.Fatalf("Exact hit %d scores %v, want %v", i, h.Score, want[i])
		}
	}
	approx, err := ix.Search(q, k)
	if err != nil {
		t.Fatal(err)
	}
	if len(approx) != len(want) {
		t.Fatalf("Search: %d hits, want %d", len(approx), len(want))
	}
	seen := map[uint64]bool{}
	for i, h := range approx {
		v, ok := model[h.Key]
		if !ok || seen[h.Key] {
			t.Fatalf("Search hit %d: key %d absent or repeated", i, h.Key)
		}
		seen[h.Key] = true
		if math.Abs(float64(h.Score)-cosine(q, v)) > 1e-5 {
			t.Fatalf("Search hit %d, key %d: score %v, want %v", i, h.Key, h.Score, cosine(q, v))
		}
		if i > 0 && h.Score > approx[i-1].Score {
			t.Fatalf("Search hits out of order: %v", approx)
		}
	}
}

func TestOps(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	for range 25 {
		b := make([]byte, 3000)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		runOps(t, b)
	}
}

func FuzzOps(f *testing.F) {
	f.Add([]byte{0, 1, 10, 20, 30, 40, 3, 0, 10, 20, 30, 40})
	f.Add([]byte{0, 1, 1, 0, 0, 0, 2, 1, 0, 1, 1, 0, 0, 0, 3, 5, 1, 0, 0, 0})
	f.Fuzz(runOps)
}

package bench

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"batos/internal/catalog"
	"batos/internal/image"
	"batos/internal/store"
)

// The two references bench catalog measures its indexes against: the
// scan that answers a query from the image alone, and the exact nearest
// neighbours that the vector index's recall is counted against.

// scanSearch is the search without indexes, the baseline of bench
// catalog: in one read transaction it lists the catalog's documents,
// loads every chunk object of each and reads its text, counts the
// occurrences of the query's words in the lower-cased text, and returns
// the k chunks with the most, best first (ties by OID). Its cost grows
// with the catalog: N object loads and text scans per query. It reads
// the text slot alone (not the embedding catalog.Get would decode), so
// that the baseline pays for no work a scan does not need.
//
// The prototype batos grew from searched its catalog differently: a word
// index gave the matching chunks' object IDs, unranked, and for each of
// the first k of them the search walked the whole chunk table from its
// start, comparing IDs, to find the chunk — O(N) per result, but reading
// references rather than texts. This scan is the brute-force answer from
// the image, not a port of that code.
func scanSearch(ctx context.Context, db *image.DB, query string, k int) ([]scanHit, error) {
	terms := scanTerms(query)
	var best []scanHit
	err := db.View(ctx, func(tx *image.Tx) error {
		docs, err := catalog.List(tx)
		if err != nil {
			return err
		}
		for _, d := range docs {
			for _, oid := range d.Chunks {
				text, err := chunkText(tx, oid)
				if err != nil {
					return err
				}
				text = strings.ToLower(text)
				n := 0
				for _, t := range terms {
					n += strings.Count(text, t)
				}
				if n > 0 {
					best = keepBest(best, scanHit{oid, n}, k)
				}
			}
		}
		return nil
	})
	return best, err
}

// chunkSlotText is the slot of a chunk object holding its text, as
// catalog.Write records it.
const chunkSlotText = "text"

// chunkText loads chunk object oid and returns its text.
func chunkText(tx *image.Tx, oid store.OID) (string, error) {
	o, err := tx.Object(oid)
	if err != nil {
		return "", err
	}
	v, _ := o.Peek(chunkSlotText)
	s, ok := v.(image.String)
	if !ok {
		return "", fmt.Errorf("bench: chunk %s has no %s slot holding a string", oid, chunkSlotText)
	}
	return string(s), nil
}

// scanHit is a chunk the scan found and its count of query words.
type scanHit struct {
	chunk store.OID
	count int
}

// keepBest inserts h into best, sorted most first and at most k long.
func keepBest(best []scanHit, h scanHit, k int) []scanHit {
	i, _ := slices.BinarySearchFunc(best, h, func(a, b scanHit) int {
		if a.count != b.count {
			return cmp.Compare(b.count, a.count)
		}
		return cmp.Compare(a.chunk, b.chunk)
	})
	if i >= k {
		return best
	}
	best = slices.Insert(best, i, h)
	return best[:min(len(best), k)]
}

// scanTerms are the distinct lower-cased words of a query but the
// corpus's common words and the queries' frame, as a word index with a
// stop list would keep.
func scanTerms(query string) []string {
	common := map[string]bool{}
	for _, w := range slices.Concat(corpusCommon, corpusQueryFrame) {
		common[w] = true
	}
	var terms []string
	for _, w := range strings.FieldsFunc(strings.ToLower(query), notLetter) {
		if !common[w] && !slices.Contains(terms, w) {
			terms = append(terms, w)
		}
	}
	return terms
}

// exactNearest returns, for each query, the keys of the k rows of vecs
// (unit vectors of dims components, row i under keys[i]) with the highest
// cosine similarity to it, best first: brute force, the truth recall is
// counted against. Queries are split among the CPUs.
func exactNearest(vecs []float32, keys []store.OID, dims int, queries [][]float32, k int) [][]store.OID {
	out := make([][]store.OID, len(queries))
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for qi := w; qi < len(queries); qi += workers {
				out[qi] = nearest(vecs, keys, dims, queries[qi], k)
			}
		})
	}
	wg.Wait()
	return out
}

// nearest is exactNearest for one query.
func nearest(vecs []float32, keys []store.OID, dims int, q []float32, k int) []store.OID {
	type cand struct {
		key store.OID
		sim float32
	}
	var best []cand // sorted, highest first
	for i := range keys {
		s := dot(q, vecs[i*dims:(i+1)*dims])
		if len(best) == k && s <= best[k-1].sim {
			continue
		}
		j, _ := slices.BinarySearchFunc(best, s, func(c cand, s float32) int {
			if c.sim > s {
				return -1
			}
			return 1
		})
		best = slices.Insert(best, j, cand{keys[i], s})
		best = best[:min(len(best), k)]
	}
	out := make([]store.OID, len(best))
	for i, c := range best {
		out[i] = c.key
	}
	return out
}

// dot is the dot product of a and b, of one length, four lanes at once.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

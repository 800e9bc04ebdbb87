package vector

import "errors"

// Recall returns the mean, over queries, of the fraction of Exact's top k
// that Search also returns: 1 means Search found every one. A query with
// no exact hits (an empty index) counts as 1. It is for benchmarks and
// tests; it costs an exact search per query.
func Recall(ix *Index, queries [][]float32, k int) (float64, error) {
	if len(queries) == 0 || k <= 0 {
		return 0, errors.New("vector: recall needs queries and a positive k")
	}
	var sum float64
	for _, q := range queries {
		want, err := ix.Exact(q, k)
		if err != nil {
			return 0, err
		}
		got, err := ix.Search(q, k)
		if err != nil {
			return 0, err
		}
		if len(want) == 0 {
			sum++
			continue
		}
		in := make(map[uint64]bool, len(got))
		for _, h := range got {
			in[h.Key] = true
		}
		found := 0
		for _, h := range want {
			if in[h.Key] {
				found++
			}
		}
		sum += float64(found) / float64(len(want))
	}
	return sum / float64(len(queries)), nil
}

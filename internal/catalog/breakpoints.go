package catalog

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// DefaultPercentile is where Breakpoints cuts by default: the neighbour
// similarities at or below the 5th percentile.
const DefaultPercentile = 5

var (
	// ErrPercentile is returned by Breakpoints for a percentile that is
	// not in (0, 100), or NaN.
	ErrPercentile = errors.New("catalog: percentile not in (0, 100)")
	// ErrVectors is returned by Breakpoints for vectors that have no
	// cosine similarity: of different widths, of width 0, zero, or with a
	// NaN or infinite component.
	ErrVectors = errors.New("catalog: vectors without a cosine similarity")
)

// Breakpoints returns the unit indexes i (1 <= i < len(vecs), ascending)
// before which a new chunk should start: where the cosine similarity of
// vecs[i-1] and vecs[i] is at or below the given percentile of all
// len(vecs)-1 neighbour similarities. vecs are the units' embeddings, in
// order; the result is Group's breaks. DefaultPercentile is the usual
// percentile.
//
// The percentile is computed as numpy's np.percentile does by default
// (method "linear"): the similarities sorted, the value at rank
// percentile/100 × (n-1) interpolated linearly between its two closest
// ranks. The threshold is therefore never below the least similarity,
// so the least similar neighbours break however low the percentile:
// three units or more always have a breakpoint, unless all their
// neighbours are alike (below). Group takes a breakpoint only where the
// chunk before it is big enough.
//
// Ties: every similarity at or below the threshold breaks, so equally
// dissimilar neighbours are treated alike rather than chosen among by
// position. But a similarity equal to the greatest one never breaks: a
// document whose neighbours are all equally similar (a repeated line,
// say) has no topic shift to find, and gets no breakpoints rather than
// one before every unit. Similarities are computed in float64 and
// rounded to float32, the vectors' precision, so that rounding does not
// tell equal ones apart (parallel vectors have similarity 1 exactly).
//
// Fewer than three vectors give no breakpoints: a single similarity is
// every percentile of itself, so two units would always be split however
// alike. Vectors need not be normalized, but they must have one width, at
// least 1, be finite and not zero: otherwise the error wraps ErrVectors
// and names the first bad vector. A percentile outside (0, 100), or NaN,
// is an error wrapping ErrPercentile. Both are checked whatever the
// number of vectors.
func Breakpoints(vecs [][]float32, percentile float64) ([]int, error) {
	if !(percentile > 0 && percentile < 100) {
		return nil, fmt.Errorf("%w: %v", ErrPercentile, percentile)
	}
	norms, err := checkVectors(vecs)
	if err != nil {
		return nil, err
	}
	if len(vecs) < 3 {
		return nil, nil
	}
	sims := make([]float64, len(vecs)-1)
	for i := range sims {
		sims[i] = cosine(vecs[i], vecs[i+1], norms[i], norms[i+1])
	}
	sorted := slices.Clone(sims)
	slices.Sort(sorted)
	threshold, top := percentileOf(sorted, percentile), sorted[len(sorted)-1]
	var breaks []int
	for i, s := range sims {
		if s <= threshold && s < top {
			breaks = append(breaks, i+1)
		}
	}
	return breaks, nil
}

// checkVectors checks that vecs have one width and a direction, and
// returns their norms.
func checkVectors(vecs [][]float32) ([]float64, error) {
	norms := make([]float64, len(vecs))
	for i, v := range vecs {
		if len(v) == 0 || len(v) != len(vecs[0]) {
			return nil, fmt.Errorf("%w: vector %d has width %d, vector 0 %d", ErrVectors, i, len(v), len(vecs[0]))
		}
		var sum float64
		for j, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, fmt.Errorf("%w: vector %d has %v at %d", ErrVectors, i, x, j)
			}
			sum += float64(x) * float64(x)
		}
		if sum == 0 {
			return nil, fmt.Errorf("%w: vector %d is zero", ErrVectors, i)
		}
		norms[i] = math.Sqrt(sum)
	}
	return norms, nil
}

// cosine is the cosine similarity of a and b, whose norms are na and nb.
// It is computed in float64 and rounded to float32, the precision of the
// vectors: parallel vectors of different lengths then have similarity 1
// exactly, and rounding in the sums does not tell apart neighbours that
// are equally similar (which Breakpoints' tie rule depends on).
func cosine(a, b []float32, na, nb float64) float64 {
	var dot float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
	}
	return float64(float32(max(-1, min(1, dot/na/nb))))
}

// percentileOf is the p-th percentile of sorted (not empty) by numpy's
// default linear method, with numpy's lerp: from the lower neighbour
// below the midpoint and from the upper one above it, which keeps the
// result within the two and exact at both ends.
func percentileOf(sorted []float64, p float64) float64 {
	rank := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(rank))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	a, b, t := sorted[lo], sorted[lo+1], rank-float64(lo)
	if t >= 0.5 {
		return b - (b-a)*(1-t)
	}
	return a + (b-a)*t
}

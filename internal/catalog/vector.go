package catalog

import (
	"encoding/binary"
	"fmt"
	"math"
)

// MaxDims bounds an embedding's width: the widest common models give
// 4,096; anything far wider is a corrupt slot, not a model.
const MaxDims = 1 << 14

// EncodeVector is how a chunk object keeps its embedding: little-endian
// float32s, 4 bytes a dimension (a third of a list of Float values).
func EncodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// DecodeVector reads what EncodeVector wrote. A length that is not a
// multiple of 4, a width over MaxDims, or a component that is not a
// finite number is an error.
func DecodeVector(b []byte) ([]float32, error) {
	if len(b)%4 != 0 || len(b) == 0 {
		return nil, fmt.Errorf("a vector of %d bytes, want a positive multiple of 4", len(b))
	}
	if len(b)/4 > MaxDims {
		return nil, fmt.Errorf("a vector of %d dimensions, over the limit of %d", len(b)/4, MaxDims)
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		x := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("component %d is %v", i, x)
		}
		v[i] = x
	}
	return v, nil
}

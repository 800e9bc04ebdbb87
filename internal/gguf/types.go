package gguf

import (
	"fmt"
	"math"
	"math/bits"
)

// ValueType is the type of a metadata value, as numbered by the GGUF format.
type ValueType uint32

// The metadata value types.
const (
	TypeUint8 ValueType = iota
	TypeInt8
	TypeUint16
	TypeInt16
	TypeUint32
	TypeInt32
	TypeFloat32
	TypeBool
	TypeString
	TypeArray
	TypeUint64
	TypeInt64
	TypeFloat64
)

var valueTypeNames = [...]string{
	TypeUint8:   "uint8",
	TypeInt8:    "int8",
	TypeUint16:  "uint16",
	TypeInt16:   "int16",
	TypeUint32:  "uint32",
	TypeInt32:   "int32",
	TypeFloat32: "float32",
	TypeBool:    "bool",
	TypeString:  "string",
	TypeArray:   "array",
	TypeUint64:  "uint64",
	TypeInt64:   "int64",
	TypeFloat64: "float64",
}

// String returns the type's name as the GGUF specification writes it:
// "uint8", "string", "array", ...
func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

// valid reports whether t is one of the thirteen types the format defines.
func (t ValueType) valid() bool { return int(t) < len(valueTypeNames) }

// width is the encoded size of a value of type t in bytes, 0 for strings
// and arrays, whose size depends on their content.
func (t ValueType) width() int64 {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// minWidth is the fewest bytes one value of type t can take in a file.
func (t ValueType) minWidth() int64 {
	switch t {
	case TypeString:
		return 8 // the length
	case TypeArray:
		return 12 // element type and count
	}
	return t.width()
}

func (t ValueType) unsigned() bool {
	return t == TypeUint8 || t == TypeUint16 || t == TypeUint32 || t == TypeUint64
}

func (t ValueType) signed() bool {
	return t == TypeInt8 || t == TypeInt16 || t == TypeInt32 || t == TypeInt64
}

func (t ValueType) float() bool { return t == TypeFloat32 || t == TypeFloat64 }

// TensorType is a ggml tensor element type, numbered as in ggml.h.
type TensorType uint32

// The ggml tensor types. Numbers 4, 5, 31–33 and 36–38 belonged to types
// that ggml has removed and that no current file holds.
const (
	F32     TensorType = 0
	F16     TensorType = 1
	Q4_0    TensorType = 2
	Q4_1    TensorType = 3
	Q5_0    TensorType = 6
	Q5_1    TensorType = 7
	Q8_0    TensorType = 8
	Q8_1    TensorType = 9
	Q2_K    TensorType = 10
	Q3_K    TensorType = 11
	Q4_K    TensorType = 12
	Q5_K    TensorType = 13
	Q6_K    TensorType = 14
	Q8_K    TensorType = 15
	IQ2_XXS TensorType = 16
	IQ2_XS  TensorType = 17
	IQ3_XXS TensorType = 18
	IQ1_S   TensorType = 19
	IQ4_NL  TensorType = 20
	IQ3_S   TensorType = 21
	IQ2_S   TensorType = 22
	IQ4_XS  TensorType = 23
	I8      TensorType = 24
	I16     TensorType = 25
	I32     TensorType = 26
	I64     TensorType = 27
	F64     TensorType = 28
	IQ1_M   TensorType = 29
	BF16    TensorType = 30
	TQ1_0   TensorType = 34
	TQ2_0   TensorType = 35
	MXFP4   TensorType = 39
	NVFP4   TensorType = 40
	Q1_0    TensorType = 41
)

// layout is how a tensor type packs elements: blocks of block elements
// taking bytes bytes each.
type layout struct {
	name         string
	block, bytes int64
}

// qk is the super-block size of the k-quants and i-quants (QK_K).
const qk = 256

// layouts is ggml's type table, checked against GGML_QUANT_SIZES in
// llama.cpp's gguf-py/gguf/constants.py and the block structs in
// ggml-common.h. Q8_1 is 36 bytes as ggml-common.h's static_assert says
// (two halves and 32 quants); older copies of the Python table say 40.
var layouts = map[TensorType]layout{
	F32:     {"F32", 1, 4},
	F16:     {"F16", 1, 2},
	Q4_0:    {"Q4_0", 32, 2 + 16},
	Q4_1:    {"Q4_1", 32, 2 + 2 + 16},
	Q5_0:    {"Q5_0", 32, 2 + 4 + 16},
	Q5_1:    {"Q5_1", 32, 2 + 2 + 4 + 16},
	Q8_0:    {"Q8_0", 32, 2 + 32},
	Q8_1:    {"Q8_1", 32, 2 + 2 + 32},
	Q2_K:    {"Q2_K", qk, 2 + 2 + qk/16 + qk/4},
	Q3_K:    {"Q3_K", qk, 2 + qk/4 + qk/8 + 12},
	Q4_K:    {"Q4_K", qk, 2 + 2 + qk/2 + 12},
	Q5_K:    {"Q5_K", qk, 2 + 2 + qk/2 + qk/8 + 12},
	Q6_K:    {"Q6_K", qk, 2 + qk/2 + qk/4 + qk/16},
	Q8_K:    {"Q8_K", qk, 4 + qk + qk/8},
	IQ2_XXS: {"IQ2_XXS", qk, 2 + qk/4},
	IQ2_XS:  {"IQ2_XS", qk, 2 + qk/4 + qk/32},
	IQ3_XXS: {"IQ3_XXS", qk, 2 + qk/4 + qk/8},
	IQ1_S:   {"IQ1_S", qk, 2 + qk/8 + qk/16},
	IQ4_NL:  {"IQ4_NL", 32, 2 + 16},
	IQ3_S:   {"IQ3_S", qk, 2 + qk/4 + qk/8 + qk/32 + 4},
	IQ2_S:   {"IQ2_S", qk, 2 + qk/4 + qk/16},
	IQ4_XS:  {"IQ4_XS", qk, 2 + 2 + qk/2 + qk/64},
	I8:      {"I8", 1, 1},
	I16:     {"I16", 1, 2},
	I32:     {"I32", 1, 4},
	I64:     {"I64", 1, 8},
	F64:     {"F64", 1, 8},
	IQ1_M:   {"IQ1_M", qk, qk/8 + qk/16 + qk/32},
	BF16:    {"BF16", 1, 2},
	TQ1_0:   {"TQ1_0", qk, 2 + 4*13},
	TQ2_0:   {"TQ2_0", qk, 2 + 64},
	MXFP4:   {"MXFP4", 32, 1 + 16},
	NVFP4:   {"NVFP4", 64, 4 + 32},
	Q1_0:    {"Q1_0", 128, 2 + 16},
}

// String returns the type's name as llama.cpp's gguf-py names it: "F32",
// "Q4_K", "IQ2_XXS", ..., or "TensorType(N)" for a type it does not know.
func (t TensorType) String() string {
	if l, ok := layouts[t]; ok {
		return l.name
	}
	return fmt.Sprintf("TensorType(%d)", uint32(t))
}

// Known reports whether this package knows t's layout, and so can compute
// the size of a tensor of that type.
func (t TensorType) Known() bool {
	_, ok := layouts[t]
	return ok
}

// BlockSize is the number of elements in one block of type t (1 for the
// plain number types), or 0 if t is not known.
func (t TensorType) BlockSize() int64 { return layouts[t].block }

// BlockBytes is the number of bytes one block of type t takes, or 0 if t
// is not known.
func (t TensorType) BlockBytes() int64 { return layouts[t].bytes }

// dataSize is the number of bytes a tensor of type t and shape dims takes,
// or an error that says why there is no such tensor: a zero dimension, a
// row that is not a whole number of blocks, or a size beyond int64. The
// type must be known.
func dataSize(t TensorType, dims []uint64) (int64, error) {
	l := layouts[t]
	n := uint64(1)
	for i, d := range dims {
		if d == 0 {
			return 0, fmt.Errorf("dimension %d is 0", i)
		}
		hi, lo := bits.Mul64(n, d)
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("shape %v has more than 2^63 elements", dims)
		}
		n = lo
	}
	if len(dims) > 0 && dims[0]%uint64(l.block) != 0 {
		return 0, fmt.Errorf("row of %d elements is not a whole number of %s blocks of %d", dims[0], t, l.block)
	}
	hi, lo := bits.Mul64(n/uint64(l.block), uint64(l.bytes))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, fmt.Errorf("shape %v of %s takes more than 2^63 bytes", dims, t)
	}
	return int64(lo), nil
}

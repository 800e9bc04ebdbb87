package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"reflect"
)

// Tensor is a tensor for Write: its name, its shape in ggml order (Dims[0]
// is the row length), its type and its data, laid out as ggml lays out
// that type.
type Tensor struct {
	Name string
	Dims []uint64
	Type TensorType
	Data []byte
}

// Write writes a GGUF version 3 file with the given metadata and tensors,
// in the order given. Tensor data is aligned to general.alignment if meta
// has it (a uint32 power of two) or to 32 bytes, and each tensor is
// padded to the alignment.
//
// Write checks its input against the rules Read applies, so that it never
// writes a file Read refuses: every key is unique, each value matches its
// type, every tensor name is unique and 1 to 63 bytes, every shape has 1
// to 4 nonzero dimensions, and len(Data) is the size the type and shape
// call for. Any tensor type whose layout this package knows is accepted.
//
// Values may be given as any Go integer type for the integer types (range
// checked), float32 or float64 for the float types, and as []any or any
// slice of such values for arrays. Write writes nothing if it finds a
// problem with its input.
func Write(w io.Writer, meta []KV, tensors []Tensor) error {
	head, alignment, err := encodeMetadata(meta)
	if err != nil {
		return err
	}
	head, err = encodeTensorInfos(head, tensors, alignment)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	pos := int64(len(head))
	bw.Write(head)
	if len(tensors) > 0 {
		// Readers align the data section only when there is one.
		pos += pad(bw, pos, alignment)
	}
	for _, t := range tensors {
		bw.Write(t.Data)
		pos += int64(len(t.Data))
		pos += pad(bw, pos, alignment)
	}
	// bufio.Writer keeps the first error; Flush reports it.
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("gguf: write: %w", err)
	}
	return nil
}

// pad writes zeros up to the next multiple of alignment and returns how
// many.
func pad(w *bufio.Writer, pos int64, alignment uint64) int64 {
	n := (int64(alignment) - pos%int64(alignment)) % int64(alignment)
	for range n {
		w.WriteByte(0)
	}
	return n
}

// encodeMetadata checks meta and encodes the header and metadata, and
// returns the alignment general.alignment asks for.
func encodeMetadata(meta []KV) ([]byte, uint64, error) {
	b := []byte(magic)
	b = binary.LittleEndian.AppendUint32(b, 3)
	b = binary.LittleEndian.AppendUint64(b, 0) // the tensor count, set later
	b = binary.LittleEndian.AppendUint64(b, uint64(len(meta)))
	if len(meta) > maxKVs {
		return nil, 0, fmt.Errorf("gguf: write: %d metadata keys exceed the limit of %d", len(meta), maxKVs)
	}
	alignment := uint64(defaultAlignment)
	seen := make(map[string]int, len(meta))
	budget := int64(maxArrayElems)
	for i, kv := range meta {
		var err error
		if b, err = encodeKV(b, kv, &budget); err != nil {
			return nil, 0, fmt.Errorf("gguf: write: metadata key %d %q: %w", i, kv.Key, err)
		}
		if j, dup := seen[kv.Key]; dup {
			return nil, 0, fmt.Errorf("gguf: write: metadata key %d %q: duplicate key (also metadata key %d)", i, kv.Key, j)
		}
		seen[kv.Key] = i
		if kv.Key == "general.alignment" {
			a, _ := toUint(kv.Value)
			if kv.Type != TypeUint32 || a == 0 || a&(a-1) != 0 {
				return nil, 0, fmt.Errorf("gguf: write: general.alignment must be a uint32 power of two, not %v (%s)", kv.Value, kv.Type)
			}
			alignment = a
		}
	}
	return b, alignment, nil
}

func encodeKV(b []byte, kv KV, budget *int64) ([]byte, error) {
	if kv.Key == "" || len(kv.Key) > maxKeyLen {
		return nil, fmt.Errorf("key length %d, want 1 to %d", len(kv.Key), maxKeyLen)
	}
	b = appendString(b, kv.Key)
	b = binary.LittleEndian.AppendUint32(b, uint32(kv.Type))
	if kv.Type != TypeArray {
		return appendValue(b, kv.Type, kv.Value)
	}
	if kv.Elem == TypeArray || !kv.Elem.valid() {
		return nil, fmt.Errorf("array element type %s is not supported", kv.Elem)
	}
	rv := reflect.ValueOf(kv.Value)
	if rv.Kind() != reflect.Slice {
		return nil, fmt.Errorf("array value is a %T, want a slice", kv.Value)
	}
	n := rv.Len()
	if *budget -= int64(n); *budget < 0 {
		return nil, fmt.Errorf("array of %d elements exceeds the limit of %d elements in all arrays", n, maxArrayElems)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(kv.Elem))
	b = binary.LittleEndian.AppendUint64(b, uint64(n))
	for i := range n {
		var err error
		if b, err = appendValue(b, kv.Elem, rv.Index(i).Interface()); err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// appendValue encodes one value of a type other than TypeArray.
func appendValue(b []byte, t ValueType, v any) ([]byte, error) {
	bad := func() error { return fmt.Errorf("value %v (%T) is not a %s", v, v, t) }
	switch {
	case t == TypeString:
		s, ok := v.(string)
		if !ok || len(s) > maxStringLen {
			return nil, bad()
		}
		return appendString(b, s), nil
	case t == TypeBool:
		x, ok := v.(bool)
		if !ok {
			return nil, bad()
		}
		if x {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case t == TypeFloat32 || t == TypeFloat64:
		x, ok := toFloat(v)
		if !ok {
			return nil, bad()
		}
		if t == TypeFloat32 {
			return binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(x))), nil
		}
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(x)), nil
	case t.unsigned():
		x, ok := toUint(v)
		if !ok || (t.width() < 8 && x >= 1<<(8*t.width())) {
			return nil, bad()
		}
		return appendUint(b, x, t.width()), nil
	case t.signed():
		x, ok := toInt(v)
		limit := int64(1) << (8*t.width() - 1)
		if !ok || (t.width() < 8 && (x < -limit || x >= limit)) {
			return nil, bad()
		}
		return appendUint(b, uint64(x), t.width()), nil
	}
	return nil, fmt.Errorf("unknown value type %s", t)
}

// appendUint appends the low width bytes of x, little-endian.
func appendUint(b []byte, x uint64, width int64) []byte {
	for i := range width {
		b = append(b, byte(x>>(8*i)))
	}
	return b
}

func toUint(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint64:
		return x, true
	case uint32:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint8:
		return uint64(x), true
	case uint:
		return uint64(x), true
	}
	if x, ok := toInt(v); ok && x >= 0 {
		return uint64(x), true
	}
	return 0, false
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case int:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case uint32:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint:
		return int64(x), uint64(x) <= math.MaxInt64
	}
	return 0, false
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	}
	return 0, false
}

// encodeTensorInfos checks the tensors, appends their infos to head, sets
// the tensor count, and returns the result.
func encodeTensorInfos(head []byte, tensors []Tensor, alignment uint64) ([]byte, error) {
	if len(tensors) > maxTensors {
		return nil, fmt.Errorf("gguf: write: %d tensors exceed the limit of %d", len(tensors), maxTensors)
	}
	binary.LittleEndian.PutUint64(head[8:], uint64(len(tensors)))
	seen := make(map[string]int, len(tensors))
	var off uint64
	for i, t := range tensors {
		if err := checkWriteTensor(t); err != nil {
			return nil, fmt.Errorf("gguf: write: tensor %d %q: %w", i, t.Name, err)
		}
		if j, dup := seen[t.Name]; dup {
			return nil, fmt.Errorf("gguf: write: tensor %d %q: duplicate name (also tensor %d)", i, t.Name, j)
		}
		seen[t.Name] = i
		head = appendString(head, t.Name)
		head = binary.LittleEndian.AppendUint32(head, uint32(len(t.Dims)))
		for _, d := range t.Dims {
			head = binary.LittleEndian.AppendUint64(head, d)
		}
		head = binary.LittleEndian.AppendUint32(head, uint32(t.Type))
		head = binary.LittleEndian.AppendUint64(head, off)
		off += uint64(len(t.Data))
		off = (off + alignment - 1) &^ (alignment - 1)
	}
	return head, nil
}

func checkWriteTensor(t Tensor) error {
	switch {
	case t.Name == "" || len(t.Name) > maxNameLen:
		return fmt.Errorf("name length %d, want 1 to %d", len(t.Name), maxNameLen)
	case len(t.Dims) == 0 || len(t.Dims) > maxDims:
		return fmt.Errorf("%d dimensions, want 1 to %d", len(t.Dims), maxDims)
	case !t.Type.Known():
		return fmt.Errorf("unknown type %s", t.Type)
	}
	size, err := dataSize(t.Type, t.Dims)
	if err != nil {
		return err
	}
	if int64(len(t.Data)) != size {
		return fmt.Errorf("data is %d bytes, want %d for %s %v", len(t.Data), size, t.Type, t.Dims)
	}
	return nil
}

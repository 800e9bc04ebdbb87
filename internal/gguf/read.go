package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sort"
	"strings"
)

// Limits on what Read accepts. They sit far above what real files hold
// (a large vocabulary is a few hundred thousand array elements, a model a
// few thousand tensors and a hundred keys) and keep a hostile file from
// making Read allocate much more than the file's own size.
const (
	magic            = "GGUF"
	maxKeyLen        = 1<<16 - 1 // the GGUF specification's limit
	maxStringLen     = 1 << 30   // llama.cpp's GGUF_MAX_STRING_LENGTH
	maxNameLen       = 63        // ggml's GGML_MAX_NAME, 64 with the NUL
	maxDims          = 4         // ggml's GGML_MAX_DIMS
	maxKVs           = 1 << 16   // metadata pairs
	maxTensors       = 1 << 20   // tensor infos
	maxArrayElems    = 1 << 22   // elements of all metadata arrays together
	minKVSize        = 8 + 1 + 4 + 1
	minTensorInfo    = 8 + 1 + 4 + 8 + 4 + 8
	defaultAlignment = 32
)

// Read parses and validates the structure of the GGUF file of the given
// size that r holds: the header (magic "GGUF", version 2 or 3, counts),
// every metadata pair, every tensor info (a name of 1 to 63 bytes, 1 to 4
// nonzero dimensions, rows of whole blocks, an aligned offset), that
// general.alignment is a uint32 power of two, that no two tensors' data
// overlap, and that the file is long enough to hold all tensor data. It
// does not read the tensor data.
//
// A problem with the file is a *FormatError; an error reading r is
// returned wrapped as it is. Read may be called concurrently if r allows
// concurrent ReadAt calls, as *os.File does.
func Read(r io.ReaderAt, size int64) (*File, error) {
	if size < 0 {
		return nil, fmt.Errorf("gguf: negative file size %d", size)
	}
	d := &decoder{
		r:      bufio.NewReaderSize(io.NewSectionReader(r, 0, size), int(min(size, 64<<10))),
		size:   size,
		budget: maxArrayElems,
	}
	f := &File{Alignment: defaultAlignment}
	nTensors, nKVs, err := d.header(f)
	if err != nil {
		return nil, err
	}
	if err := d.metadata(f, nKVs); err != nil {
		return nil, err
	}
	if err := d.tensorInfos(f, nTensors); err != nil {
		return nil, err
	}
	if err := d.layout(f); err != nil {
		return nil, err
	}
	return f, nil
}

// decoder reads a file front to back, checking each read against the
// bytes that remain.
type decoder struct {
	r       *bufio.Reader
	off     int64 // of the next byte
	size    int64
	at      place // what is being read, for error messages
	budget  int64 // array elements still allowed
	scratch []byte
	infoOff []int64 // where each tensor info starts
}

func (d *decoder) remaining() int64 { return d.size - d.off }

// place says what a decoder is reading, to put before error messages.
// It is formatted only for an error, so that reading a vocabulary of a
// hundred thousand strings does not format a hundred thousand names.
type place struct {
	kind  string // "metadata key" or "tensor", or "" in the header
	index int
	name  string // the key or tensor name, once read
	part  string // "element" of an array or "dimension" of a tensor, or ""
	nth   int    // which element or dimension
}

func (p place) String() string {
	var b strings.Builder
	if p.kind != "" {
		fmt.Fprintf(&b, "%s %d", p.kind, p.index)
		if p.name != "" {
			fmt.Fprintf(&b, " %q", p.name)
		}
	}
	if p.part != "" {
		fmt.Fprintf(&b, ": %s %d", p.part, p.nth)
	}
	return b.String()
}

func (d *decoder) errorf(off int64, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if at := d.at.String(); at != "" {
		msg = at + ": " + msg
	}
	return &FormatError{Offset: off, Msg: msg}
}

// read fills p, what naming the field, if the place does not, for the
// error if the file ends first.
func (d *decoder) read(p []byte, what string) error {
	if int64(len(p)) > d.remaining() {
		if what != "" {
			what += ": "
		}
		return d.errorf(d.off, "%sunexpected end of file (the file has %d bytes)", what, d.size)
	}
	if _, err := io.ReadFull(d.r, p); err != nil {
		// The reader ended before the size it was said to have, or failed.
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("gguf: read at offset %d: %w", d.off, err)
	}
	d.off += int64(len(p))
	return nil
}

func (d *decoder) bytes(n int) []byte {
	if cap(d.scratch) < n {
		d.scratch = make([]byte, n)
	}
	return d.scratch[:n]
}

func (d *decoder) u32(what string) (uint32, error) {
	b := d.bytes(4)
	if err := d.read(b, what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *decoder) u64(what string) (uint64, error) {
	b := d.bytes(8)
	if err := d.read(b, what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// str reads a string of at most limit bytes.
func (d *decoder) str(what string, limit uint64) (string, error) {
	start := d.off
	if d.remaining() < 8 {
		// Checked here rather than by u64 so as not to build the field's
		// name for every string.
		return "", d.errorf(start, "%s length: unexpected end of file (the file has %d bytes)", what, d.size)
	}
	n, err := d.u64("")
	if err != nil {
		return "", err
	}
	if n > limit {
		return "", d.errorf(start, "%s length %d exceeds the limit of %d", what, n, limit)
	}
	if n > uint64(d.remaining()) {
		return "", d.errorf(start, "%s length %d exceeds the file (%d bytes remain)", what, n, d.remaining())
	}
	// Reuse the scratch buffer for the many short strings of a vocabulary;
	// only long ones get their own.
	var b []byte
	if n <= 1<<16 {
		b = d.bytes(int(n))
	} else {
		b = make([]byte, n)
	}
	if err := d.read(b, what); err != nil {
		return "", err
	}
	return string(b), nil
}

// header reads the magic, version and counts, and checks the counts
// against the size of the file.
func (d *decoder) header(f *File) (nTensors, nKVs uint64, err error) {
	if d.size < 4 {
		return 0, 0, d.errorf(0, "not a GGUF file: only %d bytes", d.size)
	}
	m := d.bytes(4)
	if err := d.read(m, "magic"); err != nil {
		return 0, 0, err
	}
	if string(m) != magic {
		return 0, 0, d.errorf(0, "not a GGUF file: magic is %q", m)
	}
	v, err := d.u32("version")
	if err != nil {
		return 0, 0, err
	}
	if err := checkVersion(v); err != nil {
		return 0, 0, d.errorf(4, "%v", err)
	}
	f.Version = v
	if nTensors, err = d.u64("tensor count"); err != nil {
		return 0, 0, err
	}
	if nKVs, err = d.u64("metadata count"); err != nil {
		return 0, 0, err
	}
	rest := uint64(d.remaining())
	switch {
	case nTensors > maxTensors:
		return 0, 0, d.errorf(8, "tensor count %d exceeds the limit of %d", nTensors, maxTensors)
	case nTensors*minTensorInfo > rest:
		return 0, 0, d.errorf(8, "tensor count %d exceeds the file (%d bytes remain)", nTensors, rest)
	case nKVs > maxKVs:
		return 0, 0, d.errorf(16, "metadata count %d exceeds the limit of %d", nKVs, maxKVs)
	case nKVs*minKVSize > rest-nTensors*minTensorInfo:
		return 0, 0, d.errorf(16, "metadata count %d exceeds the file (%d bytes remain)", nKVs, rest)
	}
	return nTensors, nKVs, nil
}

func checkVersion(v uint32) error {
	switch {
	case v == 2 || v == 3:
		return nil
	case v == 1:
		return errors.New("version 1 is no longer supported (want 2 or 3)")
	case v&0xffff == 0 && bits.ReverseBytes32(v) <= 3:
		return fmt.Errorf("version %#08x: a big-endian file, which is not supported", v)
	}
	return fmt.Errorf("version %d is not supported (want 2 or 3)", v)
}

// metadata reads the key/value pairs.
func (d *decoder) metadata(f *File, n uint64) error {
	seen := make(map[string]int, min(n, 1024))
	f.Metadata = make([]KV, 0, min(n, 1024))
	for i := range int(n) {
		start := d.off
		d.at = place{kind: "metadata key", index: i}
		key, err := d.str("key", maxKeyLen)
		if err != nil {
			return err
		}
		if key == "" {
			return d.errorf(start, "empty key")
		}
		d.at.name = key
		if j, dup := seen[key]; dup {
			return d.errorf(start, "duplicate key (also metadata key %d)", j)
		}
		seen[key] = i
		kv, err := d.kv(key)
		if err != nil {
			return err
		}
		if key == "general.alignment" {
			if err := d.alignment(f, kv, start); err != nil {
				return err
			}
		}
		f.Metadata = append(f.Metadata, kv)
	}
	d.at = place{}
	return nil
}

// kv reads the type and value that follow a key.
func (d *decoder) kv(key string) (KV, error) {
	start := d.off
	t, err := d.u32("value type")
	if err != nil {
		return KV{}, err
	}
	kv := KV{Key: key, Type: ValueType(t)}
	switch {
	case !kv.Type.valid():
		return KV{}, d.errorf(start, "unknown value type %d", t)
	case kv.Type == TypeArray:
		kv.Elem, kv.Value, err = d.array()
	default:
		kv.Value, err = d.value(kv.Type)
	}
	return kv, err
}

// value reads one value of a type other than TypeArray.
func (d *decoder) value(t ValueType) (any, error) {
	if t == TypeString {
		return d.str("string", maxStringLen)
	}
	b := d.bytes(int(t.width()))
	if err := d.read(b, "value"); err != nil {
		return nil, err
	}
	switch t {
	case TypeUint8:
		return uint64(b[0]), nil
	case TypeInt8:
		return int64(int8(b[0])), nil
	case TypeUint16:
		return uint64(binary.LittleEndian.Uint16(b)), nil
	case TypeInt16:
		return int64(int16(binary.LittleEndian.Uint16(b))), nil
	case TypeUint32:
		return uint64(binary.LittleEndian.Uint32(b)), nil
	case TypeInt32:
		return int64(int32(binary.LittleEndian.Uint32(b))), nil
	case TypeUint64:
		return binary.LittleEndian.Uint64(b), nil
	case TypeInt64:
		return int64(binary.LittleEndian.Uint64(b)), nil
	case TypeFloat32:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), nil
	case TypeFloat64:
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	case TypeBool:
		// Any nonzero byte is true, as llama.cpp reads it.
		return b[0] != 0, nil
	}
	panic("gguf: value of type " + t.String()) // unreachable: the caller checked t
}

// array reads an array's element type, count and elements.
func (d *decoder) array() (ValueType, []any, error) {
	start := d.off
	et, err := d.u32("array element type")
	if err != nil {
		return 0, nil, err
	}
	elem := ValueType(et)
	switch {
	case elem == TypeArray:
		return 0, nil, d.errorf(start, "arrays of arrays are not supported")
	case !elem.valid():
		return 0, nil, d.errorf(start, "unknown array element type %d", et)
	}
	countOff := d.off
	n, err := d.u64("array length")
	if err != nil {
		return 0, nil, err
	}
	if n > uint64(d.budget) {
		return 0, nil, d.errorf(countOff, "array of %d elements exceeds the limit of %d elements in all arrays", n, maxArrayElems)
	}
	if n*uint64(elem.minWidth()) > uint64(d.remaining()) {
		return 0, nil, d.errorf(countOff, "array of %d %s elements exceeds the file (%d bytes remain)", n, elem, d.remaining())
	}
	d.budget -= int64(n)
	vals := make([]any, n)
	d.at.part = "element"
	for i := range vals {
		d.at.nth = i
		if vals[i], err = d.value(elem); err != nil {
			return 0, nil, err
		}
	}
	d.at.part = ""
	return elem, vals, nil
}

// alignment checks general.alignment as llama.cpp does: a uint32 power of
// two.
func (d *decoder) alignment(f *File, kv KV, off int64) error {
	if kv.Type != TypeUint32 {
		return d.errorf(off, "type %s, want uint32", kv.Type)
	}
	a := kv.Value.(uint64)
	if a == 0 || a&(a-1) != 0 {
		return d.errorf(off, "alignment %d is not a power of two", a)
	}
	f.Alignment = a
	return nil
}

// tensorInfos reads the tensor infos and checks each on its own.
func (d *decoder) tensorInfos(f *File, n uint64) error {
	seen := make(map[string]int, min(n, 1024))
	f.Tensors = make([]TensorInfo, 0, min(n, 1024))
	d.infoOff = make([]int64, 0, min(n, 1024))
	for i := range int(n) {
		start := d.off
		d.at = place{kind: "tensor", index: i}
		t, err := d.tensorInfo()
		if err != nil {
			return err
		}
		if j, dup := seen[t.Name]; dup {
			return d.errorf(start, "duplicate name (also tensor %d)", j)
		}
		seen[t.Name] = i
		if err := checkTensor(&t, f.Alignment); err != nil {
			return d.errorf(start, "%v", err)
		}
		f.Tensors = append(f.Tensors, t)
		d.infoOff = append(d.infoOff, start)
	}
	d.at = place{}
	return nil
}

// tensorInfo reads one tensor info.
func (d *decoder) tensorInfo() (TensorInfo, error) {
	var t TensorInfo
	start := d.off
	name, err := d.str("name", maxNameLen)
	if err != nil {
		return t, err
	}
	if name == "" {
		return t, d.errorf(start, "empty name")
	}
	t.Name = name
	d.at.name = name
	nOff := d.off
	nd, err := d.u32("dimension count")
	if err != nil {
		return t, err
	}
	if nd == 0 || nd > maxDims {
		return t, d.errorf(nOff, "%d dimensions, want 1 to %d", nd, maxDims)
	}
	t.Dims = make([]uint64, nd)
	d.at.part = "dimension"
	for j := range t.Dims {
		d.at.nth = j
		if t.Dims[j], err = d.u64(""); err != nil {
			return t, err
		}
	}
	d.at.part = ""
	typ, err := d.u32("type")
	if err != nil {
		return t, err
	}
	t.Type = TensorType(typ)
	t.Offset, err = d.u64("data offset")
	return t, err
}

// checkTensor checks a tensor's shape and offset and sets its Size.
func checkTensor(t *TensorInfo, alignment uint64) error {
	t.Size = -1
	if t.Type.Known() {
		size, err := dataSize(t.Type, t.Dims)
		if err != nil {
			return err
		}
		t.Size = size
	} else if _, err := dataSize(F32, t.Dims); err != nil {
		// The shape must still make sense: nonzero and not overflowing.
		return err
	}
	if t.Offset%alignment != 0 {
		return fmt.Errorf("data offset %d is not a multiple of the alignment %d", t.Offset, alignment)
	}
	return nil
}

// extent is the number of bytes of the data section a tensor is known to
// take: its size, or for a tensor of unknown type its first byte.
func extent(t TensorInfo) uint64 { return uint64(max(t.Size, 1)) }

// layout places the data section, checks that the file holds every
// tensor's data and that no two tensors overlap, and sets f.Size.
func (d *decoder) layout(f *File) error {
	end := d.off
	f.Size = end
	if end > math.MaxInt64-int64(f.Alignment) {
		return d.errorf(end, "data section start overflows")
	}
	f.DataOffset = (end + int64(f.Alignment) - 1) &^ (int64(f.Alignment) - 1)
	for i, t := range f.Tensors {
		d.at = place{kind: "tensor", index: i, name: t.Name}
		room := uint64(math.MaxInt64 - f.DataOffset)
		if t.Offset > room || extent(t) > room-t.Offset {
			return d.errorf(d.infoOff[i], "data offset %d overflows", t.Offset)
		}
		tEnd := f.DataOffset + int64(t.Offset+extent(t))
		switch {
		case tEnd > d.size && t.Size < 0:
			return d.errorf(d.infoOff[i], "data starts at %d but the file has %d bytes", tEnd-1, d.size)
		case tEnd > d.size:
			return d.errorf(d.infoOff[i], "data ends at %d but the file has %d bytes", tEnd, d.size)
		}
		f.Size = max(f.Size, tEnd)
	}
	d.at = place{}
	return d.overlaps(f)
}

// overlaps reports the first tensor, in order of data offset, whose data
// starts before the data of the one before it ends.
func (d *decoder) overlaps(f *File) error {
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset
	})
	for k := 1; k < len(order); k++ {
		p, q := f.Tensors[order[k-1]], f.Tensors[order[k]]
		if pEnd := p.Offset + extent(p); q.Offset < pEnd {
			return &FormatError{Offset: d.infoOff[order[k]], Msg: fmt.Sprintf(
				"tensor %d %q: data at %d overlaps tensor %d %q (data %d to %d)",
				order[k], q.Name, q.Offset, order[k-1], p.Name, p.Offset, pEnd)}
		}
	}
	return nil
}

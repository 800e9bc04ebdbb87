package image

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"batos/internal/store"
)

// Limits of the codec.
const (
	// MaxDepth is the deepest nesting of containers (list, dict, tuple,
	// method) a value may have: 100 nested lists encode, 101 do not. It
	// bounds the recursion of the encoder and of the decoder.
	MaxDepth = 100
	// MaxSlotName is the length limit of a slot name, in bytes.
	MaxSlotName = 256
)

// stateVersion is the first byte of an encoded object state.
const stateVersion = 1

// Value tags: the first byte of an encoded value. They are stored on disk;
// never renumber them.
const (
	tagNone byte = iota
	tagFalse
	tagTrue
	tagInt       // zigzag varint
	tagFloat     // 8 bytes, big-endian IEEE bits
	tagString    // uvarint length, bytes
	tagBytes     // uvarint length, bytes
	tagList      // uvarint count, values
	tagDict      // uvarint count, key and value pairs
	tagTuple     // uvarint count, values
	tagRef       // uvarint OID, nonzero
	tagMethod    // source as a string, then meta as a dict without its tag
	tagBlob      // 32 digest bytes, uvarint size
	tagPrimitive // uvarint length, name
)

// maxPrealloc caps the capacity reserved from a decoded count, so a
// corrupt count costs at most this much before the input runs out.
const maxPrealloc = 1024

// Slot is a named value of an object. An object's slots are ordered.
type Slot struct {
	Name  string
	Value Value
}

// AppendValue appends the canonical encoding of v to dst. Encoding is
// deterministic: equal values (see [Equal]) encode to equal bytes. On
// error it returns nil.
func AppendValue(dst []byte, v Value) ([]byte, error) {
	return appendValue(dst, v, 0)
}

// appendValue encodes v, which is enclosed by depth containers.
// stringSize is the length of a string or bytes value, which the encoder
// copies whole; 0 for other kinds.
func stringSize(v Value) int {
	switch v := v.(type) {
	case String:
		return len(v)
	case Bytes:
		return len(v)
	}
	return 0
}

func appendValue(dst []byte, v Value, depth int) ([]byte, error) {
	// Checked as it grows: a value sharing one container many times can
	// encode to far more than it occupies in memory.
	if len(dst)+stringSize(v) > store.MaxRecordSize {
		return nil, &TooLargeError{Size: len(dst) + stringSize(v)}
	}
	switch v := v.(type) {
	case NoneType:
		return append(dst, tagNone), nil
	case Bool:
		if v {
			return append(dst, tagTrue), nil
		}
		return append(dst, tagFalse), nil
	case Int:
		return appendVarint(append(dst, tagInt), int64(v)), nil
	case Float:
		dst = append(dst, tagFloat)
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(float64(v))), nil
	case String:
		return appendString(append(dst, tagString), string(v)), nil
	case Bytes:
		return appendString(append(dst, tagBytes), string(v)), nil
	case Ref:
		if v == 0 {
			return nil, fmt.Errorf("%w: reference to OID 0", ErrInvalid)
		}
		return binary.AppendUvarint(append(dst, tagRef), uint64(v)), nil
	case BlobRef:
		if v.Size < 0 {
			return nil, fmt.Errorf("%w: blob size %d", ErrInvalid, v.Size)
		}
		dst = append(append(dst, tagBlob), v.Digest[:]...)
		return binary.AppendUvarint(dst, uint64(v.Size)), nil
	case Primitive:
		return appendString(append(dst, tagPrimitive), v.Name), nil
	}
	return appendContainer(dst, v, depth)
}

func appendContainer(dst []byte, v Value, depth int) ([]byte, error) {
	if isNil(v) {
		return nil, fmt.Errorf("%w: nil %s", ErrInvalid, kindOf(v))
	}
	if depth >= MaxDepth {
		return nil, fmt.Errorf("%w: more than %d levels", ErrTooDeep, MaxDepth)
	}
	switch v := v.(type) {
	case *List:
		return appendSeq(append(dst, tagList), v.Elems, depth+1)
	case Tuple:
		return appendSeq(append(dst, tagTuple), v, depth+1)
	case *Dict:
		return appendPairs(append(dst, tagDict), v, depth+1)
	case *Method:
		dst = appendString(append(dst, tagMethod), v.Source)
		return appendPairs(dst, v.Meta, depth+1)
	}
	panic(fmt.Sprintf("image: unknown value type %T", v)) // Value is sealed
}

// isNil reports a nil Value or a nil pointer inside one; neither has an
// encoding.
func isNil(v Value) bool {
	switch v := v.(type) {
	case nil:
		return true
	case *List:
		return v == nil
	case *Dict:
		return v == nil
	case *Method:
		return v == nil
	}
	return false
}

func appendSeq(dst []byte, elems []Value, depth int) ([]byte, error) {
	dst = binary.AppendUvarint(dst, uint64(len(elems)))
	for i, e := range elems {
		var err error
		if dst, err = appendValue(dst, e, depth); err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
	}
	return dst, nil
}

// appendPairs encodes d's entries; a nil d encodes as empty.
func appendPairs(dst []byte, d *Dict, depth int) ([]byte, error) {
	dst = binary.AppendUvarint(dst, uint64(d.Len()))
	for i := range d.Len() {
		e := d.entries[i]
		start := len(dst)
		var err error
		if dst, err = appendValue(dst, e.key, depth); err != nil {
			return nil, fmt.Errorf("dict key %d: %w", i, err)
		}
		// A key's encoding is its identity; if it no longer matches the
		// index, a tuple key was mutated and the dict may hold duplicates
		// the decoder would refuse.
		if j, ok := d.index[string(dst[start:])]; !ok || j != i {
			return nil, fmt.Errorf("%w: dict key %d changed after insertion", ErrInvalid, i)
		}
		if dst, err = appendValue(dst, e.value, depth); err != nil {
			return nil, fmt.Errorf("dict value %d: %w", i, err)
		}
	}
	return dst, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	if free := cap(dst) - len(dst); free < len(s) {
		// Double rather than let append grow large buffers by a quarter:
		// copying adds up to twice the final size instead of five times.
		grown := make([]byte, len(dst), max(2*cap(dst), len(dst)+len(s)))
		copy(grown, dst)
		dst = grown
	}
	return append(dst, s...)
}

// appendVarint is binary.AppendVarint spelled out to mirror the decoder,
// which reads the zigzag form through uvarint to share its checks.
func appendVarint(dst []byte, x int64) []byte {
	return binary.AppendUvarint(dst, uint64(x<<1)^uint64(x>>63))
}

// DecodeValue decodes one value that must span all of b. Errors wrap
// [ErrDecode] and give the byte offset of the problem.
func DecodeValue(b []byte) (Value, error) {
	d := &decoder{b: b}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return v, nil
}

// CheckSlotName returns an error wrapping [ErrSlotName] if name cannot be
// a slot name: empty, longer than [MaxSlotName] bytes, or not UTF-8.
func CheckSlotName(name string) error {
	if p := slotNameProblem(name); p != "" {
		return fmt.Errorf("%w: %s", ErrSlotName, p)
	}
	return nil
}

func slotNameProblem(name string) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > MaxSlotName:
		return fmt.Sprintf("%d bytes long, more than %d", len(name), MaxSlotName)
	case !utf8.ValidString(name):
		return fmt.Sprintf("%q is not valid UTF-8", name)
	}
	return ""
}

// EncodeState encodes an object's slots, in order: a version byte, the
// slot count, then each slot's name and value. Names must pass
// [CheckSlotName] and be unique.
func EncodeState(slots []Slot) ([]byte, error) { return encodeState(slots, 0) }

// encodeState is EncodeState into a buffer of size bytes to start with:
// a commit knows about how big the encoding of an object it rewrites is.
func encodeState(slots []Slot, size int) ([]byte, error) {
	dst := make([]byte, 1, max(size, 64))
	dst[0] = stateVersion
	dst = binary.AppendUvarint(dst, uint64(len(slots)))
	seen := make(map[string]bool, len(slots))
	for _, s := range slots {
		if err := CheckSlotName(s.Name); err != nil {
			return nil, err
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("%w: duplicate slot %q", ErrSlotName, s.Name)
		}
		seen[s.Name] = true
		dst = appendString(dst, s.Name)
		var err error
		if dst, err = appendValue(dst, s.Value, 0); err != nil {
			var big *TooLargeError
			if errors.As(err, &big) {
				// Said whole by the error itself, which the caller
				// names the object of.
				big.Slot = s.Name
				return nil, big
			}
			return nil, fmt.Errorf("encode slot %q: %w", s.Name, err)
		}
	}
	return dst, nil
}

// DecodeState decodes an object state written by [EncodeState]. Errors
// wrap [ErrDecode].
func DecodeState(b []byte) ([]Slot, error) {
	d := &decoder{b: b}
	if err := d.version(); err != nil {
		return nil, err
	}
	n, err := d.count("slot count")
	if err != nil {
		return nil, err
	}
	slots := make([]Slot, 0, min(n, maxPrealloc))
	seen := make(map[string]bool, min(n, maxPrealloc))
	for range n {
		s, err := d.slot(seen)
		if err != nil {
			return nil, err
		}
		slots = append(slots, s)
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return slots, nil
}

// Refs reports the objects and blobs an encoded object state refers to,
// anywhere inside its values, each once. It is the image's
// [store.RefsFunc].
func Refs(state []byte) (oids []store.OID, blobs []store.Digest, err error) {
	slots, err := DecodeState(state)
	if err != nil {
		return nil, nil, err
	}
	c := newRefCollector()
	for _, s := range slots {
		c.walk(s.Value)
	}
	return c.oids, c.blobs, nil
}

var _ store.RefsFunc = Refs

// newRefCollector returns an empty collector; its sets are made on first
// use, so walking a state without references allocates nothing more.
func newRefCollector() *refCollector { return &refCollector{} }

type refCollector struct {
	oids      []store.OID
	blobs     []store.Digest
	seenOIDs  map[store.OID]bool
	seenBlobs map[store.Digest]bool
}

func (c *refCollector) walk(v Value) {
	switch v := v.(type) {
	case Ref:
		if c.seenOIDs == nil {
			c.seenOIDs = map[store.OID]bool{}
		}
		if !c.seenOIDs[store.OID(v)] {
			c.seenOIDs[store.OID(v)] = true
			c.oids = append(c.oids, store.OID(v))
		}
	case BlobRef:
		if c.seenBlobs == nil {
			c.seenBlobs = map[store.Digest]bool{}
		}
		if !c.seenBlobs[v.Digest] {
			c.seenBlobs[v.Digest] = true
			c.blobs = append(c.blobs, v.Digest)
		}
	case *List:
		c.walkAll(v.Elems)
	case Tuple:
		c.walkAll(v)
	case *Dict:
		c.walkDict(v)
	case *Method:
		c.walkDict(v.Meta)
	}
}

func (c *refCollector) walkAll(vs []Value) {
	for _, v := range vs {
		c.walk(v)
	}
}

func (c *refCollector) walkDict(d *Dict) {
	for k, v := range d.All() {
		c.walk(k)
		c.walk(v)
	}
}

// decoder reads canonical encodings from b. It never panics and never
// allocates more than the remaining input can justify.
type decoder struct {
	b   []byte
	off int
}

// errorf reports a problem found at byte offset off.
func (d *decoder) errorf(off int, format string, args ...any) error {
	return fmt.Errorf("%w: %s at offset %d", ErrDecode, fmt.Sprintf(format, args...), off)
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) end() error {
	if n := d.remaining(); n > 0 {
		return d.errorf(d.off, "%d trailing bytes", n)
	}
	return nil
}

func (d *decoder) version() error {
	v, err := d.byte("state version")
	if err != nil {
		return err
	}
	if v != stateVersion {
		return d.errorf(0, "unknown state version %d", v)
	}
	return nil
}

func (d *decoder) byte(what string) (byte, error) {
	if d.remaining() < 1 {
		return 0, d.errorf(d.off, "truncated %s", what)
	}
	c := d.b[d.off]
	d.off++
	return c, nil
}

// uvarint reads a minimal uvarint; rejecting padded forms keeps every
// value to one encoding.
func (d *decoder) uvarint(what string) (uint64, error) {
	x, n := binary.Uvarint(d.b[d.off:])
	switch {
	case n == 0:
		return 0, d.errorf(d.off, "truncated %s", what)
	case n < 0:
		return 0, d.errorf(d.off, "%s overflows 64 bits", what)
	case n > 1 && d.b[d.off+n-1] == 0:
		return 0, d.errorf(d.off, "%s is not minimally encoded", what)
	}
	d.off += n
	return x, nil
}

// count reads a length or element count, which cannot exceed the bytes
// left since every element takes at least one.
func (d *decoder) count(what string) (int, error) {
	start := d.off
	n, err := d.uvarint(what)
	if err != nil {
		return 0, err
	}
	if rem := d.remaining(); n > uint64(rem) {
		return 0, d.errorf(start, "%s %d exceeds the %d bytes left", what, n, rem)
	}
	return int(n), nil
}

func (d *decoder) string(what string) (string, error) {
	n, err := d.count(what + " length")
	if err != nil {
		return "", err
	}
	s := string(d.b[d.off : d.off+n])
	d.off += n
	return s, nil
}

func (d *decoder) slot(seen map[string]bool) (Slot, error) {
	start := d.off
	name, err := d.string("slot name")
	if err != nil {
		return Slot{}, err
	}
	if p := slotNameProblem(name); p != "" {
		return Slot{}, d.errorf(start, "invalid slot name: %s", p)
	}
	if seen[name] {
		return Slot{}, d.errorf(start, "duplicate slot %q", name)
	}
	seen[name] = true
	v, err := d.value(0)
	if err != nil {
		return Slot{}, err
	}
	return Slot{name, v}, nil
}

// value decodes a value enclosed by depth containers.
func (d *decoder) value(depth int) (Value, error) {
	start := d.off
	tag, err := d.byte("value tag")
	if err != nil {
		return nil, err
	}
	switch tag {
	case tagNone:
		return None, nil
	case tagFalse:
		return Bool(false), nil
	case tagTrue:
		return Bool(true), nil
	case tagInt:
		u, err := d.uvarint("int")
		return Int(int64(u>>1) ^ -int64(u&1)), err
	case tagFloat:
		return d.float()
	case tagString:
		s, err := d.string("string")
		return String(s), err
	case tagBytes:
		s, err := d.string("bytes")
		return Bytes(s), err
	case tagRef:
		return d.ref(start)
	case tagBlob:
		return d.blob()
	case tagPrimitive:
		s, err := d.string("primitive name")
		return Primitive{s}, err
	case tagList, tagTuple, tagDict, tagMethod:
		return d.container(tag, start, depth)
	}
	return nil, d.errorf(start, "unknown value tag 0x%02x", tag)
}

func (d *decoder) float() (Value, error) {
	if d.remaining() < 8 {
		return nil, d.errorf(d.off, "truncated float")
	}
	bits := binary.BigEndian.Uint64(d.b[d.off:])
	d.off += 8
	return Float(math.Float64frombits(bits)), nil
}

func (d *decoder) ref(start int) (Value, error) {
	u, err := d.uvarint("ref")
	if err != nil {
		return nil, err
	}
	if u == 0 {
		return nil, d.errorf(start, "reference to OID 0")
	}
	return Ref(u), nil
}

func (d *decoder) blob() (Value, error) {
	var b BlobRef
	if d.remaining() < len(b.Digest) {
		return nil, d.errorf(d.off, "truncated blob digest")
	}
	d.off += copy(b.Digest[:], d.b[d.off:])
	start := d.off
	size, err := d.uvarint("blob size")
	if err != nil {
		return nil, err
	}
	if size > math.MaxInt64 {
		return nil, d.errorf(start, "blob size %d out of range", size)
	}
	b.Size = int64(size)
	return b, nil
}

func (d *decoder) container(tag byte, start, depth int) (Value, error) {
	if depth >= MaxDepth {
		return nil, d.errorf(start, "containers nested more than %d deep", MaxDepth)
	}
	switch tag {
	case tagList:
		elems, err := d.seq(depth + 1)
		return &List{Elems: elems}, err
	case tagTuple:
		elems, err := d.seq(depth + 1)
		return Tuple(elems), err
	case tagDict:
		return d.dict(depth + 1)
	}
	src, err := d.string("method source")
	if err != nil {
		return nil, err
	}
	meta, err := d.dict(depth + 1)
	return &Method{Source: src, Meta: meta}, err
}

func (d *decoder) seq(depth int) ([]Value, error) {
	n, err := d.count("element count")
	if err != nil {
		return nil, err
	}
	elems := make([]Value, 0, min(n, maxPrealloc))
	for range n {
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		elems = append(elems, v)
	}
	return elems, nil
}

// dict decodes a count and that many pairs into a fresh *Dict. Keys must
// be hashable and distinct; since encodings are canonical, a key's bytes
// are its identity in the index.
func (d *decoder) dict(depth int) (*Dict, error) {
	n, err := d.count("dict size")
	if err != nil {
		return nil, err
	}
	dict := &Dict{}
	if n > 0 {
		dict.entries = make([]dictEntry, 0, min(n, maxPrealloc))
		dict.index = make(map[string]int, min(n, maxPrealloc))
	}
	for range n {
		if err := d.pair(dict, depth); err != nil {
			return nil, err
		}
	}
	return dict, nil
}

func (d *decoder) pair(dict *Dict, depth int) error {
	start := d.off
	k, err := d.value(depth)
	if err != nil {
		return err
	}
	if !Hashable(k) {
		return d.errorf(start, "unhashable dict key of kind %s", k.Kind())
	}
	enc := string(d.b[start:d.off])
	if _, dup := dict.index[enc]; dup {
		return d.errorf(start, "duplicate dict key %s", shortRepr(k))
	}
	v, err := d.value(depth)
	if err != nil {
		return err
	}
	dict.index[enc] = len(dict.entries)
	dict.entries = append(dict.entries, dictEntry{k, v})
	return nil
}

// shortRepr keeps error messages readable when a key is large.
func shortRepr(v Value) string {
	const limit = 64
	s := Repr(v)
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return s
}

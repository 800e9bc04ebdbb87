package zmqbridge

// The bridge's wire format.
//
// A request is one msgpack map with string keys; a reply is one msgpack
// map with string keys. Values inside them are nil, booleans, integers
// (within the int64 range), floats (32- or 64-bit on input, 64-bit on
// output), strings (str), byte strings (bin), arrays, maps with string
// keys, and object references.
//
// An object reference travels as msgpack extension type 1 whose data is
// the OID as 8 bytes, big-endian; encoders write it as fixext8, that is
// the bytes d7 01 followed by the 8 OID bytes. OID 0 is never valid. On
// input a map whose only entry is {"$ref": "oid:N"} (or "N") is accepted
// as the same reference, for clients that cannot write extensions.
//
// Replies carry image values in these forms:
//
//	image.None, Bool, Int, Float, String  nil, bool, int, float64, str
//	image.Bytes                           bin
//	image.Ref                             extension type 1 (above)
//	*image.List, image.Tuple              array
//	*image.Dict                           map if every key is a string,
//	                                      else an array of [key, value] pairs,
//	                                      in insertion order
//	*image.Method                         {"$method": source}
//	image.BlobRef                         {"$blob": "sha256:<hex>", "size": n}
//	image.Primitive                       {"$primitive": name}
//
// The answer of a send or eval that is no image value (a function, a
// bound method, a set, an integer beyond int64, a list holding one) is
// {"$repr": repr, "$type": type}, written by the result's own wire form
// (wire.go), so nil only ever means None.
//
// Go maps are written with their keys in sorted order, so an encoding is
// deterministic.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/tinylib/msgp/msgp"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/store"
)

// RefExtension is the msgpack extension type of an object reference. It
// is part of the wire protocol: never change it.
const RefExtension int8 = 1

// ErrEncode is wrapped by errors from [EncodeReply] for a value the wire
// format cannot carry: an unsupported Go type, a reference to OID 0, or a
// cycle (nesting deeper than the encoder follows).
var ErrEncode = errors.New("zmqbridge: cannot encode reply")

// Limits bounds what [DecodeRequest] accepts. A zero or negative field
// means its value in [DefaultLimits].
type Limits struct {
	// MaxBytes is the largest request, in bytes.
	MaxBytes int
	// MaxDepth is the deepest nesting of maps and arrays; the request map
	// itself is level 1.
	MaxDepth int
	// MaxItems is the most array elements and map entries, counted
	// across the whole request.
	MaxItems int
}

// DefaultLimits are the limits the bridge applies unless configured
// otherwise.
var DefaultLimits = Limits{MaxBytes: 1 << 20, MaxDepth: 32, MaxItems: 100_000}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	if l.MaxItems <= 0 {
		l.MaxItems = DefaultLimits.MaxItems
	}
	return l
}

// maxPrealloc caps the room the decoder reserves for a container from
// its declared count: a count that passed the checks may still be a lie
// followed by garbage, so memory grows with what is actually decoded.
const maxPrealloc = 16

// maxEncodeDepth bounds the recursion of the encoder. It is above
// image.MaxDepth, so every storable value plus the reply around it
// encodes; it exists to stop a Go value that contains itself.
const maxEncodeDepth = image.MaxDepth + 16

// DecodeRequest decodes one request: b must hold exactly one msgpack map
// with string keys, within lim. Values decode to nil, bool, int64,
// float64, string, []byte, []any, map[string]any and [image.Ref]. Every
// error wraps [command.ErrBadRequest] and says what was wrong and at which byte
// offset.
//
// DecodeRequest checks each declared length against the bytes left and
// the limits before it allocates, so hostile input cannot make it
// allocate much more than len(b). The result does not alias b. It is
// safe to call concurrently.
func DecodeRequest(b []byte, lim Limits) (map[string]any, error) {
	lim = lim.withDefaults()
	switch {
	case len(b) == 0:
		return nil, badf("empty request")
	case len(b) > lim.MaxBytes:
		return nil, badf("request of %d bytes exceeds the limit of %d", len(b), lim.MaxBytes)
	case msgp.NextType(b) != msgp.MapType:
		return nil, badf("request must be a msgpack map, got %s", wireName(b))
	}
	d := &decoder{size: len(b), lim: lim}
	m, rest, err := d.readMap(b, 1)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, badf("request has %d trailing bytes at offset %d", len(rest), d.off(rest))
	}
	return m, nil
}

// badf returns an error wrapping command.ErrBadRequest.
func badf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", command.ErrBadRequest, fmt.Sprintf(format, args...))
}

// decoder holds the state of one DecodeRequest.
type decoder struct {
	size  int // length of the whole input
	lim   Limits
	items int // array elements and map entries so far
}

// off is the offset of b, a suffix of the input.
func (d *decoder) off(b []byte) int { return d.size - len(b) }

// reserve admits a container of n items at offset off, each taking at
// least per bytes of rest.
func (d *decoder) reserve(kind string, n uint32, per int, off int, rest []byte) error {
	unit := "items"
	if kind == "map" {
		unit = "entries"
	}
	if uint64(n)*uint64(per) > uint64(len(rest)) {
		return badf("%s of %d %s at offset %d exceeds the %d bytes left", kind, n, unit, off, len(rest))
	}
	if uint64(d.items)+uint64(n) > uint64(d.lim.MaxItems) {
		return badf("%s of %d %s at offset %d exceeds the limit of %d items in a request",
			kind, n, unit, off, d.lim.MaxItems)
	}
	d.items += int(n)
	return nil
}

// readMap reads a map at nesting level depth, without interpreting a
// {"$ref": ...} map (readValue does that for nested maps).
func (d *decoder) readMap(b []byte, depth int) (map[string]any, []byte, error) {
	off := d.off(b)
	if depth > d.lim.MaxDepth {
		return nil, nil, badf("map at offset %d nests deeper than %d levels", off, d.lim.MaxDepth)
	}
	n, rest, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return nil, nil, d.wireErr("map", b, err)
	}
	if err := d.reserve("map", n, 2, off, rest); err != nil {
		return nil, nil, err
	}
	m := make(map[string]any, min(n, maxPrealloc))
	for i := range n {
		koff := d.off(rest)
		if msgp.NextType(rest) != msgp.StrType {
			return nil, nil, badf("key %d of the map at offset %d is not a string: got %s at offset %d",
				i, off, wireName(rest), koff)
		}
		kb, r, err := msgp.ReadStringZC(rest)
		if err != nil {
			return nil, nil, d.wireErr("str", rest, err)
		}
		k := fieldName(kb)
		rest = r
		if _, dup := m[k]; dup {
			return nil, nil, badf("duplicate key %q at offset %d", k, koff)
		}
		var v any
		if v, rest, err = d.readValue(rest, depth); err != nil {
			return nil, nil, err
		}
		m[k] = v
	}
	return m, rest, nil
}

// fieldName is key as a string: one of the protocol's common field names
// is not allocated again for every request.
func fieldName(key []byte) string {
	switch string(key) {
	case "id":
		return "id"
	case "command":
		return "command"
	case "target":
		return "target"
	case "selector":
		return "selector"
	case "args":
		return "args"
	case "kwargs":
		return "kwargs"
	case "code":
		return "code"
	}
	return string(key)
}

func (d *decoder) readArray(b []byte, depth int) ([]any, []byte, error) {
	off := d.off(b)
	if depth > d.lim.MaxDepth {
		return nil, nil, badf("array at offset %d nests deeper than %d levels", off, d.lim.MaxDepth)
	}
	n, rest, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return nil, nil, d.wireErr("array", b, err)
	}
	if err := d.reserve("array", n, 1, off, rest); err != nil {
		return nil, nil, err
	}
	a := make([]any, 0, min(n, maxPrealloc))
	for range n {
		var v any
		if v, rest, err = d.readValue(rest, depth); err != nil {
			return nil, nil, err
		}
		a = append(a, v)
	}
	return a, rest, nil
}

// readValue reads a value inside a container at nesting level depth.
func (d *decoder) readValue(b []byte, depth int) (v any, rest []byte, err error) {
	off := d.off(b)
	t := msgp.NextType(b)
	switch t {
	case msgp.NilType:
		rest, err = msgp.ReadNilBytes(b)
	case msgp.BoolType:
		v, rest, err = msgp.ReadBoolBytes(b)
	case msgp.IntType:
		v, rest, err = msgp.ReadInt64Bytes(b)
	case msgp.UintType:
		return d.readUint(b)
	case msgp.Float64Type:
		v, rest, err = msgp.ReadFloat64Bytes(b)
	case msgp.Float32Type:
		var f float32
		f, rest, err = msgp.ReadFloat32Bytes(b)
		v = float64(f)
	case msgp.StrType:
		v, rest, err = msgp.ReadStringBytes(b)
	case msgp.BinType:
		var zc []byte
		zc, rest, err = msgp.ReadBytesZC(b)
		v = bytes.Clone(zc) // not nil when empty: zc is a slice of b
	case msgp.ArrayType:
		return d.readArray(b, depth+1)
	case msgp.MapType:
		return d.readNestedMap(b, depth+1)
	case msgp.ExtensionType, msgp.TimeType, msgp.Complex64Type, msgp.Complex128Type:
		return d.readRef(b)
	default:
		if len(b) == 0 {
			return nil, nil, badf("truncated request: a value is missing at offset %d", off)
		}
		return nil, nil, badf("invalid msgpack byte 0x%02x at offset %d", b[0], off)
	}
	if err != nil {
		return nil, nil, d.wireErr(t.String(), b, err)
	}
	return v, rest, nil
}

func (d *decoder) readUint(b []byte) (any, []byte, error) {
	u, rest, err := msgp.ReadUint64Bytes(b)
	if err != nil {
		return nil, nil, d.wireErr("uint", b, err)
	}
	if u > math.MaxInt64 {
		return nil, nil, badf("integer %d at offset %d exceeds the int64 range", u, d.off(b))
	}
	return int64(u), rest, nil
}

// readNestedMap reads a map inside the request, which may be the tagged
// form of a reference.
func (d *decoder) readNestedMap(b []byte, depth int) (any, []byte, error) {
	m, rest, err := d.readMap(b, depth)
	if err != nil {
		return nil, nil, err
	}
	ref, tagged, err := image.RefOf(m)
	switch {
	case !tagged:
		return m, rest, nil
	case errors.Is(err, image.ErrRefForm):
		return nil, nil, badf(`map at offset %d has a "$ref" key but is not {"$ref": "oid:N"}`, d.off(b))
	case err != nil:
		return nil, nil, badf(`"$ref" %q in the map at offset %d is not an OID (want "oid:N", N > 0)`, m[image.RefTag], d.off(b))
	}
	return ref, rest, nil
}

func (d *decoder) readRef(b []byte) (any, []byte, error) {
	off := d.off(b)
	var e refExt
	rest, err := msgp.ReadExtensionBytes(b, &e)
	var typeErr msgp.ExtensionTypeError
	switch {
	case errors.As(err, &typeErr):
		return nil, nil, badf("extension type %d at offset %d is not supported (only type %d, an object reference)",
			typeErr.Got, off, RefExtension)
	case err != nil:
		return nil, nil, d.wireErr("extension", b, err)
	case e.n != 8:
		return nil, nil, badf("object reference at offset %d has %d bytes of data, want 8", off, e.n)
	case e.oid == 0:
		return nil, nil, badf("object reference at offset %d is to OID 0", off)
	}
	return image.Ref(e.oid), rest, nil
}

// wireErr describes err, from reading a kind of value at b.
func (d *decoder) wireErr(kind string, b []byte, err error) error {
	off := d.off(b)
	if !errors.Is(err, msgp.ErrShortBytes) {
		return badf("%s at offset %d: %v", kind, off, err)
	}
	if n, hdr, ok := declaredLen(b); ok && hdr <= len(b) {
		return badf("%s of %d bytes at offset %d exceeds the %d bytes left", kind, n, off, len(b)-hdr)
	}
	return badf("truncated %s at offset %d", kind, off)
}

// declaredLen returns the payload length a str, bin or ext header at the
// start of b declares, and the header's size.
func declaredLen(b []byte) (n uint64, hdr int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	lead := b[0]
	at := func(width, hdr int) (uint64, int, bool) {
		if len(b) < 1+width {
			return 0, 0, false
		}
		var v uint64
		for _, c := range b[1 : 1+width] {
			v = v<<8 | uint64(c)
		}
		return v, hdr, true
	}
	switch {
	case lead&0xe0 == 0xa0: // fixstr
		return uint64(lead & 0x1f), 1, true
	case lead == 0xd9, lead == 0xc4: // str8, bin8
		return at(1, 2)
	case lead == 0xda, lead == 0xc5: // str16, bin16
		return at(2, 3)
	case lead == 0xdb, lead == 0xc6: // str32, bin32
		return at(4, 5)
	case lead >= 0xd4 && lead <= 0xd8: // fixext1 to fixext16
		return 1 << (lead - 0xd4), 2, true
	case lead == 0xc7: // ext8
		return at(1, 3)
	case lead == 0xc8: // ext16
		return at(2, 4)
	case lead == 0xc9: // ext32
		return at(4, 6)
	}
	return 0, 0, false
}

// wireName names the msgpack type at the start of b, for errors.
func wireName(b []byte) string {
	switch t := msgp.NextType(b); {
	case len(b) == 0:
		return "end of input"
	case t == msgp.InvalidType:
		return fmt.Sprintf("invalid byte 0x%02x", b[0])
	case t == msgp.TimeType, t == msgp.Complex64Type, t == msgp.Complex128Type:
		return "ext"
	default:
		return t.String()
	}
}

// refExt is an object reference as a msgp extension.
type refExt struct {
	oid uint64
	n   int // length of the data read
}

var _ msgp.Extension = (*refExt)(nil)

func (*refExt) ExtensionType() int8 { return RefExtension }
func (*refExt) Len() int            { return 8 }

func (e *refExt) MarshalBinaryTo(b []byte) error {
	binary.BigEndian.PutUint64(b, e.oid)
	return nil
}

// UnmarshalBinary accepts data of any length and records it, so the
// decoder can report a bad length with its offset.
func (e *refExt) UnmarshalBinary(b []byte) error {
	e.n = len(b)
	if len(b) == 8 {
		e.oid = binary.BigEndian.Uint64(b)
	}
	return nil
}

// EncodeReply encodes a reply map. Errors wrap [ErrEncode] and name the
// path to the offending value. It is safe to call concurrently, provided
// nothing modifies v meanwhile.
func EncodeReply(v map[string]any) ([]byte, error) {
	b, err := appendStringMap(make([]byte, 0, 256), v, 0)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// appendAt encodes v at nesting level depth.
func appendAt(dst []byte, v any, depth int) ([]byte, error) {
	if depth > maxEncodeDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d levels", ErrEncode, maxEncodeDepth)
	}
	switch v := v.(type) {
	case nil, image.NoneType:
		return msgp.AppendNil(dst), nil
	case bool:
		return msgp.AppendBool(dst, v), nil
	case image.Bool:
		return msgp.AppendBool(dst, bool(v)), nil
	case int:
		return msgp.AppendInt(dst, v), nil
	case int8:
		return msgp.AppendInt8(dst, v), nil
	case int16:
		return msgp.AppendInt16(dst, v), nil
	case int32:
		return msgp.AppendInt32(dst, v), nil
	case int64:
		return msgp.AppendInt64(dst, v), nil
	case image.Int:
		return msgp.AppendInt64(dst, int64(v)), nil
	case uint:
		return appendUnsigned(dst, uint64(v))
	case uint8:
		return msgp.AppendInt64(dst, int64(v)), nil
	case uint16:
		return msgp.AppendInt64(dst, int64(v)), nil
	case uint32:
		return msgp.AppendInt64(dst, int64(v)), nil
	case uint64:
		return appendUnsigned(dst, v)
	case float32:
		return msgp.AppendFloat32(dst, v), nil
	case float64:
		return msgp.AppendFloat64(dst, v), nil
	case image.Float:
		return msgp.AppendFloat64(dst, float64(v)), nil
	case string:
		return appendString(dst, v)
	case image.String:
		return appendString(dst, string(v))
	case []byte:
		if err := checkLen(len(v)); err != nil {
			return nil, err
		}
		return msgp.AppendBytes(dst, v), nil
	case image.Bytes:
		if err := checkLen(len(v)); err != nil {
			return nil, err
		}
		return append(msgp.AppendBytesHeader(dst, uint32(len(v))), v...), nil
	case image.Ref:
		return appendRef(dst, store.OID(v))
	case store.OID:
		return appendRef(dst, v)
	}
	return appendComposite(dst, v, depth)
}

// appendComposite encodes the container and tagged-map types.
func appendComposite(dst []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case []any:
		return appendSlice(dst, v, depth)
	case []string:
		return appendSlice(dst, v, depth)
	case []map[string]any:
		return appendSlice(dst, v, depth)
	case []image.Value:
		return appendSlice(dst, v, depth)
	case image.Tuple:
		return appendSlice(dst, v, depth)
	case *image.List:
		if v == nil {
			return msgp.AppendArrayHeader(dst, 0), nil
		}
		return appendSlice(dst, v.Elems, depth)
	case map[string]any:
		return appendStringMap(dst, v, depth)
	case map[string]image.Value:
		return appendStringMap(dst, v, depth)
	case map[string]string:
		return appendStringMap(dst, v, depth)
	case *image.Dict:
		return appendDict(dst, v, depth)
	case *image.Method:
		if v == nil {
			return nil, fmt.Errorf("%w: nil *image.Method", ErrEncode)
		}
		return appendStringMap(dst, map[string]any{"$method": v.Source}, depth)
	case image.BlobRef:
		return appendStringMap(dst, map[string]any{"$blob": v.Digest.String(), "size": v.Size}, depth)
	case image.Primitive:
		return appendStringMap(dst, map[string]any{"$primitive": v.Name}, depth)
	}
	return nil, fmt.Errorf("%w: unsupported type %T", ErrEncode, v)
}

func appendString(dst []byte, s string) ([]byte, error) {
	if err := checkLen(len(s)); err != nil {
		return nil, err
	}
	return msgp.AppendString(dst, s), nil
}

func appendRef(dst []byte, oid store.OID) ([]byte, error) {
	if oid == 0 {
		return nil, fmt.Errorf("%w: reference to OID 0", ErrEncode)
	}
	return msgp.AppendExtension(dst, &refExt{oid: uint64(oid)})
}

// checkLen rejects a length a msgpack header cannot hold.
func checkLen(n int) error {
	if uint64(n) > math.MaxUint32 {
		return fmt.Errorf("%w: length %d exceeds the msgpack limit", ErrEncode, n)
	}
	return nil
}

func appendSlice[T any](dst []byte, s []T, depth int) ([]byte, error) {
	if err := checkLen(len(s)); err != nil {
		return nil, err
	}
	dst = msgp.AppendArrayHeader(dst, uint32(len(s)))
	var err error
	for i, e := range s {
		if dst, err = appendAt(dst, e, depth+1); err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return dst, nil
}

// appendStringMap writes m with its keys in sorted order.
func appendStringMap[T any](dst []byte, m map[string]T, depth int) ([]byte, error) {
	if err := checkLen(len(m)); err != nil {
		return nil, err
	}
	dst = msgp.AppendMapHeader(dst, uint32(len(m)))
	// A reply's maps are small: their keys are sorted on the stack.
	var buf [8]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var err error
	for _, k := range keys {
		dst = msgp.AppendString(dst, k)
		if dst, err = appendAt(dst, m[k], depth+1); err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
	}
	return dst, nil
}

// appendDict writes a dict whose keys are all strings as a map, and any
// other as an array of [key, value] pairs; both in insertion order.
func appendDict(dst []byte, d *image.Dict, depth int) ([]byte, error) {
	stringKeys := true
	for k := range d.All() {
		if _, ok := k.(image.String); !ok {
			stringKeys = false
			break
		}
	}
	if stringKeys {
		dst = msgp.AppendMapHeader(dst, uint32(d.Len()))
	} else {
		dst = msgp.AppendArrayHeader(dst, uint32(d.Len()))
	}
	var err error
	i := 0
	for k, v := range d.All() {
		if !stringKeys {
			dst = msgp.AppendArrayHeader(dst, 2)
		}
		if dst, err = appendAt(dst, k, depth+1); err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if dst, err = appendAt(dst, v, depth+1); err != nil {
			return nil, fmt.Errorf("%s: %w", image.Repr(k), err)
		}
		i++
	}
	return dst, nil
}

// ToImage converts a value from [DecodeRequest] to an image value, for
// use as an argument of a send: nil becomes None, int64 Int, float64
// Float, string String, []byte Bytes, []any a *List, map[string]any a
// *Dict with String keys in sorted order, and an [image.Ref] stays as it
// is. Errors wrap image.ErrUnsupported or image.ErrTooDeep.
func ToImage(x any) (image.Value, error) {
	return image.ValueOf(x)
}

// appendUnsigned writes an unsigned integer as the protocol's integers
// are, within int64; larger ones have no encoding a client decodes.
func appendUnsigned(dst []byte, v uint64) ([]byte, error) {
	if v > math.MaxInt64 {
		return nil, fmt.Errorf("%w: integer %d exceeds the int64 range", ErrEncode, v)
	}
	return msgp.AppendInt64(dst, int64(v)), nil
}

// requestID reads the "id" of a request that [DecodeRequest] refused, so
// its error reply can still carry it: b must start with a msgpack map,
// whose entries are walked without being decoded (keys that are not
// strings and values that break the limits are skipped) until the first
// string key "id", whose value is decoded within lim. It returns nil
// when there is no such id, or when the id itself is not a value
// DecodeRequest accepts. The walk keeps no stack and reads each byte at
// most once.
func requestID(b []byte, lim Limits) any {
	id, _ := findRequestID(b, lim)
	return id
}

// findRequestID is requestID, and whether the request has an id that
// could be read (an id may be nil).
func findRequestID(b []byte, lim Limits) (any, bool) {
	lim = lim.withDefaults()
	if len(b) > lim.MaxBytes || msgp.NextType(b) != msgp.MapType {
		return nil, false
	}
	// A header claiming more entries than the bytes can hold is walked
	// all the same, as far as they go: an id before the damage is found.
	n, rest, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return nil, false
	}
	for range n {
		if msgp.NextType(rest) == msgp.StrType {
			k, r, err := msgp.ReadStringZC(rest)
			if err != nil {
				return nil, false
			}
			if rest = r; string(k) == "id" {
				d := &decoder{size: len(b), lim: lim}
				id, _, err := d.readValue(rest, 1)
				if err != nil {
					return nil, false
				}
				return id, true
			}
		} else if rest, err = skipValue(rest); err != nil {
			return nil, false
		}
		if rest, err = skipValue(rest); err != nil {
			return nil, false
		}
	}
	return nil, false
}

// skipValue returns b after its first value, however deeply nested,
// without recursion: it counts the values still to skip.
func skipValue(b []byte) ([]byte, error) {
	var err error
	for pending := uint64(1); pending > 0; pending-- {
		var n uint32
		switch msgp.NextType(b) {
		case msgp.MapType:
			if n, b, err = msgp.ReadMapHeaderBytes(b); err != nil {
				return nil, err
			}
			pending += 2 * uint64(n)
		case msgp.ArrayType:
			if n, b, err = msgp.ReadArrayHeaderBytes(b); err != nil {
				return nil, err
			}
			pending += uint64(n)
		default:
			if b, err = msgp.Skip(b); err != nil {
				return nil, err
			}
		}
		if pending-1 > uint64(len(b)) { // each value left takes a byte at least
			return nil, msgp.ErrShortBytes
		}
	}
	return b, nil
}

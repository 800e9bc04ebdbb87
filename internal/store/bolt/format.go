package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"batos/internal/store"
)

// On-disk layout, one bbolt file:
//
//	meta  "format" -> formatVersion; "last-tid", "max-oid" -> counters
//	      that must not go back when pack drops what set them
//	revs  oid(8, big-endian) | tid(8) -> record envelope
//	txns  tid(8)                      -> log entry envelope
//
// Keying revisions by oid then tid keeps an object's history adjacent, so
// "the revision as of tid" is one cursor seek.
//
// Record envelope: flags(1) crc32c(4) payload. The checksum covers the key
// as well, so a record that ends up under the wrong key is caught too.
// Log entry envelope: crc32c(4) body, the checksum also covering the key.

var (
	bucketMeta = []byte("meta")
	bucketRevs = []byte("revs")
	bucketTxns = []byte("txns")
	keyFormat  = []byte("format")
	keyLastTID = []byte("last-tid") // newest TID ever committed
	keyMaxOID  = []byte("max-oid")  // highest OID ever written
)

const formatVersion = 1

const (
	flagDeleted byte = 1 << iota
	knownFlags       = flagDeleted
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func revKey(oid store.OID, tid store.TID) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(oid))
	binary.BigEndian.PutUint64(k[8:], uint64(tid))
	return k
}

func splitRevKey(k []byte) (store.OID, store.TID) {
	return store.OID(binary.BigEndian.Uint64(k)), store.TID(binary.BigEndian.Uint64(k[8:]))
}

func tidKey(tid store.TID) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(tid))
}

func encodeRecord(key []byte, flags byte, data []byte) []byte {
	v := make([]byte, 5+len(data))
	v[0] = flags
	copy(v[5:], data)
	binary.BigEndian.PutUint32(v[1:], recordSum(key, flags, data))
	return v
}

func recordSum(key []byte, flags byte, data []byte) uint32 {
	c := crc32.Update(0, castagnoli, key)
	c = crc32.Update(c, castagnoli, []byte{flags})
	return crc32.Update(c, castagnoli, data)
}

// decodeRecord checks an envelope and returns its flags and payload. The
// payload aliases v, which bbolt only keeps valid inside its transaction.
func decodeRecord(key, v []byte) (byte, []byte, error) {
	oid, tid := splitRevKey(key)
	if len(v) < 5 {
		return 0, nil, &store.CorruptError{OID: oid, TID: tid, Detail: fmt.Sprintf("record of %d bytes is shorter than its header", len(v))}
	}
	flags, data := v[0], v[5:]
	if got, want := recordSum(key, flags, data), binary.BigEndian.Uint32(v[1:]); got != want {
		return 0, nil, &store.CorruptError{OID: oid, TID: tid, Detail: fmt.Sprintf("checksum mismatch (stored %08x, computed %08x)", want, got)}
	}
	if flags&^knownFlags != 0 {
		return 0, nil, &store.CorruptError{OID: oid, TID: tid, Detail: fmt.Sprintf("unknown flags %#02x", flags)}
	}
	return flags, data, nil
}

// encodeTxn lays out a log entry: time, user, description, extension
// (sorted by key so the encoding is deterministic) and the OIDs written,
// ascending and delta-encoded.
func encodeTxn(key []byte, info *store.TxInfo) []byte {
	b := make([]byte, 4, 64+len(info.User)+len(info.Description)+2*len(info.OIDs))
	b = binary.AppendVarint(b, info.Time.UnixNano())
	b = appendString(b, info.User)
	b = appendString(b, info.Description)
	keys := make([]string, 0, len(info.Extension))
	for k := range info.Extension {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, info.Extension[k])
	}
	b = binary.AppendUvarint(b, uint64(len(info.OIDs)))
	var prev store.OID
	for _, oid := range info.OIDs {
		b = binary.AppendUvarint(b, uint64(oid-prev))
		prev = oid
	}
	binary.BigEndian.PutUint32(b, txnSum(key, b[4:]))
	return b
}

func txnSum(key, body []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, key), castagnoli, body)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errShort = errors.New("truncated")

// decodeTxn checks and decodes a log entry.
func decodeTxn(key, v []byte) (store.TxInfo, error) {
	tid := store.TID(binary.BigEndian.Uint64(key))
	bad := func(detail string) (store.TxInfo, error) {
		return store.TxInfo{}, &store.CorruptError{TID: tid, Detail: detail}
	}
	if len(v) < 4 {
		return bad("log entry shorter than its checksum")
	}
	if got, want := txnSum(key, v[4:]), binary.BigEndian.Uint32(v); got != want {
		return bad(fmt.Sprintf("checksum mismatch (stored %08x, computed %08x)", want, got))
	}
	r := reader{b: v[4:]}
	info := store.TxInfo{TID: tid, Time: time.Unix(0, r.varint()).UTC()}
	info.User = r.string()
	info.Description = r.string()
	if n := r.count(); n > 0 {
		info.Extension = make(map[string]string, n)
		for range n {
			k := r.string()
			info.Extension[k] = r.string()
		}
	}
	n := r.count()
	info.OIDs = make([]store.OID, 0, n)
	var prev store.OID
	for range n {
		prev += store.OID(r.uvarint())
		info.OIDs = append(info.OIDs, prev)
	}
	if r.err != nil {
		return bad(r.err.Error())
	}
	if len(r.b) != 0 {
		return bad(fmt.Sprintf("%d trailing bytes", len(r.b)))
	}
	return info, nil
}

// reader decodes varints and strings, remembering the first error so the
// caller checks once.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a length that must not exceed the bytes left, since every
// counted element takes at least one byte.
func (r *reader) count() int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.err = fmt.Errorf("count %d exceeds the %d bytes left", n, len(r.b))
		return 0
	}
	return int(n)
}

func (r *reader) fixed64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.err = errShort
		return 0
	}
	v := beUint64(r.b)
	r.b = r.b[8:]
	return v
}

// bytes reads a length-prefixed byte string, copied out of the input.
func (r *reader) bytes() []byte {
	n := r.count()
	if r.err != nil {
		return nil
	}
	b := append([]byte(nil), r.b[:n]...)
	r.b = r.b[n:]
	return b
}

func (r *reader) string() string {
	n := r.count()
	if r.err != nil {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

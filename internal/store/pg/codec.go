package pg

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"

	"batos/internal/store"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// dataCRC is a record's content checksum; a commit computes it before
// the TID is known.
func dataCRC(data []byte) uint32 { return crc32.Checksum(data, castagnoli) }

// recordCRC is a row's checksum: it covers what identifies the revision
// as well as its content (through dataCRC), so a row copied under another
// object's key or TID fails its check too.
func recordCRC(oid store.OID, tid store.TID, deleted bool, dataCRC uint32) int64 {
	var buf [21]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(oid))
	binary.BigEndian.PutUint64(buf[8:16], uint64(tid))
	if deleted {
		buf[16] = 1
	}
	binary.BigEndian.PutUint32(buf[17:], dataCRC)
	return int64(crc32.Checksum(buf[:], castagnoli))
}

// txnCRC covers every column of a log entry.
func txnCRC(tid store.TID, timeNS int64, user, desc, ext []byte, oids []int64) int64 {
	buf := make([]byte, 0, 16+len(user)+len(desc)+len(ext)+8*len(oids)+24)
	buf = binary.BigEndian.AppendUint64(buf, uint64(tid))
	buf = binary.BigEndian.AppendUint64(buf, uint64(timeNS))
	for _, field := range [][]byte{user, desc, ext} {
		buf = binary.AppendUvarint(buf, uint64(len(field)))
		buf = append(buf, field...)
	}
	for _, oid := range oids {
		buf = binary.BigEndian.AppendUint64(buf, uint64(oid))
	}
	return int64(crc32.Checksum(buf, castagnoli))
}

// encodeExtension writes the pairs sorted by key, each key and value
// prefixed by its length: lossless for any bytes, and deterministic so
// the CRC is.
func encodeExtension(ext map[string]string) []byte {
	keys := make([]string, 0, len(ext))
	for k := range ext {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var buf []byte
	for _, k := range keys {
		buf = binary.AppendUvarint(buf, uint64(len(k)))
		buf = append(buf, k...)
		buf = binary.AppendUvarint(buf, uint64(len(ext[k])))
		buf = append(buf, ext[k]...)
	}
	return buf
}

var errBadExtension = errors.New("extension does not decode")

// decodeExtension reads what encodeExtension wrote; no pairs is nil.
func decodeExtension(buf []byte) (map[string]string, error) {
	var ext map[string]string
	next := func() (string, bool) {
		n, k := binary.Uvarint(buf)
		if k <= 0 || n > uint64(len(buf)-k) {
			return "", false
		}
		s := string(buf[k : k+int(n)])
		buf = buf[k+int(n):]
		return s, true
	}
	for len(buf) > 0 {
		k, ok := next()
		if !ok {
			return nil, errBadExtension
		}
		v, ok := next()
		if !ok {
			return nil, errBadExtension
		}
		if ext == nil {
			ext = map[string]string{}
		}
		ext[k] = v
	}
	return ext, nil
}

// OIDs are stored as bigint by their bits: an OID past 2^63 reads back as
// itself, only SQL's ordering of such OIDs differs.
func oidsToInt64(oids []store.OID) []int64 {
	out := make([]int64, len(oids))
	for i, o := range oids {
		out[i] = int64(o)
	}
	return out
}

func int64sToOIDs(v []int64) []store.OID {
	out := make([]store.OID, len(v))
	for i, o := range v {
		out[i] = store.OID(o)
	}
	return out
}

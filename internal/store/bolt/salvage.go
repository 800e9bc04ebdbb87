package bolt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"batos/internal/store"
)

// Salvage rebuilds a bbolt file whose page structure is damaged from the
// records and log entries it still holds intact. It does not trust the
// tree: it reads every page of the file with bounds checks, and keeps each
// key and value that passes batos's own checksum (which covers the key,
// so an intact entry is provably what was written). Copies in pages freed
// by later transactions are kept too: a revision or log entry never
// changes once written, so at worst history that pack had dropped comes
// back. The damaged file is moved aside, not deleted.
//
// What was lost shows in Verify afterwards: a log entry naming an object
// whose revision is gone, a revision whose log entry is gone.

// SalvageReport says what Salvage found and kept.
type SalvageReport struct {
	Pages        int    // pages read
	Revisions    int    // intact revisions kept
	Transactions int    // intact log entries kept
	MovedAside   string // where the damaged file went
}

const bboltMagic = 0xED0CDAED

// Salvage rebuilds the image file at path; the image must be closed.
func Salvage(path string) (*SalvageReport, error) {
	lock, err := lockProcess(path, false)
	if err != nil {
		return nil, fmt.Errorf("salvage %s: %w", path, err)
	}
	defer lock.release()
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("salvage %s: %w", path, err)
	}
	defer f.Close()
	s := &salvager{f: f, revs: map[string][]byte{}, txns: map[string][]byte{}, meta: map[string]uint64{}}
	if err := s.readAll(); err != nil {
		return nil, fmt.Errorf("salvage %s: %w", path, err)
	}
	tmp := path + ".salvage"
	os.Remove(tmp)
	if err := s.write(tmp); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("salvage %s: %w", path, noSpace(err, tmp, "rebuilt image"))
	}
	rep := &SalvageReport{Pages: s.pages, Revisions: len(s.revs), Transactions: len(s.txns)}
	rep.MovedAside = fmt.Sprintf("%s.damaged-%s", path, time.Now().UTC().Format("20060102T150405"))
	if err := os.Rename(path, rep.MovedAside); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("salvage %s: move the damaged file aside: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("salvage %s: put the rebuilt file in place (the damaged one is %s): %w", path, rep.MovedAside, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("salvage %s: %w", path, err)
	}
	return rep, nil
}

type salvager struct {
	f        *os.File
	size     int64
	pageSize int64
	pages    int
	revs     map[string][]byte // revision key -> envelope
	txns     map[string][]byte // log key -> envelope
	meta     map[string]uint64 // counters: the largest value seen
}

// readAll finds the page size from either meta page, then reads every
// page.
func (s *salvager) readAll() error {
	fi, err := s.f.Stat()
	if err != nil {
		return err
	}
	s.size = fi.Size()
	for _, ps := range []int64{4096, 8192, 16384, 32768, 65536, 2048, 1024} {
		for _, page := range []int64{0, 1} {
			hdr := make([]byte, 32)
			if _, err := s.f.ReadAt(hdr, page*ps); err != nil {
				continue
			}
			if binary.LittleEndian.Uint32(hdr[16:]) == bboltMagic && int64(binary.LittleEndian.Uint32(hdr[24:])) == ps {
				s.pageSize = ps
			}
		}
		if s.pageSize != 0 {
			break
		}
	}
	if s.pageSize == 0 {
		s.pageSize = int64(os.Getpagesize())
	}
	buf := make([]byte, s.pageSize)
	for id := int64(2); (id+1)*s.pageSize <= s.size; id++ {
		if _, err := s.f.ReadAt(buf, id*s.pageSize); err != nil && err != io.EOF {
			return err
		}
		s.pages++
		if binary.LittleEndian.Uint64(buf) != uint64(id) || binary.LittleEndian.Uint16(buf[8:]) != 0x02 {
			continue // not a leaf page, or not where its header says
		}
		span := buf
		if overflow := int64(binary.LittleEndian.Uint32(buf[12:])); overflow > 0 {
			if (id+1+overflow)*s.pageSize > s.size {
				continue
			}
			span = make([]byte, (1+overflow)*s.pageSize)
			if _, err := s.f.ReadAt(span, id*s.pageSize); err != nil {
				return err
			}
		}
		s.leaf(span, 0)
	}
	return nil
}

// leaf takes every intact entry of a leaf page (or an inline bucket's
// page, at depth 1).
func (s *salvager) leaf(page []byte, depth int) {
	if len(page) < 16 {
		return
	}
	count := int(binary.LittleEndian.Uint16(page[10:]))
	for i := range count {
		at := 16 + i*16
		if at+16 > len(page) {
			return
		}
		e := page[at : at+16]
		flags := binary.LittleEndian.Uint32(e)
		pos, ksize, vsize := int64(binary.LittleEndian.Uint32(e[4:])), int64(binary.LittleEndian.Uint32(e[8:])), int64(binary.LittleEndian.Uint32(e[12:]))
		start := int64(at) + pos
		if start < 0 || start+ksize+vsize > int64(len(page)) {
			continue
		}
		k, v := page[start:start+ksize], page[start+ksize:start+ksize+vsize]
		if flags&0x01 != 0 {
			if depth == 0 && len(v) > 16 && binary.LittleEndian.Uint64(v) == 0 {
				s.leaf(v[16:], depth+1) // an inline bucket
			}
			continue
		}
		s.entry(k, v)
	}
}

func (s *salvager) entry(k, v []byte) {
	switch {
	case len(k) == 16:
		if _, _, err := decodeRecord(k, v); err == nil {
			s.revs[string(k)] = bytes.Clone(v)
		}
	case len(k) == 8 && !bytes.Equal(k, keyLastTID):
		if _, err := decodeTxn(k, v); err == nil {
			s.txns[string(k)] = bytes.Clone(v)
		}
	}
	for _, name := range [][]byte{keyLastTID, keyMaxOID, keyPackedBefore} {
		if bytes.Equal(k, name) && len(v) == 8 {
			s.meta[string(name)] = max(s.meta[string(name)], beUint64(v))
		}
	}
}

// write puts what was kept into a new file, in key order.
func (s *salvager) write(path string) error {
	b, err := bbolt.Open(path, 0o644, &bbolt.Options{Timeout: time.Second, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.Update(initBuckets); err != nil {
		return err
	}
	var lastTID, maxOID uint64
	for k := range s.revs {
		oid, tid := splitRevKey([]byte(k))
		maxOID, lastTID = max(maxOID, uint64(oid)), max(lastTID, uint64(tid))
	}
	for k := range s.txns {
		lastTID = max(lastTID, beUint64([]byte(k)))
	}
	counters := map[string]uint64{
		string(keyLastTID): max(lastTID, s.meta[string(keyLastTID)]),
		string(keyMaxOID):  max(maxOID, s.meta[string(keyMaxOID)]),
	}
	if v, ok := s.meta[string(keyPackedBefore)]; ok {
		counters[string(keyPackedBefore)] = v
	}
	err = b.Update(func(tx *bbolt.Tx) error {
		for k, v := range counters {
			if err := tx.Bucket(bucketMeta).Put([]byte(k), tidKey(store.TID(v))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := putSorted(b, bucketRevs, s.revs, 0.9); err != nil {
		return err
	}
	if err := putSorted(b, bucketTxns, s.txns, 1.0); err != nil {
		return err
	}
	return b.Sync()
}

func putSorted(b *bbolt.DB, bucket []byte, kv map[string][]byte, fill float64) error {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for len(keys) > 0 {
		n := min(len(keys), 20000)
		err := b.Update(func(tx *bbolt.Tx) error {
			bk := tx.Bucket(bucket)
			bk.FillPercent = fill
			for _, k := range keys[:n] {
				if err := bk.Put([]byte(k), kv[k]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

package bolt

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"batos/internal/store"
)

// The write-ahead log makes a commit group durable with one append and
// one fdatasync; the bbolt file, whose commits cost two syncs and a page
// per changed object, is brought up to date later in large checkpoints.
//
// Each segment of the log is a sequence of frames, one per commit group:
//
//	length(4) crc32c(4) payload
//
// where the checksum covers the length and the payload, so a run of zero
// bytes (a tail whose size reached the disk but whose data did not) never
// passes for a frame. The payload holds the group's
// transactions, each already encoded exactly as it goes into the bbolt
// file:
//
//	uvarint ntx
//	per transaction: tid(8) uvarint len, log entry
//	                 uvarint nwrites
//	                 per write: oid(8) uvarint len, record envelope
//
// A frame is acknowledged only after its fdatasync, so a torn frame at the
// end (the process died while appending) was never acknowledged and is cut
// off on open.

// walTx is one committed transaction in the log or in the overlay.
type walTx struct {
	tid    store.TID
	entry  []byte     // log entry, as stored in the txns bucket
	writes []walWrite // revisions, as stored in the revs bucket
}

type walWrite struct {
	oid    store.OID
	record []byte // envelope: flags, checksum, payload
}

// wal is the log's current segment. The log is a sequence of segment
// files PATH.wal.00000001, ...; a checkpoint starts a new segment and
// removes the old ones once their transactions are in the bbolt file.
type wal struct {
	base string // PATH.wal
	seq  uint64
	f    *os.File
	size int64
}

func segmentName(base string, seq uint64) string { return fmt.Sprintf("%s.%08d", base, seq) }

// segments lists the log's segment numbers in order.
func segments(base string) ([]uint64, error) {
	names, err := filepath.Glob(base + ".*")
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, name := range names {
		seq, err := strconv.ParseUint(strings.TrimPrefix(name, base+"."), 10, 64)
		if err == nil && segmentName(base, seq) == name {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// readSegment returns the transactions of a segment's intact frames and
// where they end, if that is before the end of the file.
func readSegment(path string) (txs []walTx, damagedAt int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	w := &wal{f: f}
	txs, end, err := w.read()
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if fi.Size() != end {
		return txs, end, nil
	}
	return txs, -1, nil
}

// createSegment starts segment seq and makes its directory entry durable,
// so recovery finds it.
func createSegment(base string, seq uint64) (*wal, error) {
	f, err := os.OpenFile(segmentName(base, seq), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create write-ahead log segment: %w", err)
	}
	if err := syncDir(filepath.Dir(base)); err != nil {
		f.Close()
		return nil, fmt.Errorf("create write-ahead log segment: %w", err)
	}
	return &wal{base: base, seq: seq, f: f}, nil
}

// rotate switches to a new segment and returns the old one, which the
// caller removes once a checkpoint has made it redundant.
func (w *wal) rotate() (*wal, error) {
	next, err := createSegment(w.base, w.seq+1)
	if err != nil {
		return nil, err
	}
	old := *w
	*w = *next
	return &old, nil
}

// remove closes and deletes a segment whose content is in the bbolt file.
func (w *wal) remove() error {
	w.f.Close()
	return os.Remove(segmentName(w.base, w.seq))
}

// read returns every intact frame's transactions and the offset where the
// intact frames end.
func (w *wal) read() ([]walTx, int64, error) {
	data, err := io.ReadAll(io.NewSectionReader(w.f, 0, 1<<62))
	if err != nil {
		return nil, 0, fmt.Errorf("read write-ahead log: %w", err)
	}
	var txs []walTx
	off := int64(0)
	for len(data) >= 8 {
		n := binary.BigEndian.Uint32(data)
		if n == 0 || uint64(n) > uint64(len(data)-8) {
			break // torn frame
		}
		payload := data[8 : 8+n]
		if frameSum(data[:4], payload) != binary.BigEndian.Uint32(data[4:]) {
			break
		}
		group, err := decodeGroup(payload)
		if err != nil {
			return nil, 0, fmt.Errorf("write-ahead log frame at %d: %w", off, err)
		}
		txs = append(txs, group...)
		data = data[8+n:]
		off += 8 + int64(n)
	}
	return txs, off, nil
}

func encodeGroup(txs []walTx) []byte {
	size := 16
	for _, t := range txs {
		size += 20 + len(t.entry)
		for _, w := range t.writes {
			size += 20 + len(w.record)
		}
	}
	b := make([]byte, 8, size)
	b = binary.AppendUvarint(b, uint64(len(txs)))
	for _, t := range txs {
		b = binary.BigEndian.AppendUint64(b, uint64(t.tid))
		b = binary.AppendUvarint(b, uint64(len(t.entry)))
		b = append(b, t.entry...)
		b = binary.AppendUvarint(b, uint64(len(t.writes)))
		for _, w := range t.writes {
			b = binary.BigEndian.AppendUint64(b, uint64(w.oid))
			b = binary.AppendUvarint(b, uint64(len(w.record)))
			b = append(b, w.record...)
		}
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-8))
	binary.BigEndian.PutUint32(b[4:], frameSum(b[:4], b[8:]))
	return b
}

func frameSum(length, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(length, castagnoli), castagnoli, payload)
}

func decodeGroup(p []byte) ([]walTx, error) {
	r := reader{b: p}
	n := r.count()
	txs := make([]walTx, 0, min(n, 1024))
	for range n {
		t := walTx{tid: store.TID(r.fixed64())}
		t.entry = r.bytes()
		nw := r.count()
		t.writes = make([]walWrite, 0, min(nw, 1024))
		for range nw {
			oid := store.OID(r.fixed64())
			t.writes = append(t.writes, walWrite{oid: oid, record: r.bytes()})
		}
		txs = append(txs, t)
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(r.b))
	}
	return txs, nil
}

// write appends a frame; it is durable only after sync.
func (w *wal) write(frame []byte) error {
	if _, err := w.f.WriteAt(frame, w.size); err != nil {
		return err
	}
	w.size += int64(len(frame))
	return nil
}

// sync makes every frame written so far durable.
func (w *wal) sync() error { return unix.Fdatasync(int(w.f.Fd())) }

func (w *wal) close() error { return w.f.Close() }

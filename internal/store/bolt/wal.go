package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"batos/internal/store"
)

// The write-ahead log makes a commit group durable with one append and
// one fdatasync; the bbolt file, whose commits cost two syncs and a page
// per changed object, is brought up to date later in large checkpoints.
//
// The log is a sequence of segment files PATH.wal.00000001, ... Each
// starts with a header, written and synced before any frame:
//
//	magic "batoswal"(8) version(1) flags(1) reserved(2) seq(8) base(8) crc32c(4)
//
// base is the newest TID acknowledged when the segment was created: every
// transaction up to it is in the bbolt file or in an older segment. The
// header outlives the checkpoints (a clean Close leaves one empty segment
// behind, flagged clean), so a bbolt file older than what was acknowledged
// — its newest meta page damaged, bbolt falling back to the one before —
// is refused instead of silently rolling commits back.
//
// Then come frames, one per commit group:
//
//	magic(4) length(4) durable(8) hcrc(4) pcrc(4) payload
//
// hcrc covers the 16 bytes before it and pcrc the payload. durable is
// where the segment's frames ended that were known durable (fdatasync
// returned) when this frame was written. A crash can only tear what was
// not yet durable, so a bad frame followed by an intact frame whose durable
// lies beyond it is damage to acknowledged commits, not a torn tail; the
// magic and header checksum let recovery find the frames after a damaged
// one without trusting its length. The payload holds the group's
// transactions, each encoded exactly as it goes into the bbolt file:
//
//	uvarint ntx
//	per transaction: tid(8) uvarint len, log entry
//	                 uvarint nwrites
//	                 per write: oid(8) uvarint len, record envelope
//
// Segments written by batos before the header existed (version 1: frames
// of length(4) crc32c(4) payload, no header) are still read.

const (
	walMagic       = "batoswal"
	walVersion     = 2
	walHeaderSize  = 32
	frameHeadSize  = 24
	frameMagic     = 0xba705f02
	walFlagClean   = 1 << 0 // written by a clean Close: the file holds everything
	legacyHeadSize = 8
)

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

// wal is the log's current segment.
type wal struct {
	base string // PATH.wal
	seq  uint64
	f    *os.File
	size int64 // end of the frames written; committer only
	// synced is where the frames known durable end: the syncer stores it
	// after each fdatasync, the committer reads it into each new frame.
	synced atomic.Int64
}

func segmentName(base string, seq uint64) string { return fmt.Sprintf("%s.%08d", base, seq) }

func (w *wal) path() string { return segmentName(w.base, w.seq) }

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

// segmentHeader is what a segment's header says.
type segmentHeader struct {
	flags byte
	seq   uint64
	base  store.TID
}

func encodeHeader(h segmentHeader) []byte {
	b := make([]byte, walHeaderSize)
	copy(b, walMagic)
	b[8] = walVersion
	b[9] = h.flags
	binary.BigEndian.PutUint64(b[12:], h.seq)
	binary.BigEndian.PutUint64(b[20:], uint64(h.base))
	binary.BigEndian.PutUint32(b[28:], crc32.Checksum(b[:28], castagnoli))
	return b
}

// createSegment starts segment seq, its header saying that every
// transaction up to base was acknowledged, and makes header and directory
// entry durable before any frame can be written to it.
func createSegment(base string, seq uint64, baseTID store.TID, flags byte) (*wal, error) {
	name := segmentName(base, seq)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create write-ahead log segment: %w", noSpace(err, name, "write-ahead log"))
	}
	_, err = f.WriteAt(encodeHeader(segmentHeader{flags: flags, seq: seq, base: baseTID}), 0)
	if err == nil {
		err = unix.Fdatasync(int(f.Fd()))
	}
	if err == nil {
		err = syncDir(filepath.Dir(base))
	}
	if err != nil {
		f.Close()
		os.Remove(name)
		return nil, fmt.Errorf("create write-ahead log segment: %w", noSpace(err, name, "write-ahead log"))
	}
	w := &wal{base: base, seq: seq, f: f, size: walHeaderSize}
	w.synced.Store(walHeaderSize)
	return w, nil
}

// rotate switches to a new segment whose header records base, and returns
// the old one, which the caller removes once a checkpoint has made it
// redundant. Caller: the committer, with nothing in flight.
func (w *wal) rotate(base store.TID, flags byte) (*wal, error) {
	next, err := createSegment(w.base, w.seq+1, base, flags)
	if err != nil {
		return nil, err
	}
	old := &wal{base: w.base, seq: w.seq, f: w.f, size: w.size}
	w.seq, w.f, w.size = next.seq, next.f, next.size
	w.synced.Store(next.synced.Load())
	return old, nil
}

// remove closes and deletes a segment whose content is in the bbolt file.
func (w *wal) remove() error {
	w.f.Close()
	return os.Remove(w.path())
}

// encodeGroup lays out a commit group for the log: the payload behind room for
// the frame header, which seal fills in when the frame is written.
func encodeGroup(txs []walTx) []byte {
	size := frameHeadSize + 8
	for _, t := range txs {
		size += 20 + len(t.entry)
		for _, w := range t.writes {
			size += 20 + len(w.record)
		}
	}
	b := make([]byte, frameHeadSize, size)
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
	binary.BigEndian.PutUint32(b[20:], crc32.Checksum(b[frameHeadSize:], castagnoli))
	return b
}

// sealFrame fills in a frame's header.
func sealFrame(frame []byte, durable int64) {
	binary.BigEndian.PutUint32(frame, frameMagic)
	binary.BigEndian.PutUint32(frame[4:], uint32(len(frame)-frameHeadSize))
	binary.BigEndian.PutUint64(frame[8:], uint64(durable))
	binary.BigEndian.PutUint32(frame[16:], crc32.Checksum(frame[:16], castagnoli))
}

// write appends a frame; it is durable only after sync. A failed write
// leaves size where it was: the next frame overwrites what it left.
func (w *wal) write(frame []byte) error {
	sealFrame(frame, w.synced.Load())
	if _, err := w.f.WriteAt(frame, w.size); err != nil {
		return noSpace(err, w.path(), "write-ahead log")
	}
	w.size += int64(len(frame))
	return nil
}

// sync makes every frame written so far durable.
func (w *wal) sync() error {
	if err := unix.Fdatasync(int(w.f.Fd())); err != nil {
		return noSpace(err, w.path(), "write-ahead log")
	}
	return nil
}

// truncateToSynced cuts off every frame not known durable and makes the
// cut durable, so frames whose commits were refused can never be replayed.
// Caller: the committer, with nothing in flight.
func (w *wal) truncateToSynced() error {
	end := w.synced.Load()
	if err := w.f.Truncate(end); err != nil {
		return noSpace(err, w.path(), "write-ahead log")
	}
	if err := w.sync(); err != nil {
		return err
	}
	w.size = end
	return nil
}

func (w *wal) close() error { return w.f.Close() }

// closedCleanly reports, before the image is opened, whether its log
// shows it was last closed cleanly: no segment holds frames or stray
// bytes, and the newest one's header is flagged clean.
func closedCleanly(base string) bool {
	seqs, err := segments(base)
	if err != nil || len(seqs) == 0 {
		return false
	}
	for _, seq := range seqs {
		fi, err := os.Stat(segmentName(base, seq))
		if err != nil || fi.Size() > walHeaderSize {
			return false
		}
	}
	s, err := scanSegment(segmentName(base, seqs[len(seqs)-1]))
	return err == nil && s.header != nil && s.header.flags&walFlagClean != 0 && !s.damaged
}

// segmentScan is what recovery found in one segment.
type segmentScan struct {
	path   string
	header *segmentHeader // nil for a version 1 segment or a torn creation
	txs    []walTx        // the intact frames before any damage, in order
	end    int64          // where those frames end
	size   int64          // the file's size
	// After end: later holds the transactions of intact frames found
	// beyond the bad bytes; damaged says some of them were written once
	// the bad bytes were durable, so acknowledged commits were lost.
	later   []walTx
	damaged bool
	detail  string
}

// torn reports whether the segment has bytes after its intact frames.
func (s *segmentScan) torn() bool { return s.end < s.size }

// scanSegment reads a segment, telling a tail a crash tore (never
// acknowledged) from damage to acknowledged frames.
func scanSegment(path string) (*segmentScan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read write-ahead log: %w", err)
	}
	s := &segmentScan{path: path, size: int64(len(data))}
	if !bytes.HasPrefix(data, []byte(walMagic)) {
		if err := s.scanLegacy(data); err != nil || len(s.txs) > 0 {
			return s, err
		}
		// No version 1 frame: a version 2 segment whose magic is damaged
		// still has a header that checks out with the magic restored, or
		// frames after it.
		var ignored bool
		s.later = intactFramesAfter(data, -1, &ignored)
		if len(s.later) > 0 || headerWithoutMagic(data) {
			s.damaged, s.detail = true, "its header is damaged"
		}
		return s, nil
	}
	if len(data) < walHeaderSize {
		// A crash while the segment was created: frames follow only a
		// synced header, so none can be here.
		return s, nil
	}
	h := data[:walHeaderSize]
	if crc32.Checksum(h[:28], castagnoli) != binary.BigEndian.Uint32(h[28:]) || h[8] != walVersion {
		var ignored bool
		s.later = intactFramesAfter(data, 0, &ignored)
		s.damaged, s.detail = true, "its header fails its checksum"
		return s, nil
	}
	s.header = &segmentHeader{flags: h[9], seq: binary.BigEndian.Uint64(h[12:]), base: store.TID(binary.BigEndian.Uint64(h[20:]))}
	off := int64(walHeaderSize)
	for {
		payload, next, ok := frameAt(data, off)
		if !ok {
			break
		}
		group, err := decodeGroup(payload)
		if err != nil {
			// The checksums passed: batos wrote this frame as it is.
			s.damaged, s.detail = true, fmt.Sprintf("frame at offset %d passes its checksums but does not decode: %v", off, err)
			break
		}
		s.txs = append(s.txs, group...)
		off = next
	}
	s.end = off
	if s.torn() && !s.damaged {
		var ackedBeyond bool
		s.later = intactFramesAfter(data, off, &ackedBeyond)
		if ackedBeyond {
			s.damaged = true
			s.detail = fmt.Sprintf("the frame at offset %d fails its checksum, but frames after it were written once it was durable", off)
		}
	}
	return s, nil
}

// headerWithoutMagic reports whether data starts with a segment header
// that is intact but for its magic.
func headerWithoutMagic(data []byte) bool {
	if len(data) < walHeaderSize {
		return false
	}
	h := bytes.Clone(data[:walHeaderSize])
	copy(h, walMagic)
	return crc32.Checksum(h[:28], castagnoli) == binary.BigEndian.Uint32(h[28:])
}

// frameAt checks the frame at off and returns its payload and where the
// next frame starts.
func frameAt(data []byte, off int64) (payload []byte, next int64, ok bool) {
	rest := data[off:]
	if len(rest) < frameHeadSize || binary.BigEndian.Uint32(rest) != frameMagic {
		return nil, 0, false
	}
	if crc32.Checksum(rest[:16], castagnoli) != binary.BigEndian.Uint32(rest[16:]) {
		return nil, 0, false
	}
	n := int64(binary.BigEndian.Uint32(rest[4:]))
	if n > int64(len(rest)-frameHeadSize) {
		return nil, 0, false
	}
	payload = rest[frameHeadSize : frameHeadSize+n]
	if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(rest[20:]) {
		return nil, 0, false
	}
	return payload, off + frameHeadSize + n, true
}

// intactFramesAfter finds the intact frames after the bad bytes at from,
// by their magic and header checksum, and reports whether any of them was
// written when bytes beyond from were already durable.
func intactFramesAfter(data []byte, from int64, ackedBeyond *bool) []walTx {
	var txs []walTx
	magic := binary.BigEndian.AppendUint32(nil, frameMagic)
	for off := from + 1; off < int64(len(data)); {
		i := bytes.Index(data[off:], magic)
		if i < 0 {
			break
		}
		off += int64(i)
		payload, next, ok := frameAt(data, off)
		if !ok {
			off++
			continue
		}
		if int64(binary.BigEndian.Uint64(data[off+8:])) > from {
			*ackedBeyond = true
		}
		if group, err := decodeGroup(payload); err == nil {
			txs = append(txs, group...)
		}
		off = next
	}
	return txs
}

// scanLegacy reads a version 1 segment (no header): frames of length(4)
// crc32c(4) payload, read up to the first that fails. Their format cannot
// tell a torn tail from damage within the segment.
func (s *segmentScan) scanLegacy(data []byte) error {
	off := int64(0)
	for len(data) >= legacyHeadSize {
		n := binary.BigEndian.Uint32(data)
		if n == 0 || uint64(n) > uint64(len(data)-legacyHeadSize) {
			break // torn frame
		}
		payload := data[legacyHeadSize : legacyHeadSize+n]
		sum := crc32.Update(crc32.Checksum(data[:4], castagnoli), castagnoli, payload)
		if sum != binary.BigEndian.Uint32(data[4:]) {
			break
		}
		group, err := decodeGroup(payload)
		if err != nil {
			return fmt.Errorf("write-ahead log %s: frame at %d: %w", s.path, off, err)
		}
		s.txs = append(s.txs, group...)
		data = data[legacyHeadSize+n:]
		off += legacyHeadSize + int64(n)
	}
	s.end = off
	return nil
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

// noSpace wraps a write error caused by a full file system (or quota) in
// a *store.NoSpaceError naming the path.
func noSpace(err error, path, op string) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return &store.NoSpaceError{Path: path, Op: op, Err: err}
	}
	return err
}

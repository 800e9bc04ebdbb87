package fulltext

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/blevesearch/bleve/v2/index/scorch"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// newestGen returns the generation in the stats record of the newest
// snapshot in the index's snapshot file.
func newestGen(dir string) (gen uint64, err error) {
	defer func(faults bool) {
		// bbolt asserts (panics) on some damage, and faults reading a
		// file cut short through its memory map.
		debug.SetPanicOnFault(faults)
		if r := recover(); r != nil {
			notePanic(dir)
			err = fmt.Errorf("read snapshots: bleve panicked: %v", r)
		}
	}(debug.SetPanicOnFault(true))
	points, err := scorch.RollbackPoints(filepath.Join(dir, "store"))
	if err != nil {
		return 0, fmt.Errorf("read snapshots: %w", err)
	}
	if len(points) == 0 {
		return 0, errors.New("no snapshot")
	}
	st, err := decodeStats(points[0].GetInternal([]byte(statsKey)))
	if err != nil {
		return 0, fmt.Errorf("newest snapshot: %w", err)
	}
	return st.Gen, nil
}

// verify opens dir read-only, which starts none of scorch's background
// work, and checks that scorch loaded the newest snapshot, the stats
// record, and the CRC-32 of every segment file the snapshot refers to.
func verify(dir string) error {
	gen, err := newestGen(dir)
	if err != nil {
		return err
	}
	bi, err := openBleve(dir, true)
	if err != nil {
		return err
	}
	defer bi.Close()
	st, err := loadStats(bi)
	if err != nil {
		return err
	}
	if st.Gen != gen {
		return fmt.Errorf("the newest snapshot (generation %d) cannot be loaded: bleve fell back to generation %d", gen, st.Gen)
	}
	r, err := snapshotReader(bi)
	if err != nil {
		return err
	}
	defer r.Close()
	snap, ok := r.(*scorch.IndexSnapshot)
	if !ok {
		return fmt.Errorf("reader %T, not a scorch snapshot", r)
	}
	for _, ss := range snap.Segments() {
		ps, ok := ss.Segment().(segment.PersistedSegment)
		if !ok {
			continue
		}
		if err := checkSegment(ps.Path()); err != nil {
			return err
		}
	}
	return nil
}

// checkSegment checks a zap segment file against the CRC-32 (IEEE) of all
// its bytes before the last four, which hold it.
func checkSegment(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("segment %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("segment %s: %w", filepath.Base(path), err)
	}
	size := fi.Size()
	if size < 4 {
		return fmt.Errorf("segment %s: %d bytes", filepath.Base(path), size)
	}
	h := crc32.NewIEEE()
	if _, err := io.Copy(h, io.LimitReader(f, size-4)); err != nil {
		return fmt.Errorf("segment %s: %w", filepath.Base(path), err)
	}
	var sum [4]byte
	if _, err := io.ReadFull(f, sum[:]); err != nil {
		return fmt.Errorf("segment %s: %w", filepath.Base(path), err)
	}
	if got, want := h.Sum32(), binary.BigEndian.Uint32(sum[:]); got != want {
		return fmt.Errorf("segment %s: checksum %08x, the file says %08x", filepath.Base(path), got, want)
	}
	return nil
}

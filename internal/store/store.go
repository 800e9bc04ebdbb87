// Package store defines the storage engine beneath the image: records of
// bytes addressed by OID, written in transactions identified by TIDs, with
// full history, undo, pack, content-addressed blobs and verification.
//
// # Model
//
// Each object is a chain of revisions. A revision is the bytes an object
// held after a transaction (its serial is that transaction's TID). A commit
// names, for each object it writes, the serial it read the object at; if
// any of them is no longer current, the whole commit is refused with a
// [ConflictError] naming every conflicting object. Serial 0 means "the
// object does not exist yet".
//
// TIDs strictly increase and encode the commit time in nanoseconds since
// the Unix epoch, so a time maps to a TID without a lookup.
//
// The store does not understand record bytes. Operations that must follow
// references (pack, verify) take a [RefsFunc] from the layer above.
//
// # Engines
//
// An [Engine] is a plug-in boundary, like database/sql/driver: the embedded
// default is store/bolt; every engine must pass store/storetest.
package store

import (
	"context"
	"fmt"
	"io"
	"time"
)

// OID identifies an object. The zero OID is never a valid object.
type OID uint64

// RootOID is reserved for the root object, from which reachability is
// computed; NewOIDs never returns it.
const RootOID OID = 1

// TID identifies a committed transaction; TIDs strictly increase.
type TID uint64

// MaxTID is larger than any TID a store will assign.
const MaxTID = TID(1<<63 - 1)

// Limits every engine enforces on what a commit may carry.
const (
	// MaxRecordSize is the largest record a commit may write.
	MaxRecordSize = 64 << 20
	// MaxMetaSize bounds the user, description and extension of a
	// transaction together.
	MaxMetaSize = 64 << 10
)

// Record is one revision of an object.
type Record struct {
	OID    OID
	Serial TID // the transaction that wrote this revision
	Data   []byte
}

// Write is one object written by a commit.
type Write struct {
	OID OID
	// Serial is the revision the writer based its change on: the serial it
	// read the object at, or 0 for an object that must not exist yet.
	Serial TID
	Data   []byte
}

// TxMeta describes a transaction to commit.
type TxMeta struct {
	User        string
	Description string
	Extension   map[string]string
	// Notice is what the commit tells the other processes sharing the
	// store as it commits (the topic and fields of its event), for a
	// Watcher's watchers; it is not kept, and an engine no other process
	// shares ignores it. At most MaxNotice bytes reach them: a longer
	// one is dropped.
	Notice []byte
}

// MaxNotice bounds a commit's Notice (a PostgreSQL notification carries
// under 8,000 bytes).
const MaxNotice = 4096

// TxInfo is a committed transaction as the log records it.
type TxInfo struct {
	TID         TID
	Time        time.Time
	User        string
	Description string
	Extension   map[string]string
	OIDs        []OID // the objects written, ascending
}

// Revision describes one entry of an object's history.
type Revision struct {
	Serial TID
	Size   int
	// Deleted marks a revision recording that the object ceased to exist
	// (an undone creation).
	Deleted bool
}

// LogQuery selects transactions from the log, newest first.
type LogQuery struct {
	Before TID // only transactions older than this; 0 means no bound
	Limit  int // at most this many; 0 means no limit
}

// RefsFunc reports the objects and blobs a record refers to. It is supplied
// by the layer that knows the record format.
type RefsFunc func(data []byte) (oids []OID, blobs []Digest, err error)

// PackOptions configures a pack.
type PackOptions struct {
	// Before: revisions superseded before this time are dropped.
	Before time.Time
	// Root is the object from which reachability is computed.
	Root OID
	// Refs finds references in a record.
	Refs RefsFunc
	// BeforeSweep, if set, is called after marking and before anything is
	// deleted, with the TID the marking saw. It lets the caller wait until
	// no reader holds references it obtained at an older snapshot.
	BeforeSweep func(ctx context.Context, marked TID) error
}

// CompactResult reports a compaction, which rewrites an engine's file
// without the space pack left free: the file's size before and after.
type CompactResult struct {
	BytesBefore, BytesAfter int64
}

// PackResult reports what a pack removed.
type PackResult struct {
	Revisions    int // superseded revisions dropped
	Objects      int // unreachable objects dropped with all their revisions
	Transactions int // log entries dropped
	Blobs        int // unreferenced blobs removed
	BlobBytes    int64
}

// Stats summarises a store.
type Stats struct {
	Objects      int
	Revisions    int
	Transactions int
	Blobs        int
	BlobBytes    int64
	FileBytes    int64
	LastTID      TID
}

// Engine is a storage engine. All methods are safe for concurrent use.
type Engine interface {
	// NewOIDs reserves n fresh OIDs, never 0 or RootOID.
	NewOIDs(ctx context.Context, n int) ([]OID, error)
	// LastTID is the newest committed transaction.
	LastTID() TID

	// Load returns the current revision of oid.
	Load(ctx context.Context, oid OID) (Record, error)
	// LoadAt returns the revision of oid current as of transaction at.
	LoadAt(ctx context.Context, oid OID, at TID) (Record, error)

	// Commit durably writes a transaction and returns its TID, or a
	// *ConflictError naming every object whose serial is stale.
	Commit(ctx context.Context, meta TxMeta, writes []Write) (TID, error)

	// Log lists transactions, newest first.
	Log(ctx context.Context, q LogQuery) ([]TxInfo, error)
	// Transaction returns one transaction's log entry.
	Transaction(ctx context.Context, tid TID) (TxInfo, error)
	// History lists an object's revisions, newest first.
	History(ctx context.Context, oid OID, limit int) ([]Revision, error)

	// Undo commits a new transaction restoring every object tid wrote to
	// its revision before tid. It fails with an *UndoError if a later
	// transaction changed any of them.
	Undo(ctx context.Context, tid TID, meta TxMeta) (TID, error)
	// Pack drops superseded history and unreachable objects and blobs.
	Pack(ctx context.Context, opts PackOptions) (PackResult, error)

	// PutBlob streams r into the blob store and makes it durable; the
	// transaction referring to it must commit after PutBlob returns.
	PutBlob(ctx context.Context, r io.Reader) (Blob, error)
	// OpenBlob streams a blob back. The reader fails with a
	// *CorruptBlobError at the end if the content does not match its digest.
	OpenBlob(ctx context.Context, d Digest) (io.ReadCloser, error)
	// StatBlob reports a stored blob's size.
	StatBlob(ctx context.Context, d Digest) (Blob, error)

	// Verify checks every record, log entry and blob, and every reference.
	Verify(ctx context.Context, refs RefsFunc) (*Report, error)
	// Stats counts what the store holds.
	Stats(ctx context.Context) (Stats, error)

	// Close releases the store; it waits for commits in flight.
	Close() error
}

// Importer is implemented by engines that can take transactions as
// another engine recorded them, to copy an image between engines with its
// whole history (batos image copy): each keeps its TID, time, metadata
// and revisions, so the copy's log and histories read as the original's.
type Importer interface {
	// Import writes one transaction as info describes it, with the
	// revisions it wrote. info.TID must be greater than every TID in the
	// store. info.OIDs (ascending, at least one) is what the log says it
	// wrote; records (ascending) are those of its revisions the source
	// still holds, a pack having dropped the others (all of them, for an
	// entry a pack left alone). No serials are checked: the history is
	// copied, not written anew. OIDs allocated afterwards are beyond
	// every imported one.
	Import(ctx context.Context, info TxInfo, records []ImportRecord) error
	// MarkPacked records that the image was packed up to transaction
	// before, as the source's pack left it: log entries up to it may name
	// revisions that are gone (Verify accepts that), and they cannot be
	// undone.
	MarkPacked(ctx context.Context, before TID) error
}

// ImportRecord is one revision of an imported transaction: the object's
// data, or Deleted for a revision recording that it ceased to exist (an
// undone creation).
type ImportRecord struct {
	OID     OID
	Data    []byte
	Deleted bool
}

// ValidateImport checks an imported transaction against the rules every
// commit follows, and info.OIDs against its records.
func ValidateImport(info TxInfo, records []ImportRecord) error {
	if info.TID == 0 || info.TID > MaxTID {
		return fmt.Errorf("%w: import of transaction %s: TID out of range", ErrInvalid, info.TID)
	}
	if info.Time.Year() < 1678 || info.Time.Year() > 2261 {
		// Outside what nanoseconds since 1970 in an int64 can say.
		return fmt.Errorf("%w: import of transaction %s: time %s out of range", ErrInvalid, info.TID, info.Time)
	}
	if len(info.OIDs) == 0 {
		return fmt.Errorf("%w: import of transaction %s: its log entry names no objects", ErrInvalid, info.TID)
	}
	for i, oid := range info.OIDs {
		if oid == 0 || i > 0 && info.OIDs[i-1] >= oid {
			return fmt.Errorf("%w: import of transaction %s: its OIDs are not ascending and non-zero", ErrInvalid, info.TID)
		}
	}
	writes := make([]Write, len(records))
	named := 0
	for i, r := range records {
		writes[i] = Write{OID: r.OID, Data: r.Data}
		if r.Deleted && len(r.Data) > 0 {
			return fmt.Errorf("%w: import of transaction %s: %s is deleted but has data", ErrInvalid, info.TID, r.OID)
		}
		if i > 0 && records[i-1].OID >= r.OID {
			return fmt.Errorf("%w: import of transaction %s: its records are not in ascending OID order", ErrInvalid, info.TID)
		}
		for named < len(info.OIDs) && info.OIDs[named] < r.OID {
			named++
		}
		if named == len(info.OIDs) || info.OIDs[named] != r.OID {
			return fmt.Errorf("%w: import of transaction %s: a record of %s, which its log entry does not name", ErrInvalid, info.TID, r.OID)
		}
	}
	if len(writes) == 0 {
		// A log entry whose revisions a pack dropped: its metadata alone.
		writes = []Write{{OID: info.OIDs[0]}}
	}
	return ValidateCommit(TxMeta{User: info.User, Description: info.Description, Extension: info.Extension}, writes)
}

// Watcher is implemented by engines other processes commit to as well (a
// database several nodes share). WatchCommits calls fn, from one
// goroutine, with each transaction other processes commit from then on,
// in TID order, each once: its log entry and the notice it was committed
// with (nil when that was lost on the way, or too long). stop ends it;
// fn is not called once stop has returned.
type Watcher interface {
	WatchCommits(fn func(info TxInfo, notice []byte)) (stop func())
}

// Freshener is implemented by engines other processes commit to as well
// (a database several nodes share): LatestTID asks the shared store for
// its newest committed transaction, so a transaction begun after another
// node's commit sees it, however late that node's notice arrives.
// LastTID stays the cheap, possibly late, answer.
type Freshener interface {
	LatestTID(ctx context.Context) (TID, error)
}

// SerialReader is implemented by engines that can often tell from
// memory which revision of an object a snapshot sees, without reading
// it: SerialAt returns the serial LoadAt(ctx, oid, at) would answer
// with, and true, when it knows it cheaply; false means it does not
// (the object was not read or written lately, or it does not exist), and
// the caller asks LoadAt. A true answer is exact, as LoadAt's would be.
// It never blocks; a caller that keeps decoded states by OID and serial
// (the image) reads an object it holds without loading its record.
type SerialReader interface {
	SerialAt(oid OID, at TID) (TID, bool)
}

// PackMarker is implemented by engines that record how far their history
// was packed: PackedBefore is the newest transaction a pack cut at (0:
// never packed). Transactions up to it cannot be undone; a copy carries
// the mark so that its copy refuses them too.
type PackMarker interface {
	PackedBefore(ctx context.Context) (TID, error)
}

// Leaser is implemented by engines several processes share (a database
// with many nodes): it grants leases, each a named right that one holder
// has at a time until it expires, unless renewed first. Work that must
// run on one node at a time (a cycle, the heartbeat) holds one. Expiry is
// judged by the store's clock, not the nodes', so nodes whose clocks
// disagree still agree on who holds a lease.
type Leaser interface {
	// AcquireLease grants lease name to holder for ttl when it is free,
	// expired, or holder's own (then it is renewed); ok is false when
	// another holder's lease has not expired.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (l Lease, ok bool, err error)
	// RenewLease extends a held lease by ttl from now; ok is false when
	// it was lost (it expired and another holder took it, or it was
	// released).
	RenewLease(ctx context.Context, l Lease, ttl time.Duration) (ok bool, err error)
	// ReleaseLease gives a held lease up at once; releasing one already
	// lost is no error.
	ReleaseLease(ctx context.Context, l Lease) error
}

// Lease is a lease as granted. Generation grows every time the lease
// changes holder, so a holder's right is the pair (Holder, Generation):
// a holder that lost its lease and took it again holds a new one.
type Lease struct {
	Name       string
	Holder     string
	Generation int64
}

// String reads "NAME held by HOLDER (generation N)".
func (l Lease) String() string {
	return fmt.Sprintf("%s held by %s (generation %d)", l.Name, l.Holder, l.Generation)
}

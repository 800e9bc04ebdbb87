package store

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Callers test for them with errors.Is.
var (
	// ErrNotFound is returned when an object (or a revision of it as of
	// the requested transaction) does not exist.
	ErrNotFound = errors.New("store: object not found")
	// ErrConflict is wrapped by *ConflictError.
	ErrConflict = errors.New("store: write conflict")
	// ErrUndo is wrapped by *UndoError.
	ErrUndo = errors.New("store: cannot undo")
	// ErrCorrupt is wrapped by *CorruptError and *CorruptBlobError.
	ErrCorrupt = errors.New("store: corrupt data")
	// ErrNoTransaction is returned for a TID the log does not hold.
	ErrNoTransaction = errors.New("store: no such transaction")
	// ErrBlobNotFound is returned for a digest the blob store does not hold.
	ErrBlobNotFound = errors.New("store: blob not found")
	// ErrInvalid is returned for a malformed request (an empty commit, a
	// duplicate or zero OID, an oversized record).
	ErrInvalid = errors.New("store: invalid request")
	// ErrClosed is returned by operations on a closed store.
	ErrClosed = errors.New("store: closed")
	// ErrInUse is returned when another process holds the store.
	ErrInUse = errors.New("store: in use by another process")
	// ErrTooLarge is returned for a record or transaction metadata over
	// the size limits (MaxRecordSize, MaxMetaSize).
	ErrTooLarge = errors.New("store: over a size limit")
	// ErrNoSpace is wrapped by *NoSpaceError.
	ErrNoSpace = errors.New("store: no space left on device")
	// ErrReadOnly is returned by writes to a store opened read-only.
	ErrReadOnly = errors.New("store: opened read-only")
	// ErrUnavailable is returned when a store's database server cannot
	// be reached, or the connection to it was lost, before the operation
	// was carried out: a commit refused with it was not made, and may be
	// tried again.
	ErrUnavailable = errors.New("store: database unavailable")
	// ErrOutcomeUnknown is returned by a commit whose outcome could not
	// be learnt: the connection to the database was lost after the
	// commit was sent, and the database did not answer in time to say
	// whether it was made. It may or may not have been; reading the
	// image (or the log) tells. Never returned for a commit known to be
	// made or known not to be.
	ErrOutcomeUnknown = errors.New("store: commit outcome unknown")
)

// NoSpaceError reports a write refused because the file system holding
// Path is full (ENOSPC) or over its quota (EDQUOT). Nothing the failed
// operation wrote was acknowledged.
type NoSpaceError struct {
	Path string
	Op   string // what was being written: "write-ahead log", "checkpoint", "blob", ...
	Err  error  // the system's error
}

func (e *NoSpaceError) Error() string {
	return fmt.Sprintf("store: no space left for the %s on %s: %v", e.Op, e.Path, e.Err)
}

func (e *NoSpaceError) Unwrap() []error { return []error{ErrNoSpace, e.Err} }

// DamageError reports damage in a store's files that opening cannot
// repair by itself without losing acknowledged commits: a write-ahead log
// segment damaged before its end, or a file older than what was
// acknowledged. Nothing was changed; `batos recover` keeps what is intact.
type DamageError struct {
	Path   string // the damaged file
	Offset int64  // where the damage starts in Path; -1 when not known
	// After and Before bound the transactions at stake: every commit
	// newer than After and older than Before may be lost (0 when unknown).
	After, Before TID
	Detail        string
}

func (e *DamageError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "store: %s is damaged", e.Path)
	if e.Offset >= 0 {
		fmt.Fprintf(&b, " at offset %d", e.Offset)
	}
	b.WriteString(": " + e.Detail)
	switch {
	case e.After != 0 && e.Before != 0:
		fmt.Fprintf(&b, "; commits after %s and before %s are at stake", e.After, e.Before)
	case e.After != 0:
		fmt.Fprintf(&b, "; commits after %s are at stake", e.After)
	case e.Before != 0:
		fmt.Fprintf(&b, "; commits before %s are at stake", e.Before)
	}
	return b.String()
}

func (e *DamageError) Unwrap() error { return ErrCorrupt }

// ConflictError reports a commit refused because objects changed since
// they were read.
type ConflictError struct {
	OIDs []OID // every conflicting object, ascending
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("store: write conflict on %s", oidList(e.OIDs))
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// UndoError reports an undo refused because later transactions changed
// the objects it would restore.
type UndoError struct {
	TID     TID
	Changed map[OID]TID // object -> the later transaction that changed it
	Reason  string      // set when the refusal is not about later changes
}

func (e *UndoError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("store: cannot undo %s: %s", e.TID, e.Reason)
	}
	parts := make([]string, 0, len(e.Changed))
	for _, oid := range sortedOIDs(e.Changed) {
		parts = append(parts, fmt.Sprintf("%s (changed by %s)", oid, e.Changed[oid]))
	}
	return fmt.Sprintf("store: cannot undo %s: later transactions changed %s", e.TID, strings.Join(parts, ", "))
}

func (e *UndoError) Unwrap() error { return ErrUndo }

// CorruptError reports a record or log entry that failed its checksum or
// could not be decoded. OID is zero for a log entry.
type CorruptError struct {
	OID    OID
	TID    TID
	Detail string
}

func (e *CorruptError) Error() string {
	if e.OID == 0 {
		return fmt.Sprintf("store: corrupt log entry for transaction %s: %s", e.TID, e.Detail)
	}
	return fmt.Sprintf("store: corrupt record of object %s at transaction %s: %s", e.OID, e.TID, e.Detail)
}

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// CorruptBlobError reports a blob whose content does not match its digest.
type CorruptBlobError struct {
	Digest Digest
	Detail string
}

func (e *CorruptBlobError) Error() string {
	return fmt.Sprintf("store: corrupt blob %s: %s", e.Digest, e.Detail)
}

func (e *CorruptBlobError) Unwrap() error { return ErrCorrupt }

// InUseError reports a store file locked by another process.
type InUseError struct {
	Path    string
	PID     int    // 0 when unknown
	Command string // the holder's command line, when known
}

func (e *InUseError) Error() string {
	switch {
	case e.PID != 0 && e.Command != "":
		return fmt.Sprintf("store: %s is in use by process %d (%s)", e.Path, e.PID, e.Command)
	case e.PID != 0:
		return fmt.Sprintf("store: %s is in use by process %d", e.Path, e.PID)
	}
	return fmt.Sprintf("store: %s is in use by another process", e.Path)
}

func (e *InUseError) Unwrap() error { return ErrInUse }

func oidList(oids []OID) string {
	parts := make([]string, len(oids))
	for i, oid := range oids {
		parts[i] = oid.String()
	}
	return strings.Join(parts, ", ")
}

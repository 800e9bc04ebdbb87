package store

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// String formats an OID as it is shown to users: "oid:" and decimal.
func (o OID) String() string { return "oid:" + strconv.FormatUint(uint64(o), 10) }

// ParseOID accepts "oid:N", or a bare decimal N.
func ParseOID(s string) (OID, error) {
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "oid:"), 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%w: bad OID %q (want oid:N or N, N > 0)", ErrInvalid, s)
	}
	return OID(n), nil
}

// String formats a TID as 16 hexadecimal digits.
func (t TID) String() string { return fmt.Sprintf("%016x", uint64(t)) }

// Time is the commit time a TID encodes.
func (t TID) Time() time.Time { return time.Unix(0, int64(t)).UTC() }

// ParseTID accepts exactly the form TID.String prints: 16 hexadecimal
// digits (either case). Fewer digits are not a small TID but, to the
// commands that take them, a prefix (command.ResolveTID).
func ParseTID(s string) (TID, error) {
	if len(s) != 16 || strings.Trim(s, "0123456789abcdefABCDEF") != "" {
		return 0, fmt.Errorf("%w: bad TID %q: want 16 hexadecimal digits, as the log prints them", ErrInvalid, clipText(s))
	}
	n, _ := strconv.ParseUint(s, 16, 64)
	switch {
	case n == 0:
		return 0, fmt.Errorf("%w: bad TID %q: no transaction has TID 0", ErrInvalid, s)
	case n > uint64(MaxTID):
		return 0, fmt.Errorf("%w: bad TID %q: beyond the largest a transaction can have (%s)", ErrInvalid, s, MaxTID)
	}
	return TID(n), nil
}

// clipText bounds user text quoted in an error.
func clipText(s string) string {
	for i := range s { // at a character's start, never inside one
		if i >= 40 {
			return s[:i] + "…"
		}
	}
	return s
}

// minTIDTime and maxTIDTime bound the times a TID can encode: nanoseconds
// since 1970 in 63 bits.
var (
	minTIDTime = time.Unix(0, 1)
	maxTIDTime = time.Unix(0, int64(MaxTID))
)

// TIDAt is the smallest TID a transaction committed at or after t can
// have: 1 for any time before 1970 (every transaction is at or after
// it), MaxTID for one past 2262 (none is).
func TIDAt(t time.Time) TID {
	switch {
	case t.Before(minTIDTime):
		return 1
	case t.After(maxTIDTime):
		return MaxTID
	}
	return TID(t.UnixNano())
}

// NextTID returns the TID for a commit at now following last: now's
// nanoseconds, or last+1 if the clock has not moved past last.
func NextTID(last TID, now time.Time) TID {
	if t := TIDAt(now); t > last {
		return t
	}
	return last + 1
}

func sortedOIDs[V any](m map[OID]V) []OID {
	oids := make([]OID, 0, len(m))
	for oid := range m {
		oids = append(oids, oid)
	}
	slices.Sort(oids)
	return oids
}

// ValidateCommit checks a commit request against the limits every engine
// enforces; engines call it before touching storage.
func ValidateCommit(meta TxMeta, writes []Write) error {
	if len(writes) == 0 {
		return fmt.Errorf("%w: commit writes no objects", ErrInvalid)
	}
	size := len(meta.User) + len(meta.Description)
	for k, v := range meta.Extension {
		size += len(k) + len(v)
	}
	if size > MaxMetaSize {
		return fmt.Errorf("%w: transaction metadata is %d bytes, limit %d", ErrTooLarge, size, MaxMetaSize)
	}
	seen := make(map[OID]struct{}, len(writes))
	for _, w := range writes {
		if w.OID == 0 {
			return fmt.Errorf("%w: write to the zero OID", ErrInvalid)
		}
		if _, dup := seen[w.OID]; dup {
			return fmt.Errorf("%w: %s written twice in one commit", ErrInvalid, w.OID)
		}
		seen[w.OID] = struct{}{}
		if len(w.Data) > MaxRecordSize {
			return fmt.Errorf("%w: record of %s is %d bytes, limit %d", ErrTooLarge, w.OID, len(w.Data), MaxRecordSize)
		}
		if w.Serial > MaxTID {
			return fmt.Errorf("%w: serial %s of %s out of range", ErrInvalid, w.Serial, w.OID)
		}
	}
	return nil
}

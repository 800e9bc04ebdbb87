package bolt

import (
	"context"
	"errors"

	"batos/internal/store"
)

// RecoveryReport says what OpenRecovering kept and what was lost.
type RecoveryReport struct {
	// Damage lists each damaged file with the commits at stake: those
	// after After and before Before were in the damaged bytes and are
	// lost; every intact transaction on either side was kept.
	Damage []*store.DamageError
	// MovedAside are the damaged write-ahead log segments, renamed
	// (PATH.wal.N.damaged-TIME) so nothing is deleted.
	MovedAside []string
	// Replayed counts the transactions taken from the log into the file.
	Replayed int
}

// OpenRecovering opens an image that Open refuses because its write-ahead
// log is damaged or its file is older than what was acknowledged. It keeps
// every intact transaction (before and after the damage, as ZODB's
// fsrecover does), moves the damaged segments aside, and reports what was
// lost. References from kept transactions to commits that were lost are
// found by Verify afterwards. Damage to the bbolt file itself is not
// repaired here (Salvage rebuilds it). With Options.ReadOnly it only
// reports: the intact transactions are served from memory and no file is
// moved or written.
func OpenRecovering(path string, o *Options) (*DB, *RecoveryReport, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	rep := &RecoveryReport{}
	opts.salvage = rep
	db, err := Open(path, &opts)
	if err != nil {
		return nil, rep, err
	}
	return db, rep, nil
}

// NeedsSalvage reports whether the bbolt file at path is itself damaged,
// so that Salvage should rebuild it: opening refuses its page structure
// as corrupt, or Verify finds damaged pages, records or log entries. Why
// says what was found. Damage to the write-ahead log alone is left to
// OpenRecovering; an error that is not damage (the image in use, a file
// that cannot be read) is returned, and nothing is rebuilt for it.
func NeedsSalvage(ctx context.Context, path string) (need bool, why string, err error) {
	db, _, err := OpenRecovering(path, &Options{ReadOnly: true, AllowDamaged: true})
	if errors.Is(err, store.ErrCorrupt) {
		return true, err.Error(), nil
	}
	if err != nil {
		return false, "", err
	}
	defer db.Close()
	rep, err := db.Verify(ctx, nil)
	if errors.Is(err, store.ErrCorrupt) {
		return true, err.Error(), nil
	}
	if err != nil {
		return false, "", err
	}
	for _, p := range rep.Problems {
		switch p.Kind {
		case store.CorruptFile, store.CorruptRecord, store.CorruptTransaction:
			return true, p.String(), nil
		}
	}
	return false, "", nil
}

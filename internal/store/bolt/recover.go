package bolt

import "batos/internal/store"

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

package store_test

import (
	"testing"
	"time"

	"batos/internal/store"
)

// TestParseTIDIsStrict: only the 16 digits the log prints are a TID;
// fewer are a prefix (command.ResolveTID), never a small number.
func TestParseTIDIsStrict(t *testing.T) {
	for _, bad := range []string{"", "1", "18eece", "0x18eece9f00000000", "18eece9f0000000", "18eece9f000000000",
		"0000000000000000", "ffffffffffffffff", "18eece9f0000000g", " 18eece9f00000000"} {
		if tid, err := store.ParseTID(bad); err == nil {
			t.Errorf("ParseTID(%q) = %s, want an error", bad, tid)
		}
	}
	for _, good := range []string{"18eece9f00000000", "18EECE9F00000000", "7fffffffffffffff", "0000000000000001"} {
		if _, err := store.ParseTID(good); err != nil {
			t.Errorf("ParseTID(%q): %v", good, err)
		}
	}
}

// TestTIDAtBounds: times a TID cannot encode are clamped, not wrapped.
func TestTIDAtBounds(t *testing.T) {
	for _, tc := range []struct {
		at   time.Time
		want store.TID
	}{
		{time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), 1},
		{time.Time{}, 1},
		{time.Unix(0, 0), 1},
		{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), store.MaxTID},
		{time.Unix(0, 1234), 1234},
	} {
		if got := store.TIDAt(tc.at); got != tc.want {
			t.Errorf("TIDAt(%v) = %d, want %d", tc.at, got, tc.want)
		}
	}
}

package command_test

import (
	"strings"
	"testing"
	"time"

	"batos/internal/command"
	"batos/internal/store"
)

// TestParseBeforeBounds: times outside what a TID can encode are taken
// as its bounds, never as whatever an overflow makes of them (a pack cut
// in 1600 once dropped all history up to now).
func TestParseBeforeBounds(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	first, last := store.TID(1).Time(), store.MaxTID.Time()
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"1600-01-01", first},
		{"0001-01-01T00:00:00Z", first},
		{"200000d", first},
		{"99999999999d", first},
		{"3000-01-01", last},
		{"7d", now.AddDate(0, 0, -7)},
		{"36h", now.Add(-36 * time.Hour)},
		{"now", now},
	} {
		got, err := command.ParseBefore(tc.in, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseBefore(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if tid := store.TIDAt(got); tid < 1 || tid > store.MaxTID {
			t.Errorf("ParseBefore(%q): TID %d out of range", tc.in, tid)
		}
	}
	if _, err := command.ParseBefore("3000000h", now); err == nil || !strings.Contains(err.Error(), "in days") {
		t.Errorf("an age over time.Duration's range: %v, want advice to give it in days", err)
	}
}

package mind

import (
	"strings"
	"testing"
	"time"
)

// TestUsageLatencyKeepsFractions: the latency total does not lose the
// fraction of a millisecond of every call. Before, ten calls of 0.9 ms
// summed to 0.
func TestUsageLatencyKeepsFractions(t *testing.T) {
	db, _ := testImage(t)
	for range 10 {
		if err := Record(t.Context(), db, Call{Persona: "BRICK", Outcome: "ok", Latency: 900 * time.Microsecond}); err != nil {
			t.Fatal(err)
		}
	}
	if got := loadPersona(t, db, "BRICK").Usage.Latency; got != 9*time.Millisecond {
		t.Errorf("latency total %v, want 9ms", got)
	}
}

// TestShortCutsBetweenRunes: a call's outcome in a transaction note is
// cut between runes, never inside one.
func TestShortCutsBetweenRunes(t *testing.T) {
	got := short(strings.Repeat("é", 50), 81)
	if !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, strings.Repeat("é", 40)) || strings.ContainsRune(got, '\uFFFD') || len(got) != 80+len("…") {
		t.Errorf("short: %q", got)
	}
}

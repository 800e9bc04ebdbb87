package command

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"batos/internal/store"
)

// ParseBefore reads the time history is packed before, as batos pack
// -before and the pack command take it: a TID (16 hex digits, as batos log
// prints: the history older than that transaction), "now", an age (36h,
// 90m, 7d: that long before now), an RFC 3339 time, or a date or date and
// time in the local zone (2026-11-29, 2026-11-29T12:00:00).
//
// A time before 1970 is taken as 1970 (no transaction is older: nothing
// is before it), one after 2262 as 2262 (the last a TID can encode:
// every transaction is before it).
func ParseBefore(s string, now time.Time) (time.Time, error) {
	t, err := parseBefore(s, now)
	if err != nil {
		return t, err
	}
	switch first, last := store.TID(1).Time(), store.MaxTID.Time(); {
	case t.Before(first):
		return first, nil
	case t.After(last):
		return last, nil
	}
	return t, nil
}

func parseBefore(s string, now time.Time) (time.Time, error) {
	if len(s) == 16 {
		if _, err := strconv.ParseUint(s, 16, 64); err == nil {
			tid, err := store.ParseTID(s)
			if err != nil {
				return time.Time{}, err
			}
			return tid.Time(), nil
		}
	}
	if s == "now" {
		return now, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && strconv.Itoa(n) == days {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	} else if err != nil && strings.Contains(err.Error(), "invalid duration") && strings.Trim(strings.TrimRight(s, "hms"), "0123456789.") == "" {
		return time.Time{}, fmt.Errorf("bad time %q: an age in hours, minutes or seconds is at most 2562047h; give a longer one in days (7d)", s)
	}
	return time.Time{}, fmt.Errorf("bad time %q: want a TID (16 hex digits), RFC 3339, YYYY-MM-DD, now, or an age like 36h or 7d", s)
}

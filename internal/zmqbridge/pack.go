package zmqbridge

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"batos/internal/store"
)

// Packer is a Backend that packs the image it serves while it goes on
// serving: the pack command. A Backend without it answers pack with
// unknown_command.
type Packer interface {
	// Pack drops history superseded before opts.Before and everything no
	// longer reachable. The result is plain data, as for Backend.
	Pack(ctx context.Context, opts PackOptions) (any, error)
}

// PackOptions are the pack command's arguments.
type PackOptions struct {
	// Before: revisions superseded before this time are dropped. Zero
	// with Compact: no pack, only the compaction.
	Before time.Time
	// Compact: then the file is rewritten without the space dropped
	// history leaves free (bbolt never shrinks its file by itself).
	Compact bool
}

// ParseBefore reads the time history is packed before, as batos pack
// -before and the pack command take it: a TID (16 hex digits, as batos log
// prints: the history older than that transaction), "now", an age (36h,
// 90m, 7d: that long before now), an RFC 3339 time, or a date or date and
// time in the local zone (2026-11-29, 2026-11-29T12:00:00).
func ParseBefore(s string, now time.Time) (time.Time, error) {
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
	}
	return time.Time{}, fmt.Errorf("bad time %q: want a TID (16 hex digits), RFC 3339, YYYY-MM-DD, now, or an age like 36h or 7d", s)
}

func init() {
	commands["pack"] = func(ctx context.Context, b Backend, req map[string]any) (any, error) {
		var opts PackOptions
		switch v := req["compact"].(type) {
		case nil:
		case bool:
			opts.Compact = v
		default:
			return nil, fmt.Errorf("%w: \"compact\" must be true or false, not %T", ErrBadRequest, v)
		}
		s, err := stringArg(req, "before", !opts.Compact)
		if err != nil {
			return nil, err
		}
		if s != "" {
			if opts.Before, err = ParseBefore(s, time.Now()); err != nil {
				return nil, fmt.Errorf("%w: \"before\": %v", ErrBadRequest, err)
			}
		}
		p, ok := b.(Packer)
		if !ok {
			return nil, fmt.Errorf("%w \"pack\": this server cannot pack its image", ErrUnknownCommand)
		}
		return p.Pack(ctx, opts)
	}
}

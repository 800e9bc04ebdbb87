package protocol

import (
	"errors"
	"testing"

	"batos/internal/command"
)

// FuzzLearnAndCycleArgs checks that the send's learning arguments and the
// cycle commands' IDs, decoded from any request, never panic, are refused
// only with command.ErrBadRequest, and are in range when accepted.
func FuzzLearnAndCycleArgs(f *testing.F) {
	for _, m := range []map[string]any{
		{"learn": "wait", "timeout_ms": int64(1000), "cycle": int64(3)},
		{"learn": "handle", "cycle": "c12"},
		{"learn": "later", "timeout_ms": int64(-1), "cycle": "#-4"},
		{"timeout_ms": 1.5, "cycle": true},
		{"learn": []any{}, "cycle": "99999999999999999999"},
	} {
		f.Add(mustEncode(f, m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, ok := decodeRequest(b)
		if !ok {
			return
		}
		how, err := learnArgs(req)
		if err != nil && !errors.Is(err, command.ErrBadRequest) {
			t.Fatalf("learnArgs error %v does not wrap command.ErrBadRequest", err)
		}
		if err == nil && (how.Timeout < 0 || (how.Handle && how.Timeout != 0)) {
			t.Fatalf("learnArgs accepted %+v from %v", how, req)
		}
		id, err := idArg(req, "cycle")
		if err != nil && !errors.Is(err, command.ErrBadRequest) {
			t.Fatalf("idArg error %v does not wrap command.ErrBadRequest", err)
		}
		if err == nil && id <= 0 {
			t.Fatalf("idArg accepted %d from %v", id, req["cycle"])
		}
	})
}

package zmqbridge

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzRequestID checks that requestID never panics, and that for every
// request DecodeRequest accepts it reads the id DecodeRequest read.
func FuzzRequestID(f *testing.F) {
	f.Add(mustEncode(f, sampleRequest()))
	f.Add(mustEncode(f, map[string]any{"command": "ping", "id": int64(1)}))
	f.Add(mustEncode(f, map[string]any{"id": []any{"x", map[string]any{"y": nil}}, "a": nest(40)}))
	for _, tt := range hostileCases(f) {
		if len(tt.in) <= 4096 {
			f.Add(tt.in)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id := requestID(b, DefaultLimits)
		if m, err := DecodeRequest(b, DefaultLimits); err == nil && !cmp.Equal(id, m["id"]) {
			t.Errorf("requestID: got %#v, want %#v", id, m["id"])
		}
	})
}

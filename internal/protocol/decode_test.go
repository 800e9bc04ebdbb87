package protocol

import (
	"math"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

// The fuzz targets here take msgpack requests, as a client sends them;
// the bridge's own decoder is not importable from here (it imports this
// package), so these helpers read them with msgp's generic reader into
// the plain values Handle takes.

func mustEncode(tb testing.TB, v map[string]any) []byte {
	tb.Helper()
	b, err := msgp.AppendIntf(nil, v)
	if err != nil {
		tb.Fatalf("encode: %v", err)
	}
	return b
}

// decodeRequest reads b as a request map, or reports false.
func decodeRequest(b []byte) (map[string]any, bool) {
	v, _, err := msgp.ReadIntfBytes(b)
	if err != nil {
		return nil, false
	}
	m, ok := plain(v, 0).(map[string]any)
	return m, ok
}

// plain turns msgp's generic values into Handle's: every integer an
// int64, every float a float64; what has no plain form (an integer past
// int64, an extension, a non-string key) becomes a value Handle refuses
// alike (a struct).
func plain(v any, depth int) any {
	if depth > 32 {
		return struct{}{}
	}
	switch v := v.(type) {
	case int64:
		return v
	case uint64:
		if v > math.MaxInt64 {
			return struct{}{}
		}
		return int64(v)
	case float32:
		return float64(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = plain(x, depth+1)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = plain(x, depth+1)
		}
		return out
	case nil, bool, float64, string, []byte:
		return v
	}
	return struct{}{}
}

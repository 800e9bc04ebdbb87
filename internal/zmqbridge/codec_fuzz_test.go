package zmqbridge

import (
	"errors"
	"math"
	"testing"

	"batos/internal/command"
	"batos/internal/image"
)

// FuzzDecodeRequest checks that DecodeRequest never panics, that every
// error wraps command.ErrBadRequest, and that whatever it accepts encodes and
// decodes back to the same map.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(mustEncode(f, sampleRequest()))
	f.Add(mustEncode(f, map[string]any{"command": "ping", "id": int64(1)}))
	f.Add(mustEncode(f, map[string]any{"args": []any{image.Ref(3), 1.5, []byte("x")}, "kwargs": map[string]any{"k": nil}}))
	f.Add(mustEncode(f, map[string]any{"a": nest(DefaultLimits.MaxDepth - 1)}))
	f.Add(mustEncode(f, map[string]any{"f": math.NaN(), "i": int64(math.MinInt64)}))
	for _, tt := range hostileCases(f) {
		if len(tt.in) <= 4096 {
			f.Add(tt.in)
		}
	}
	for _, s := range []string{
		"81a17281a424726566a56f69643a35", // tagged ref
		"81a166ca3fc00000",               // float32
		"81a172c70801 0000000000000009",  // ref as ext8
	} {
		f.Add(unhex(f, s))
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeRequest(b, DefaultLimits)
		if err != nil {
			if !errors.Is(err, command.ErrBadRequest) {
				t.Fatalf("DecodeRequest error %v does not wrap command.ErrBadRequest", err)
			}
			return
		}
		enc, err := EncodeReply(req)
		if err != nil {
			t.Fatalf("EncodeReply of a decoded request: %v", err)
		}
		// A float32 re-encodes as a float64, so the encoding may be longer.
		again, err := DecodeRequest(enc, Limits{MaxBytes: 4 * (len(b) + 16)})
		if err != nil {
			t.Fatalf("DecodeRequest of the re-encoding %x: %v", enc, err)
		}
		if diff := diffDecoded(again, req); diff != "" {
			t.Fatalf("round trip (-got +want):\n%s", diff)
		}
	})
}

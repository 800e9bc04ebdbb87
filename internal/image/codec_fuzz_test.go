package image

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzDecodeValue(f *testing.F) {
	for _, s := range sampleValues(f) {
		f.Add(mustEncode(f, s.v))
	}
	f.Add([]byte{tagList, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeValue(b)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error does not wrap ErrDecode: %v", err)
			}
			return
		}
		again, err := AppendValue(nil, v)
		if err != nil {
			t.Fatalf("re-encoding %s: %v", shortRepr(v), err)
		}
		// The decoder accepts only canonical input, so the round trip
		// reproduces it exactly.
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
		v2, err := DecodeValue(again)
		if err != nil {
			t.Fatalf("decoding the re-encoding: %v", err)
		}
		if !Equal(v2, v) {
			t.Fatalf("decoded %s, then %s", shortRepr(v), shortRepr(v2))
		}
	})
}

func FuzzDecodeState(f *testing.F) {
	for _, slots := range [][]Slot{nil, {{"a", None}}, sampleState(f)} {
		b, err := EncodeState(slots)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		slots, err := DecodeState(b)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error does not wrap ErrDecode: %v", err)
			}
			if _, _, rerr := Refs(b); rerr == nil {
				t.Fatalf("Refs accepted a state DecodeState rejects: %v", err)
			}
			return
		}
		if _, _, err := Refs(b); err != nil {
			t.Fatalf("Refs: %v", err)
		}
		again, err := EncodeState(slots)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
		slots2, err := DecodeState(again)
		if err != nil {
			t.Fatalf("decoding the re-encoding: %v", err)
		}
		if len(slots2) != len(slots) {
			t.Fatalf("decoded %d slots, then %d", len(slots), len(slots2))
		}
		for i := range slots {
			if slots2[i].Name != slots[i].Name || !Equal(slots2[i].Value, slots[i].Value) {
				t.Fatalf("slot %d: decoded %q=%s, then %q=%s", i,
					slots[i].Name, shortRepr(slots[i].Value), slots2[i].Name, shortRepr(slots2[i].Value))
			}
		}
	})
}

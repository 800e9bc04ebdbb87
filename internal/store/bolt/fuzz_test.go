package bolt

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"time"

	"batos/internal/store"
)

// FuzzDecodeRecord feeds arbitrary bytes to the record envelope decoder:
// it must never panic, and anything it accepts must re-encode to the same
// bytes (so the checksum really covered what was returned).
func FuzzDecodeRecord(f *testing.F) {
	key := revKey(7, 99)
	f.Add(key, encodeRecord(key, 0, []byte("hello")))
	f.Add(key, encodeRecord(key, flagDeleted, nil))
	f.Add(key, []byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, key, v []byte) {
		if len(key) != 16 {
			return
		}
		flags, data, err := decodeRecord(key, v)
		if err != nil {
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if got := encodeRecord(key, flags, data); string(got) != string(v) {
			t.Fatalf("accepted %x, re-encodes to %x", v, got)
		}
	})
}

// FuzzDecodeTxn does the same for log entries, with the checksum fixed
// up so the fuzzer reaches the body decoder.
func FuzzDecodeTxn(f *testing.F) {
	key := tidKey(12345)
	info := &store.TxInfo{TID: 12345, Time: time.Unix(0, 12345), User: "u", Description: "d",
		Extension: map[string]string{"k": "v"}, OIDs: []store.OID{2, 3, 900}}
	f.Add(encodeTxn(key, info)[4:])
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, body []byte) {
		v := make([]byte, 4+len(body))
		copy(v[4:], body)
		binary.BigEndian.PutUint32(v, txnSum(key, body))
		got, err := decodeTxn(key, v)
		if err != nil {
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if _, err := decodeTxn(key, encodeTxn(key, &got)); err != nil {
			t.Fatalf("re-encoding of accepted entry does not decode: %v", err)
		}
	})
}

// FuzzDecodeGroup feeds arbitrary frame payloads to the write-ahead log
// decoder: no panic, and what it accepts survives a round trip.
func FuzzDecodeGroup(f *testing.F) {
	key := revKey(3, 77)
	info := &store.TxInfo{TID: 77, Time: time.Unix(0, 77), OIDs: []store.OID{3}}
	f.Add(encodeGroup([]walTx{{tid: 77, entry: encodeTxn(tidKey(77), info), writes: []walWrite{{oid: 3, record: encodeRecord(key, 0, []byte("x"))}}}})[frameHeadSize:])
	f.Add([]byte{0x05})
	f.Fuzz(func(t *testing.T, payload []byte) {
		txs, err := decodeGroup(payload)
		if err != nil {
			return
		}
		again, err := decodeGroup(encodeGroup(txs)[frameHeadSize:])
		if err != nil || !reflect.DeepEqual(again, txs) {
			t.Fatalf("accepted %x; round trip gives %+v, %v", payload, again, err)
		}
	})
}

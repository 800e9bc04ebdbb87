// Package storetest is the conformance suite every store.Engine must pass,
// with a small record format whose references the suite controls.
package storetest

import (
	"encoding/json"
	"fmt"

	"batos/internal/store"
)

// testRecord is the suite's record format: a payload plus the references
// pack and verify must follow.
type testRecord struct {
	Payload string         `json:"p"`
	Refs    []store.OID    `json:"r,omitempty"`
	Blobs   []store.Digest `json:"b,omitempty"`
}

// Rec encodes a record with a payload and references.
func Rec(payload string, refs ...store.OID) []byte {
	b, _ := json.Marshal(testRecord{Payload: payload, Refs: refs})
	return b
}

// RecBlobs encodes a record referring to blobs.
func RecBlobs(payload string, blobs ...store.Digest) []byte {
	b, _ := json.Marshal(testRecord{Payload: payload, Blobs: blobs})
	return b
}

// Payload decodes a record's payload.
func Payload(data []byte) string {
	var r testRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Sprintf("<undecodable: %v>", err)
	}
	return r.Payload
}

// Refs is the store.RefsFunc for the suite's records.
func Refs(data []byte) ([]store.OID, []store.Digest, error) {
	var r testRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, nil, err
	}
	return r.Refs, r.Blobs, nil
}

package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Digest is the sha256 of a blob's content; blobs are addressed by it.
type Digest [sha256.Size]byte

// String formats a digest as "sha256:" and 64 hex digits.
func (d Digest) String() string { return "sha256:" + hex.EncodeToString(d[:]) }

// Hex is the digest's 64 hex digits.
func (d Digest) Hex() string { return hex.EncodeToString(d[:]) }

// ParseDigest accepts "sha256:HEX" or bare HEX.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	h := strings.TrimPrefix(s, "sha256:")
	if len(h) != 2*len(d) {
		return d, fmt.Errorf("%w: bad digest %q (want sha256: and 64 hex digits)", ErrInvalid, s)
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return d, fmt.Errorf("%w: bad digest %q: %v", ErrInvalid, s, err)
	}
	return d, nil
}

// Blob describes a stored blob.
type Blob struct {
	Digest Digest
	Size   int64
}

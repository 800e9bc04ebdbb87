package zmqbridge

import (
	"fmt"

	zmq "github.com/pebbe/zmq4"
)

// NewKeyPair makes a CURVE key pair, as Z85 text.
func NewKeyPair() (public, secret string, err error) {
	public, secret, err = zmq.NewCurveKeypair()
	if err != nil {
		return "", "", fmt.Errorf("make CURVE key pair (is libzmq built with CURVE?): %w", err)
	}
	return public, secret, nil
}

// PublicKey derives the public key of a Z85 secret key.
func PublicKey(secret string) (string, error) {
	pub, err := zmq.AuthCurvePublic(secret)
	if err != nil {
		return "", fmt.Errorf("derive CURVE public key: %w", err)
	}
	return pub, nil
}

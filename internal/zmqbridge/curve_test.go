package zmqbridge_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"batos/internal/zmqbridge"
)

// TestCurve: with CURVE, an allowed client is answered; a client with no
// keys, or with keys not on the allow-list, gets nothing.
func TestCurve(t *testing.T) {
	serverPub, serverSec, err := zmqbridge.NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	clientPub, clientSec, _ := zmqbridge.NewKeyPair()
	strangerPub, strangerSec, _ := zmqbridge.NewKeyPair()
	if derived, err := zmqbridge.PublicKey(serverSec); err != nil || derived != serverPub {
		t.Fatalf("PublicKey = %q %v, want %q", derived, err, serverPub)
	}
	s, err := zmqbridge.Listen(&fakeService{}, &zmqbridge.Options{
		RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*",
		Curve: &zmqbridge.Curve{ServerPublic: serverPub, ServerSecret: serverSec, ClientPublics: []string{clientPub}},
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Close()
	addr, _ := s.Endpoints()
	call := func(o *zmqbridge.ClientOptions) error {
		c, err := zmqbridge.Dial(addr, o)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
		defer cancel()
		_, err = c.Call(ctx, "ping", nil)
		return err
	}
	if err := call(&zmqbridge.ClientOptions{ServerPublic: serverPub, ClientPublic: clientPub, ClientSecret: clientSec}); err != nil {
		t.Errorf("allowed client: %v", err)
	}
	if err := call(nil); !errors.Is(err, zmqbridge.ErrTimeout) {
		t.Errorf("client without keys: %v, want no answer", err)
	}
	if err := call(&zmqbridge.ClientOptions{ServerPublic: serverPub, ClientPublic: strangerPub, ClientSecret: strangerSec}); !errors.Is(err, zmqbridge.ErrTimeout) {
		t.Errorf("client not on the allow-list: %v, want no answer", err)
	}
}

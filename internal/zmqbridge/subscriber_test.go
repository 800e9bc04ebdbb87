package zmqbridge_test

import (
	"testing"
	"time"

	"batos/internal/zmqbridge"
)

// TestSubscriber: a Subscriber gets the events of its topics, in order,
// decoded and stamped; Close stops it and may be called twice.
func TestSubscriber(t *testing.T) {
	s, _, ev := startServer(t, &fakeService{})
	got := make(chan zmqbridge.Event, 100)
	sub, err := zmqbridge.Subscribe(ev, "commit.", func(e zmqbridge.Event) { got <- e })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// Publish until the subscription has reached the server.
	deadline := time.Now().Add(10 * time.Second)
	for len(got) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no event in 10s")
		}
		s.Publish("commit.probe", map[string]any{"n": int64(0)})
		time.Sleep(20 * time.Millisecond)
	}
	before := time.Now()
	s.Publish("cycle.state", map[string]any{"n": int64(1)}) // another topic
	s.Publish("commit.send", map[string]any{"target": "genesis", "n": int64(2)})
	for {
		var e zmqbridge.Event
		select {
		case e = <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("no commit.send event in 10s")
		}
		if e.Topic == "commit.probe" {
			continue // a probe still on its way
		}
		if e.Topic != "commit.send" || e.Fields["target"] != "genesis" || e.Fields["n"] != int64(2) || e.At.Before(before) {
			t.Errorf("got %+v, want commit.send with target genesis and n 2, stamped after %s", e, before)
		}
		break
	}
	sub.Close()
	sub.Close()
}

package zmqbridge

import (
	"fmt"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// Event is one message of a bridge's event socket, with when it arrived.
type Event struct {
	Topic  string
	Fields map[string]any
	At     time.Time
}

// Subscriber is a SUB connection to a bridge's event endpoint, for
// batos's own tools ("batos bench pg" times events across nodes with
// it). Its goroutine owns the socket and hands each event to the
// function given to Subscribe; Close stops it.
type Subscriber struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// subscriberPoll is how often the subscriber goroutine, idle, looks
// whether to stop.
const subscriberPoll = 50 * time.Millisecond

// Subscribe connects to the event endpoint addr, subscribed to the topics
// beginning with prefix ("" for all), and calls fn with each event, in
// order, on the subscriber's goroutine: fn must not block for long. An
// event that does not decode is skipped. As with any SUB socket, events
// published before the subscription reaches the server are not seen.
func Subscribe(addr, prefix string, fn func(Event)) (*Subscriber, error) {
	sock, err := zmq.NewSocket(zmq.SUB)
	if err != nil {
		return nil, err
	}
	sock.SetLinger(0)
	sock.SetRcvtimeo(subscriberPoll)
	if err := sock.SetSubscribe(prefix); err != nil {
		sock.Close()
		return nil, err
	}
	if err := sock.Connect(addr); err != nil {
		sock.Close()
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	s := &Subscriber{stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop(sock, fn)
	return s, nil
}

func (s *Subscriber) loop(sock *zmq.Socket, fn func(Event)) {
	defer close(s.done)
	defer sock.Close()
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		msg, err := sock.RecvMessageBytes(0)
		if err != nil || len(msg) != 2 {
			continue // the receive timeout: look at stop again
		}
		at := time.Now()
		fields, err := DecodeRequest(msg[1], DefaultLimits)
		if err != nil {
			continue
		}
		fn(Event{Topic: string(msg[0]), Fields: fields, At: at})
	}
}

// Close stops the subscriber and closes its socket. Safe to call twice.
func (s *Subscriber) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

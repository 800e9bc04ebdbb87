package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The event stream: GET /api/v1/events?topics=commit.,cycle. serves the
// bridge's events as Server-Sent Events, each "event: TOPIC", "id: N"
// (the stream's own count, from 1) and "data: JSON". A client that does
// not keep up loses events beyond its buffer rather than slowing anyone:
// it is told with a "lost" event saying how many, and the commit events'
// "seq" says which.

// streamBuffer is how many events a stream holds for a slow client.
const streamBuffer = 4096

// keepAlive is how often an idle stream sends a comment, so proxies and
// browsers keep it open and a client gone is noticed.
const keepAlive = 15 * time.Second

type hub struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
	done   chan struct{}
}

type subscriber struct {
	prefixes []string
	ch       chan event
	mu       sync.Mutex
	lost     int
}

type event struct {
	topic string
	data  []byte
}

func newHub() *hub { return &hub{subs: map[*subscriber]struct{}{}, done: make(chan struct{})} }

func (h *hub) publish(topic string, payload map[string]any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.subs) == 0 {
		return
	}
	data, err := appendJSON(nil, payload, 0)
	if err != nil {
		return
	}
	for sub := range h.subs {
		if !sub.wants(topic) {
			continue
		}
		select {
		case sub.ch <- event{topic, data}:
		default:
			sub.mu.Lock()
			sub.lost++
			sub.mu.Unlock()
		}
	}
}

func (sub *subscriber) wants(topic string) bool {
	if len(sub.prefixes) == 0 {
		return true
	}
	for _, p := range sub.prefixes {
		if strings.HasPrefix(topic, p) {
			return true
		}
	}
	return false
}

func (h *hub) subscribe(prefixes []string) (*subscriber, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	sub := &subscriber{prefixes: prefixes, ch: make(chan event, streamBuffer)}
	h.subs[sub] = struct{}{}
	return sub, true
}

func (h *hub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	delete(h.subs, sub)
	h.mu.Unlock()
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
}

// stream serves GET /api/v1/events.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		refuse(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	var prefixes []string
	for _, p := range strings.Split(r.URL.Query().Get("topics"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			prefixes = append(prefixes, p)
		}
	}
	sub, ok := s.events.subscribe(prefixes)
	if !ok {
		refuse(w, http.StatusServiceUnavailable, "the server is stopping")
		return
	}
	defer s.events.unsubscribe(sub)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": batos events\n\n")
	flusher.Flush()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	var n int64
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.events.done:
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case ev := <-sub.ch:
			sub.mu.Lock()
			lost := sub.lost
			sub.lost = 0
			sub.mu.Unlock()
			if lost > 0 {
				n++
				fmt.Fprintf(w, "event: lost\nid: %d\ndata: {\"events\":%d}\n\n", n, lost)
			}
			n++
			if _, err := fmt.Fprintf(w, "event: %s\nid: %s\ndata: %s\n\n", sanitizeTopic(ev.topic), strconv.FormatInt(n, 10), ev.data); err != nil {
				return
			}
			// Write what else is waiting before one flush: a burst costs
			// one write to the network, not one per event.
			for more := true; more; {
				select {
				case ev := <-sub.ch:
					n++
					fmt.Fprintf(w, "event: %s\nid: %d\ndata: %s\n\n", sanitizeTopic(ev.topic), n, ev.data)
				default:
					more = false
				}
			}
			flusher.Flush()
		}
	}
}

// sanitizeTopic keeps a topic on one line of the stream.
func sanitizeTopic(t string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(t) }

package command

import (
	"context"
	"sync"
	"time"

	"batos/internal/image"
	"batos/internal/vm"
)

// Session limits: a server keeps what its REPL clients carry in memory,
// so a client that goes away without a word must not hold it forever,
// nor can many clients, or one naming a new session per eval, grow it
// without bound.
const (
	// MaxSessions is how many sessions Local keeps; a new one evicts the
	// least recently used.
	MaxSessions = 256
	// SessionIdle is how long a session lasts unused.
	SessionIdle = time.Hour
)

// sessions are the REPL sessions of a Local, by the id the client chose.
// Its zero value is empty and ready. What a session carries is lost when
// the process ends, when it is evicted, or after SessionIdle unused; its
// next eval then starts a new one.
type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
	now  func() time.Time // for tests; nil is time.Now
}

// session is what one REPL session carries between its evals.
type session struct {
	// turn is held by the eval running on the session: one at a time.
	turn chan struct{}
	// used is when it was last acquired; guarded by sessions.mu.
	used time.Time
	// vars and defs are the variables and functions of its earlier
	// inputs; only the holder of turn reads or writes them.
	vars map[string]image.Value
	defs []vm.Def
}

// acquire finds or starts the session id and waits for its turn, or for
// ctx to end. The caller releases it.
func (ss *sessions) acquire(ctx context.Context, id string) (*session, error) {
	s := ss.find(id)
	select {
	case s.turn <- struct{}{}:
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *session) release() { <-s.turn }

// find answers session id, marked used, after dropping the idle ones; a
// new one evicts the least recently used when there are MaxSessions.
// An eval still running on a session dropped keeps it until it ends.
func (ss *sessions) find(id string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := time.Now()
	if ss.now != nil {
		now = ss.now()
	}
	if ss.byID == nil {
		ss.byID = map[string]*session{}
	}
	var oldestID string
	var oldest *session
	for sid, s := range ss.byID {
		if now.Sub(s.used) > SessionIdle {
			delete(ss.byID, sid)
			continue
		}
		if oldest == nil || s.used.Before(oldest.used) {
			oldestID, oldest = sid, s
		}
	}
	s, ok := ss.byID[id]
	if !ok {
		if len(ss.byID) >= MaxSessions {
			delete(ss.byID, oldestID)
		}
		s = &session{turn: make(chan struct{}, 1)}
		ss.byID[id] = s
	}
	s.used = now
	return s
}

package command

import (
	"fmt"
	"testing"
	"time"

	"batos/internal/image"
)

// TestSessionsBounded: past MaxSessions the least recently used session
// goes; one unused for SessionIdle goes too.
func TestSessionsBounded(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	ss := sessions{now: func() time.Time { return now }}
	for i := range MaxSessions {
		ss.find(fmt.Sprint(i)).vars = map[string]image.Value{"i": image.Int(i)}
		now = now.Add(time.Second)
	}
	ss.find("0") // used again: "1" is now the least recently used
	now = now.Add(time.Second)
	ss.find("new")
	if _, kept := ss.byID["1"]; kept || len(ss.byID) != MaxSessions {
		t.Errorf("after one more session: %d kept, the least recently used kept: %v", len(ss.byID), kept)
	}
	if s := ss.find("0"); s.vars["i"] != image.Int(0) {
		t.Errorf("the session used again lost its variables: %v", s.vars)
	}
	now = now.Add(SessionIdle + time.Second)
	if s := ss.find("0"); s.vars != nil || len(ss.byID) != 1 {
		t.Errorf("after an idle hour: %d sessions kept, session 0 carries %v", len(ss.byID), s.vars)
	}
}

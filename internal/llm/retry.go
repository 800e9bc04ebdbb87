package llm

import (
	"context"
	"math/rand/v2"
	"time"
)

// Retry is a bounded retry policy for transient failures. The zero value
// means the defaults: 4 attempts, 250 ms doubling to at most 4 s.
type Retry struct {
	// Attempts is the number of tries in all; 1 means no retry.
	Attempts int
	// Base is the wait after the first failure; it doubles each time.
	Base time.Duration
	// Max caps a single wait.
	Max time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 4
	}
	if r.Base <= 0 {
		r.Base = 250 * time.Millisecond
	}
	if r.Max <= 0 {
		r.Max = 4 * time.Second
	}
	return r
}

// Do calls fn until it succeeds, fails with an error that is not
// Transient, the attempts are spent, or ctx ends. It waits a jittered,
// doubling delay between attempts. The last error is returned.
func (r Retry) Do(ctx context.Context, fn func() error) error {
	r = r.withDefaults()
	wait := r.Base
	var err error
	for attempt := 1; ; attempt++ {
		if err = fn(); err == nil || !Transient(err) || attempt >= r.Attempts {
			return err
		}
		// Full jitter in [wait/2, wait): clients retrying together spread out.
		d := wait/2 + time.Duration(rand.Int64N(int64(wait/2)+1))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, r.Max)
	}
}

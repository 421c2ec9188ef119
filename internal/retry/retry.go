// Package retry runs an operation again after transient failures, with an
// exponentially growing, jittered wait between tries.
//
// # Jitter
//
// Clients that failed together (a trustee restarting, a network blip) and
// wait the same fixed delays retry together, in lockstep. Each wait here is
// drawn from [d/2, d), where d doubles after every try ("equal jitter" in
// Marc Brooker's "Exponential Backoff And Jitter", AWS Architecture Blog,
// 2015): it spreads the tries out while keeping half of the planned wait,
// so a client never hammers a node that is down.
//
// The randomness is a parameter, so tests can fix the waits.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff says how often and how patiently to try.
type Backoff struct {
	// Attempts is the number of tries, the first included (at least 1).
	Attempts int
	// Initial bounds the wait before the second try; each later wait
	// bound doubles, up to Max (0: no cap).
	Initial time.Duration
	Max     time.Duration
	// Jitter returns a number in [0, n) (default math/rand/v2.Int64N).
	Jitter func(n int64) int64
}

// Wait returns the wait before try number next (2 or more): a duration
// in [d/2, d) for d = Initial·2^(next−2), capped at Max.
func (b Backoff) Wait(next int) time.Duration {
	d := b.Initial
	for i := 2; i < next && (b.Max <= 0 || d < b.Max) && d < 1<<60; i++ {
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	if d <= 1 {
		return d
	}
	jitter := b.Jitter
	if jitter == nil {
		jitter = rand.Int64N
	}
	half := int64(d) / 2
	return time.Duration(half + jitter(int64(d)-half))
}

// Do calls try until it returns nil, returns an error retryable says is
// final, the tries run out, ctx is done or stop is closed (stop may be
// nil). It returns how many tries it made and the last error.
func (b Backoff) Do(ctx context.Context, stop <-chan struct{}, retryable func(error) bool, try func() error) (int, error) {
	attempts := max(b.Attempts, 1)
	for n := 1; ; n++ {
		err := try()
		if err == nil || !retryable(err) || n >= attempts || ctx.Err() != nil || closed(stop) {
			return n, err
		}
		t := time.NewTimer(b.Wait(n + 1))
		select {
		case <-t.C:
		case <-stop:
		case <-ctx.Done():
		}
		t.Stop()
		if ctx.Err() != nil || closed(stop) {
			return n, err
		}
	}
}

func closed(c <-chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

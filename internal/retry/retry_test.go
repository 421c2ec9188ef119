package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

var errTransient = errors.New("transient")

func always(error) bool { return true }

func TestWait(t *testing.T) {
	low := func(n int64) int64 { return 0 }
	high := func(n int64) int64 { return n - 1 }
	b := Backoff{Initial: 100 * time.Millisecond, Max: 350 * time.Millisecond}
	for _, c := range []struct {
		next     int
		min, max time.Duration
	}{
		{2, 50 * time.Millisecond, 100 * time.Millisecond},
		{3, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 175 * time.Millisecond, 350 * time.Millisecond}, // capped
		{9, 175 * time.Millisecond, 350 * time.Millisecond},
	} {
		b.Jitter = low
		if got := b.Wait(c.next); got != c.min {
			t.Errorf("Wait(%d) low = %v, want %v", c.next, got, c.min)
		}
		b.Jitter = high
		if got := b.Wait(c.next); got != c.max-1 {
			t.Errorf("Wait(%d) high = %v, want %v", c.next, got, c.max-1)
		}
	}
	// Real jitter stays in range and varies.
	b.Jitter = nil
	seen := map[time.Duration]bool{}
	for range 50 {
		w := b.Wait(2)
		if w < 50*time.Millisecond || w >= 100*time.Millisecond {
			t.Fatalf("Wait(2) = %v", w)
		}
		seen[w] = true
	}
	if len(seen) < 2 {
		t.Error("no jitter")
	}
}

func TestDo(t *testing.T) {
	b := Backoff{Attempts: 3, Initial: time.Millisecond}
	calls := 0
	n, err := b.Do(context.Background(), nil, always, func() error { calls++; return errTransient })
	if n != 3 || calls != 3 || !errors.Is(err, errTransient) {
		t.Fatalf("always failing: %d tries, %d calls, %v", n, calls, err)
	}
	calls = 0
	n, err = b.Do(context.Background(), nil, always, func() error {
		calls++
		if calls < 2 {
			return errTransient
		}
		return nil
	})
	if n != 2 || err != nil {
		t.Fatalf("succeeding on the second try: %d tries, %v", n, err)
	}
	final := errors.New("final")
	n, err = b.Do(context.Background(), nil, func(err error) bool { return err != final }, func() error { return final })
	if n != 1 || err != final {
		t.Fatalf("final error: %d tries, %v", n, err)
	}
	// A closed stop channel or a cancelled context ends the waiting.
	stop := make(chan struct{})
	close(stop)
	slow := Backoff{Attempts: 5, Initial: time.Hour}
	if n, _ := slow.Do(context.Background(), stop, always, func() error { return errTransient }); n != 1 {
		t.Fatalf("stopped: %d tries", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	if n, _ := slow.Do(ctx, nil, always, func() error { return errTransient }); n != 1 || time.Since(start) > time.Minute {
		t.Fatalf("cancelled: %d tries", n)
	}
}

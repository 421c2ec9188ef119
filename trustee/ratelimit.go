package trustee

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// clientLimiter is a token bucket per client address: each client may
// spend burst tokens at once, and gets one back every period. It bounds
// what one client can make a node do with requests that no trusted judge
// signed, which leave no audit record.
type clientLimiter struct {
	burst int
	every time.Duration

	mu      sync.Mutex
	clients map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxTrackedClients bounds the limiter's memory; past it, clients whose
// allowance is full again are forgotten.
const maxTrackedClients = 10000

func newClientLimiter(burst int, every time.Duration) *clientLimiter {
	if burst < 1 {
		burst = 1
	}
	if every <= 0 {
		every = time.Second
	}
	return &clientLimiter{burst: burst, every: every, clients: map[string]*bucket{}}
}

// refill brings b up to date. l.mu is held.
func (l *clientLimiter) refill(b *bucket, now time.Time) {
	b.tokens = min(float64(l.burst), b.tokens+float64(now.Sub(b.at))/float64(l.every))
	b.at = now
}

// allowed reports whether client has allowance left.
func (l *clientLimiter) allowed(client string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.clients[client]
	if !ok {
		return true
	}
	l.refill(b, now)
	return b.tokens >= 1
}

// charge spends one token of client's allowance.
func (l *clientLimiter) charge(client string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.clients[client]
	if !ok {
		if len(l.clients) >= maxTrackedClients {
			for c, o := range l.clients {
				if l.refill(o, now); o.tokens >= float64(l.burst) {
					delete(l.clients, c)
				}
			}
		}
		b = &bucket{tokens: float64(l.burst), at: now}
		l.clients[client] = b
	}
	l.refill(b, now)
	b.tokens = max(0, b.tokens-1)
}

// clientOf is the address a request came from, without its port: the
// unit the unauthenticated-request allowance is kept by.
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

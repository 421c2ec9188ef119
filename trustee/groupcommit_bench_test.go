package trustee_test

import (
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/keyquorum/keyquorum/trustee"
)

// BenchmarkNodeDecideConcurrent: single-session grants decided by one
// node over the real bbolt store, sequentially and from 32 requesters per
// CPU at once, each answer returned only after its record is synced. It
// measures what the log's group commit buys a node: decisions/s.
func BenchmarkNodeDecideConcurrent(b *testing.B) {
	for _, bc := range []struct {
		name     string
		parallel bool
	}{{"sequential", false}, {"concurrent", true}} {
		b.Run(bc.name, func(b *testing.B) {
			w := newWorld(b)
			store, err := trustee.CreateStore(filepath.Join(b.TempDir(), "node.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			p := w.policy()
			p.RateLimit = 0
			n := w.node(b, 1, p, store)
			s := w.session(b, "alice", "bob", t0.Add(15*day))
			warrant := w.warrant(b, nil)
			reqs := make([][]byte, b.N)
			for i := range reqs {
				reqs[i] = w.request(b, warrant, w.requester, s)
			}
			var next atomic.Int64
			decide := func() {
				if _, err := n.Decide(reqs[next.Add(1)-1]); err != nil {
					b.Error(err)
				}
			}
			b.ResetTimer()
			if bc.parallel {
				b.SetParallelism(32)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						decide()
					}
				})
			} else {
				for range b.N {
					decide()
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}

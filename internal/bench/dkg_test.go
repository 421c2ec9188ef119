package bench

import (
	"fmt"
	"testing"

	"github.com/keyquorum/keyquorum/internal/fedrun"
)

// BenchmarkDKG is a whole dealerless key generation with every participant
// in this process and no network (the baseline of `keyquorum bench dkg`):
// n participants, threshold n/2+1, one after another ("sequential") or
// each round's participants on every core ("parallel").
func BenchmarkDKG(b *testing.B) {
	for _, n := range []int{5, 16, 32} {
		var names []string
		for i := 1; i <= n; i++ {
			names = append(names, fmt.Sprintf("trustee-%d", i))
		}
		for _, parallel := range []bool{false, true} {
			mode := "sequential"
			if parallel {
				mode = "parallel"
			}
			b.Run(fmt.Sprintf("n=%d/%s", n, mode), func(b *testing.B) {
				for b.Loop() {
					if _, err := fedrun.LocalDKG(fedrun.LocalDKGConfig{Names: names, Threshold: n/2 + 1, Epoch: 1, Parallel: parallel}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

package fedrun_test

import (
	"math/rand/v2"
	"testing"

	"github.com/keyquorum/keyquorum/internal/fedrun"
	"github.com/keyquorum/keyquorum/internal/group"
	"github.com/keyquorum/keyquorum/shares"
)

// TestLocalDKG: every participant of an in-process DKG agrees on the key,
// any t shares interpolate to its secret and fewer do not, and the key is
// the same for the same seed whether or not the participants run in
// parallel (the demo's in-process story depends on it).
func TestLocalDKG(t *testing.T) {
	names := []string{"trustee-1", "trustee-2", "trustee-3", "trustee-4", "trustee-5"}
	seeded := func(b byte) *rand.ChaCha8 { return rand.NewChaCha8([32]byte{b}) }
	var keys []string
	for _, parallel := range []bool{false, true, false} {
		r, err := fedrun.LocalDKG(fedrun.LocalDKGConfig{Names: names, Threshold: 3, Epoch: 7, Parallel: parallel, Rand: seeded(1)})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Results) != 5 || len(r.Phases) < 3 || r.Took <= 0 {
			t.Fatalf("%d results, phases %v", len(r.Results), r.Phases)
		}
		var held []shares.Share
		for i, res := range r.Results {
			if res.Share.Index != i+1 || res.Epoch != 7 || len(res.Commitment) != 3 || len(res.Qualified) != 5 || !res.GroupKey.Equal(r.Results[0].GroupKey) {
				t.Fatalf("participant %d: %+v", i+1, res)
			}
			held = append(held, shares.Share{Index: res.Share.Index, Value: res.Share.Share})
		}
		for _, subset := range [][]shares.Share{held[:3], held[2:], {held[0], held[2], held[4]}} {
			x, err := shares.Recover(subset, 3)
			if err != nil {
				t.Fatal(err)
			}
			if !group.Point().Mul(x, nil).Equal(r.Results[0].GroupKey) {
				t.Fatal("3 shares do not interpolate to the group secret")
			}
		}
		if x, err := shares.Recover(held[:2], 2); err == nil && group.Point().Mul(x, nil).Equal(r.Results[0].GroupKey) {
			t.Fatal("2 shares gave the group secret")
		}
		keys = append(keys, r.Results[0].GroupKey.String())
	}
	if keys[0] != keys[1] || keys[1] != keys[2] {
		t.Errorf("the same seed gave different keys: %v", keys)
	}
	other, err := fedrun.LocalDKG(fedrun.LocalDKGConfig{Names: names, Threshold: 3, Epoch: 7, Rand: seeded(2)})
	if err != nil {
		t.Fatal(err)
	}
	if other.Results[0].GroupKey.String() == keys[0] {
		t.Error("another seed gave the same key")
	}
	if _, err := fedrun.LocalDKG(fedrun.LocalDKGConfig{Names: names, Threshold: 1}); err == nil {
		t.Error("threshold 1 accepted")
	}
}

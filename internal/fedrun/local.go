package fedrun

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/keyquorum/keyquorum/ceremony"
)

// LocalDKGConfig configures [LocalDKG].
type LocalDKGConfig struct {
	Names     []string // the participants, in share-index order
	Threshold int      // at least 2
	Epoch     uint32
	// Rand gives every participant's DKG key and ceremony seed, and the
	// ceremony id (default crypto/rand). With a deterministic source the
	// group key is reproducible.
	Rand io.Reader
	// Parallel lets the participants make their deals and process their
	// messages concurrently, on every core; otherwise one after another on
	// one core.
	Parallel bool
}

// LocalDKGResult is the outcome of a [LocalDKG].
type LocalDKGResult struct {
	// Results are every participant's result, in share-index order; they
	// agree on everything but the share.
	Results []*ceremony.DKGResult
	Took    time.Duration
	// Phases times the steps: "deals" (keys, seeds and every deal made),
	// "round N" (every message of the round processed), "finish".
	Phases []PhaseTime
}

// PhaseTime is how long one step of a ceremony took.
type PhaseTime struct {
	Phase string        `json:"phase"`
	Took  time.Duration `json:"took_ns"`
}

// LocalDKG runs a dealerless key generation with every participant a
// [ceremony.Ceremony] in this one process, and no network: a relay in
// memory hands each message (its bytes, as the network would carry them)
// to its recipients, round after round, until nobody has anything more
// to say. It is the DKG's compute alone, the baseline of `keyquorum bench
// dkg`. This process sees every participant's share: it is a
// measurement, and the demo's in-process mode, not a way to make a key
// nobody holds (see [Federation.RunDKG] for that).
func LocalDKG(cfg LocalDKGConfig) (*LocalDKGResult, error) {
	n := len(cfg.Names)
	if n < 2 || cfg.Threshold < 2 || cfg.Threshold > n {
		return nil, fmt.Errorf("fedrun: a DKG needs 2 <= threshold <= participants, got %d of %d", cfg.Threshold, n)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	began := time.Now()
	res := &LocalDKGResult{}
	mark := time.Now()
	phase := func(name string) {
		now := time.Now()
		res.Phases = append(res.Phases, PhaseTime{Phase: name, Took: now.Sub(mark)})
		mark = now
	}

	// Everything random is drawn here, in order, so that a deterministic
	// Rand gives the same key whether or not the participants run in
	// parallel.
	var id [16]byte
	if _, err := io.ReadFull(cfg.Rand, id[:]); err != nil {
		return nil, fmt.Errorf("fedrun: ceremony id: %w", err)
	}
	keys := make([]*ceremony.DKGKey, n)
	seeds := make([][]byte, n)
	var ps []ceremony.DKGParticipant
	for i, name := range cfg.Names {
		k, err := ceremony.GenerateDKGKey(cfg.Rand)
		if err != nil {
			return nil, err
		}
		keys[i] = k
		seeds[i] = make([]byte, 32)
		if _, err := io.ReadFull(cfg.Rand, seeds[i]); err != nil {
			return nil, fmt.Errorf("fedrun: ceremony seed: %w", err)
		}
		ps = append(ps, ceremony.DKGParticipant{Name: name, Key: k.Public})
	}
	cs := make([]*ceremony.Ceremony, n)
	var queue []ceremony.Message
	err := each(n, cfg.Parallel, func(i int) error {
		c, err := ceremony.NewCeremony(ceremony.CeremonyConfig{
			ID: id, Epoch: cfg.Epoch, Threshold: cfg.Threshold, Participants: ps,
			Index: i + 1, Longterm: keys[i].Private, Rand: bytes.NewReader(seeds[i]),
		})
		if err != nil {
			return err
		}
		cs[i] = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		d, err := c.Deals()
		if err != nil {
			return nil, err
		}
		queue = append(queue, d...)
	}
	phase("deals")

	for round := 1; len(queue) > 0; round++ {
		if round > 10 {
			return nil, fmt.Errorf("fedrun: messages still flowing after %d rounds", round-1)
		}
		inbox := make([][]ceremony.Message, n)
		for _, m := range queue {
			for i := range cs {
				// In a DKG every index counts in the one roster: nobody
				// is sent its own message.
				if m.From != i+1 && (m.To == 0 || m.To == i+1) {
					inbox[i] = append(inbox[i], m)
				}
			}
		}
		out := make([][]ceremony.Message, n)
		err := each(n, cfg.Parallel, func(i int) error {
			for _, m := range inbox[i] {
				ans, err := cs[i].Process(m)
				var mis *ceremony.MisbehaviourError
				if err != nil && !errors.As(err, &mis) {
					return fmt.Errorf("fedrun: participant %d processing a %s from %d: %w", i+1, m.Kind, m.From, err)
				}
				out[i] = append(out[i], ans...)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		queue = slices.Concat(out...)
		phase(fmt.Sprintf("round %d", round))
	}
	res.Results = make([]*ceremony.DKGResult, n)
	err = each(n, cfg.Parallel, func(i int) error {
		r, err := cs[i].Finish()
		res.Results[i] = r
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fedrun: %w", err)
	}
	phase("finish")
	for i, r := range res.Results {
		if !r.GroupKey.Equal(res.Results[0].GroupKey) {
			return nil, fmt.Errorf("fedrun: participant %d computed another group key", i+1)
		}
	}
	res.Took = time.Since(began)
	return res, nil
}

// each runs fn(0..n-1), on every core if parallel, else one after
// another, and returns the errors joined.
func each(n int, parallel bool, fn func(i int) error) error {
	if parallel {
		return limited(n, runtime.GOMAXPROCS(0), fn)
	}
	return limited(n, 1, fn)
}

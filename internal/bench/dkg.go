package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/fedrun"
	"github.com/keyquorum/keyquorum/internal/netlab"
)

// DKGConfig says what to measure.
type DKGConfig struct {
	Binary    string // keyquorum executable
	WorkDir   string // removed by the caller
	Trustees  int
	Threshold int
	// Lab, if set, runs each trustee in a network namespace of its own
	// behind a link with this delay and loss (see package netlab).
	Lab *netlab.Config
}

// DKGResult is what was measured: one dealerless key generation among
// trustee processes on loopback, and the same DKG computed in one process
// with no network.
type DKGResult struct {
	Trustees  int `json:"trustees"`
	Threshold int `json:"threshold"`
	Cores     int `json:"cores"` // GOMAXPROCS of this process; the trustees share the same machine
	// Network is the ceremony's wall time as its coordinator (this
	// process) saw it, from the first call to the last trustee's
	// install; NetworkPhases splits it ("start": preparing and dealing,
	// "round N": a relay round, "finish": every outcome collected,
	// "sign and install": the group file signed by every holder and
	// installed).
	Network       time.Duration      `json:"network_ns"`
	NetworkPhases []fedrun.PhaseTime `json:"network_phases"`
	Holders       int                `json:"holders"`
	// Sequential and Parallel are the same DKG (same n and t, every
	// participant a ceremony.Ceremony) in this process with messages
	// handed over in memory: one participant after another on one core,
	// and the participants of each round spread over every core.
	Sequential       time.Duration      `json:"in_process_sequential_ns"`
	SequentialPhases []fedrun.PhaseTime `json:"in_process_sequential_phases"`
	Parallel         time.Duration      `json:"in_process_parallel_ns"`
	ParallelPhases   []fedrun.PhaseTime `json:"in_process_parallel_phases"`
	// Setup is initialising and starting the trustee processes (an
	// argon2id key derivation each), not counted.
	Setup time.Duration `json:"setup_ns"`
	// NetemDelay and NetemLoss are each trustee link's one-way delay and
	// loss probability, with DKGConfig.Lab (else zero and absent).
	NetemDelay time.Duration `json:"netem_delay_ns,omitempty"`
	NetemLoss  float64       `json:"netem_loss,omitempty"`
}

// DKG runs the benchmark: it sets up and starts cfg.Trustees trustee
// processes (not timed), runs one ceremony among them with this process as
// the coordinator, stops them, and then runs the same DKG in-process,
// sequentially and in parallel.
func DKG(ctx context.Context, cfg DKGConfig) (*DKGResult, error) {
	if cfg.Trustees < 2 || cfg.Threshold < 2 || cfg.Threshold > cfg.Trustees {
		return nil, errors.New("bench: a DKG needs 2 <= threshold <= trustees")
	}
	res := &DKGResult{Trustees: cfg.Trustees, Threshold: cfg.Threshold, Cores: runtime.GOMAXPROCS(0)}
	var names []string
	for i := 1; i <= cfg.Trustees; i++ {
		names = append(names, fmt.Sprintf("trustee-%d", i))
	}
	began := time.Now()
	_, vkey, err := escrow.NewJudgeKey("judge-bench", rand.Reader)
	if err != nil {
		return nil, err
	}
	f, err := fedrun.Setup(ctx, fedrun.Options{
		Binary: cfg.Binary, Dir: cfg.WorkDir, Names: names, Threshold: cfg.Threshold,
		Judges: []string{vkey}, Passphrase: "bench", KeyGeneration: fedrun.KeyGenerationDKG, Lab: cfg.Lab,
	})
	if cfg.Lab != nil {
		res.NetemDelay, res.NetemLoss = cfg.Lab.Delay, cfg.Lab.Loss
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.StartAll(ctx); err != nil {
		return nil, err
	}
	res.Setup = time.Since(began)

	now := time.Now().UTC().Truncate(time.Second)
	epoch := escrow.GroupEpoch{Epoch: 1, ValidFrom: now, ValidUntil: now.AddDate(0, 0, 30)}
	t0 := time.Now()
	mark := t0
	rep, err := f.RunDKG(ctx, epoch, fedrun.CeremonyOptions{AfterPhase: func(phase string) {
		now := time.Now()
		res.NetworkPhases = append(res.NetworkPhases, fedrun.PhaseTime{Phase: phase, Took: now.Sub(mark)})
		mark = now
	}})
	if err != nil {
		return nil, err
	}
	res.NetworkPhases = append(res.NetworkPhases, fedrun.PhaseTime{Phase: "sign and install", Took: time.Since(mark)})
	res.Network = rep.Took
	res.Holders = len(rep.Holders)
	if res.Holders != cfg.Trustees {
		return nil, fmt.Errorf("bench: only %d of %d trustees hold a share (left out: %v)", res.Holders, cfg.Trustees, rep.Excluded)
	}
	f.Close() // the baseline gets the machine to itself

	for _, parallel := range []bool{false, true} {
		r, err := fedrun.LocalDKG(fedrun.LocalDKGConfig{Names: names, Threshold: cfg.Threshold, Epoch: 1, Parallel: parallel})
		if err != nil {
			return nil, err
		}
		if parallel {
			res.Parallel, res.ParallelPhases = r.Took, r.Phases
		} else {
			res.Sequential, res.SequentialPhases = r.Took, r.Phases
		}
	}
	return res, nil
}

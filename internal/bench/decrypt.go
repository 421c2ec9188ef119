// Package bench measures keyquorum end to end: warranted decryption
// against a federation of real trustee processes on loopback. The
// `keyquorum bench` command prints what it returns.
package bench

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"sync"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/fedrun"
	"github.com/keyquorum/keyquorum/internal/netlab"
	"github.com/keyquorum/keyquorum/trustee"
	"golang.org/x/mod/sumdb/note"
)

// DecryptConfig says what to measure.
type DecryptConfig struct {
	Binary    string // keyquorum executable
	WorkDir   string // removed by the caller
	Trustees  int
	Threshold int
	Sessions  int // sessions in the bulk warrant
	Singles   int // single-session warrants timed for latency
	// Lab, if set, runs each trustee in a network namespace of its own
	// behind a link with this delay and loss (see package netlab).
	Lab *netlab.Config
	// ChunkSessions is the most sessions per request (0: the default of
	// trustee.DecryptOptions); the bulk warrant takes several requests
	// when it has more.
	ChunkSessions int
	// CPUProfile, if set, receives this process's (the requester's) CPU
	// profile of the bulk warrant, in pprof format.
	CPUProfile io.Writer
}

// DecryptResult is what was measured.
type DecryptResult struct {
	Sessions       int           `json:"sessions"`
	Bulk           time.Duration `json:"bulk_ns"`
	SessionsPerSec float64       `json:"sessions_per_second"`
	OneTrustee     time.Duration `json:"one_trustee_ns"` // one trustee answering the bulk warrant's first request alone
	Combine        time.Duration `json:"combine_ns"`     // requester combining t answers for every session of that request, all cores
	Requests       int           `json:"requests"`       // requests the bulk warrant took
	// BreakdownSessions is the size of the request OneTrustee and
	// Combine time: the bulk warrant's first.
	BreakdownSessions int           `json:"breakdown_sessions"`
	SingleP50         time.Duration `json:"single_p50_ns"` // single-session warrant, end to end
	SingleP99         time.Duration `json:"single_p99_ns"`
	Singles           int           `json:"singles"`
	Setup             time.Duration `json:"setup_ns"`
	EnvelopeSealing   time.Duration `json:"envelope_sealing_ns"` // making the test envelopes
	// NetemDelay and NetemLoss are each trustee link's one-way delay and
	// loss probability, with DecryptConfig.Lab (else zero and absent).
	NetemDelay time.Duration `json:"netem_delay_ns,omitempty"`
	NetemLoss  float64       `json:"netem_loss,omitempty"`

	// CPUPerSession is the user plus system CPU time that every trustee
	// process and the requester (this process) used during the bulk
	// warrant, divided by its sessions; CPUSeconds is each process's
	// share of it, trustees in roster order.
	CPUPerSession float64             `json:"cpu_seconds_per_session"`
	CPUSeconds    PerProcess[float64] `json:"cpu_seconds"`
	// X25519 is the CPU time of one X25519 key agreement (crypto/ecdh),
	// measured in this run on one thread while the trustees are idle, the
	// yardstick of the goals; CPUPerSessionX25519 is
	// CPUPerSession in those units.
	X25519              float64 `json:"x25519_seconds"`
	CPUPerSessionX25519 float64 `json:"cpu_per_session_x25519"`
	// P50Single and P99Single are SingleP50 and SingleP99 in seconds.
	P50Single float64 `json:"p50_single_seconds"`
	P99Single float64 `json:"p99_single_seconds"`
	// MaxRSS is the peak resident memory of the requester (this process,
	// which also made the test envelopes) and of each trustee process, in
	// bytes, read after the last warrant.
	MaxRSS PerProcess[int64] `json:"max_rss_bytes"`
}

// PerProcess is one figure for the requester and for each trustee, in
// roster order.
type PerProcess[T any] struct {
	Requester T   `json:"requester"`
	Trustees  []T `json:"trustees"`
}

// MaxSessions is the largest bulk warrant [Decrypt] measures: ten times
// the most one request carries, sent in requests of ChunkSessions.
const MaxSessions = 10 * escrow.MaxRequestSessions

// Decrypt runs the benchmark.
func Decrypt(ctx context.Context, cfg DecryptConfig) (*DecryptResult, error) {
	if cfg.Sessions < 1 || cfg.Sessions > MaxSessions {
		return nil, fmt.Errorf("bench: sessions must be 1 to %d", MaxSessions)
	}
	if cfg.Threshold < 1 || cfg.Threshold > cfg.Trustees {
		return nil, errors.New("bench: need 1 <= threshold <= trustees")
	}
	res := &DecryptResult{Sessions: cfg.Sessions, Singles: cfg.Singles}
	began := time.Now()
	now := time.Now().UTC().Truncate(time.Second)
	skey, vkey, err := escrow.NewJudgeKey("judge-bench", rand.Reader)
	if err != nil {
		return nil, err
	}
	judge, err := note.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	var names []string
	for i := 1; i <= cfg.Trustees; i++ {
		names = append(names, fmt.Sprintf("trustee-%d", i))
	}
	epoch := escrow.GroupEpoch{Epoch: 1, ValidFrom: now.AddDate(0, 0, -1), ValidUntil: now.AddDate(0, 0, 30)}
	// The key is made by a DKG among the trustees; a 1-of-n group, which
	// a DKG cannot make, is dealt.
	fo := fedrun.Options{
		Binary: cfg.Binary, Dir: cfg.WorkDir, Names: names, Threshold: cfg.Threshold,
		Judges: []string{vkey}, Passphrase: "bench", Lab: cfg.Lab,
	}
	if cfg.Lab != nil {
		res.NetemDelay, res.NetemLoss = cfg.Lab.Delay, cfg.Lab.Loss
	}
	if cfg.Threshold < 2 {
		fo.KeyGeneration, fo.Epochs, fo.Dealer = fedrun.KeyGenerationDealer, []escrow.GroupEpoch{epoch}, rand.Reader
	}
	f, err := fedrun.Setup(ctx, fo)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.StartAll(ctx); err != nil {
		return nil, err
	}
	if f.Group == nil {
		if _, err := f.RunDKG(ctx, epoch, fedrun.CeremonyOptions{}); err != nil {
			return nil, err
		}
	}
	g, err := f.Group.EscrowGroup(1)
	if err != nil {
		return nil, err
	}
	res.Setup = time.Since(began)

	// Envelopes: alice's sessions of the last hour, sealed on all cores.
	t0 := time.Now()
	envs, keys, err := sealMany(cfg.Sessions+cfg.Singles, g, now, rand.Reader)
	if err != nil {
		return nil, err
	}
	res.EnvelopeSealing = time.Since(t0)

	requester, err := escrow.GenerateRequesterKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	w := &escrow.Warrant{ID: "W-BENCH", Case: "benchmark", Requester: requester.Public, Targets: []string{"alice"},
		WindowStart: now.Add(-2 * time.Hour), WindowEnd: now.Add(time.Hour), ValidFrom: now.Add(-time.Hour),
		ValidUntil: now.AddDate(0, 0, 1), MaxSessions: cfg.Sessions + cfg.Singles + 10, Purpose: "benchmark"}
	body, err := w.MarshalText()
	if err != nil {
		return nil, err
	}
	warrant, err := escrow.SignWarrant(body, judge)
	if err != nil {
		return nil, err
	}
	opts := trustee.DecryptOptions{Timeout: 10 * time.Minute, Attempts: 1, ChunkSessions: cfg.ChunkSessions}
	chunk := cfg.ChunkSessions
	if chunk <= 0 {
		chunk = trustee.DefaultChunkSessions
	}
	res.Requests = (cfg.Sessions + chunk - 1) / chunk
	res.BreakdownSessions = min(cfg.Sessions, chunk)

	// Bulk: one warrant, every session, end to end.
	bulk := envs[:cfg.Sessions]
	pids := []int{os.Getpid()}
	for _, t := range f.Members() {
		pids = append(pids, t.PID())
	}
	cpu0, err := cpuOf(pids)
	if err != nil {
		return nil, err
	}
	if cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	t0 = time.Now()
	out, err := trustee.Decrypt(ctx, f.Group, f.Clients(), warrant, requester, bulk, opts)
	res.Bulk = time.Since(t0)
	if cfg.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return nil, err
	}
	cpu1, err := cpuOf(pids)
	if err != nil {
		return nil, err
	}
	var total time.Duration
	for i := range pids {
		d := (cpu1[i] - cpu0[i]).Seconds()
		total += cpu1[i] - cpu0[i]
		if i == 0 {
			res.CPUSeconds.Requester = d
		} else {
			res.CPUSeconds.Trustees = append(res.CPUSeconds.Trustees, d)
		}
	}
	res.CPUPerSession = total.Seconds() / float64(cfg.Sessions)
	if res.X25519, err = timeX25519(200 * time.Millisecond); err != nil {
		return nil, err
	}
	res.CPUPerSessionX25519 = res.CPUPerSession / res.X25519
	if len(out.Keys) != cfg.Sessions {
		return nil, fmt.Errorf("bench: recovered %d of %d sessions", len(out.Keys), cfg.Sessions)
	}
	for i, b := range bulk {
		e, _ := escrow.ParseEnvelope(b)
		if string(out.Keys[e.Context.SessionID]) != string(keys[i]) {
			return nil, errors.New("bench: a recovered key is wrong")
		}
	}
	res.SessionsPerSec = float64(cfg.Sessions) / res.Bulk.Seconds()

	// Where the time goes: one trustee alone, then the requester's
	// combine, for the first request.
	bulk = bulk[:res.BreakdownSessions]
	req, err := escrow.NewDecryptionRequest(warrant, bulk, requester, time.Now(), rand.Reader)
	if err != nil {
		return nil, err
	}
	wire := req.Marshal()
	var answers []*trustee.Answer
	for i := 0; i < cfg.Threshold; i++ {
		t0 = time.Now()
		a, err := f.Trustees[i].Client.Decrypt(ctx, wire)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			res.OneTrustee = time.Since(t0)
		}
		answers = append(answers, a)
	}
	t0 = time.Now()
	if err := combineAll(g, req.ID, bulk, requester, answers); err != nil {
		return nil, err
	}
	res.Combine = time.Since(t0)

	// Latency: single-session warrants, one after another.
	var lat []time.Duration
	for _, b := range envs[cfg.Sessions:] {
		t0 = time.Now()
		if _, err := trustee.Decrypt(ctx, f.Group, f.Clients(), warrant, requester, [][]byte{b}, opts); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		res.SingleP50 = lat[len(lat)/2]
		res.SingleP99 = lat[(len(lat)*99)/100]
		res.P50Single, res.P99Single = res.SingleP50.Seconds(), res.SingleP99.Seconds()
	}
	for i, pid := range pids {
		rss, err := processPeakRSS(pid)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			res.MaxRSS.Requester = rss
		} else {
			res.MaxRSS.Trustees = append(res.MaxRSS.Trustees, rss)
		}
	}
	return res, nil
}

// cpuOf returns the CPU time each process has used so far.
func cpuOf(pids []int) ([]time.Duration, error) {
	out := make([]time.Duration, len(pids))
	for i, pid := range pids {
		if pid == 0 {
			return nil, errors.New("bench: a trustee process is not running")
		}
		d, err := processCPU(pid)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

// timeX25519 returns the CPU time of one X25519 key agreement, from as
// many as take about d of CPU on one thread (on Linux; elsewhere, of wall
// time), so that other processes busy on the machine do not inflate it.
func timeX25519(d time.Duration) (float64, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return 0, err
	}
	b, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return 0, err
	}
	pub := b.PublicKey()
	n := 0
	c0 := threadCPU()
	for threadCPU()-c0 < d || n < 100 {
		for range 50 {
			if _, err := a.ECDH(pub); err != nil {
				return 0, err
			}
		}
		n += 50
	}
	return (threadCPU() - c0).Seconds() / float64(n), nil
}

// sealMany makes n envelopes of alice's sessions in the hour before now.
func sealMany(n int, g *escrow.Group, now time.Time, r io.Reader) ([][]byte, [][]byte, error) {
	envs, keys := make([][]byte, n), make([][]byte, n)
	ctxs := make([]*escrow.Context, n)
	for i := range ctxs {
		c := &escrow.Context{Epoch: g.Epoch, GroupKeyID: escrow.KeyIDOf(g.Key), Sender: "alice", Recipient: "bob",
			Start: now.Add(-time.Duration(i%3600) * time.Second)}
		keys[i] = make([]byte, escrow.KeySize)
		if _, err := io.ReadFull(r, c.SessionID[:]); err != nil {
			return nil, nil, err
		}
		if _, err := io.ReadFull(r, keys[i]); err != nil {
			return nil, nil, err
		}
		ctxs[i] = c
	}
	key := g.EpochKey()
	err := parallel(n, func(i int) error {
		e, err := escrow.SealEnvelope(keys[i], ctxs[i], key)
		if err != nil {
			return err
		}
		envs[i] = e.Marshal()
		return nil
	})
	return envs, keys, err
}

// combineAll checks the proof of each answer (one multi-scalar
// multiplication each, on every core) and combines every session of
// request reqID from them, as trustee.Decrypt does.
func combineAll(g *escrow.Group, reqID [16]byte, envs [][]byte, req *escrow.RequesterKey, answers []*trustee.Answer) error {
	es := make([]*escrow.Envelope, len(envs))
	if err := parallel(len(envs), func(i int) (err error) {
		es[i], err = escrow.ParseEnvelope(envs[i])
		return err
	}); err != nil {
		return err
	}
	batches := make([]*escrow.BatchAnswer, len(answers))
	if err := parallel(len(answers), func(i int) error {
		batches[i] = answers[i].Batches[0] // one epoch
		return batches[i].Verify(g.PublicShares[answers[i].Index], reqID, es, req.Public)
	}); err != nil {
		return err
	}
	c, err := escrow.NewCombiner(g, req)
	if err != nil {
		return err
	}
	res, err := c.CombineBatch(reqID, es, batches)
	if err != nil {
		return err
	}
	for _, err := range res.Errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// parallel runs fn(0..n-1) on every core and returns the first error.
func parallel(n int, fn func(i int) error) error {
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

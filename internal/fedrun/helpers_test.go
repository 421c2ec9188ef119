package fedrun_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/ceremony"
	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/fedrun"
	"github.com/keyquorum/keyquorum/internal/netlab"
	"github.com/keyquorum/keyquorum/internal/sim"
	"github.com/keyquorum/keyquorum/trustee"
	"go.dedis.ch/kyber/v3"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// keyquorumBin is the keyquorum binary TestMain builds once for every
// test of the package; empty in -short mode, where the integration tests
// skip.
var keyquorumBin string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	flag.Parse()
	if !testing.Short() {
		dir, err := os.MkdirTemp("", "fedrun-test-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "keyquorum")
		build := exec.Command("go", "build", "-o", bin, "github.com/keyquorum/keyquorum/cmd/keyquorum")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building keyquorum: %v\n%s", err, out)
			return 1
		}
		keyquorumBin = bin
	}
	return m.Run()
}

const testPassphrase = "fedrun integration tests"

// testKDFMemoryMiB is the argon2id memory of the test trustees' stores.
const testKDFMemoryMiB = 8

// fixtureConfig sizes a test federation and its traffic.
type fixtureConfig struct {
	trustees, threshold int
	users               int     // simulated users, the rogue one included (default 6)
	days                int     // simulated days before today, at most 29 (default 10)
	perDay              float64 // sessions each user starts per day (default 1)
	seed                uint64
	noStart             bool // set up only; start nothing

	// dkg makes the keys by ceremonies among the trustee processes
	// instead of dealing them: a first DKG, then rotations, epochs in all
	// (default 1), each epochDays long (default 7), the last one holding
	// now; with one epoch it runs from 30 days ago to 30 days ahead.
	dkg       bool
	retention int // retention_epochs in every trustee's policy
	rateLimit int // rate_limit (grants per judge per day) in every trustee's policy
	epochs    int
	epochDays int
	down      []int                                      // trustees (1-based) not started: the first ceremony leaves them out
	timeout   time.Duration                              // the ceremonies' phase timeout (default 3 s)
	hook      func(fed *fedrun.Federation, phase string) // runs after each phase of the first ceremony
	lab       *netlab.Config                             // each trustee in a namespace of its own, links delayed and lossy
}

// fixture is a federation of trustee processes together with everything a
// warranted decryption needs: the judge, a requester, simulated traffic
// escrowed under the federation's epoch key and a warrant covering a real
// set of those sessions.
type fixture struct {
	fed       *fedrun.Federation
	now       time.Time
	group     *escrow.Group         // epoch 1
	reports   []*ceremony.DKGReport // the ceremonies, with dkg
	judge     note.Signer
	requester *escrow.RequesterKey
	pubs      map[string]*escrow.UserPublic
	traffic   *sim.Traffic
	warrant   []byte
	inScope   []*sim.Captured // honest sessions the warrant covers
}

// newFixture sets up a federation under t.TempDir() (ports chosen by the
// OS) whose processes are stopped when the test ends, and starts every
// trustee unless cfg.noStart.
func newFixture(t *testing.T, cfg fixtureConfig) *fixture {
	t.Helper()
	if keyquorumBin == "" {
		t.Skip("integration test with trustee processes; skipped in -short mode")
	}
	if cfg.users == 0 {
		cfg.users = 6
	}
	if cfg.days == 0 {
		cfg.days = 10
	}
	if cfg.perDay == 0 {
		cfg.perDay = 1
	}
	if cfg.seed == 0 {
		cfg.seed = 1
	}
	if cfg.epochs == 0 {
		cfg.epochs = 1
	}
	if cfg.epochDays == 0 {
		cfg.epochDays = 7
	}
	if cfg.timeout == 0 {
		cfg.timeout = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The trustees run on the real clock: one epoch around now, or with
	// more epochs, the last one holding now.
	now := time.Now().UTC().Truncate(time.Second)
	today := now.Truncate(24 * time.Hour)
	epochs := []escrow.GroupEpoch{{Epoch: 1, ValidFrom: now.Add(-30 * 24 * time.Hour), ValidUntil: now.Add(30 * 24 * time.Hour)}}
	if cfg.epochs > 1 {
		epochs = nil
		for i := 1; i <= cfg.epochs; i++ {
			from := today.AddDate(0, 0, (i-cfg.epochs)*cfg.epochDays-cfg.epochDays/2)
			epochs = append(epochs, escrow.GroupEpoch{Epoch: uint32(i), ValidFrom: from, ValidUntil: from.AddDate(0, 0, cfg.epochDays)})
		}
		cfg.days = int(today.Sub(epochs[0].ValidFrom) / (24 * time.Hour))
	}
	skey, vkey, err := escrow.NewJudgeKey("judge-test", sim.NewRand(cfg.seed, "judge"))
	if err != nil {
		t.Fatal(err)
	}
	judge, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := 1; i <= cfg.trustees; i++ {
		names = append(names, fmt.Sprintf("trustee-%d", i))
	}
	start := time.Now()
	opts := fedrun.Options{
		Binary: keyquorumBin, Dir: filepath.Join(t.TempDir(), "federation"),
		Names: names, Threshold: cfg.threshold, Judges: []string{vkey}, Passphrase: testPassphrase, Retention: cfg.retention, RateLimit: cfg.rateLimit,
		KeyGeneration: fedrun.KeyGenerationDealer, Epochs: epochs, Dealer: rand.Reader,
		// The passphrase sits in a file next to the stores: a full-cost
		// key derivation would protect nothing here and only slow every
		// start (the trustee package tests the default cost).
		KDFMemoryMiB: testKDFMemoryMiB, KDFPasses: 1,
	}
	if cfg.dkg {
		opts.KeyGeneration, opts.Epochs, opts.Dealer = fedrun.KeyGenerationDKG, nil, nil
	}
	opts.Lab = cfg.lab
	fed, err := fedrun.Setup(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fed.Close)
	t.Logf("set up %d-of-%d federation in %v", cfg.threshold, cfg.trustees, time.Since(start).Round(time.Millisecond))

	fx := &fixture{fed: fed, now: now, judge: judge, pubs: map[string]*escrow.UserPublic{}}
	if cfg.dkg {
		start = time.Now()
		var up []*fedrun.Trustee
		for _, tr := range fed.Trustees {
			if !slices.Contains(cfg.down, tr.Index) {
				up = append(up, tr)
			}
		}
		for _, tr := range up {
			if err := tr.Start(ctx); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("started %d trustees without a group in %v", len(up), time.Since(start).Round(time.Millisecond))
		for i, e := range epochs {
			o := fedrun.CeremonyOptions{PhaseTimeout: cfg.timeout}
			if i == 0 && cfg.hook != nil {
				o.AfterPhase = func(phase string) { cfg.hook(fed, phase) }
			}
			reps, err := fed.MakeEpochs(ctx, []escrow.GroupEpoch{e}, o)
			if err != nil {
				t.Fatal(err)
			}
			fx.reports = append(fx.reports, reps...)
			t.Logf("epoch %d: ceremony %s took %v (%d holders)", e.Epoch, reps[0].CeremonyID, reps[0].Took.Round(time.Millisecond), len(reps[0].Holders))
		}
		cfg.noStart = true // started already
	}
	if fx.group, err = fed.Group.EscrowGroup(1); err != nil {
		t.Fatal(err)
	}
	if fx.requester, err = escrow.GenerateRequesterKey(sim.NewRand(cfg.seed, "requester")); err != nil {
		t.Fatal(err)
	}
	users, err := sim.GenerateUsers(cfg.users, cfg.seed)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		fx.pubs[u.Name] = u.Public()
	}
	first := today.AddDate(0, 0, -cfg.days)
	keys := map[uint32]kyber.Point{}
	keyAt := func(at time.Time) (uint32, kyber.Point, error) {
		e, err := fed.Group.EpochAt(at)
		if err != nil {
			return 0, nil, err
		}
		if keys[e.Epoch] == nil {
			g, err := fed.Group.EscrowGroup(e.Epoch)
			if err != nil {
				return 0, nil, err
			}
			keys[e.Epoch] = g.Key
		}
		return e.Epoch, keys[e.Epoch], nil
	}
	start = time.Now()
	fx.traffic, err = sim.Generate(sim.Config{Users: cfg.users, Days: cfg.days, Seed: cfg.seed, Start: first, SessionsPerUserDay: cfg.perDay}, users, keyAt)
	if err != nil {
		t.Fatal(err)
	}

	// The warrant names every honest user over the whole simulated
	// window except its first day, so some sessions stay out of scope.
	var targets []string
	for _, u := range users {
		if u.Name != sim.RogueName {
			targets = append(targets, u.Name)
		}
	}
	w := &escrow.Warrant{
		ID: "W-FEDRUN-1", Case: "fedrun integration test", Requester: fx.requester.Public,
		Targets: targets, WindowStart: first.AddDate(0, 0, 1), WindowEnd: today,
		ValidFrom: now.Add(-time.Hour), ValidUntil: now.Add(7 * 24 * time.Hour),
		MaxSessions: 100000, Purpose: "exercise the federation",
	}
	body, err := w.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if fx.warrant, err = escrow.SignWarrant(body, judge); err != nil {
		t.Fatal(err)
	}
	outOfScope := 0
	for _, c := range fx.traffic.Sessions {
		if c.Tampering != sim.Honest || !c.Accepted {
			continue
		}
		if w.Covers(c.Context) == nil {
			fx.inScope = append(fx.inScope, c)
		} else {
			outOfScope++
		}
	}
	if len(fx.inScope) == 0 || outOfScope == 0 {
		t.Fatalf("the warrant covers %d sessions and leaves %d out; pick other traffic parameters", len(fx.inScope), outOfScope)
	}
	t.Logf("generated %d sessions (%d in the warrant's scope) in %v", len(fx.traffic.Sessions), len(fx.inScope), time.Since(start).Round(time.Millisecond))

	if !cfg.noStart {
		start = time.Now()
		if err := fed.StartAll(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("started %d trustees in %v", cfg.trustees, time.Since(start).Round(time.Millisecond))
	}
	return fx
}

// envelopes returns the sessions' envelopes, in order.
func envelopes(cs []*sim.Captured) [][]byte {
	out := make([][]byte, len(cs))
	for i, c := range cs {
		out[i] = c.Session.Envelope
	}
	return out
}

// request encodes a signed decryption request for the sessions under the
// fixture's warrant, as the requester would send it to one trustee.
func (fx *fixture) request(t testing.TB, cs []*sim.Captured) []byte {
	t.Helper()
	b, err := fx.newRequest(cs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newRequest is request for goroutines other than the test's.
func (fx *fixture) newRequest(cs []*sim.Captured) ([]byte, error) {
	r, err := escrow.NewDecryptionRequest(fx.warrant, envelopes(cs), fx.requester, time.Now(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return r.Marshal(), nil
}

// decrypt runs the requester (trustee.Decrypt) over TLS against clients,
// with short retries so that unreachable trustees are given up quickly.
func (fx *fixture) decrypt(ctx context.Context, g *escrow.GroupFile, clients []*trustee.Client, cs []*sim.Captured) (*trustee.DecryptResult, error) {
	return trustee.Decrypt(ctx, g, clients, fx.warrant, fx.requester, envelopes(cs), trustee.DecryptOptions{
		Timeout: 30 * time.Second, Attempts: 2, Backoff: 50 * time.Millisecond, Grace: 2 * time.Second,
	})
}

// checkRecovered asserts that res holds a key for every session in cs and
// that each key opens every message of its session, signed by its author
// and equal to what was sent.
func (fx *fixture) checkRecovered(t *testing.T, res *trustee.DecryptResult, cs []*sim.Captured) {
	t.Helper()
	if len(res.Keys) != len(cs) || len(res.Unrecovered) != 0 {
		t.Fatalf("recovered %d keys for %d sessions; unrecovered: %v", len(res.Keys), len(cs), res.Unrecovered)
	}
	for _, c := range cs {
		K, ok := res.Keys[c.Context.SessionID]
		if !ok {
			t.Fatalf("no key for session %s", c.Context.SessionID)
		}
		env, err := escrow.ParseEnvelope(c.Session.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := escrow.KeysFromRecovered(env, K)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Session.Messages) == 0 {
			t.Fatalf("session %s has no messages", c.Context.SessionID)
		}
		for i, m := range c.Session.Messages {
			pt, err := keys.Open(m, fx.pubs)
			if err != nil {
				t.Fatalf("session %s message %d: %v", c.Context.SessionID, i, err)
			}
			if pt.Text != c.Plain[i] {
				t.Fatalf("session %s message %d reads %q, %q was sent", c.Context.SessionID, i, pt.Text, c.Plain[i])
			}
		}
	}
}

// verifiedHead fetches a trustee's signed tree head and checks it with
// the log key its group-file entry gives.
func verifiedHead(ctx context.Context, tr *fedrun.Trustee) (tlog.Tree, []byte, error) {
	v, err := note.NewVerifier(tr.Member.LogKey)
	if err != nil {
		return tlog.Tree{}, nil, err
	}
	h, err := tr.Client.Head(ctx)
	if err != nil {
		return tlog.Tree{}, nil, err
	}
	tree, err := trustee.VerifyHead(h, v)
	return tree, h, err
}

// logSize returns the size of a trustee's audit log, or an error.
func logSize(ctx context.Context, tr *fedrun.Trustee) (int64, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	tree, _, err := verifiedHead(cctx, tr)
	return tree.N, err
}

// waitLogGrowth polls a trustee's audit log until it holds more than size
// records, which for a trustee busy with a grant means the grant is logged
// and its partial decryptions are being computed: the request is in
// flight. It gives up at the deadline, or when done is closed.
func waitLogGrowth(ctx context.Context, tr *fedrun.Trustee, size int64, done <-chan struct{}) bool {
	for {
		if n, err := logSize(ctx, tr); err == nil && n > size {
			return true
		}
		select {
		case <-done:
			return false
		case <-ctx.Done():
			return false
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// runKeyquorum runs the keyquorum binary with a deadline and returns its
// exit code and outputs.
func runKeyquorum(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, keyquorumBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &exit) && ctx.Err() == nil:
		return exit.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("keyquorum %v: %v (stderr: %s)", args, err, errb.String())
	return 0, "", ""
}

// copyDir copies a trustee's data directory (regular files only).
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// tamperValue flips bytes in the middle of one value stored in bucket of
// the bbolt file at path: the value of the bucket's middle key, where it
// lies on a page the store uses (bbolt copies pages on write, so stale
// copies of a value can linger on free pages, where a change is harmless).
// It returns the key it altered.
func tamperValue(t *testing.T, path, bucket string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var key, val []byte
	used := map[int64]bool{} // pages holding live data
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return fmt.Errorf("no bucket %q", bucket)
		}
		var keys [][]byte
		b.ForEach(func(k, _ []byte) error {
			keys = append(keys, bytes.Clone(k))
			return nil
		})
		if len(keys) == 0 {
			return fmt.Errorf("bucket %q is empty", bucket)
		}
		key = keys[len(keys)/2]
		val = bytes.Clone(b.Get(key))
		for id := 2; ; id++ {
			p, err := tx.Page(id)
			if err != nil {
				return err
			}
			if p == nil {
				return nil
			}
			if p.Type == "leaf" || p.Type == "branch" {
				for k := 0; k <= p.OverflowCount; k++ {
					used[int64(id+k)] = true
				}
			}
		}
	})
	pageSize := int64(db.Info().PageSize)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(val) < 8 {
		t.Fatalf("value of %x in %s is too short to tamper with", key, bucket)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for from := 0; ; {
		i := bytes.Index(b[from:], val)
		if i < 0 {
			t.Fatalf("value of %x in %s not found on a page in use", key, bucket)
		}
		off := int64(from + i)
		if used[off/pageSize] {
			mid := off + int64(len(val))/2
			for j := mid - 2; j < mid+2; j++ {
				b[j] ^= 0xa5
			}
			break
		}
		from += i + 1
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", key)
}

// storeSize is how much of the bbolt file at path the store uses: its
// high-water mark.
func storeSize(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	db.View(func(tx *bolt.Tx) error {
		n = tx.Size()
		return nil
	})
	return n
}

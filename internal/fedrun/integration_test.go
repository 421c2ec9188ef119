package fedrun_test

// Integration tests with real trustee processes: every trustee is the
// keyquorum binary (`keyquorum trustee serve`) on a loopback port chosen by
// the OS, reached over TLS with its certificate pinned by the group file.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/fedrun"
	"github.com/keyquorum/keyquorum/trustee"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// TestFederationDecryptsWarrant: a 3-of-5 federation decrypts every
// session a warrant covers through the requester over pinned TLS; every
// recovered key opens its session's messages, and every trustee's audit log
// verifies with the grant in it.
func TestFederationDecryptsWarrant(t *testing.T) {
	fx := newFixture(t, fixtureConfig{trustees: 5, threshold: 3})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	res, err := fx.decrypt(ctx, fx.fed.Group, fx.fed.Clients(), fx.inScope)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("decrypted %d sessions in %v", len(fx.inScope), time.Since(start).Round(time.Millisecond))
	granted := 0
	for _, r := range res.Trustees {
		switch r.Status {
		case trustee.StatusGranted:
			granted++
		case trustee.StatusUnreachable: // slower than the grace period: late, not wrong
			t.Logf("%s: %s", r.Name, r.Reason)
		default:
			t.Errorf("%s: %s: %s", r.Name, r.Status, r.Reason)
		}
	}
	if granted < 3 {
		t.Fatalf("%d trustees granted, 3 needed: %+v", granted, res.Trustees)
	}
	fx.checkRecovered(t, res, fx.inScope)
	checkAuditedGrants(t, ctx, fx, fx.fed.Trustees)
}

// checkAuditedGrants audits every trustee's log and asserts that each of
// those in want holds a grant of the fixture's warrant for exactly its
// in-scope sessions.
func checkAuditedGrants(t *testing.T, ctx context.Context, fx *fixture, want []*fedrun.Trustee) {
	t.Helper()
	ar, err := trustee.Audit(ctx, fx.fed.Group, fx.fed.Clients(), nil, trustee.AuditOptions{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range ar.Trustees {
		if a.Status != trustee.AuditOK {
			t.Errorf("audit of %s: %s: %s", a.Name, a.Status, a.Detail)
		}
	}
	wh := sha256.Sum256(fx.warrant)
	for _, tr := range want {
		found := false
		for _, l := range ar.Logs {
			if l.Trustee != tr.Name {
				continue
			}
			for _, rec := range l.Records {
				if rec.Kind == trustee.AuditKindDecision && rec.Decision == trustee.AuditGranted &&
					rec.WarrantHash == hex.EncodeToString(wh[:]) && len(rec.Sessions) == len(fx.inScope) {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("the verified log of %s holds no grant of the warrant for its %d sessions", tr.Name, len(fx.inScope))
		}
	}
}

// TestKillTwoTrusteesMidRequest: two of five trustees are killed with
// SIGKILL while a request of a few hundred sessions is in flight (each as
// soon as its log shows it granted, that is while it computes its partial
// decryptions). The request still succeeds from the other three, and the
// result is consistent: every trustee granted or was unreachable. After a
// restart the killed trustees' logs verify and hold the grant they logged
// before dying.
func TestKillTwoTrusteesMidRequest(t *testing.T) {
	fx := newFixture(t, fixtureConfig{trustees: 5, threshold: 3, days: 20, perDay: 3})
	if len(fx.inScope) < 200 {
		t.Fatalf("only %d sessions in scope; the request should be large", len(fx.inScope))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	victims := []*fedrun.Trustee{fx.fed.Trustees[1], fx.fed.Trustees[3]}
	done := make(chan struct{})
	var (
		res *trustee.DecryptResult
		err error
	)
	go func() {
		defer close(done)
		res, err = fx.decrypt(ctx, fx.fed.Group, fx.fed.Clients(), fx.inScope)
	}()
	var wg sync.WaitGroup
	midFlight := make([]bool, len(victims))
	for i, v := range victims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			midFlight[i] = waitLogGrowth(ctx, v, 0, done)
			v.Kill()
		}()
	}
	wg.Wait()
	<-done
	if err != nil {
		t.Fatalf("decryption with two trustees killed: %v", err)
	}
	for i, v := range victims {
		if !midFlight[i] {
			t.Errorf("the request was over before %s's log showed its grant: it was not killed mid-request", v.Name)
		}
	}
	granted := 0
	for i, r := range res.Trustees {
		killed := i == 1 || i == 3
		// A survivor may be unreachable too, if three others granted
		// and it was slower than the grace period.
		switch r.Status {
		case trustee.StatusGranted:
			granted++
		case trustee.StatusUnreachable:
			if r.Err == nil || r.Reason == "" {
				t.Errorf("%s is unreachable without a reason: %+v", r.Name, r)
			}
		default:
			t.Errorf("%s (killed: %v): %s: %s", r.Name, killed, r.Status, r.Reason)
		}
		if killed {
			t.Logf("%s, killed after it logged the grant: %v; result: %s %s", r.Name, midFlight[i/2], r.Status, r.Reason)
		}
	}
	if granted < 3 {
		t.Fatalf("%d trustees granted", granted)
	}
	fx.checkRecovered(t, res, fx.inScope)

	// A killed trustee that logged the grant kept it: logged means
	// committed to disk before any share left.
	var logged []*fedrun.Trustee
	for i, v := range victims {
		if err := v.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if midFlight[i] {
			logged = append(logged, v)
		}
	}
	checkAuditedGrants(t, ctx, fx, logged)
}

// TestThreeTrusteesDownInsufficientQuorum: with three of five trustees
// killed, the requester fails with ErrInsufficientQuorum, and the error and
// the result name each unreachable trustee. The two left up release
// nothing either: each reaches only one of the w = 2 witnesses its
// checkpoint needs, and refuses with witness-quorum.
func TestThreeTrusteesDownInsufficientQuorum(t *testing.T) {
	fx := newFixture(t, fixtureConfig{trustees: 5, threshold: 3})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	down := map[string]bool{"trustee-1": true, "trustee-3": true, "trustee-4": true}
	for _, tr := range fx.fed.Trustees {
		if down[tr.Name] {
			if err := tr.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err := fx.decrypt(ctx, fx.fed.Group, fx.fed.Clients(), fx.inScope)
	if !errors.Is(err, trustee.ErrInsufficientQuorum) {
		t.Fatalf("got %v, want ErrInsufficientQuorum", err)
	}
	if errors.Is(err, trustee.ErrQuorumRefused) {
		t.Errorf("nobody refused, yet the error says refusals decided it: %v", err)
	}
	var qe *trustee.QuorumError
	if !errors.As(err, &qe) {
		t.Fatalf("%T is not a *QuorumError", err)
	}
	if qe.Usable != 0 || qe.Threshold != 3 || qe.Unrecovered != len(fx.inScope) || qe.Sessions != len(fx.inScope) {
		t.Errorf("quorum error: usable %d, threshold %d, %d of %d unrecovered", qe.Usable, qe.Threshold, qe.Unrecovered, qe.Sessions)
	}
	msg := err.Error()
	for _, r := range res.Trustees {
		want := trustee.StatusRefused
		if !down[r.Name] && (r.Code != trustee.CodeWitnessQuorum || !errors.Is(r.Err, trustee.ErrWitnessQuorum)) {
			t.Errorf("%s: %s %v, want a witness-quorum refusal", r.Name, r.Code, r.Err)
		}
		if down[r.Name] {
			want = trustee.StatusUnreachable
			if !strings.Contains(msg, r.Name+" unreachable") {
				t.Errorf("the error does not name %s as unreachable: %s", r.Name, msg)
			}
			var te *trustee.TransportError
			if !errors.As(r.Err, &te) || te.Trustee != r.Name || te.Address != fx.fed.Trustees[r.Index-1].Addr {
				t.Errorf("%s: error %v is not a transport error naming it and its address", r.Name, r.Err)
			}
		}
		if r.Status != want {
			t.Errorf("%s: %s (%s), want %s", r.Name, r.Status, r.Reason, want)
		}
	}
	if len(res.Keys) != 0 || len(res.Unrecovered) != len(fx.inScope) {
		t.Errorf("%d keys recovered and %d sessions unrecovered with two trustees", len(res.Keys), len(res.Unrecovered))
	}
}

// ack is a grant whose answer reached the requester: the trustee
// acknowledged that the record at index is in its log.
type ack struct {
	index  int64
	record []byte
	head   []byte
}

// TestKillRestartKeepsAcknowledgedRecords kills a trustee with SIGKILL at
// a random moment while requests are in flight, restarts it, and checks,
// over many cycles, that its log verifies and holds every record whose
// answer a requester received before the kill, byte for byte at the
// acknowledged index, and that the log after the restart extends the one
// before (and every head the trustee handed out).
func TestKillRestartKeepsAcknowledgedRecords(t *testing.T) {
	const (
		cycles  = 25
		workers = 3
	)
	fx := newFixture(t, fixtureConfig{trustees: 1, threshold: 1})
	tr := fx.fed.Trustees[0]
	verifier, err := note.NewVerifier(tr.Member.LogKey)
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	prev, _, err := verifiedHead(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	var (
		acked    []ack    // every acknowledged record, all cycles
		mirror   [][]byte // the log as fetched so far
		state    = trustee.AuditState{}
		began    = time.Now()
		restarts time.Duration
	)
	for cycle := 0; cycle < cycles && !t.Failed(); cycle++ {
		// Requests in flight from several requesters at once, each for a
		// few sessions, until the kill.
		var (
			mu        sync.Mutex
			got       []ack
			killing   atomic.Bool
			wg        sync.WaitGroup
			firstOnce sync.Once
			first     = make(chan struct{})
		)
		for w := 0; w < workers; w++ {
			wrng := rand.New(rand.NewPCG(seed, uint64(cycle*workers+w+2)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					k := wrng.IntN(len(fx.inScope) - 4)
					req, err := fx.newRequest(fx.inScope[k : k+1+wrng.IntN(4)])
					if err != nil {
						t.Error(err)
						return
					}
					ans, err := tr.Client.Decrypt(ctx, req)
					if err != nil {
						if !killing.Load() && ctx.Err() == nil {
							t.Errorf("cycle %d: request failed before the kill: %v", cycle, err)
						}
						return
					}
					mu.Lock()
					got = append(got, ack{index: ans.RecordIndex, record: ans.Record, head: ans.Head})
					mu.Unlock()
					firstOnce.Do(func() { close(first) })
				}
			}()
		}
		stopped := make(chan struct{})
		go func() {
			wg.Wait()
			close(stopped)
		}()
		select {
		case <-first:
		case <-stopped:
			t.Fatalf("cycle %d: every request failed before the kill", cycle)
		case <-ctx.Done():
			killing.Store(true) // the requests fail now; nothing more to report
			<-stopped
			t.Fatalf("cycle %d: no answer before the deadline", cycle)
		}
		time.Sleep(time.Duration(rng.IntN(80_000)) * time.Microsecond) // a random moment
		killing.Store(true)
		if err := tr.Kill(); err != nil {
			t.Fatal(err)
		}
		<-stopped
		restartBegan := time.Now()
		if err := tr.Start(ctx); err != nil {
			t.Fatalf("cycle %d: restart: %v", cycle, err)
		}
		restarts += time.Since(restartBegan)

		tree, _, err := verifiedHead(ctx, tr)
		if err != nil {
			t.Fatalf("cycle %d: head after restart: %v", cycle, err)
		}
		// The restarted log extends the one seen after the last restart...
		if tree.N < prev.N {
			t.Fatalf("cycle %d: log shrank from %d to %d records", cycle, prev.N, tree.N)
		}
		checkConsistent(t, ctx, tr, prev, tree)
		// ...and every head handed out before the kill.
		var newest ack
		for _, a := range got {
			if a.index >= newest.index {
				newest = a
			}
		}
		handed, err := trustee.VerifyHead(newest.head, verifier)
		if err != nil {
			t.Fatalf("cycle %d: head of an answer: %v", cycle, err)
		}
		if handed.N > tree.N {
			t.Fatalf("cycle %d: the trustee answered with a head of %d records, after the restart it has %d", cycle, handed.N, tree.N)
		}
		checkConsistent(t, ctx, tr, handed, tree)

		// Every acknowledged record, of this cycle and all before, is in
		// the log at its index, byte for byte.
		for start := int64(len(mirror)); start < tree.N; start += trustee.MaxRecordsPerRequest {
			recs, err := tr.Client.Records(ctx, start, min(start+trustee.MaxRecordsPerRequest, tree.N))
			if err != nil {
				t.Fatal(err)
			}
			mirror = append(mirror, recs...)
		}
		acked = append(acked, got...)
		for _, a := range acked {
			if a.index >= int64(len(mirror)) || !bytes.Equal(mirror[a.index], a.record) {
				t.Fatalf("cycle %d: acknowledged record %d is lost or changed (log has %d records)", cycle, a.index, tree.N)
			}
		}
		for _, a := range got {
			proof, err := tr.Client.Inclusion(ctx, a.index, tree.N)
			if err != nil {
				t.Fatal(err)
			}
			if err := trustee.VerifyInclusion(tree, a.index, a.record, proof); err != nil {
				t.Fatalf("cycle %d: acknowledged record %d: %v", cycle, a.index, err)
			}
		}
		// The auditor agrees: consistent with its last visit, every record
		// included.
		ar, err := trustee.Audit(ctx, fx.fed.Group, fx.fed.Clients(), state, trustee.AuditOptions{Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if a := ar.Trustees[0]; a.Status != trustee.AuditOK || a.Size < tree.N {
			t.Fatalf("cycle %d: audit: %s (%d records): %s", cycle, a.Status, a.Size, a.Detail)
		}
		state = ar.State
		prev = tree
	}
	t.Logf("%d kill/restart cycles in %v (restarts %v): %d acknowledged records, all kept; the log holds %d",
		cycles, time.Since(began).Round(time.Millisecond), restarts.Round(time.Millisecond), len(acked), prev.N)
}

// checkConsistent asserts that the trustee's log of tree new extends the
// one of tree old, by a consistency proof it serves.
func checkConsistent(t *testing.T, ctx context.Context, tr *fedrun.Trustee, old, new tlog.Tree) {
	t.Helper()
	if old.N == 0 {
		return
	}
	if old.N == new.N {
		if old.Hash != new.Hash {
			t.Fatalf("%s: two heads of %d records with different hashes: the log was rewritten", tr.Name, old.N)
		}
		return
	}
	proof, err := tr.Client.Consistency(ctx, old.N, new.N)
	if err != nil {
		t.Fatal(err)
	}
	if err := trustee.VerifyConsistency(old, new, proof); err != nil {
		t.Fatalf("%s: log of %d records does not extend the one of %d: %v", tr.Name, new.N, old.N, err)
	}
}

// TestPinMismatchAndStartupErrors: a trustee whose certificate does not
// match its pin in the group file is named by the requester, which still
// decrypts from the others; and a trustee that cannot start says which
// file is wrong and what to do: wrong passphrase, a tampered or truncated
// store, a policy file with an error, a store already in use.
func TestPinMismatchAndStartupErrors(t *testing.T) {
	fx := newFixture(t, fixtureConfig{trustees: 3, threshold: 2})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("pin-mismatch", func(t *testing.T) {
		// The group file pins trustee-2 to trustee-1's key: whoever
		// answers at trustee-2's address is not who the file says.
		g := *fx.fed.Group
		g.Trustees = append([]escrow.GroupMember(nil), g.Trustees...)
		g.Trustees[1].TLSPin = g.Trustees[0].TLSPin
		wrong, err := trustee.NewClient(g.Trustees[1])
		if err != nil {
			t.Fatal(err)
		}
		clients := fx.fed.Clients()
		clients[1] = wrong

		_, err = wrong.Info(ctx)
		if !errors.Is(err, trustee.ErrPinMismatch) || !strings.Contains(err.Error(), "certificate of trustee-2") || !strings.Contains(err.Error(), "does not match its pin in the group file") {
			t.Errorf("info from a mispinned trustee: %v", err)
		}
		res, err := fx.decrypt(ctx, &g, clients, fx.inScope)
		if err != nil {
			t.Fatalf("two honest, correctly pinned trustees should suffice: %v", err)
		}
		fx.checkRecovered(t, res, fx.inScope)
		r := res.Trustees[1]
		if r.Name != "trustee-2" || r.Status != trustee.StatusUnreachable || !errors.Is(r.Err, trustee.ErrPinMismatch) ||
			!strings.Contains(r.Reason, "does not match its pin") || !strings.Contains(r.Reason, "trustee-2") {
			t.Errorf("result for the mispinned trustee: %s %s: %s (%v)", r.Name, r.Status, r.Reason, r.Err)
		}
		if r.Attempts != 1 {
			t.Errorf("a pin mismatch was tried %d times; it is not transient", r.Attempts)
		}
		for _, i := range []int{0, 2} {
			if s := res.Trustees[i].Status; s != trustee.StatusGranted {
				t.Errorf("%s: %s", res.Trustees[i].Name, s)
			}
		}
	})

	t.Run("store-in-use", func(t *testing.T) {
		tr := fx.fed.Trustees[2]
		code, _, stderr := runKeyquorum(t, "trustee", "serve", "--dir", tr.Dir, "--passphrase-file", filepath.Join(fx.fed.Dir, "passphrase"), "--listen", "127.0.0.1:0")
		wantStartupError(t, code, stderr, filepath.Join(tr.Dir, "node.db"), "locked", "stop that process first")
	})

	// The remaining cases run on copies of trustee-1's directory, taken
	// after a clean stop, with a log that holds records.
	tr := fx.fed.Trustees[0]
	if err := tr.Stop(10 * time.Second); err != nil {
		t.Fatalf("stopping %s: %v", tr.Name, err)
	}
	passFile := filepath.Join(fx.fed.Dir, "passphrase")
	serve := func(t *testing.T, dir, pass string) (int, string) {
		code, _, stderr := runKeyquorum(t, "trustee", "serve", "--dir", dir, "--passphrase-file", pass, "--listen", "127.0.0.1:0")
		return code, stderr
	}
	scratch := func(t *testing.T) (dir, db string) {
		dir = filepath.Join(t.TempDir(), tr.Name)
		copyDir(t, tr.Dir, dir)
		return dir, filepath.Join(dir, "node.db")
	}

	t.Run("wrong-passphrase", func(t *testing.T) {
		dir, db := scratch(t)
		wrong := filepath.Join(t.TempDir(), "wrong")
		if err := os.WriteFile(wrong, []byte("not the passphrase\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stderr := serve(t, dir, wrong)
		wantStartupError(t, code, stderr, db, "wrong passphrase", "give the passphrase this node was initialised with")
	})

	for _, bucket := range []string{"meta", "vault", "secrets", "shares", "audit-records", "audit-hashes"} {
		t.Run("tampered-"+bucket, func(t *testing.T) {
			dir, db := scratch(t)
			key := tamperValue(t, db, bucket)
			code, stderr := serve(t, dir, passFile)
			t.Logf("flipped bytes in the middle of %s/%s", bucket, key)
			wantStartupError(t, code, stderr, db, "damaged", "restore "+db+" from a backup")
		})
	}

	t.Run("truncated", func(t *testing.T) {
		// Cut the file in the middle of what the store uses (bbolt grows
		// files ahead of need, so the file's own middle may be spare).
		for _, cut := range []func(used int64) int64{
			func(used int64) int64 { return used / 2 },
			func(used int64) int64 { return used - 100 },
		} {
			dir, db := scratch(t)
			size := cut(storeSize(t, db))
			if err := os.Truncate(db, size); err != nil {
				t.Fatal(err)
			}
			code, stderr := serve(t, dir, passFile)
			wantStartupError(t, code, stderr, db, "truncated", "restore "+db+" from a backup")
		}
	})

	t.Run("empty-store", func(t *testing.T) {
		dir, db := scratch(t)
		if err := os.Truncate(db, 0); err != nil {
			t.Fatal(err)
		}
		code, stderr := serve(t, dir, passFile)
		wantStartupError(t, code, stderr, db, "empty", "restore "+db+" from a backup")
	})

	policyCases := []struct {
		name, key, bad string
		want           []string
	}{
		{"bad-duration", "max_window", `max_window = "31 days"`, []string{"max_window", `"744h"`}},
		{"unknown-key", "rate_limit", "rate_limt = 5", []string{"rate_limt"}},
		{"syntax", "retention_epochs", "retention_epochs = = 0", nil},
	}
	for _, pc := range policyCases {
		t.Run("policy-"+pc.name, func(t *testing.T) {
			dir, _ := scratch(t)
			path := filepath.Join(dir, "policy.toml")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(string(b), "\n")
			line := 0
			for i, l := range lines {
				if strings.HasPrefix(l, pc.key+" =") {
					lines[i], line = pc.bad, i+1
				}
			}
			if line == 0 {
				t.Fatalf("no %s line in the policy:\n%s", pc.key, b)
			}
			if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
				t.Fatal(err)
			}
			at := fmt.Sprintf("policy.toml:%d:", line)
			code, stderr := serve(t, dir, passFile)
			wantStartupError(t, code, stderr, path, append([]string{at}, pc.want...)...)
			// policy check reports the same line, and says how to go on.
			code, _, stderr = runKeyquorum(t, "trustee", "policy", "check", "--dir", dir)
			wantStartupError(t, code, stderr, path, append([]string{at, "fix them and run keyquorum trustee policy check again"}, pc.want...)...)
		})
	}

	t.Run("restart-after-clean-stop", func(t *testing.T) {
		if err := tr.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := verifiedHead(ctx, tr); err != nil {
			t.Fatal(err)
		}
	})
}

// wantStartupError asserts that a keyquorum command failed with a message
// naming file and containing every phrase in want.
func wantStartupError(t *testing.T, code int, stderr, file string, want ...string) {
	t.Helper()
	if code == 0 {
		t.Fatalf("exit code 0; stderr:\n%s", stderr)
	}
	if !strings.Contains(stderr, file) {
		t.Errorf("the message does not name %s:\n%s", file, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("the message does not say %q:\n%s", w, stderr)
		}
	}
	if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
		t.Errorf("the trustee panicked:\n%s", stderr)
	}
}

// TestGracefulShutdownFinishesRequest: SIGTERM reaches a trustee while it
// computes a large grant; the request still completes, the process exits
// with status 0 after saying it closed its store, and it restarts on the
// same store with the grant in its log.
func TestGracefulShutdownFinishesRequest(t *testing.T) {
	fx := newFixture(t, fixtureConfig{trustees: 1, threshold: 1, days: 20, perDay: 3})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := fx.fed.Trustees[0]
	before, err := logSize(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var (
		res  *trustee.DecryptResult
		derr error
		took time.Duration
	)
	sent := time.Now()
	go func() {
		defer close(done)
		res, derr = fx.decrypt(ctx, fx.fed.Group, fx.fed.Clients(), fx.inScope)
		took = time.Since(sent)
	}()
	if !waitLogGrowth(ctx, tr, before, done) {
		t.Fatal("the request was answered before its grant could be seen in the log; make it larger")
	}
	select {
	case <-done:
		t.Log("the answer came before SIGTERM was sent; the shutdown is still checked")
	default:
		t.Logf("SIGTERM %v after the request was sent, once its grant was logged", time.Since(sent).Round(time.Millisecond))
	}
	if err := tr.Stop(30 * time.Second); err != nil {
		t.Fatalf("the trustee did not exit cleanly on SIGTERM: %v\n%s", err, readLog(t, tr))
	}
	<-done
	t.Logf("answered %v after the request was sent", took.Round(time.Millisecond))
	if derr != nil {
		t.Fatalf("the request in flight at SIGTERM failed: %v", derr)
	}
	if r := res.Trustees[0]; r.Status != trustee.StatusGranted || r.Attempts != 1 {
		t.Fatalf("request in flight at SIGTERM: %s after %d attempt(s): %s", r.Status, r.Attempts, r.Reason)
	}
	fx.checkRecovered(t, res, fx.inScope)
	logText := readLog(t, tr)
	for _, want := range []string{"shutting down: finishing requests in flight", "stopped; store closed cleanly"} {
		if !strings.Contains(logText, want) {
			t.Errorf("the trustee's log does not say %q:\n%s", want, logText)
		}
	}

	if err := tr.Start(ctx); err != nil {
		t.Fatalf("restart after SIGTERM: %v", err)
	}
	tree, _, err := verifiedHead(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	r := res.Trustees[0]
	recs, err := tr.Client.Records(ctx, r.RecordIndex, r.RecordIndex+1)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := tr.Client.Inclusion(ctx, r.RecordIndex, tree.N)
	if err != nil {
		t.Fatal(err)
	}
	if err := trustee.VerifyInclusion(tree, r.RecordIndex, recs[0], proof); err != nil {
		t.Fatalf("the grant answered during shutdown is not in the log after the restart: %v", err)
	}
	// And it serves again.
	res, err = fx.decrypt(ctx, fx.fed.Group, fx.fed.Clients(), fx.inScope[:3])
	if err != nil {
		t.Fatal(err)
	}
	fx.checkRecovered(t, res, fx.inScope[:3])
}

func readLog(t *testing.T, tr *fedrun.Trustee) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tr.Dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBadRequestsGetJSONErrors sends malformed, oversized and slow
// requests to a trustee process with a plain HTTP client (pinning its
// certificate): each gets a 4xx JSON error with a stable code, or for a
// connection that sends its headers too slowly, is dropped; meanwhile and
// afterwards the node serves well-formed requests.
func TestBadRequestsGetJSONErrors(t *testing.T) {
	fx := newFixture(t, fixtureConfig{trustees: 1, threshold: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := fx.fed.Trustees[0]
	tlsConfig := pinnedTLS(t, tr.Member)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	base := "https://" + tr.Addr

	// Slow clients first, so that they are stalled while the rest runs.
	const slow = 8
	dropped := make(chan error, slow)
	slowStart := time.Now()
	for range slow {
		go func() { dropped <- slowloris(ctx, tr.Addr, tlsConfig) }()
	}

	cases := []struct {
		name, method, path string
		body               []byte
		status             int
		code               string
	}{
		{"garbage", http.MethodPost, trustee.PathDecrypt, []byte("this is not a decryption request\x00\xff"), http.StatusBadRequest, trustee.CodeBadRequest},
		{"empty", http.MethodPost, trustee.PathDecrypt, nil, http.StatusBadRequest, trustee.CodeBadRequest},
		{"truncated-request", http.MethodPost, trustee.PathDecrypt, fx.request(t, fx.inScope[:2])[:100], http.StatusBadRequest, trustee.CodeBadRequest},
		{"oversized", http.MethodPost, trustee.PathDecrypt, bytes.Repeat([]byte{'k'}, trustee.DefaultMaxRequestBytes+1), http.StatusRequestEntityTooLarge, trustee.CodeTooLarge},
		{"wrong-method", http.MethodGet, trustee.PathDecrypt, nil, http.StatusMethodNotAllowed, trustee.CodeMethodNotAllowed},
		{"no-endpoint", http.MethodGet, "/v1/nothing-here", nil, http.StatusNotFound, trustee.CodeNotFound},
		{"bad-range", http.MethodGet, trustee.PathRecords + "?start=5&end=2", nil, http.StatusBadRequest, trustee.CodeOutOfRange},
		{"bad-number", http.MethodGet, trustee.PathInclusion + "?index=x&size=1", nil, http.StatusBadRequest, trustee.CodeBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, c.method, base+c.path, bytes.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("not JSON: %v: %q", err, body)
			}
			if e.Error.Code != c.code || e.Error.Message == "" {
				t.Errorf("error %+v, want code %q with a message", e.Error, c.code)
			}
			// The node still serves the others.
			if _, err := tr.Client.Info(ctx); err != nil {
				t.Fatalf("info after a %s request: %v", c.name, err)
			}
		})
	}

	// While the slow clients hold their connections, a real request is
	// answered.
	res, err := fx.decrypt(ctx, fx.fed.Group, fx.fed.Clients(), fx.inScope[:5])
	if err != nil {
		t.Fatal(err)
	}
	fx.checkRecovered(t, res, fx.inScope[:5])
	for range slow {
		if err := <-dropped; err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d slow clients dropped after %v", slow, time.Since(slowStart).Round(time.Millisecond))
	if _, err := tr.Client.Info(ctx); err != nil {
		t.Fatalf("info after the slow clients: %v", err)
	}
}

// pinnedTLS is a TLS client configuration that accepts exactly the
// certificate m's pin names, as the trustee client does.
func pinnedTLS(t *testing.T, m escrow.GroupMember) *tls.Config {
	t.Helper()
	want, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(m.TLSPin, trustee.TLSPinPrefix))
	if err != nil || len(want) != sha256.Size {
		t.Fatalf("pin %q: %v", m.TLSPin, err)
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // the pin is the check
		VerifyConnection: func(cs tls.ConnectionState) error {
			got := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			if subtle.ConstantTimeCompare(got[:], want) != 1 {
				return errors.New("certificate does not match the pin")
			}
			return nil
		},
	}
}

// slowloris opens a TLS connection and sends a request's headers a few
// bytes at a time, never finishing them. It returns nil once the server
// drops the connection, within a bound above the server's header timeout,
// and an error otherwise.
func slowloris(ctx context.Context, addr string, cfg *tls.Config) error {
	d := tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("slow client: %w", err)
	}
	defer conn.Close()
	start := time.Now()
	limit := trustee.ServerReadHeaderTimeout + 10*time.Second
	conn.SetDeadline(start.Add(limit))
	if _, err := io.WriteString(conn, "POST "+trustee.PathDecrypt+" HTTP/1.1\r\nHost: "+addr+"\r\n"); err != nil {
		return fmt.Errorf("slow client: %w", err)
	}
	closed := make(chan error, 1)
	go func() {
		// Whatever the server says (nothing, or an error status), it must
		// then close the connection.
		_, err := io.Copy(io.Discard, conn)
		closed <- err
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-closed:
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("slow client: still connected after %v", limit)
			}
			return nil
		case <-tick.C:
			io.WriteString(conn, "X") // a header name that never ends; errors once dropped
		}
	}
}

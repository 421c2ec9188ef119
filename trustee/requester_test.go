package trustee_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	"github.com/keyquorum/keyquorum/trustee"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// fastOptions keeps retries short so tests of dead trustees stay fast.
func fastOptions() trustee.DecryptOptions {
	return trustee.DecryptOptions{
		Timeout: 5 * time.Second, Attempts: 2, Backoff: 10 * time.Millisecond, Grace: time.Second,
		Now: func() time.Time { return netNow }, // Rand: crypto/rand, so that every request has an id of its own
	}
}

func statusOf(res *trustee.DecryptResult, name string) trustee.TrusteeResult {
	for _, t := range res.Trustees {
		if t.Name == name {
			return t
		}
	}
	return trustee.TrusteeResult{}
}

func expectStatuses(t *testing.T, res *trustee.DecryptResult, want map[string]string) {
	t.Helper()
	for _, tr := range res.Trustees {
		w, ok := want[tr.Name]
		if !ok {
			w = trustee.StatusGranted
		}
		if tr.Status != w {
			t.Errorf("%s: status %q (%s), want %q", tr.Name, tr.Status, tr.Reason, w)
		}
	}
}

func TestDecryptOverTLS(t *testing.T) {
	f := newNetFed(t, netOptions{})
	ctx := context.Background()
	ss := f.sessions(6, "tls")
	warrant := f.warrant(nil)

	res, err := trustee.Decrypt(ctx, f.group, f.clients(), warrant, f.requester, envelopesOf(ss), fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	expectStatuses(t, res, nil)
	f.checkRead(ss, res.Keys)
	for _, tr := range res.Trustees {
		if tr.Head == "" || tr.Attempts != 1 {
			t.Errorf("%s: head %q, %d attempts", tr.Name, tr.Head, tr.Attempts)
		}
	}

	// Two trustees down: three still make the quorum.
	f.servers[1].Close()
	f.servers[3].Close()
	res, err = trustee.Decrypt(ctx, f.group, f.clients(), warrant, f.requester, envelopesOf(ss), fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	expectStatuses(t, res, map[string]string{"trustee-2": trustee.StatusUnreachable, "trustee-4": trustee.StatusUnreachable})
	// How many retries fit before the quorum's grace period ends depends
	// on timing; at least one attempt and at most the configured number.
	if a := statusOf(res, "trustee-2").Attempts; a < 1 || a > fastOptions().Attempts {
		t.Errorf("trustee-2 tried %d times, want 1 to %d", a, fastOptions().Attempts)
	}
	f.checkRead(ss, res.Keys)

	// Three down: no quorum, and the error names the missing trustees.
	// The two left cannot gather the w = 2 cosignatures their checkpoints
	// need, so they release nothing either.
	f.servers[4].Close()
	res, err = trustee.Decrypt(ctx, f.group, f.clients(), warrant, f.requester, envelopesOf(ss), fastOptions())
	if !errors.Is(err, trustee.ErrInsufficientQuorum) {
		t.Fatalf("three trustees down: %v", err)
	}
	if errors.Is(err, trustee.ErrQuorumRefused) {
		t.Errorf("unreachable trustees reported as refusals: %v", err)
	}
	var qe *trustee.QuorumError
	if !errors.As(err, &qe) || qe.Usable != 0 || qe.Unrecovered != len(ss) {
		t.Fatalf("quorum error %+v", qe)
	}
	for _, name := range []string{"trustee-2 unreachable", "trustee-4 unreachable", "trustee-5 unreachable", "trustee-1 refused (witness-quorum)", "trustee-3 refused (witness-quorum)"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not say %q: %v", name, err)
		}
	}
	if tr := statusOf(res, "trustee-1"); !errors.Is(tr.Err, trustee.ErrWitnessQuorum) {
		t.Errorf("trustee-1: %v, want ErrWitnessQuorum", tr.Err)
	}
	if len(res.Keys) != 0 || len(res.Unrecovered) != len(ss) {
		t.Errorf("%d keys, %d unrecovered", len(res.Keys), len(res.Unrecovered))
	}
}

func TestDecryptPlainHTTPLoopback(t *testing.T) {
	f := newNetFed(t, netOptions{plain: true})
	ss := f.sessions(2, "plain")
	res, err := trustee.Decrypt(context.Background(), f.group, f.clients(), f.warrant(nil), f.requester, envelopesOf(ss), fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	f.checkRead(ss, res.Keys)
}

func TestClientRefusesInsecureOrWrongTransport(t *testing.T) {
	f := newNetFed(t, netOptions{})
	ctx := context.Background()

	t.Run("pin mismatch", func(t *testing.T) {
		m := f.group.Trustees[1]
		m.TLSPin = f.group.Trustees[2].TLSPin // trustee-3's key, not trustee-2's
		c, err := trustee.NewClient(m)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Head(ctx)
		if !errors.Is(err, trustee.ErrPinMismatch) {
			t.Fatalf("wrong pin: %v", err)
		}
		for _, want := range []string{"trustee-2", "does not match its pin in the group file"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}

		// In a request, that trustee counts as unreachable, once, and the
		// others decrypt.
		g := *f.group
		g.Trustees = append([]escrow.GroupMember(nil), f.group.Trustees...)
		g.Trustees[1] = m
		var cs []*trustee.Client
		for _, m := range g.Trustees {
			c, err := trustee.NewClient(m)
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c)
		}
		ss := f.sessions(2, "pin")
		res, err := trustee.Decrypt(ctx, &g, cs, f.warrant(nil), f.requester, envelopesOf(ss), fastOptions())
		if err != nil {
			t.Fatal(err)
		}
		tr := statusOf(res, "trustee-2")
		if tr.Status != trustee.StatusUnreachable || tr.Attempts != 1 || !errors.Is(tr.Err, trustee.ErrPinMismatch) {
			t.Fatalf("trustee-2: %+v", tr)
		}
		f.checkRead(ss, res.Keys)
	})

	t.Run("plain HTTP to a remote address", func(t *testing.T) {
		for _, addr := range []string{"192.0.2.7:8443", "trustee.example:443", "[2001:db8::1]:443", "10.0.0.1:80"} {
			_, err := trustee.NewClient(escrow.GroupMember{Index: 2, Name: "trustee-2", Address: addr})
			if !errors.Is(err, trustee.ErrInsecureTransport) || !strings.Contains(err.Error(), "trustee-2") {
				t.Errorf("%s without a pin: %v", addr, err)
			}
		}
		for _, addr := range []string{"127.0.0.1:8443", "127.1.2.3:1", "[::1]:443", "localhost:80"} {
			if _, err := trustee.NewClient(escrow.GroupMember{Index: 2, Name: "trustee-2", Address: addr}); err != nil {
				t.Errorf("%s without a pin: %v", addr, err)
			}
		}
	})

	t.Run("bad group entries", func(t *testing.T) {
		for _, m := range []escrow.GroupMember{
			{Name: "trustee-2"},
			{Name: "trustee-2", Address: "no-port"},
			{Name: "trustee-2", Address: "127.0.0.1:1", TLSPin: "md5/abc"},
			{Name: "trustee-2", Address: "127.0.0.1:1", TLSPin: "sha256/AAAA"},
		} {
			if _, err := trustee.NewClient(m); err == nil || !strings.Contains(err.Error(), "trustee-2") {
				t.Errorf("%+v: %v", m, err)
			}
		}
	})
}

// rewriteAnswer wraps a trustee's handler and lets edit change its decrypt
// answers before they leave.
func rewriteAnswer(h http.Handler, edit func(a map[string]any)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != trustee.PathDecrypt {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			var a map[string]any
			if err := json.Unmarshal(body, &a); err != nil {
				panic(err)
			}
			edit(a)
			body, _ = json.Marshal(a)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(body)
	})
}

// delayDecrypt holds every decrypt request for d before h answers it.
func delayDecrypt(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == trustee.PathDecrypt {
			time.Sleep(d)
		}
		h.ServeHTTP(w, r)
	})
}

// TestDecryptUnneededAnswerNotChecked: 3 of 5, trustee-5 sends wrong
// shares but answers last, after three honest trustees. The requester
// combines the first three proven answers and never checks trustee-5's:
// every session opens, trustee-5 is listed as granted but not used (its
// proofs unchecked), and the three used answers are marked used. This is
// the price of checking t answers first; a cheater whose answer is used is
// named (TestDecryptNamesCheatsAndBadEvidence).
func TestDecryptUnneededAnswerNotChecked(t *testing.T) {
	f := newNetFed(t, netOptions{n: 5, t: 3, wrap: func(index int, h http.Handler) http.Handler {
		switch index {
		case 5:
			return delayDecrypt(rewriteAnswer(h, shiftV), 300*time.Millisecond)
		case 4:
			return delayDecrypt(h, 1500*time.Millisecond) // past the grace: given up
		}
		return h
	}})
	ss := f.sessions(4, "late")
	res, err := trustee.Decrypt(context.Background(), f.group, f.clients(), f.warrant(nil), f.requester, envelopesOf(ss), fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	f.checkRead(ss, res.Keys)
	for _, r := range res.Trustees {
		used := r.Index <= 3
		if r.Index != 4 && (r.Status != trustee.StatusGranted || r.Used != used) {
			t.Errorf("%s: %s, used %v; want granted, used %v", r.Name, r.Status, r.Used, used)
		}
	}
}

// shiftV replaces every V_j of every batch in the answer with V_j + G: a
// valid point, but not x_i·(U_j+Q).
func shiftV(a map[string]any) {
	bs := a["batches"].([]any)
	for i, p := range bs {
		bs[i] = netB64(shiftBatchV(mustB64(p.(string)), -1))
	}
}

// shiftBatchV returns an encoded escrow.BatchAnswer with V_j + G in place
// of V_j for entry j, or for every entry if j < 0. The layout is
// version(1) trustee(2) epoch(4) request(16) count(4), then per entry
// session(16) V(32).
func shiftBatchV(b []byte, j int) []byte {
	b = bytes.Clone(b)
	count := int(binary.BigEndian.Uint32(b[23:27]))
	for x := range count {
		if j >= 0 && x != j {
			continue
		}
		at := 27 + x*48 + 16
		V, err := group.ParsePoint(b[at : at+32])
		if err != nil {
			panic(err)
		}
		copy(b[at:at+32], group.PointBytes(group.Point().Add(V, group.Base())))
	}
	return b
}

func TestDecryptNamesCheatsAndBadEvidence(t *testing.T) {
	// 3 of 6: trustees 2, 3 and 4 misbehave, 1, 5 and 6 are honest. The
	// requester checks the proofs of the first three valid answers only
	// (more only to replace one that fails), so 5 and 6 answer late: the
	// cheater's answer is among the first and must be caught and replaced.
	f := newNetFed(t, netOptions{n: 6, t: 3, wrap: func(index int, h http.Handler) http.Handler {
		switch index {
		case 5, 6:
			return delayDecrypt(h, 200*time.Millisecond)
		case 2: // a wrong share
			return rewriteAnswer(h, shiftV)
		case 3: // a head whose signature does not verify
			return rewriteAnswer(h, func(a map[string]any) {
				head := a["head"].(string)
				i := strings.Index(head, "\n\n") - 2 // inside the root hash line
				a["head"] = head[:i] + flipB64(head[i:i+1]) + head[i+1:]
			})
		case 4: // a record that is not the one the log holds
			return rewriteAnswer(h, func(a map[string]any) {
				rec := mustB64(a["record"].(string))
				rec = bytes.Replace(rec, []byte(`"granted"`), []byte(`"granted" `), 1)
				a["record"] = netB64(rec)
			})
		}
		return h
	}})
	ss := f.sessions(5, "cheat")
	res, err := trustee.Decrypt(context.Background(), f.group, f.clients(), f.warrant(nil), f.requester, envelopesOf(ss), fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	expectStatuses(t, res, map[string]string{
		"trustee-2": trustee.StatusCheated,
		"trustee-3": trustee.StatusBadEvidence,
		"trustee-4": trustee.StatusBadEvidence,
	})
	f.checkRead(ss, res.Keys)

	cheat := statusOf(res, "trustee-2")
	var bad *escrow.BadShareError
	if cheat.BadShares != len(ss) || !errors.As(cheat.Err, &bad) || bad.Trustee != 2 || !strings.Contains(cheat.Reason, "DLEQ") {
		t.Errorf("cheater: %+v", cheat)
	}
	if tr := statusOf(res, "trustee-3"); !errors.Is(tr.Err, trustee.ErrBadHeadSignature) {
		t.Errorf("trustee-3: %+v", tr)
	}
	if tr := statusOf(res, "trustee-4"); !errors.Is(tr.Err, trustee.ErrBadInclusion) {
		t.Errorf("trustee-4: %+v", tr)
	}

	// With trustee-5 down as well, only two honest answers are left.
	f.servers[4].Close()
	_, err = trustee.Decrypt(context.Background(), f.group, f.clients(), f.warrant(nil), f.requester, envelopesOf(ss), fastOptions())
	if !errors.Is(err, trustee.ErrInsufficientQuorum) {
		t.Fatalf("two honest trustees: %v", err)
	}
	for _, want := range []string{"trustee-2 cheated", "trustee-3 bad-audit-evidence", "trustee-4 bad-audit-evidence", "trustee-5 unreachable"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
}

func TestDecryptRefusals(t *testing.T) {
	// trustee-4 and trustee-5 trust another judge only.
	otherV := newJudge(t, "judge-elsewhere").verifier
	f := newNetFed(t, netOptions{policy: func(index int, p *trustee.Policy) {
		if index >= 4 {
			p.Judges = []note.Verifier{otherV}
		}
	}})
	ctx := context.Background()
	ss := f.sessions(2, "refusals")
	res, err := trustee.Decrypt(ctx, f.group, f.clients(), f.warrant(nil), f.requester, envelopesOf(ss), fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	expectStatuses(t, res, map[string]string{"trustee-4": trustee.StatusRefused, "trustee-5": trustee.StatusRefused})
	for _, name := range []string{"trustee-4", "trustee-5"} {
		tr := statusOf(res, name)
		var refusal *trustee.RefusalError
		if tr.Code != trustee.CodeUnknownJudge || tr.Attempts != 1 || !strings.Contains(tr.Reason, "judge-net") ||
			!errors.As(tr.Err, &refusal) || refusal.Trustee != name || !errors.Is(tr.Err, escrow.ErrUnknownJudge) {
			t.Errorf("%s: %+v", name, tr)
		}
	}
	f.checkRead(ss, res.Keys)

	// The client alone: a refusal is a *RefusalError with the code.
	c := f.clients()[3]
	_, err = c.Decrypt(ctx, f.request(f.warrant(nil), envelopesOf(ss)))
	var refusal *trustee.RefusalError
	if !errors.As(err, &refusal) || refusal.Code != trustee.CodeUnknownJudge || !errors.Is(err, escrow.ErrUnknownJudge) {
		t.Fatalf("client refusal: %v", err)
	}

	// An expired warrant: every trustee refuses, and the error says so.
	expired := f.warrant(func(w *escrow.Warrant) { w.ValidUntil = netNow.Add(-time.Minute) })
	res, err = trustee.Decrypt(ctx, f.group, f.clients(), expired, f.requester, envelopesOf(ss), fastOptions())
	if !errors.Is(err, trustee.ErrQuorumRefused) || !errors.Is(err, trustee.ErrInsufficientQuorum) {
		t.Fatalf("expired warrant: %v", err)
	}
	if !strings.Contains(err.Error(), "trustee-1 refused (warrant-expired)") {
		t.Errorf("error does not give trustee-1's reason: %v", err)
	}
	if tr := statusOf(res, "trustee-1"); tr.Code != trustee.CodeWarrantExpired || !errors.Is(tr.Err, escrow.ErrWarrantExpired) {
		t.Errorf("trustee-1: %+v", tr)
	}
}

func TestDecryptRetries(t *testing.T) {
	// 3 of 3: trustee-2's connection drops once and trustee-3 answers a
	// server error once; without their second attempts there is no quorum.
	var resets, errors503 atomic.Int32
	f := newNetFed(t, netOptions{n: 3, t: 3, wrap: func(index int, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path != trustee.PathDecrypt:
			case index == 2 && resets.Add(1) == 1:
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					conn.Close()
				}
				return
			case index == 3 && errors503.Add(1) == 1:
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"error":{"code":"internal-error","message":"try again"}}`))
				return
			}
			h.ServeHTTP(w, r)
		})
	}})
	ss := f.sessions(2, "retries")
	res, err := trustee.Decrypt(context.Background(), f.group, f.clients(), f.warrant(nil), f.requester, envelopesOf(ss), fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	expectStatuses(t, res, nil)
	for name, attempts := range map[string]int{"trustee-1": 1, "trustee-2": 2, "trustee-3": 2} {
		if a := statusOf(res, name).Attempts; a != attempts {
			t.Errorf("%s: %d attempts, want %d", name, a, attempts)
		}
	}
	f.checkRead(ss, res.Keys)
}

func TestDecryptGrace(t *testing.T) {
	// trustee-3 never answers; once two have, it gets the grace period
	// only, not its whole timeout.
	f := newNetFed(t, netOptions{n: 3, t: 2, wrap: func(index int, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if index == 3 && r.URL.Path == trustee.PathDecrypt {
				io.Copy(io.Discard, r.Body) // so the server notices the client leaving
				select {
				case <-r.Context().Done():
				case <-time.After(30 * time.Second):
				}
				return
			}
			h.ServeHTTP(w, r)
		})
	}})
	ss := f.sessions(1, "grace")
	opts := fastOptions()
	opts.Timeout, opts.Grace = 20*time.Second, 200*time.Millisecond
	start := time.Now()
	res, err := trustee.Decrypt(context.Background(), f.group, f.clients(), f.warrant(nil), f.requester, envelopesOf(ss), opts)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %v: the silent trustee was waited for", took)
	}
	expectStatuses(t, res, map[string]string{"trustee-3": trustee.StatusUnreachable})
	if tr := statusOf(res, "trustee-3"); !strings.Contains(tr.Reason, "grace") || tr.Attempts != 1 {
		t.Errorf("trustee-3: %+v", tr)
	}
	f.checkRead(ss, res.Keys)
}

// failStore is an audit store that cannot write.
type failStore struct{ *trustee.MemAuditStore }

func (failStore) Append(int64, [][]byte, []tlog.Hash, []byte) error { return errors.New("disk full") }

func TestDecryptAuditUnavailable(t *testing.T) {
	// 3 of 3, and trustee-1 cannot write its audit log: it refuses with
	// 503, is asked again (the condition may pass), and refuses again.
	f := newNetFed(t, netOptions{n: 3, t: 3, store: func(index int) trustee.AuditStore {
		if index == 1 {
			return failStore{trustee.NewMemAuditStore()}
		}
		return nil
	}})
	ss := f.sessions(1, "audit unavailable")
	res, err := trustee.Decrypt(context.Background(), f.group, f.clients(), f.warrant(nil), f.requester, envelopesOf(ss), fastOptions())
	if !errors.Is(err, trustee.ErrQuorumRefused) {
		t.Fatalf("want a refused quorum, got %v", err)
	}
	tr := statusOf(res, "trustee-1")
	if tr.Status != trustee.StatusRefused || tr.Code != trustee.CodeAuditUnavailable || tr.Attempts != 2 || !errors.Is(tr.Err, trustee.ErrAuditFailed) {
		t.Errorf("trustee-1: %+v", tr)
	}
	resp, err := f.httpsClient(0).Post(f.servers[0].URL+trustee.PathDecrypt, "application/octet-stream", bytes.NewReader(f.request(f.warrant(nil), envelopesOf(ss))))
	if err != nil {
		t.Fatal(err)
	}
	expectError(t, resp, http.StatusServiceUnavailable, trustee.CodeAuditUnavailable)
}

func TestDecryptBadInput(t *testing.T) {
	f := newNetFed(t, netOptions{n: 3, t: 2})
	ss := f.sessions(2, "bad input")
	envs := envelopesOf(ss)
	cs := f.clients()
	for name, tc := range map[string]struct {
		clients []*trustee.Client
		envs    [][]byte
	}{
		"too few clients":   {cs[:2], envs},
		"clients reordered": {[]*trustee.Client{cs[1], cs[0], cs[2]}, envs},
		"repeated session":  {cs, [][]byte{envs[0], envs[0]}},
		"broken envelope":   {cs, [][]byte{envs[0][:10]}},
		"no envelopes":      {cs, nil},
	} {
		res, err := trustee.Decrypt(context.Background(), f.group, tc.clients, f.warrant(nil), f.requester, tc.envs, fastOptions())
		if err == nil || res != nil || errors.Is(err, trustee.ErrInsufficientQuorum) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for i := range f.nodes {
		if n := logSizeOf(t, f, i); n != 0 {
			t.Errorf("trustee-%d logged %d decisions for requests never sent", i+1, n)
		}
	}
}

func logSizeOf(t *testing.T, f *netFed, i int) int64 {
	t.Helper()
	h, err := f.nodes[i].AuditLog().Head()
	if err != nil {
		t.Fatal(err)
	}
	return h.Tree.N
}

// TestDecryptManySessions sends 1,000 sessions in one request to a 2-of-3
// federation (BenchmarkDecryptRequest runs 10,000). It is skipped in
// -short mode.
func TestDecryptManySessions(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 sessions")
	}
	decryptMany(t, 1000)
}

// BenchmarkDecryptRequest decrypts 10,000 sessions per request, end to
// end over loopback TLS, against a 2-of-3 federation.
func BenchmarkDecryptRequest(b *testing.B) {
	for b.Loop() {
		decryptMany(b, 10000)
	}
}

func decryptMany(t testing.TB, n int) {
	f := newNetFed(t, netOptions{n: 3, t: 2})
	envs, ids := f.envelopesOnly(n)
	calls, last := 0, 0
	opts := fastOptions()
	opts.Timeout = 5 * time.Minute
	opts.Progress = func(done, total int) {
		calls++
		if total != n || done <= last || done > n {
			t.Errorf("progress %d/%d after %d", done, total, last)
		}
		last = done
	}
	res, err := trustee.Decrypt(context.Background(), f.group, f.clients(), f.warrant(nil), f.requester, envs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Keys) != n || last != n || calls > 201 {
		t.Fatalf("%d keys, progress %d in %d calls", len(res.Keys), last, calls)
	}
	for _, id := range ids {
		if res.Keys[id] == nil {
			t.Fatalf("session %s missing", id)
		}
	}
}

func netB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// flipB64 returns another base64 character.
func flipB64(c string) string {
	if c == "A" {
		return "B"
	}
	return "A"
}

// envelopesOnly makes n envelopes for alice's sessions without the
// sessions themselves (no HPKE, no messages), for volume tests.
func (f *netFed) envelopesOnly(n int) ([][]byte, []escrow.SessionID) {
	f.t.Helper()
	eg, err := f.group.EscrowGroup(1)
	if err != nil {
		f.t.Fatal(err)
	}
	r := netRand("envelopes only")
	envs := make([][]byte, n)
	ids := make([]escrow.SessionID, n)
	for i := range n {
		ctx := &escrow.Context{Epoch: 1, GroupKeyID: escrow.KeyIDOf(eg.Key), Sender: "alice", Recipient: "bob",
			Start: netT0.Add(48*time.Hour + time.Duration(i)*time.Second)}
		K := make([]byte, escrow.KeySize)
		r.Read(K)
		r.Read(ctx.SessionID[:])
		env, err := escrow.SealEnvelope(K, ctx, eg.EpochKey())
		if err != nil {
			f.t.Fatal(err)
		}
		envs[i], ids[i] = env.Marshal(), ctx.SessionID
	}
	return envs, ids
}

// TestDecryptRefusesOldRecord: a trustee that answers a new request with an
// earlier, genuine answer for the same sessions (its proofs and audit
// evidence all valid) would release without logging this decision; the
// requester notices the record names another request.
func TestDecryptRefusesOldRecord(t *testing.T) {
	var first []byte
	f := newNetFed(t, netOptions{wrap: func(index int, h http.Handler) http.Handler {
		if index != 2 {
			return h
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != trustee.PathDecrypt || first == nil {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if r.URL.Path == trustee.PathDecrypt && rec.Code == http.StatusOK {
					first = rec.Body.Bytes()
				}
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				w.Write(rec.Body.Bytes())
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(first) // the old answer, again
		})
	}})
	ss := f.sessions(3, "old record")
	if _, err := trustee.Decrypt(context.Background(), f.group, f.clients(), f.warrant(nil), f.requester, envelopesOf(ss), fastOptions()); err != nil {
		t.Fatal(err)
	}
	if first == nil {
		t.Fatal("trustee-2 never answered the first request")
	}
	opts := fastOptions()
	opts.Rand = netRand("a second request")
	res, err := trustee.Decrypt(context.Background(), f.group, f.clients(), f.warrant(nil), f.requester, envelopesOf(ss), opts)
	if err != nil {
		t.Fatal(err)
	}
	expectStatuses(t, res, map[string]string{"trustee-2": trustee.StatusBadEvidence})
	if tr := statusOf(res, "trustee-2"); !errors.Is(tr.Err, trustee.ErrBadInclusion) || !strings.Contains(tr.Reason, "not this one") {
		t.Errorf("trustee-2: %+v", tr)
	}
}

// TestRequesterStateCatchesFork: a requester keeps the checkpoints the
// trustees showed it. Between two of its decryptions, trustee-3's operator
// erases its log and regrows it (here: a node over a fresh store with the
// same log key and shares). The second decryption names trustee-3 as
// forked, does not use its answer, and keeps the earlier checkpoint as
// evidence; the other two suffice.
func TestRequesterStateCatchesFork(t *testing.T) {
	f := newNetFed(t, netOptions{n: 3, t: 2})
	warrant := f.warrant(nil)
	res1, err := trustee.Decrypt(context.Background(), f.group, f.clients(), warrant, f.requester, envelopesOf(f.sessions(1, "state 1")), fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(res1.Seen) != 3 || res1.Seen["trustee-3"].Size != 1 {
		t.Fatalf("state after the first decryption: %+v", res1.Seen)
	}
	b, err := res1.Seen.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	seen, err := trustee.ParseAuditState(b)
	if err != nil {
		t.Fatal(err)
	}

	forkNode, err := trustee.New("trustee-3", 3, trustee.DefaultPolicy(f.judgeV), trustee.NewMemAuditStore(), f.signers[2], trustee.WithClock(func() time.Time { return netNow }))
	if err != nil {
		t.Fatal(err)
	}
	eg, err := f.group.EscrowGroup(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := forkNode.AddEpochShare(f.nodes[2].Share(1), eg.PublicShares[3]); err != nil {
		t.Fatal(err)
	}
	g := *f.group
	g.Trustees = slices.Clone(f.group.Trustees)
	g.Trustees[2].Address = serveNode(t, forkNode, f.certs[2], f.group.Trustees[2].LogKey).Listener.Addr().String()
	clients := f.clients()
	c3, err := trustee.NewClient(g.Trustees[2])
	if err != nil {
		t.Fatal(err)
	}
	clients[2] = c3

	opts := fastOptions()
	opts.Seen = seen
	res2, err := trustee.Decrypt(context.Background(), &g, clients, warrant, f.requester, envelopesOf(f.sessions(1, "state 2")), opts)
	if err != nil {
		t.Fatal(err)
	}
	r := statusOf(res2, "trustee-3")
	if r.Status != trustee.StatusForked || !errors.Is(r.Err, trustee.ErrLogForked) || !strings.Contains(r.Reason, "trustee-3") {
		t.Fatalf("trustee-3: %s %v", r.Status, r.Err)
	}
	if res2.Seen["trustee-3"] != seen["trustee-3"] {
		t.Error("the checkpoint kept as evidence against trustee-3 was replaced")
	}
	for _, name := range []string{"trustee-1", "trustee-2"} {
		if statusOf(res2, name).Status != trustee.StatusGranted || res2.Seen[name].Size != 2 {
			t.Errorf("%s: %s, seen %+v", name, statusOf(res2, name).Status, res2.Seen[name])
		}
	}
}

// BenchmarkDecryptOneSession is a single-session warrant against three
// in-process trustees over TLS on loopback (2 of 3), from request to
// confirmed key, each grant durably logged first (in memory here) and its
// checkpoint and inclusion proof checked; it reports the p50 and p99 of
// the runs. "witnessed" is the default (w = 1: each trustee has its
// checkpoint cosigned by another over TLS before it answers, and the
// requester checks the cosignature); "unwitnessed" is the same group with
// witness_quorum 0, the baseline.
func BenchmarkDecryptOneSession(b *testing.B) {
	for _, witnessed := range []bool{true, false} {
		name := map[bool]string{true: "witnessed", false: "unwitnessed"}[witnessed]
		b.Run(name, func(b *testing.B) {
			f := newNetFed(b, netOptions{n: 3, t: 2, noWitnesses: !witnessed, policy: func(_ int, p *trustee.Policy) { p.RateLimit = 0 }})
			g := *f.group
			if !witnessed {
				zero := 0
				g.WitnessQuorum = &zero
			}
			warrant := f.warrant(nil)
			envs, _ := f.envelopesOnly(1)
			clients := f.clients() // kept, as a requester keeps its connections
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				if _, err := trustee.Decrypt(context.Background(), &g, clients, warrant, f.requester, envs, fastOptions()); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

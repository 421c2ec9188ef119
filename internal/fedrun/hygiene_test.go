package fedrun_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/edwards25519"
	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/fedrun"
	"github.com/keyquorum/keyquorum/internal/group"
	"github.com/keyquorum/keyquorum/internal/sim"
	"github.com/keyquorum/keyquorum/trustee"
	"golang.org/x/mod/sumdb/note"
)

// TestLogHygieneAttacks runs the attacks of issue 9's findings 6 to 11
// against real trustee processes, each from the position named in its
// subtest, and checks what the public logs hold afterwards. The
// subtests share one federation and run in order: the outsider's flood
// comes last because it uses up the loopback client's allowance.
func TestLogHygieneAttacks(t *testing.T) {
	const rateLimit = 6
	fx := newFixture(t, fixtureConfig{trustees: 3, threshold: 2, rateLimit: rateLimit})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	trs := fx.fed.Trustees

	sizes := func(t *testing.T) []int64 {
		t.Helper()
		out := make([]int64, len(trs))
		for i, tr := range trs {
			n, err := logSize(ctx, tr)
			if err != nil {
				t.Fatal(err)
			}
			out[i] = n
		}
		return out
	}
	grew := func(t *testing.T, before []int64, by int64) {
		t.Helper()
		for i, n := range sizes(t) {
			if n != before[i]+by {
				t.Errorf("%s: log went from %d to %d records, want %d more", trs[i].Name, before[i], n, by)
			}
		}
	}
	lastRecord := func(t *testing.T, tr *fedrun.Trustee) (trustee.AuditRecord, []byte) {
		t.Helper()
		n, err := logSize(ctx, tr)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := tr.Client.Records(ctx, n-1, n)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := trustee.ParseAuditRecord(recs[0])
		if err != nil {
			t.Fatal(err)
		}
		return rec, recs[0]
	}

	// Finding 8: refusal records are public; they must not name the
	// warrant's targets or other users. Finding 11: decision records
	// list the epochs they release.
	t.Run("records carry no request text", func(t *testing.T) {
		// One grant, on trs[0].
		if _, err := trs[0].Client.Decrypt(ctx, fx.request(t, fx.inScope[:1])); err != nil {
			t.Fatal(err)
		}
		in := map[*sim.Captured]bool{}
		for _, c := range fx.inScope {
			in[c] = true
		}
		var out *sim.Captured
		for _, c := range fx.traffic.Sessions {
			if c.Tampering == sim.Honest && c.Accepted && !in[c] {
				out = c
				break
			}
		}
		if out == nil {
			t.Fatal("no out-of-scope session")
		}
		before := sizes(t)
		_, err := trs[1].Client.Decrypt(ctx, fx.request(t, []*sim.Captured{out}))
		if !errors.Is(err, escrow.ErrOutOfScope) {
			t.Fatalf("out-of-scope request: %v, want ErrOutOfScope", err)
		}
		// The requester is told which names the warrant covers; the
		// public log must not be.
		t.Logf("refusal to the requester: %v", err)
		if got := sizes(t)[1]; got != before[1]+1 {
			t.Fatalf("%s: log went from %d to %d records on a refusal", trs[1].Name, before[1], got)
		}
		if rec, _ := lastRecord(t, trs[1]); rec.Refusal == nil || rec.Refusal.Code != trustee.CodeOutOfScope {
			t.Errorf("%s: refusal logged as %+v, want code %s", trs[1].Name, rec.Refusal, trustee.CodeOutOfScope)
		}
		grants := 0
		for _, tr := range trs {
			n, _ := logSize(ctx, tr)
			if n == 0 {
				continue
			}
			recs, err := tr.Client.Records(ctx, 0, n)
			if err != nil {
				t.Fatal(err)
			}
			for i, b := range recs {
				for _, u := range sim.UserNames(6) {
					if bytes.Contains(b, []byte(u)) {
						t.Errorf("%s: record %d names user %s: %s", tr.Name, i, u, b)
					}
				}
				for _, word := range []string{"targets", "fedrun integration test", "message"} {
					if bytes.Contains(b, []byte(word)) {
						t.Errorf("%s: record %d holds %q: %s", tr.Name, i, word, b)
					}
				}
				rec, err := trustee.ParseAuditRecord(b)
				if err != nil {
					t.Fatal(err)
				}
				if rec.Decision == trustee.AuditGranted {
					grants++
					if len(rec.Epochs) != 1 || rec.Epochs[0] != 1 {
						t.Errorf("%s: grant record %d lists epochs %v, want [1]", tr.Name, i, rec.Epochs)
					}
				}
			}
		}
		if grants != 1 {
			t.Errorf("%d grant records, want 1", grants)
		}
	})

	// Finding 9: a requester crafts an envelope with U = −Q (it knows q,
	// so it can make r = −q), covered by a warrant naming Q.
	t.Run("U plus Q is the identity", func(t *testing.T) {
		craftedWarrant, craftedKey, env := craftIdentityEnvelope(t, fx)
		req, err := escrow.NewDecryptionRequest(craftedWarrant, [][]byte{env}, craftedKey, time.Now(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		before := sizes(t)
		for _, tr := range trs {
			_, err := tr.Client.Decrypt(ctx, req.Marshal())
			var re *trustee.RefusalError
			if !errors.As(err, &re) || re.Code != trustee.CodeBadEnvelope || !strings.Contains(err.Error(), "identity") {
				t.Fatalf("%s: crafted envelope: %v, want a %s refusal naming the identity", tr.Name, err, trustee.CodeBadEnvelope)
			}
			rec, _ := lastRecord(t, tr)
			if rec.Decision != trustee.AuditRefused || rec.Refusal == nil || rec.Refusal.Code != trustee.CodeBadEnvelope || len(rec.Sessions) != 0 {
				t.Errorf("%s: logged %s/%+v for the crafted envelope, want refused with %s", tr.Name, rec.Decision, rec.Refusal, trustee.CodeBadEnvelope)
			}
		}
		grew(t, before, 1)
	})

	// Finding 10: an outsider holds decrypt slots by trickling bodies.
	t.Run("slow bodies hold no slot", func(t *testing.T) {
		tr := trs[2]
		cfg := pinnedTLS(t, tr.Member)
		const slow = trustee.MaxConcurrentDecrypts
		results := make(chan error, slow)
		var started sync.WaitGroup
		started.Add(slow)
		for range slow {
			go func() { results <- slowBody(ctx, tr.Addr, cfg, started.Done) }()
		}
		started.Wait()
		// Every slot would be held under the old server; a real request
		// is answered now.
		if _, err := tr.Client.Decrypt(ctx, fx.request(t, fx.inScope[:1])); err != nil {
			t.Fatalf("request while %d slow bodies are in flight: %v", slow, err)
		}
		for range slow {
			if err := <-results; err != nil {
				t.Error(err)
			}
		}
	})

	// Finding 7: a requester (or anyone who saw its request in transit)
	// replays one signed request 29 times.
	t.Run("replayed request", func(t *testing.T) {
		before := sizes(t)
		req := fx.request(t, fx.inScope[:1])
		for _, tr := range trs {
			first, err := tr.Client.Decrypt(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for range 29 {
				again, err := tr.Client.Decrypt(ctx, req)
				if err != nil {
					t.Fatalf("%s: replay refused: %v", tr.Name, err)
				}
				if again.RecordIndex != first.RecordIndex || !bytes.Equal(again.Record, first.Record) || again.Sessions() != 1 {
					t.Fatalf("%s: replay answered under record %d, first answer under %d", tr.Name, again.RecordIndex, first.RecordIndex)
				}
			}
		}
		grew(t, before, 1)
		// The 30 copies counted once against the judge's rate limit of
		// rateLimit a day; trs[0] granted one request before this test,
		// so rateLimit-2 new requests are still granted.
		for i := range rateLimit - 2 {
			if _, err := trs[0].Client.Decrypt(ctx, fx.request(t, fx.inScope[:1])); err != nil {
				t.Fatalf("new request %d after the replays: %v", i, err)
			}
		}
		// And the rate limit itself still holds.
		_, err := trs[0].Client.Decrypt(ctx, fx.request(t, fx.inScope[:1]))
		if !errors.Is(err, trustee.ErrRateLimited) {
			t.Fatalf("request past the rate limit: %v, want ErrRateLimited", err)
		}
	})

	// Finding 6: an outsider with network access floods /v1/decrypt
	// with random bytes and with well-formed requests under a warrant
	// signed by 40 judges the trustees do not trust.
	t.Run("outsider flood", func(t *testing.T) {
		tr := trs[0]
		before := sizes(t)
		junk := wellFormedJunk(t, fx, 40)
		hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: pinnedTLS(t, tr.Member)}}
		codes := map[int]int{}
		const flood = 200
		for i := range flood {
			body := junk
			if i%2 == 0 {
				body = make([]byte, 64+i)
				rand.Read(body)
			}
			resp, err := hc.Post("https://"+tr.Addr+trustee.PathDecrypt, "application/octet-stream", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			codes[resp.StatusCode]++
			if i >= trustee.DefaultUnauthenticatedBurst+5 && resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("request %d of the flood got %d %s, want 429 %s", i, resp.StatusCode, b, trustee.CodeUnauthenticatedLimited)
			}
			if resp.StatusCode == http.StatusTooManyRequests && !bytes.Contains(b, []byte(trustee.CodeUnauthenticatedLimited)) {
				t.Fatalf("429 without code %s: %s", trustee.CodeUnauthenticatedLimited, b)
			}
		}
		t.Logf("flood of %d: statuses %v", flood, codes)
		grew(t, before, 0)
		m := metricsOf(t, hc, tr)
		for _, want := range []string{
			fmt.Sprintf(`keyquorum_trustee_unauthenticated_total{code="%s"}`, trustee.CodeUnauthenticatedLimited),
			fmt.Sprintf(`keyquorum_trustee_unauthenticated_total{code="%s"}`, trustee.CodeBadRequest),
			fmt.Sprintf(`keyquorum_trustee_unauthenticated_total{code="%s"}`, trustee.CodeUnknownJudge),
		} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if log := readLog(t, tr); !strings.Contains(log, "unauthenticated decrypt request refused") {
			t.Error("the operational log does not mention the unauthenticated requests")
		}
	})
}

func metricsOf(t *testing.T, hc *http.Client, tr *fedrun.Trustee) string {
	t.Helper()
	resp, err := hc.Get("https://" + tr.Addr + trustee.PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// wellFormedJunk is a well-formed, fresh decryption request under a
// warrant signed by judges judges the trustees do not trust: what any
// outsider can make.
func wellFormedJunk(t *testing.T, fx *fixture, judges int) []byte {
	t.Helper()
	w := &escrow.Warrant{
		ID: "W-JUNK", Case: "junk", Requester: fx.requester.Public, Targets: []string{"alice"},
		WindowStart: fx.now.AddDate(0, 0, -2), WindowEnd: fx.now, ValidFrom: fx.now.Add(-time.Hour), ValidUntil: fx.now.Add(time.Hour),
		MaxSessions: 1, Purpose: "junk",
	}
	body, err := w.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var signers []note.Signer
	for i := range judges {
		skey, _, err := note.GenerateKey(rand.Reader, fmt.Sprintf("fake-judge-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := note.NewSigner(skey)
		signers = append(signers, s)
	}
	signed, err := note.Sign(&note.Note{Text: string(body)}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	req, err := escrow.NewDecryptionRequest(signed, envelopes(fx.inScope[:1]), fx.requester, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return req.Marshal()
}

// craftIdentityEnvelope makes a valid envelope whose U is −Q for a
// requester key made for it, and a warrant naming that key that covers
// the envelope: the attack of finding 9, by a requester who holds a
// warrant and seals its own session.
func craftIdentityEnvelope(t *testing.T, fx *fixture) (warrant []byte, key *escrow.RequesterKey, env []byte) {
	t.Helper()
	g := fx.group
	start := fx.now.Add(-time.Hour).Truncate(time.Second)
	ctxt := &escrow.Context{Epoch: g.Epoch, GroupKeyID: escrow.KeyIDOf(g.Key), Sender: "mallory", Recipient: "mallory2", Start: start}
	rand.Read(ctxt.SessionID[:])
	K := make([]byte, escrow.KeySize)
	rand.Read(K)
	e, err := escrow.SealEnvelope(K, ctxt, g.EpochKey())
	if err != nil {
		t.Fatal(err)
	}
	cb, err := ctxt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// r as SealEnvelope derives it; q = −r, so Q = −U.
	r := group.HashToFilippoScalar("keyquorum/v1/envelope/r", K, cb)
	q := edwards25519.NewScalar().Negate(r)
	key = &escrow.RequesterKey{Private: group.FromFilippoScalar(q), Public: group.Point().Neg(group.PointFromEncoding(e.UBytes()))}
	w := &escrow.Warrant{
		ID: "W-CRAFTED", Case: "crafted", Requester: key.Public, Targets: []string{"mallory"},
		WindowStart: start.Add(-time.Hour), WindowEnd: start.Add(time.Hour), ValidFrom: fx.now.Add(-time.Hour), ValidUntil: fx.now.Add(time.Hour),
		MaxSessions: 10, Purpose: "crafted",
	}
	body, err := w.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	warrant, err = escrow.SignWarrant(body, fx.judge)
	if err != nil {
		t.Fatal(err)
	}
	return warrant, key, e.Marshal()
}

// slowBody sends the headers of a decrypt request at once and then its
// body one byte every two seconds. It returns nil once the server answers
// 408 or drops the connection within its body timeout plus a margin.
func slowBody(ctx context.Context, addr string, cfg *tls.Config, started func()) error {
	d := tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		started()
		return fmt.Errorf("slow body: %w", err)
	}
	defer conn.Close()
	begin := time.Now()
	limit := trustee.DefaultBodyTimeout + 10*time.Second
	conn.SetDeadline(begin.Add(limit))
	_, err = io.WriteString(conn, "POST "+trustee.PathDecrypt+" HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\nk")
	started()
	if err != nil {
		return fmt.Errorf("slow body: %w", err)
	}
	answer := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(conn)
		answer <- string(b)
	}()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case a := <-answer:
			if time.Since(begin) >= limit {
				return fmt.Errorf("slow body: still connected after %v", limit)
			}
			if a != "" && !strings.HasPrefix(a, "HTTP/1.1 408") {
				return fmt.Errorf("slow body: answered %q, want 408", strings.SplitN(a, "\r\n", 2)[0])
			}
			if a != "" && !strings.Contains(a, trustee.CodeBodyTimeout) {
				return fmt.Errorf("slow body: 408 without code %s", trustee.CodeBodyTimeout)
			}
			return nil
		case <-tick.C:
			io.WriteString(conn, "k")
		}
	}
}

package trustee_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/edwards25519"
	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	"github.com/keyquorum/keyquorum/shares"
	"github.com/keyquorum/keyquorum/trustee"
	"go.dedis.ch/kyber/v3"
	"golang.org/x/mod/sumdb/note"
)

// subsets returns every k-element subset of xs, in lexicographic order.
func subsets[T any](xs []T, k int) [][]T {
	if k == 0 {
		return [][]T{nil}
	}
	var out [][]T
	for i := 0; i+k <= len(xs); i++ {
		for _, rest := range subsets(xs[i+1:], k-1) {
			out = append(out, append([]T{xs[i]}, rest...))
		}
	}
	return out
}

func hexSHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func TestGrantEndToEnd(t *testing.T) {
	w := newWorld(t)
	fed := w.federation(t, w.policy())
	sessions := []*testSession{
		w.session(t, "alice", "bob", t0.Add(15*day)),
		w.session(t, "carol", "alice", t0.Add(19*day+time.Hour)),
	}
	warrant := w.warrant(t, nil)
	req := w.request(t, warrant, w.requester, sessions...)

	var answers []*trustee.Answer
	for _, n := range fed {
		ans := grant(t, n, req)
		// Both sessions are of one epoch: one batch, in request order.
		if len(ans.Batches) != 1 || ans.Sessions() != len(sessions) {
			t.Fatalf("%s: %d batches for %d sessions of one epoch", n.Name(), len(ans.Batches), ans.Sessions())
		}
		for i, sid := range ans.Batches[0].Sessions {
			if b := ans.Batches[0]; sid != sessions[i].id() || b.Trustee != n.Index() {
				t.Errorf("%s: batch entry %d is trustee %d session %s, want trustee %d session %s (request order)",
					n.Name(), i, b.Trustee, sid, n.Index(), sessions[i].id())
			}
		}
		answers = append(answers, ans)
	}

	// Any three answers open every session; two open none.
	for _, sub := range subsets(answers, testThreshold) {
		for _, s := range sessions {
			w.open(t, s, sub)
		}
	}
	for _, sub := range subsets(answers, testThreshold-1) {
		for _, s := range sessions {
			if _, err := w.combine(s, sub); !errors.Is(err, escrow.ErrInsufficientShares) {
				t.Fatalf("combining %d answers: got %v, want ErrInsufficientShares", len(sub), err)
			}
		}
	}

	// The record says what was released under which warrant, with hashes
	// in place of the warrant and the case reference.
	wantSessions := []string{sessions[0].id().String(), sessions[1].id().String()}
	for i, ans := range answers {
		rec, err := trustee.ParseAuditRecord(ans.Record)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rec.Sessions, wantSessions) {
			t.Errorf("trustee %d: record sessions %v, want %v", i+1, rec.Sessions, wantSessions)
		}
		if rec.WarrantID != "W-2026-0001" {
			t.Errorf("trustee %d: warrant id %q", i+1, rec.WarrantID)
		}
		if rec.WarrantHash != hexSHA256(warrant) {
			t.Errorf("trustee %d: warrant hash %s, want SHA-256 of the signed warrant %s", i+1, rec.WarrantHash, hexSHA256(warrant))
		}
		if rec.CaseRefHash != wantCaseRef(warrant) {
			t.Errorf("trustee %d: case hash %s, want the warrant-keyed hash of the case reference", i+1, rec.CaseRefHash)
		}
		if rec.CaseRefHash == hexSHA256([]byte(caseText)) {
			t.Errorf("trustee %d: case hash is a plain hash of the case reference; anyone could confirm a guess", i+1)
		}
		if !slices.Equal(rec.Judges, []string{w.judge.name}) {
			t.Errorf("trustee %d: judges %v, want [%s]", i+1, rec.Judges, w.judge.name)
		}
		if rec.Requester != hex.EncodeToString(group.PointBytes(w.requester.Public)) {
			t.Errorf("trustee %d: requester %s is not Q", i+1, rec.Requester)
		}
		if !rec.Time.Equal(startClock) {
			t.Errorf("trustee %d: record time %v, want the node's clock %v", i+1, rec.Time, startClock)
		}
		for _, secret := range []string{caseText, "confidential informant", w.defaultWarrant().Purpose} {
			if bytes.Contains(ans.Record, []byte(secret)) || bytes.Contains(ans.Head, []byte(secret)) {
				t.Errorf("trustee %d: audit evidence contains warrant text %q:\n%s", i+1, secret, ans.Record)
			}
		}
	}
}

func TestWarrantRefusals(t *testing.T) {
	tamper := func(old, new string) func(*world) []byte {
		return func(w *world) []byte {
			b := w.warrant(t, nil)
			if !bytes.Contains(b, []byte(old)) {
				t.Fatalf("warrant has no %q", old)
			}
			return bytes.Replace(b, []byte(old), []byte(new), 1)
		}
	}
	twoJudges := func(w *world, p *trustee.Policy) {
		p.Judges = []note.Verifier{w.judge.verifier, w.judge2.verifier}
		p.JudgesRequired = 2
	}
	tests := []struct {
		name     string
		policy   func(*world, *trustee.Policy)
		warrant  func(*world) []byte // default: w.warrant(t, nil)
		clock    time.Time           // default: startClock
		code     string              // "" for a grant
		sentinel error
	}{
		{name: "valid", code: ""},
		{name: "at valid-from", clock: validFrom, code: ""},
		{name: "last second", clock: validUntil.Add(-time.Second), code: ""},
		{name: "expired at valid-until", clock: validUntil, code: trustee.CodeWarrantExpired, sentinel: escrow.ErrWarrantExpired},
		{name: "expired long ago", clock: validUntil.Add(90 * day), code: trustee.CodeWarrantExpired, sentinel: escrow.ErrWarrantExpired},
		{name: "not yet valid", clock: validFrom.Add(-time.Second), code: trustee.CodeNotYetValid, sentinel: escrow.ErrWarrantNotYetValid},
		{name: "tampered max-sessions", warrant: tamper("max-sessions: 10\n", "max-sessions: 90\n"), code: trustee.CodeBadWarrant, sentinel: escrow.ErrWarrantSignature},
		{name: "tampered target", warrant: tamper("target: alice\n", "target: alicf\n"), code: trustee.CodeBadWarrant, sentinel: escrow.ErrWarrantSignature},
		{name: "tampered valid-until", warrant: tamper("valid-until: 2026-03-26", "valid-until: 2026-03-27"), code: trustee.CodeBadWarrant, sentinel: escrow.ErrWarrantSignature},
		{
			name:    "wrong judge",
			warrant: func(w *world) []byte { return signWarrant(t, w.defaultWarrant(), w.rogue) },
			code:    trustee.CodeUnknownJudge, sentinel: escrow.ErrUnknownJudge,
		},
		{
			name:    "unsigned",
			warrant: func(w *world) []byte { return signWarrant(t, w.defaultWarrant()) },
			code:    trustee.CodeBadWarrant, sentinel: escrow.ErrBadWarrant,
		},
		{
			name:   "too few judges",
			policy: twoJudges,
			code:   trustee.CodeTooFewJudges, sentinel: escrow.ErrTooFewJudges,
		},
		{
			name:    "too few trusted judges",
			policy:  twoJudges,
			warrant: func(w *world) []byte { return signWarrant(t, w.defaultWarrant(), w.judge, w.rogue) },
			code:    trustee.CodeTooFewJudges, sentinel: escrow.ErrTooFewJudges,
		},
		{
			name:    "two judges sign",
			policy:  twoJudges,
			warrant: func(w *world) []byte { return signWarrant(t, w.defaultWarrant(), w.judge2, w.judge) },
			code:    "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			p := w.policy()
			if tc.policy != nil {
				tc.policy(w, &p)
			}
			n := w.node(t, 1, p, nil)
			warrant := w.warrant(t, nil)
			if tc.warrant != nil {
				warrant = tc.warrant(w)
			}
			if !tc.clock.IsZero() {
				w.setClock(tc.clock)
			}
			s := w.session(t, "alice", "bob", t0.Add(19*day))
			req := w.request(t, warrant, w.requester, s)
			if tc.code == "" {
				grant(t, n, req)
				return
			}
			refuse(t, n, req, tc.code, tc.sentinel)
			if unauthenticated(tc.sentinel) {
				return // no record, checked by refuse
			}
			rec, b := lastRecord(t, n)
			if rec.WarrantHash != hexSHA256(warrant) {
				t.Errorf("refused record's warrant hash %s, want %s", rec.WarrantHash, hexSHA256(warrant))
			}
			if bytes.Contains(b, []byte(caseText)) {
				t.Errorf("refused record contains the case text: %s", b)
			}
		})
	}
}

func TestScope(t *testing.T) {
	tests := []struct {
		name     string
		sessions func(*world) []*testSession
		code     string // "" for a grant
	}{
		{
			name:     "sender is the target",
			sessions: func(w *world) []*testSession { return []*testSession{w.session(t, "alice", "bob", t0.Add(16*day))} },
		},
		{
			name:     "recipient is the target",
			sessions: func(w *world) []*testSession { return []*testSession{w.session(t, "dave", "alice", t0.Add(16*day))} },
		},
		{
			name:     "at window start",
			sessions: func(w *world) []*testSession { return []*testSession{w.session(t, "alice", "bob", windowStart)} },
		},
		{
			name: "last second of the window",
			sessions: func(w *world) []*testSession {
				return []*testSession{w.session(t, "alice", "bob", windowEnd.Add(-time.Second))}
			},
		},
		{
			name:     "target not named",
			sessions: func(w *world) []*testSession { return []*testSession{w.session(t, "bob", "carol", t0.Add(16*day))} },
			code:     trustee.CodeOutOfScope,
		},
		{
			name: "started before the window",
			sessions: func(w *world) []*testSession {
				return []*testSession{w.session(t, "alice", "bob", windowStart.Add(-time.Second))}
			},
			code: trustee.CodeOutOfScope,
		},
		{
			name:     "started at window end",
			sessions: func(w *world) []*testSession { return []*testSession{w.session(t, "alice", "bob", windowEnd)} },
			code:     trustee.CodeOutOfScope,
		},
		{
			name: "one out-of-scope envelope among in-scope ones",
			sessions: func(w *world) []*testSession {
				return []*testSession{
					w.session(t, "alice", "bob", t0.Add(15*day)),
					w.session(t, "bob", "carol", t0.Add(15*day)),
					w.session(t, "carol", "alice", t0.Add(16*day)),
				}
			},
			code: trustee.CodeOutOfScope,
		},
		{
			name: "out-of-scope envelope last",
			sessions: func(w *world) []*testSession {
				return []*testSession{
					w.session(t, "alice", "bob", t0.Add(15*day)),
					w.session(t, "alice", "bob", windowEnd.Add(time.Hour)),
				}
			},
			code: trustee.CodeOutOfScope,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			fed := w.federation(t, w.policy())[:testThreshold]
			ss := tc.sessions(w)
			req := w.request(t, w.warrant(t, nil), w.requester, ss...)
			if tc.code == "" {
				var answers []*trustee.Answer
				for _, n := range fed {
					answers = append(answers, grant(t, n, req))
				}
				for _, s := range ss {
					w.open(t, s, answers)
				}
				return
			}
			for _, n := range fed {
				refuse(t, n, req, tc.code, escrow.ErrOutOfScope)
			}
		})
	}
}

func TestRequestSignature(t *testing.T) {
	tests := []struct {
		name string
		req  func(w *world, s *testSession) []byte
	}{
		{
			// The warrant names Q; the request is signed by someone else.
			name: "signed by another requester",
			req: func(w *world, s *testSession) []byte {
				return w.request(t, w.warrant(t, nil), w.other, s)
			},
		},
		{
			// A warrant naming another investigator's key, used by ours.
			name: "warrant names another requester",
			req: func(w *world, s *testSession) []byte {
				wr := w.warrant(t, func(wr *escrow.Warrant) { wr.Requester = w.other.Public })
				return w.request(t, wr, w.requester, s)
			},
		},
		{
			// The creation time (bytes 17..24) changed after signing.
			name: "altered after signing",
			req: func(w *world, s *testSession) []byte {
				b := w.request(t, w.warrant(t, nil), w.requester, s)
				b[24] ^= 1
				return b
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			n := w.node(t, 1, w.policy(), nil)
			s := w.session(t, "alice", "bob", t0.Add(16*day))
			refuse(t, n, tc.req(w, s), trustee.CodeBadSignature, escrow.ErrBadRequestSignature)
		})
	}
}

// envelopeParts splits an encoded envelope:
// version(1) ctxlen(2, big-endian) ctx U(32) C(48) proof(64).
func envelopeParts(t testing.TB, b []byte) (ctx, u, c, proof []byte) {
	t.Helper()
	n := int(binary.BigEndian.Uint16(b[1:3]))
	if len(b) != 3+n+32+48+64 {
		t.Fatalf("envelope is %d bytes, want %d", len(b), 3+n+32+48+64)
	}
	rest := b[3:]
	return rest[:n], rest[n : n+32], rest[n+32 : n+80], rest[n+80:]
}

func joinEnvelope(ctx, u, c, proof []byte) []byte {
	b := []byte{1}
	b = binary.BigEndian.AppendUint16(b, uint16(len(ctx)))
	return slices.Concat(b, ctx, u, c, proof)
}

// order8 is a point of order 8 on Curve25519 (a torsion point).
const order8Hex = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"

func TestScopeEscapeAndBadEnvelopes(t *testing.T) {
	w := newWorld(t)
	alice := w.session(t, "alice", "bob", t0.Add(16*day))
	bob := w.session(t, "bob", "carol", t0.Add(16*day)) // not a target
	aCtx, aU, aC, aProof := envelopeParts(t, alice.envelope)
	_, bU, bC, bProof := envelopeParts(t, bob.envelope)
	torsion, _ := hex.DecodeString(order8Hex)
	// alice's U plus a torsion component: same prime-order part.
	mixed := func() []byte {
		p := group.Point()
		if err := p.UnmarshalBinary(torsion); err != nil {
			t.Fatal(err)
		}
		u := group.Point()
		if err := u.UnmarshalBinary(aU); err != nil {
			t.Fatal(err)
		}
		return group.PointBytes(p.Add(p, u))
	}()
	// A session that claims epoch 3 but is escrowed under epoch 2's key.
	wrongKey := w.sessionUnder(t, "alice", "bob", t0.Add(16*day), 3, w.escrowGroup(t, 2).Key)

	tests := []struct {
		name string
		envs [][]byte
	}{
		{"bob's U under alice's context", [][]byte{joinEnvelope(aCtx, bU, aC, aProof)}},
		{"bob's U, C and proof under alice's context", [][]byte{joinEnvelope(aCtx, bU, bC, bProof)}},
		{"bob's proof on alice's envelope", [][]byte{joinEnvelope(aCtx, aU, aC, bProof)}},
		{"alice's C replaced by bob's", [][]byte{joinEnvelope(aCtx, aU, bC, aProof)}},
		{"small-order U", [][]byte{joinEnvelope(aCtx, torsion, aC, aProof)}},
		{"U with a torsion component", [][]byte{joinEnvelope(aCtx, mixed, aC, aProof)}},
		{"truncated", [][]byte{alice.envelope[:len(alice.envelope)-1]}},
		{"escrowed under another epoch's key", [][]byte{wrongKey.envelope}},
		{"same session twice", [][]byte{alice.envelope, alice.envelope}},
		{"spliced envelope after a good one", [][]byte{alice.envelope, joinEnvelope(aCtx, bU, bC, bProof)}},
	}
	// Each forged envelope carries alice's context, which the warrant covers:
	// only the envelope's own checks stand between it and a grant.
	ctx, err := escrow.ParseContext(aCtx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.defaultWarrant().Covers(ctx); err != nil {
		t.Fatal(err)
	}
	warrant := w.warrant(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := w.node(t, 1, w.policy(), nil)
			refuse(t, n, w.requestEnvelopes(t, warrant, w.requester, tc.envs...), trustee.CodeBadEnvelope, escrow.ErrBadEnvelope)
		})
	}
	// The honest envelope is granted by the same node setup.
	n := w.node(t, 1, w.policy(), nil)
	grant(t, n, w.request(t, warrant, w.requester, alice))
}

func TestSessionCap(t *testing.T) {
	tests := []struct {
		name          string
		warrantMax    int
		policyMax     int
		wantLimitText string
	}{
		{"warrant max-sessions", 3, 1000, "may release 3 sessions"},
		{"policy cap below the warrant's", 10, 3, "may release 3 sessions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			p := w.policy()
			p.MaxSessionsPerWarrant = tc.policyMax
			fed := w.federation(t, p)[:testThreshold]
			warrant := w.warrant(t, func(wr *escrow.Warrant) { wr.MaxSessions = tc.warrantMax })
			var s []*testSession
			for i := range 4 {
				s = append(s, w.session(t, "alice", "bob", t0.Add(15*day+time.Duration(i)*time.Hour)))
			}
			steps := []struct {
				sessions []*testSession
				granted  bool
			}{
				{[]*testSession{s[0], s[1]}, true},
				{[]*testSession{s[2], s[3]}, false},      // 4 distinct > 3
				{[]*testSession{s[0], s[1]}, true},       // nothing new
				{[]*testSession{s[1], s[2]}, true},       // 3 distinct: the refused request counted nothing
				{[]*testSession{s[3]}, false},            // a fourth
				{[]*testSession{s[0], s[1], s[2]}, true}, // still the same three
			}
			for i, st := range steps {
				req := w.request(t, warrant, w.requester, st.sessions...)
				if !st.granted {
					for _, n := range fed {
						re := refuse(t, n, req, trustee.CodeSessionCap, trustee.ErrSessionCap)
						if !strings.Contains(re.Error(), tc.wantLimitText) {
							t.Errorf("step %d: refusal %q does not say %q", i, re, tc.wantLimitText)
						}
					}
					continue
				}
				var answers []*trustee.Answer
				for _, n := range fed {
					answers = append(answers, grant(t, n, req))
				}
				for _, sess := range st.sessions {
					w.open(t, sess, answers)
				}
			}
		})
	}
}

func TestProspectiveOnly(t *testing.T) {
	tests := []struct {
		name        string
		prospective bool
		start       time.Time
		granted     bool
	}{
		{"before valid-from", true, validFrom.Add(-time.Hour), false},
		{"long before valid-from", true, windowStart, false},
		{"at valid-from", true, validFrom, true},
		{"after valid-from", true, validFrom.Add(time.Hour), true},
		{"retrospective allowed", false, validFrom.Add(-time.Hour), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			p := w.policy()
			p.ProspectiveOnly = tc.prospective
			n := w.node(t, 1, p, nil)
			req := w.request(t, w.warrant(t, nil), w.requester, w.session(t, "alice", "bob", tc.start))
			if tc.granted {
				grant(t, n, req)
			} else {
				refuse(t, n, req, trustee.CodeProspectiveOnly, trustee.ErrProspectiveOnly)
			}
		})
	}
}

func TestPolicyLimits(t *testing.T) {
	tests := []struct {
		name    string
		policy  func(*trustee.Policy)
		granted bool
	}{
		{"window longer than max window", func(p *trustee.Policy) { p.MaxWindow = 3 * day }, false},
		{"validity longer than max validity", func(p *trustee.Policy) { p.MaxValidity = 3 * day }, false},
		{"window equal to max window", func(p *trustee.Policy) { p.MaxWindow = windowEnd.Sub(windowStart) }, true},
		{"validity equal to max validity", func(p *trustee.Policy) { p.MaxValidity = validUntil.Sub(validFrom) }, true},
		{"window one second over", func(p *trustee.Policy) { p.MaxWindow = windowEnd.Sub(windowStart) - time.Second }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			p := w.policy()
			tc.policy(&p)
			n := w.node(t, 1, p, nil)
			req := w.request(t, w.warrant(t, nil), w.requester, w.session(t, "alice", "bob", t0.Add(16*day)))
			if tc.granted {
				grant(t, n, req)
			} else {
				refuse(t, n, req, trustee.CodePolicyLimit, trustee.ErrPolicyLimit)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	w := newWorld(t)
	p := w.policy()
	p.Judges = []note.Verifier{w.judge.verifier, w.judge2.verifier}
	p.RateLimit = 2
	p.RatePeriod = 24 * time.Hour
	n := w.node(t, 1, p, nil)
	warrant := w.warrant(t, nil)
	other := signWarrant(t, w.defaultWarrant(), w.judge2)
	s := w.session(t, "alice", "bob", t0.Add(16*day))
	req := func() []byte { return w.request(t, warrant, w.requester, s) }

	grant(t, n, req())
	grant(t, n, req())
	refuse(t, n, req(), trustee.CodeRateLimited, trustee.ErrRateLimited)
	// The limit is per judge: another trusted judge's warrant still goes.
	grant(t, n, w.request(t, other, w.requester, s))
	// Refusals do not count; the window slides.
	w.setClock(startClock.Add(24*time.Hour - time.Second))
	refuse(t, n, req(), trustee.CodeRateLimited, trustee.ErrRateLimited)
	w.setClock(startClock.Add(24 * time.Hour))
	grant(t, n, req())
	grant(t, n, req())
	refuse(t, n, req(), trustee.CodeRateLimited, trustee.ErrRateLimited)
}

func TestEpochRetention(t *testing.T) {
	w := newWorld(t)
	p := w.policy()
	p.RetentionEpochs = 1
	fed := w.federation(t, p)
	old1 := w.session(t, "alice", "bob", t0.Add(1*day))
	old2 := w.session(t, "carol", "alice", t0.Add(8*day))
	cur := w.session(t, "alice", "dave", t0.Add(15*day))
	warrant := w.warrant(t, func(wr *escrow.Warrant) { wr.WindowStart = t0 })

	// Before retention, every epoch's sessions are recoverable.
	// One request, as a requester sends it to every trustee: the batches
	// are bound to its id.
	var answers []*trustee.Answer
	req := w.request(t, warrant, w.requester, old1, old2, cur)
	for _, n := range fed[:testThreshold] {
		answers = append(answers, grant(t, n, req))
	}
	for _, s := range []*testSession{old1, old2, cur} {
		w.open(t, s, answers)
	}

	for _, n := range fed {
		before := logSize(t, n)
		gone, err := n.DestroyEpochsBefore(3)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gone, []uint32{1, 2}) {
			t.Fatalf("%s destroyed epochs %v, want [1 2]", n.Name(), gone)
		}
		if got := n.Epochs(); !slices.Equal(got, []uint32{3}) {
			t.Errorf("%s holds epochs %v after retention, want [3]", n.Name(), got)
		}
		// One share-destroyed record per destroyed epoch.
		if after := logSize(t, n); after != before+2 {
			t.Fatalf("%s: log grew from %d to %d, want two records", n.Name(), before, after)
		}
		var logged []uint32
		for i := before; i < before+2; i++ {
			rec, _, err := n.AuditLog().Record(i)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Kind != trustee.AuditKindShareDestroyed || rec.Decision != "" || len(rec.Sessions) != 0 {
				t.Errorf("%s record %d: %+v, want a share-destroyed record", n.Name(), i, rec)
			}
			logged = append(logged, uint32(rec.Epoch))
		}
		slices.Sort(logged)
		if !slices.Equal(logged, []uint32{1, 2}) {
			t.Errorf("%s logged destruction of epochs %v, want [1 2]", n.Name(), logged)
		}
		// Applying retention again destroys and logs nothing.
		if gone, err := n.DestroyEpochsBefore(3); err != nil || len(gone) != 0 {
			t.Errorf("%s: second retention run destroyed %v, %v", n.Name(), gone, err)
		}
		if after := logSize(t, n); after != before+2 {
			t.Errorf("%s: second retention run logged %d records", n.Name(), after-before-2)
		}
		// The dealer's copy cannot be reinstalled.
		d := w.dealtShare(t, n.Index(), 1)
		if err := n.AddEpochShare(w.epochShare(t, d), w.escrowGroup(t, 1).PublicShares[n.Index()]); err == nil {
			t.Errorf("%s reinstalled a destroyed epoch", n.Name())
		}
	}

	// Every trustee refuses the destroyed epochs' sessions, even for a
	// request that also names a retained one.
	for _, ss := range [][]*testSession{{old1}, {old2}, {cur, old1}} {
		req := w.request(t, warrant, w.requester, ss...)
		for _, n := range fed {
			refuse(t, n, req, trustee.CodeEpochDestroyed, trustee.ErrEpochDestroyed)
		}
	}

	// Every trustee together, pooling everything they store, holds nothing
	// of epochs 1 and 2; epoch 3 they can still rebuild (that is the
	// collusion threshold cryptography does not prevent).
	pooled := map[uint32][]shares.Share{}
	for _, n := range fed {
		for _, s := range n.StoredShares() {
			pooled[s.Epoch] = append(pooled[s.Epoch], shares.Share{Index: s.Index, Value: s.Share})
		}
	}
	for _, e := range []uint32{1, 2} {
		if len(pooled[e]) != 0 {
			t.Fatalf("trustees still store %d shares of destroyed epoch %d", len(pooled[e]), e)
		}
		if _, err := shares.Recover(pooled[e], testThreshold); !errors.Is(err, shares.ErrTooFewShares) {
			t.Errorf("recovering epoch %d from every stored share: %v, want ErrTooFewShares", e, err)
		}
	}
	x3, err := shares.Recover(pooled[3], testThreshold)
	if err != nil {
		t.Fatal(err)
	}
	if !group.Point().Mul(x3, nil).Equal(w.escrowGroup(t, 3).Key) {
		t.Fatal("pooled epoch 3 shares do not rebuild the epoch 3 key")
	}
	for _, s := range []*testSession{old1, old2} {
		env, err := escrow.ParseEnvelope(s.envelope)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := escrow.OpenWithGroupSecret(env, x3); err == nil {
			t.Errorf("epoch 3's secret opened a session of epoch %d", env.Context.Epoch)
		}
	}
	env, err := escrow.ParseEnvelope(cur.envelope)
	if err != nil {
		t.Fatal(err)
	}
	if K, err := escrow.OpenWithGroupSecret(env, x3); err != nil || !bytes.Equal(K, cur.keys.Key) {
		t.Errorf("pooled epoch 3 secret does not open the epoch 3 session: %v", err)
	}

	// The retained epoch still decrypts through the warranted path.
	later := w.session(t, "alice", "bob", t0.Add(20*day))
	answers = nil
	req = w.request(t, warrant, w.requester, cur, later)
	for _, n := range fed[2:] {
		answers = append(answers, grant(t, n, req))
	}
	w.open(t, cur, answers)
	w.open(t, later, answers)
}

func TestRetentionPolicies(t *testing.T) {
	tests := []struct {
		retention int
		current   uint32
		destroyed []uint32
		kept      []uint32
	}{
		{0, 3, nil, []uint32{1, 2, 3}}, // keep everything
		{1, 3, []uint32{1, 2}, []uint32{3}},
		{2, 3, []uint32{1}, []uint32{2, 3}},
		{3, 3, nil, []uint32{1, 2, 3}},
		{1, 2, []uint32{1}, []uint32{2, 3}}, // epochs newer than current are kept
		{5, 3, nil, []uint32{1, 2, 3}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("keep %d of %d", tc.retention, tc.current), func(t *testing.T) {
			w := newWorld(t)
			p := w.policy()
			p.RetentionEpochs = tc.retention
			n := w.node(t, 2, p, nil)
			gone, err := n.DestroyEpochsBefore(tc.current)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(gone, tc.destroyed) {
				t.Errorf("destroyed %v, want %v", gone, tc.destroyed)
			}
			if got := n.Epochs(); !slices.Equal(got, tc.kept) {
				t.Errorf("kept %v, want %v", got, tc.kept)
			}
			if got := logSize(t, n); got != int64(len(tc.destroyed)) {
				t.Errorf("logged %d records for %d destructions", got, len(tc.destroyed))
			}
		})
	}
}

func TestUnknownEpoch(t *testing.T) {
	w := newWorld(t)
	n := w.node(t, 1, w.policy(), nil)
	// An epoch the group file never had, under some other valid key.
	s := w.sessionUnder(t, "alice", "bob", t0.Add(16*day), 9, w.other.Public)
	refuse(t, n, w.request(t, w.warrant(t, nil), w.requester, s), trustee.CodeUnknownEpoch, trustee.ErrUnknownEpoch)

	// A node that was never given epoch 2 (it joined later) says unknown,
	// not destroyed.
	late := w.bareNode(t, 4, w.policy(), nil)
	d := w.dealtShare(t, 4, 3)
	if err := late.AddEpochShare(w.epochShare(t, d), w.escrowGroup(t, 3).PublicShares[4]); err != nil {
		t.Fatal(err)
	}
	wr := w.warrant(t, func(wr *escrow.Warrant) { wr.WindowStart = t0 })
	old := w.session(t, "alice", "bob", t0.Add(8*day))
	refuse(t, late, w.request(t, wr, w.requester, old), trustee.CodeUnknownEpoch, trustee.ErrUnknownEpoch)
}

func TestFailClosed(t *testing.T) {
	t.Run("store always fails", func(t *testing.T) {
		w := newWorld(t)
		store := &failingStore{MemAuditStore: trustee.NewMemAuditStore(), fail: true}
		n := w.node(t, 1, w.policy(), store)
		req := w.request(t, w.warrant(t, nil), w.requester, w.session(t, "alice", "bob", t0.Add(16*day)))
		ans, err := n.Decide(req)
		if ans != nil {
			t.Fatalf("released partial decryptions of %d sessions with no audit log", ans.Sessions())
		}
		var re *trustee.RefusalError
		if !errors.As(err, &re) || re.Code != trustee.CodeAuditUnavailable {
			t.Fatalf("got %v, want a refusal with code %s", err, trustee.CodeAuditUnavailable)
		}
		if !errors.Is(err, trustee.ErrAuditFailed) || !errors.Is(err, errStoreDown) {
			t.Errorf("refusal %v does not wrap ErrAuditFailed and the store's error", err)
		}
		if size, _ := store.Size(); size != 0 {
			t.Errorf("store holds %d records", size)
		}
	})

	t.Run("store fails later", func(t *testing.T) {
		w := newWorld(t)
		store := &failingStore{MemAuditStore: trustee.NewMemAuditStore()}
		p := w.policy()
		p.RetentionEpochs = 1
		n := w.node(t, 1, p, store)
		warrant := w.warrant(t, nil)
		s := w.session(t, "alice", "bob", t0.Add(16*day))
		grant(t, n, w.request(t, warrant, w.requester, s))

		store.setFail(true)
		ans, err := n.Decide(w.request(t, warrant, w.requester, s))
		var re *trustee.RefusalError
		if ans != nil || !errors.As(err, &re) || re.Code != trustee.CodeAuditUnavailable || !errors.Is(err, trustee.ErrAuditFailed) {
			t.Fatalf("with the store down: answer %v, error %v; want no answer and %s", ans, err, trustee.CodeAuditUnavailable)
		}
		// A request refused on its merits keeps its own reason.
		w.setClock(validUntil)
		_, err = n.Decide(w.request(t, warrant, w.requester, s))
		if !errors.As(err, &re) || re.Code != trustee.CodeWarrantExpired {
			t.Errorf("expired warrant with the store down: %v, want code %s", err, trustee.CodeWarrantExpired)
		}
		w.setClock(startClock)
		// Retention cannot destroy without logging: whatever it reports
		// destroyed must be in the log, and it reports the failure.
		gone, err := n.DestroyEpochsBefore(3)
		if !errors.Is(err, trustee.ErrAuditFailed) {
			t.Errorf("retention with the store down: %v, want ErrAuditFailed", err)
		}
		if size, _ := store.Size(); size != 1 {
			t.Errorf("store holds %d records while down, want the 1 from before", size)
		}
		if len(gone) != 0 || !slices.Equal(n.Epochs(), []uint32{1, 2, 3}) {
			t.Errorf("destroyed %v (holds %v) without logging it", gone, n.Epochs())
		}

		store.setFail(false)
		grant(t, n, w.request(t, warrant, w.requester, s))
		if size, _ := store.Size(); size != 2 {
			t.Errorf("store holds %d records, want 2 grants", size)
		}
	})
}

// TestEveryDecisionIsLogged runs a mixed sequence on one node and reads the
// whole log back.
func TestEveryDecisionIsLogged(t *testing.T) {
	w := newWorld(t)
	n := w.node(t, 1, w.policy(), nil)
	warrant := w.warrant(t, nil)
	in := w.session(t, "alice", "bob", t0.Add(16*day))
	out := w.session(t, "bob", "carol", t0.Add(16*day))

	grant(t, n, w.request(t, warrant, w.requester, in))
	refuse(t, n, w.request(t, warrant, w.requester, out), trustee.CodeOutOfScope, escrow.ErrOutOfScope)
	refuse(t, n, w.request(t, warrant, w.other, in), trustee.CodeBadSignature, escrow.ErrBadRequestSignature)
	refuse(t, n, []byte("not a request"), trustee.CodeBadRequest, escrow.ErrBadRequest)
	w.setClock(validUntil)
	refuse(t, n, w.request(t, warrant, w.requester, in), trustee.CodeWarrantExpired, escrow.ErrWarrantExpired)
	w.setClock(startClock)
	grant(t, n, w.request(t, warrant, w.requester, in))

	want := []struct{ decision, code string }{
		{trustee.AuditGranted, ""},
		{trustee.AuditRefused, trustee.CodeOutOfScope},
		{trustee.AuditRefused, trustee.CodeBadSignature},
		// "not a request" is not authenticated: no record.
		{trustee.AuditRefused, trustee.CodeWarrantExpired},
		{trustee.AuditGranted, ""},
	}
	if got := logSize(t, n); got != int64(len(want)) {
		t.Fatalf("log holds %d records, want %d", got, len(want))
	}
	for i, wt := range want {
		rec, b, err := n.AuditLog().Record(int64(i))
		if err != nil {
			t.Fatal(err)
		}
		code := ""
		if rec.Refusal != nil {
			code = rec.Refusal.Code
		}
		if rec.Decision != wt.decision || code != wt.code {
			t.Errorf("record %d: %s/%s, want %s/%s", i, rec.Decision, code, wt.decision, wt.code)
		}
		if bytes.Contains(b, []byte(caseText)) {
			t.Errorf("record %d contains the case text: %s", i, b)
		}
	}
	// A refusal after the warrant verified still names the warrant.
	rec, _, _ := n.AuditLog().Record(1)
	if rec.WarrantID != "W-2026-0001" || rec.CaseRefHash != wantCaseRef(warrant) {
		t.Errorf("out-of-scope refusal record does not identify the warrant: %+v", rec)
	}
}

// TestRefusalWithManyTargetsIsLogged: a warrant naming many people (a large
// group chat) is legitimate; refusing an out-of-scope session under it must
// still leave a record.
func TestRefusalWithManyTargetsIsLogged(t *testing.T) {
	w := newWorld(t)
	n := w.node(t, 1, w.policy(), nil)
	warrant := w.warrant(t, func(wr *escrow.Warrant) {
		for i := range 100 {
			wr.Targets = append(wr.Targets, fmt.Sprintf("member-%03d.of.the.group.under.investigation", i))
		}
	})
	out := w.session(t, "bob", "carol", t0.Add(16*day))
	refuse(t, n, w.request(t, warrant, w.requester, out), trustee.CodeOutOfScope, escrow.ErrOutOfScope)
}

func TestAddEpochShare(t *testing.T) {
	w := newWorld(t)
	g1 := w.escrowGroup(t, 1)
	tests := []struct {
		name   string
		share  func() *escrow.EpochShare
		public func() kyber.Point
		ok     bool
	}{
		{
			name:   "own share",
			share:  func() *escrow.EpochShare { return w.epochShare(t, w.dealtShare(t, 1, 1)) },
			public: func() kyber.Point { return g1.PublicShares[1] },
			ok:     true,
		},
		{
			// Trustee 2's value passed off as trustee 1's.
			name: "value does not match the public share",
			share: func() *escrow.EpochShare {
				s := w.epochShare(t, w.dealtShare(t, 2, 1))
				s.Index = 1
				return s
			},
			public: func() kyber.Point { return g1.PublicShares[1] },
		},
		{
			name:   "share of another trustee",
			share:  func() *escrow.EpochShare { return w.epochShare(t, w.dealtShare(t, 2, 1)) },
			public: func() kyber.Point { return g1.PublicShares[2] },
		},
		{
			name: "another epoch's share",
			share: func() *escrow.EpochShare {
				s := w.epochShare(t, w.dealtShare(t, 1, 2))
				s.Epoch = 1
				return s
			},
			public: func() kyber.Point { return g1.PublicShares[1] },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := w.bareNode(t, 1, w.policy(), nil)
			err := n.AddEpochShare(tc.share(), tc.public())
			if tc.ok != (err == nil) {
				t.Fatalf("AddEpochShare: %v, want ok=%v", err, tc.ok)
			}
			want := []uint32(nil)
			if tc.ok {
				want = []uint32{1}
			}
			if got := n.Epochs(); !slices.Equal(got, want) {
				t.Errorf("node holds epochs %v, want %v", got, want)
			}
			if err != nil && logSize(t, n) != 0 {
				t.Error("a refused share was logged as a decision")
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		name string
		edit func(*trustee.Policy)
		want string // substring of the error; "" for valid
	}{
		{"default", func(*trustee.Policy) {}, ""},
		{"two judges, both required", func(p *trustee.Policy) {
			p.Judges = []note.Verifier{w.judge.verifier, w.judge2.verifier}
			p.JudgesRequired = 2
		}, ""},
		{"no judges", func(p *trustee.Policy) { p.Judges = nil }, "trusts no judge"},
		{"zero judges required", func(p *trustee.Policy) { p.JudgesRequired = 0 }, "requires 0 judge signatures"},
		{"more required than trusted", func(p *trustee.Policy) { p.JudgesRequired = 2 }, "requires 2 judge signatures but trusts 1"},
		{"same judge listed twice", func(p *trustee.Policy) {
			p.Judges = []note.Verifier{w.judge.verifier, w.judge.verifier}
			p.JudgesRequired = 2
		}, "judge"},
		{"nil judge", func(p *trustee.Policy) { p.Judges = []note.Verifier{nil} }, "judge"},
		{"zero max window", func(p *trustee.Policy) { p.MaxWindow = 0 }, "max window"},
		{"negative max validity", func(p *trustee.Policy) { p.MaxValidity = -time.Hour }, "max validity"},
		{"no sessions per warrant", func(p *trustee.Policy) { p.MaxSessionsPerWarrant = 0 }, "max sessions"},
		{"rate limit without period", func(p *trustee.Policy) { p.RatePeriod = 0 }, "rate limit"},
		{"negative rate limit", func(p *trustee.Policy) { p.RateLimit = -1 }, "rate limit"},
		{"no rate limit, no period", func(p *trustee.Policy) { p.RateLimit, p.RatePeriod = 0, 0 }, ""},
		{"negative retention", func(p *trustee.Policy) { p.RetentionEpochs = -1 }, "retention"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := w.policy()
			tc.edit(&p)
			err := p.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				w.bareNode(t, 1, p, nil)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want an error mentioning %q", err, tc.want)
			}
			signer, err := note.NewSigner(mustLogKey(t))
			if err != nil {
				t.Fatal(err)
			}
			if n, err := trustee.New("trustee-1", 1, p, trustee.NewMemAuditStore(), signer); err == nil || n != nil {
				t.Errorf("New accepted the policy the validator refuses")
			}
		})
	}
}

func mustLogKey(t testing.TB) string {
	t.Helper()
	skey, _, err := note.GenerateKey(detRand("log key"), "trustee-1.log")
	if err != nil {
		t.Fatal(err)
	}
	return skey
}

func TestNewRefusals(t *testing.T) {
	w := newWorld(t)
	signer, err := note.NewSigner(mustLogKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trustee.New("trustee-0", -1, w.policy(), trustee.NewMemAuditStore(), signer); err == nil {
		t.Error("New accepted share index -1")
	}
	if _, err := trustee.New("trustee-1", 1, w.policy(), nil, signer); err == nil {
		t.Error("New accepted a nil audit store")
	}
	if _, err := trustee.New("trustee-1", 1, w.policy(), trustee.NewMemAuditStore(), nil); err == nil {
		t.Error("New accepted a nil log signer")
	}
}

// wantCaseRef computes the audit record's case reference independently of
// trustee.CaseRefHash: SHA-256 over the label, the 8-byte big-endian length
// of the signed warrant, the warrant and the case text.
func wantCaseRef(warrant []byte) string {
	b := []byte("keyquorum/v1/audit/case-ref")
	b = binary.BigEndian.AppendUint64(b, uint64(len(warrant)))
	b = append(b, warrant...)
	return hexSHA256(append(b, caseText...))
}

// TestReplayedRequestSameAnswer: a requester (or anyone who saw its
// request in transit) sends one signed request again and again. Every copy
// gets the answer of the first, under the first's record; the log holds
// one record, the judge's rate limit counts one use, and a restarted node
// still recognises the copies from its log.
func TestReplayedRequestSameAnswer(t *testing.T) {
	w := newWorld(t)
	p := w.policy()
	p.RateLimit, p.RatePeriod = 2, 24*time.Hour
	store := trustee.NewMemAuditStore()
	n := w.node(t, 1, p, store)
	warrant := w.warrant(t, nil)
	in := w.session(t, "alice", "bob", t0.Add(19*day))
	out := w.session(t, "bob", "carol", t0.Add(19*day))

	req := w.request(t, warrant, w.requester, in)
	first := grant(t, n, req)
	for range 29 {
		ans, err := n.Decide(req)
		if err != nil {
			t.Fatalf("replay refused: %v", err)
		}
		if ans.RecordIndex != first.RecordIndex || !bytes.Equal(ans.Record, first.Record) || ans.Sessions() != 1 {
			t.Fatalf("replay answered under record %d, the first under %d", ans.RecordIndex, first.RecordIndex)
		}
	}
	refused := w.request(t, warrant, w.requester, out)
	refuse(t, n, refused, trustee.CodeOutOfScope, escrow.ErrOutOfScope)
	if got := logSize(t, n); got != 2 {
		t.Fatalf("log holds %d records after 30 copies of a grant and one refusal, want 2", got)
	}
	// A replayed refusal gets the same code, unlogged.
	if _, err := n.Decide(refused); !errors.Is(err, escrow.ErrOutOfScope) {
		t.Fatalf("replayed refusal: %v, want ErrOutOfScope", err)
	}
	// A different request under a used id is refused.
	var r escrow.DecryptionRequest
	parsed, err := escrow.ParseDecryptionRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	r = *parsed
	other, err := escrow.NewDecryptionRequest(warrant, r.Envelopes, w.requester, w.clock().Add(time.Second), bytes.NewReader(r.ID[:]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Decide(other.Marshal()); !errors.Is(err, trustee.ErrRequestIDReused) {
		t.Fatalf("reused id: %v, want ErrRequestIDReused", err)
	}
	if got := logSize(t, n); got != 2 {
		t.Fatalf("log holds %d records, want 2 (a reused id is not logged again)", got)
	}

	// After a restart the log says which requests were decided.
	n2 := w.node(t, 1, p, store)
	if ans, err := n2.Decide(req); err != nil || ans.RecordIndex != first.RecordIndex {
		t.Fatalf("replay after a restart: %v, record %v", err, ans)
	}
	if _, err := n2.Decide(refused); !errors.Is(err, escrow.ErrOutOfScope) {
		t.Fatalf("replayed refusal after a restart: %v, want ErrOutOfScope", err)
	}
	// The rate limit of 2 counted the 30 copies once.
	grant(t, n2, w.request(t, warrant, w.requester, in))
	refuse(t, n2, w.request(t, warrant, w.requester, in), trustee.CodeRateLimited, trustee.ErrRateLimited)
}

// TestIdentityBaseRefusedBeforeGrant: a requester who sealed a session
// itself knows r and makes its key q = −r, so U = −Q and U+Q is the
// identity; a judge signs a warrant for Q covering the session. The node
// refuses before it logs anything as granted.
func TestIdentityBaseRefusedBeforeGrant(t *testing.T) {
	w := newWorld(t)
	n := w.node(t, 1, w.policy(), nil)
	in := w.session(t, "alice", "bob", t0.Add(19*day))
	cb, err := in.keys.Context.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r := group.HashToFilippoScalar("keyquorum/v1/envelope/r", in.keys.Key, cb)
	q := group.FromFilippoScalar(edwards25519.NewScalar().Negate(r))
	evil := &escrow.RequesterKey{Private: q, Public: group.Point().Mul(q, nil)}
	warrant := w.warrant(t, func(wr *escrow.Warrant) { wr.Requester = evil.Public })
	req := w.request(t, warrant, evil, in)
	re := refuse(t, n, req, trustee.CodeBadEnvelope, escrow.ErrIdentityBase)
	if !strings.Contains(re.Error(), "identity") {
		t.Errorf("refusal %v does not say why", re)
	}
}

package ceremony

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	"github.com/keyquorum/keyquorum/shares"
	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/share"
	dkg "go.dedis.ch/kyber/v3/share/dkg/pedersen"
	vss "go.dedis.ch/kyber/v3/share/vss/pedersen"
	"go.dedis.ch/kyber/v3/sign/schnorr"
)

// oldGroup is a finished 3-of-5 DKG: the sharing a reshare moves.
type oldGroup struct {
	names []string
	rs    []*DKGResult
	key   kyber.Point
	com   []kyber.Point
}

// theOldGroup is made once: the tests only read it.
var theOldGroup struct {
	sync.Once
	g *oldGroup
}

// dkgFive returns the 3-of-5 group the reshare tests move.
func dkgFive(t *testing.T) *oldGroup {
	t.Helper()
	theOldGroup.Do(func() { theOldGroup.g = runDKGFive(t) })
	if theOldGroup.g == nil {
		t.Fatal("the 3-of-5 DKG failed")
	}
	return theOldGroup.g
}

func runDKGFive(t *testing.T) *oldGroup {
	t.Helper()
	cfgs := dkgConfigs(t, 5, 3, "reshare/old")
	net := newDKGNet(t, cfgs)
	net.run()
	g := &oldGroup{rs: net.finish()}
	for _, p := range cfgs[0].Participants {
		g.names = append(g.names, p.Name)
	}
	g.key, g.com = g.rs[0].GroupKey, g.rs[0].Commitment
	return g
}

// reshareConfigs makes the configurations of every trustee of a reshare of
// old to the roster newNames with threshold thr: first the old trustees,
// in old order, then those that join, in new order. Every trustee draws a
// fresh DKG key for the ceremony.
func reshareConfigs(t *testing.T, old *oldGroup, newNames []string, thr int, label string) []CeremonyConfig {
	t.Helper()
	r := dkgRand(label)
	var id [16]byte
	r.Read(id[:])
	all := slices.Clone(old.names)
	for _, n := range newNames {
		if !slices.Contains(all, n) {
			all = append(all, n)
		}
	}
	keys := map[string]*DKGKey{}
	for _, n := range all {
		k, err := GenerateDKGKey(r)
		if err != nil {
			t.Fatal(err)
		}
		keys[n] = k
	}
	var oldParts, newParts []DKGParticipant
	for _, n := range old.names {
		oldParts = append(oldParts, DKGParticipant{Name: n, Key: keys[n].Public})
	}
	for _, n := range newNames {
		newParts = append(newParts, DKGParticipant{Name: n, Key: keys[n].Public})
	}
	var cfgs []CeremonyConfig
	for _, n := range all {
		rc := &ReshareConfig{OldParticipants: oldParts, OldThreshold: len(old.com), OldCommitment: old.com}
		if i := slices.Index(old.names, n); i >= 0 {
			rc.OldIndex, rc.OldShare = i+1, old.rs[i].Share
		}
		cfgs = append(cfgs, CeremonyConfig{
			ID: id, Epoch: 7, Threshold: thr, Participants: newParts, Index: slices.Index(newNames, n) + 1,
			Longterm: keys[n].Private, Rand: dkgRand(label + "/" + n), Reshare: rc,
		})
	}
	return cfgs
}

// The reshare most tests run: 3-of-5 to 4-of-7; trustee-5 leaves, three
// join, and trustees 1 to 4 change places.
var (
	newSeven     = []string{"trustee-2", "trustee-1", "trustee-6", "trustee-3", "trustee-7", "trustee-4", "trustee-8"}
	newSevenFrom = map[string]int{"trustee-1": 2, "trustee-2": 1, "trustee-3": 4, "trustee-4": 6}
)

// reshared is the outcome of a reshare as a test sees it.
type reshared struct {
	com    *shares.Commitment
	shares []shares.Share // by new index - 1
}

// checkReshare checks every result of a reshare: the new participants
// agree on the commitment and the qualified dealers, the commitment has
// thr points and commits to the old key, every share matches it; old
// trustees that leave get no share and no commitment, and the old key.
func checkReshare(t *testing.T, cfgs []CeremonyConfig, rs []*DKGResult, key kyber.Point) *reshared {
	t.Helper()
	var first *DKGResult
	out := &reshared{shares: make([]shares.Share, len(cfgs[0].Participants))}
	for i, r := range rs {
		cfg := cfgs[i]
		if r == nil {
			continue
		}
		if !r.GroupKey.Equal(key) || r.Epoch != cfg.Epoch {
			t.Fatalf("trustee %d: group key or epoch changed", i+1)
		}
		if cfg.Index == 0 {
			if r.Share != nil || r.Commitment != nil {
				t.Fatalf("trustee %d leaves but got a share or a commitment", i+1)
			}
			continue
		}
		if first == nil {
			first = r
			out.com = &shares.Commitment{Points: r.Commitment}
		}
		if !slices.Equal(r.Qualified, first.Qualified) || len(r.Commitment) != cfg.Threshold || !r.Commitment[0].Equal(key) {
			t.Fatalf("trustee %d: qualified %v, %d commitments", i+1, r.Qualified, len(r.Commitment))
		}
		for j := range r.Commitment {
			if !r.Commitment[j].Equal(first.Commitment[j]) {
				t.Fatalf("trustee %d: commitment %d differs", i+1, j)
			}
		}
		if r.Share.Index != cfg.Index || r.Share.Epoch != cfg.Epoch || !r.Share.GroupKey.Equal(key) {
			t.Fatalf("trustee %d: share header %+v", i+1, r.Share)
		}
		s := shares.Share{Index: r.Share.Index, Value: r.Share.Share}
		if err := out.com.Verify(s); err != nil {
			t.Fatalf("trustee %d: %v", i+1, err)
		}
		out.shares[s.Index-1] = s
	}
	if first == nil {
		t.Fatal("no new participant finished")
	}
	return out
}

func runReshare(t *testing.T, old *oldGroup, label string) ([]CeremonyConfig, []*DKGResult, *reshared) {
	t.Helper()
	cfgs := reshareConfigs(t, old, newSeven, 4, label)
	net := newDKGNet(t, cfgs)
	net.run()
	rs := net.finish()
	return cfgs, rs, checkReshare(t, cfgs, rs, old.key)
}

// subsets calls f with every k-subset of xs.
func subsets[T any](xs []T, k int, f func([]T)) {
	var rec func(start int, pick []T)
	rec = func(start int, pick []T) {
		if len(pick) == k {
			f(pick)
			return
		}
		for i := start; i < len(xs); i++ {
			rec(i+1, append(slices.Clone(pick), xs[i]))
		}
	}
	rec(0, nil)
}

func TestReshare3of5To4of7(t *testing.T) {
	t.Parallel()
	old := dkgFive(t)
	cfgs, rs, out := runReshare(t, old, "reshare/basic/ceremony")
	for i, r := range rs {
		if !slices.Equal(r.Qualified, []int{1, 2, 3, 4, 5}) || len(r.Disqualified) != 0 {
			t.Fatalf("trustee %d: qualified %v, disqualified %v", i+1, r.Qualified, r.Disqualified)
		}
	}
	// The trustee that leaves (trustee-5, listed fifth) finished without a share.
	if cfgs[4].Index != 0 || rs[4].Share != nil {
		t.Fatal("trustee-5 should leave without a share")
	}
	// Trustees in both rosters hold new shares at their new index.
	for name, at := range newSevenFrom {
		o := old.rs[slices.Index(old.names, name)].Share
		n := out.shares[at-1]
		if o.Index == n.Index || o.Share.Equal(n.Value) {
			t.Fatalf("%s: old share %d, new share %d", name, o.Index, n.Index)
		}
	}
	// Any 4 new shares give the old key, as scalars and in the exponent.
	count := 0
	subsets(out.shares, 4, func(pick []shares.Share) {
		x, err := shares.RecoverWithCommitment(pick, out.com)
		if err != nil || !group.Point().Mul(x, nil).Equal(old.key) {
			t.Fatalf("subset %v: %v", pick, err)
		}
		var pts []shares.IndexedPoint
		for _, s := range pick {
			pts = append(pts, shares.IndexedPoint{Index: s.Index, Point: group.Point().Mul(s.Value, nil)})
		}
		if X, err := shares.RecoverPoint(pts, 4); err != nil || !X.Equal(old.key) {
			t.Fatalf("subset %v in the exponent: %v", pick, err)
		}
		count++
	})
	if count != 35 {
		t.Fatalf("%d subsets checked", count)
	}
	// Three are not enough.
	subsets(out.shares, 3, func(pick []shares.Share) {
		if _, err := shares.Recover(pick, 4); !errors.Is(err, shares.ErrTooFewShares) {
			t.Fatalf("3 shares at threshold 4: %v", err)
		}
		if x, err := shares.Recover(pick, 3); err != nil || group.Point().Mul(x, nil).Equal(old.key) {
			t.Fatalf("3 new shares gave the key: %v", err)
		}
	})
}

// escrowGroup is the escrow view of a sharing: the key and every public
// share, from the commitment.
func escrowGroup(epoch uint32, com *shares.Commitment, n int) *escrow.Group {
	g := &escrow.Group{Epoch: epoch, Key: com.PublicKey(), Threshold: com.Threshold(), PublicShares: map[int]kyber.Point{}}
	for i := 1; i <= n; i++ {
		g.PublicShares[i] = com.PublicShare(i)
	}
	return g
}

// sealSession escrows a session key under the group key.
func sealSession(t *testing.T, key kyber.Point, label string) ([]byte, *escrow.Envelope, *escrow.RequesterKey) {
	t.Helper()
	r := dkgRand(label)
	ctx := &escrow.Context{Epoch: 7, GroupKeyID: escrow.KeyIDOf(key), Sender: "alice", Recipient: "bob",
		Start: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	r.Read(ctx.SessionID[:])
	K := make([]byte, escrow.KeySize)
	r.Read(K)
	env, err := escrow.SealEnvelope(K, ctx, escrow.NewEpochKey(key))
	if err != nil {
		t.Fatal(err)
	}
	req, err := escrow.GenerateRequesterKey(r)
	if err != nil {
		t.Fatal(err)
	}
	return K, env, req
}

func partials(t *testing.T, env *escrow.Envelope, req *escrow.RequesterKey, held ...shares.Share) []*escrow.PartialDecryption {
	t.Helper()
	var out []*escrow.PartialDecryption
	for _, s := range held {
		p, err := escrow.PartialDecrypt(s.Index, s.Value, env, req.Public, dkgRand(fmt.Sprintf("partial/%d", s.Index)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func oldShare(old *oldGroup, i int) shares.Share {
	return shares.Share{Index: i, Value: old.rs[i-1].Share.Share}
}

// TestReshareEscrowedSessionsOpen: a session escrowed before the reshare
// opens with the partial decryptions of 4 of the 7 new holders.
func TestReshareEscrowedSessionsOpen(t *testing.T) {
	t.Parallel()
	old := dkgFive(t)
	K, env, req := sealSession(t, old.key, "reshare/escrow/session")
	_, _, out := runReshare(t, old, "reshare/escrow/ceremony")
	eg := escrowGroup(7, out.com, 7)
	for _, pick := range [][]int{{1, 3, 5, 7}, {2, 4, 6, 7}, {3, 5, 6, 7}} {
		var held []shares.Share
		for _, i := range pick {
			held = append(held, out.shares[i-1])
		}
		res, err := escrow.Combine(eg, env, req, partials(t, env, req, held...))
		if err != nil || !bytes.Equal(res.Key, K) {
			t.Fatalf("new holders %v: %v", pick, err)
		}
	}
}

// TestReshareOldAndNewSharesDoNotMix: old and new shares lie on different
// polynomials; the commitments tell which is which.
func TestReshareOldAndNewSharesDoNotMix(t *testing.T) {
	t.Parallel()
	old := dkgFive(t)
	K, env, req := sealSession(t, old.key, "reshare/mix/session")
	_, _, out := runReshare(t, old, "reshare/mix/ceremony")
	oldCom := &shares.Commitment{Points: old.com}
	mixed := []shares.Share{oldShare(old, 1), oldShare(old, 2), out.shares[2], out.shares[4]} // x = 1, 2 old; 3, 5 new
	if x, err := shares.Recover(mixed, 4); err != nil || group.Point().Mul(x, nil).Equal(old.key) {
		t.Fatalf("2 old + 2 new shares gave the key: %v", err)
	}
	for _, c := range []struct {
		name string
		com  *shares.Commitment
		bad  []int
	}{
		{"new commitment", out.com, []int{1, 2}},
		{"old commitment", oldCom, []int{3, 5}},
	} {
		_, err := shares.RecoverWithCommitment(mixed, c.com)
		var bad []int
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var inc *shares.InconsistentShareError
			if errors.As(e, &inc) {
				bad = append(bad, inc.Index)
			}
		}
		if !slices.Equal(bad, c.bad) {
			t.Fatalf("%s names %v, want %v: %v", c.name, bad, c.bad, err)
		}
	}
	// The leaving trustee's old share is no share of the new sharing.
	var inc *shares.InconsistentShareError
	if err := out.com.Verify(oldShare(old, 5)); !errors.As(err, &inc) || inc.Index != 5 {
		t.Fatalf("old share 5 against the new commitment: %v", err)
	}
	// Partial decryptions from old shares are refused by the new group.
	_, err := escrow.Combine(escrowGroup(7, out.com, 7), env, req, partials(t, env, req, mixed...))
	var bs *escrow.BadShareError
	if !errors.Is(err, escrow.ErrInsufficientShares) || !errors.As(err, &bs) || bs.Trustee != 1 {
		t.Fatalf("mixed partials: %v", err)
	}
	// Old shares still open old sessions until they are destroyed.
	res, err := escrow.Combine(escrowGroup(7, oldCom, 5), env, req, partials(t, env, req, oldShare(old, 1), oldShare(old, 4), oldShare(old, 5)))
	if err != nil || !bytes.Equal(res.Key, K) {
		t.Fatalf("old shares: %v", err)
	}
}

// cheat rebuilds c's kyber generator from a configuration changed by f
// and makes its deals anew: c then runs the whole protocol, justifications
// included, for a wrong deal.
func cheat(t *testing.T, c *Ceremony, f func(*dkg.Config)) {
	t.Helper()
	kc := c.kyberConfig()
	f(kc)
	gen, err := dkg.NewDistKeyHandler(kc)
	if err != nil {
		t.Fatal(err)
	}
	dd, err := gen.Deals()
	if err != nil {
		t.Fatal(err)
	}
	c.gen, c.deals = gen, nil
	var own []Message
	for i := 0; i < c.n; i++ {
		if i+1 != c.cfg.Index {
			m, err := c.dealMessage(i+1, dd[i])
			if err != nil {
				t.Fatal(err)
			}
			c.deals = append(c.deals, m)
			continue
		}
		// kyber sees through its own deal, but the cheater claims it
		// approves (kyber keeps the same response, so it agrees).
		resp, err := gen.ProcessDeal(dd[i])
		if err != nil {
			t.Fatal(err)
		}
		resp.Response.Status = vss.StatusApproval
		if resp.Response.Signature, err = schnorr.Sign(c.suite, c.cfg.Longterm, resp.Response.Hash(c.suite)); err != nil {
			t.Fatal(err)
		}
		m, err := c.responseMessage(resp)
		if err != nil {
			t.Fatal(err)
		}
		own = append(own, m)
	}
	c.deals = append(c.deals, own...)
}

// TestReshareBadDealIsNamed: an old dealer that reshares another secret
// than its share, or deals a polynomial of another degree, is named by
// every new participant and by the old trustee that leaves; its
// justifications, which kyber alone would take, do not help it; the
// others' deals are enough.
func TestReshareBadDealIsNamed(t *testing.T) {
	t.Parallel()
	old := dkgFive(t)
	// trustees 4 and 5 leave; 5 cheats, 4 watches.
	newNames := []string{"trustee-3", "trustee-6", "trustee-1", "trustee-7", "trustee-2", "trustee-8", "trustee-9"}
	otherSecret := func(kc *dkg.Config) {
		kc.Share.Share.V = group.Suite().Scalar().Pick(dkgRandStream("reshare/bad/other"))
	}
	for _, c := range []struct {
		name    string
		cheater int // old index; 5 leaves, 3 is also new participant 1
		cheat   func(*dkg.Config)
		reason  string
	}{
		{"another secret", 5, otherSecret, "does not reshare its old share"},
		{"another degree", 5, func(kc *dkg.Config) { kc.Threshold = 3 }, "commits to 3 coefficients, the threshold is 4"},
		{"another secret from one who stays", 3, otherSecret, "does not reshare its old share"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfgs := reshareConfigs(t, old, newNames, 4, "reshare/bad/"+c.name)
			net := newDKGNet(t, cfgs)
			cheater := net.cs[c.cheater-1]
			cheat(t, cheater, c.cheat)
			responses := net.deliver(net.deals())
			for i, tc := range net.cs {
				if tc == cheater || tc.cfg.Index == 0 {
					continue
				}
				mis := tc.Misbehaviour()
				if len(mis) != 1 || mis[0].Participant != c.cheater || mis[0].Name != fmt.Sprintf("trustee-%d", c.cheater) || !strings.Contains(mis[0].Reason, c.reason) {
					t.Fatalf("trustee %d names %v", i+1, mis)
				}
			}
			justifications := net.deliver(responses)
			if want := 7 - min(cheater.cfg.Index, 1); len(justifications) != want {
				t.Fatalf("%d justifications, want %d", len(justifications), want)
			}
			for i, tc := range net.cs {
				if tc == cheater {
					continue
				}
				var mis *MisbehaviourError
				if err := tc.ProcessJustification(justifications[0]); !errors.As(err, &mis) || mis.Participant != c.cheater || !strings.Contains(mis.Reason, c.reason) {
					t.Fatalf("trustee %d takes a justification: %v", i+1, err)
				}
			}
			net.deliver(justifications[1:])
			if _, err := net.cs[0].Finish(); !errors.Is(err, ErrCeremonyIncomplete) {
				t.Fatalf("Finish with the complaints open: %v", err)
			}
			net.timeout()
			// The cheater's own view: one who stays counts its own deal
			// and its result fails the check.
			if _, err := cheater.Finish(); cheater.cfg.Index > 0 && !errors.Is(err, ErrCeremonyResult) {
				t.Fatalf("the cheater's Finish: %v", err)
			}
			net.cs[c.cheater-1] = nil
			rs := net.finish()
			checkReshare(t, cfgs, rs, old.key)
			var want []int
			for i := 1; i <= 5; i++ {
				if i != c.cheater {
					want = append(want, i)
				}
			}
			for i, r := range rs {
				if r == nil {
					continue
				}
				if !slices.Equal(r.Qualified, want) || len(r.Disqualified) != 1 || r.Disqualified[0].Participant != c.cheater {
					t.Fatalf("trustee %d: qualified %v, disqualified %v", i+1, r.Qualified, r.Disqualified)
				}
			}
			t.Logf("trustee-4 (leaving): %v", rs[3].Disqualified[0])
			t.Logf("trustee-1: %v", rs[0].Disqualified[0])
		})
	}
}

func dkgRandStream(label string) kyber.XOF { return group.Suite().XOF([]byte("test/" + label)) }

// TestReshareBadShareJustified: a dealer that leaves and a dealer that
// stays each send one new participant a bad share and answer the
// complaint with a valid justification; every deal qualifies and the
// complainers use the revealed shares.
func TestReshareBadShareJustified(t *testing.T) {
	t.Parallel()
	old := dkgFive(t)
	cfgs := reshareConfigs(t, old, newSeven, 4, "reshare/justified/ceremony")
	net := newDKGNet(t, cfgs)
	corruptDeal(t, net.cs[4], 3) // trustee-5 (leaves) to new participant 3
	corruptDeal(t, net.cs[0], 5) // trustee-1 (stays) to new participant 5
	responses := net.deliver(net.deals())
	justifications := net.deliver(responses)
	var from []int
	for _, j := range justifications {
		from = append(from, j.From)
	}
	slices.Sort(from)
	if !slices.Equal(from, []int{1, 5}) {
		t.Fatalf("justifications from %v", from)
	}
	net.deliver(justifications)
	// A complaint is answered once.
	for _, r := range responses {
		if r.From == 3 && responseDealer(t, r) == 5 {
			if _, err := net.cs[4].Process(r); !errors.Is(err, ErrBadDKGMessage) {
				t.Fatalf("second complaint: %v", err)
			}
		}
	}
	rs := net.finish() // no timeout: every complaint was answered
	for i, r := range rs {
		if !slices.Equal(r.Qualified, []int{1, 2, 3, 4, 5}) {
			t.Fatalf("trustee %d: qualified %v", i+1, r.Qualified)
		}
	}
	out := checkReshare(t, cfgs, rs, old.key)
	x, err := shares.RecoverWithCommitment([]shares.Share{out.shares[2], out.shares[4], out.shares[0], out.shares[6]}, out.com)
	if err != nil || !group.Point().Mul(x, nil).Equal(old.key) {
		t.Fatalf("the complainers' shares: %v", err)
	}
}

// TestReshareTooFewDealsAborts: fewer deals than the old threshold arrive.
func TestReshareTooFewDealsAborts(t *testing.T) {
	t.Parallel()
	old := dkgFive(t)
	cfgs := reshareConfigs(t, old, newSeven, 4, "reshare/abort/ceremony")
	net := newDKGNet(t, cfgs)
	net.drop = func(m Message) bool { return m.Kind == KindDeal && m.From >= 3 }
	net.run()
	net.timeout()
	for i, c := range net.cs {
		r, err := c.Finish()
		var ab *AbortError
		if !errors.Is(err, ErrCeremonyAborted) || !errors.As(err, &ab) || r != nil {
			t.Fatalf("trustee %d: %v, %v", i+1, r, err)
		}
		if ab.Threshold != 3 || !slices.Equal(ab.Qualified, []int{1, 2}) || len(ab.Disqualified) != 3 {
			t.Fatalf("trustee %d: %v", i+1, ab)
		}
		for _, m := range ab.Disqualified {
			if m.Participant < 3 || m.Name != fmt.Sprintf("trustee-%d", m.Participant) {
				t.Fatalf("trustee %d names %v", i+1, m)
			}
		}
		if c.Phase() != PhaseAborted {
			t.Fatalf("trustee %d: phase %s", i+1, c.Phase())
		}
	}
	t.Logf("a new participant: %v", net.cs[5].aborted)
	t.Logf("the trustee that leaves: %v", net.cs[4].aborted)
}

// TestReshareRestart: every trustee is marshalled and restored after the
// deals; the run ends as an uninterrupted one does.
func TestReshareRestart(t *testing.T) {
	t.Parallel()
	old := dkgFive(t)
	_, want, _ := runReshare(t, old, "reshare/restart/ceremony")

	cfgs := reshareConfigs(t, old, newSeven, 4, "reshare/restart/ceremony")
	net := newDKGNet(t, cfgs)
	responses := net.deliver(net.deals())
	net.restart(cfgs)
	net.deliver(net.deliver(responses))
	got := net.finish()
	checkReshare(t, cfgs, got, old.key)
	for i := range got {
		if cfgs[i].Index == 0 {
			continue
		}
		if !got[i].Share.Share.Equal(want[i].Share.Share) || !got[i].Commitment[1].Equal(want[i].Commitment[1]) {
			t.Fatalf("trustee %d: restarted run differs", i+1)
		}
	}

	// The state is the trustee's, in both rosters.
	st, _ := net.cs[0].MarshalState() // trustee-1: old 1, new 2
	for name, cfg := range map[string]CeremonyConfig{
		"another trustee":         cfgs[1],
		"another old index":       withReshare(cfgs[0], func(r *ReshareConfig) { r.OldIndex = 0; r.OldShare = nil }),
		"the trustee that leaves": cfgs[4],
	} {
		if _, err := RestoreCeremony(st, cfg); !errors.Is(err, ErrBadDKGState) {
			t.Fatalf("restore as %s: %v", name, err)
		}
	}
	st5, _ := net.cs[4].MarshalState()
	if _, err := RestoreCeremony(st5, withReshare(cfgs[4], func(r *ReshareConfig) { r.OldIndex = 4; r.OldShare = old.rs[3].Share })); !errors.Is(err, ErrBadDKGState) {
		t.Fatalf("restore with another old index: %v", err)
	}
}

// withReshare returns cfg with a copy of its ReshareConfig changed by f.
func withReshare(cfg CeremonyConfig, f func(*ReshareConfig)) CeremonyConfig {
	r := *cfg.Reshare
	r.OldParticipants = slices.Clone(r.OldParticipants)
	r.OldCommitment = slices.Clone(r.OldCommitment)
	f(&r)
	cfg.Reshare = &r
	cfg.Participants = slices.Clone(cfg.Participants)
	return cfg
}

func TestReshareConfigRefusals(t *testing.T) {
	t.Parallel()
	old := dkgFive(t)
	cfgs := reshareConfigs(t, old, newSeven, 4, "reshare/config/ceremony")
	stays, leaves, joins := cfgs[0], cfgs[4], cfgs[5] // trustee-1, trustee-5, trustee-6
	for _, cfg := range []CeremonyConfig{stays, leaves, joins} {
		if _, err := NewCeremony(cfg); err != nil {
			t.Fatal(err)
		}
	}
	other := group.Point().Pick(dkgRandStream("reshare/config/point"))
	badShare := *stays.Reshare.OldShare
	badShare.Share = group.Suite().Scalar().Pick(dkgRandStream("reshare/config/scalar"))
	otherKey := badShare
	otherKey.GroupKey = other
	for _, c := range []struct {
		name string
		cfg  CeremonyConfig
		want string
	}{
		{"no old roster", withReshare(stays, func(r *ReshareConfig) { r.OldParticipants = nil }), "without an old roster"},
		{"old threshold 0", withReshare(stays, func(r *ReshareConfig) { r.OldThreshold = 0 }), "old threshold 0"},
		{"old threshold above the old roster", withReshare(stays, func(r *ReshareConfig) { r.OldThreshold = 6 }), "old threshold 6"},
		{"short commitment", withReshare(stays, func(r *ReshareConfig) { r.OldCommitment = r.OldCommitment[:2] }), "old commitment has 2 points"},
		{"missing commitment point", withReshare(stays, func(r *ReshareConfig) { r.OldCommitment[1] = nil }), "point 1 is missing"},
		{"bad commitment point", withReshare(stays, func(r *ReshareConfig) { r.OldCommitment[2] = group.Point() }), "old commitment point 2"},
		{"repeated old name", withReshare(stays, func(r *ReshareConfig) { r.OldParticipants[3].Name = "trustee-3" }), "old participant 4: name"},
		{"repeated old key", withReshare(stays, func(r *ReshareConfig) { r.OldParticipants[4].Key = r.OldParticipants[3].Key }), "old participant 5 (trustee-5) reuses"},
		{"a name with two keys", withReshare(stays, func(r *ReshareConfig) { r.OldParticipants[2].Key = other }), "share a name or a key but not both"},
		{"a key with two names", withReshare(joins, func(r *ReshareConfig) { r.OldParticipants[4].Key = joins.Participants[2].Key }), "share a name or a key but not both"},
		{"old index out of range", withReshare(stays, func(r *ReshareConfig) { r.OldIndex = 6 }), "own old index 6 outside 0..5"},
		{"in neither roster", withReshare(func() CeremonyConfig { c := joins; c.Index = 0; return c }(), func(*ReshareConfig) {}), "in neither roster"},
		{"new index 0 but in the new roster", func() CeremonyConfig { c := stays; c.Index = 0; return c }(), "new participant 2's (trustee-1) but the own index is 0"},
		{"old index 0 but in the old roster", withReshare(stays, func(r *ReshareConfig) { r.OldIndex, r.OldShare = 0, nil }), "old participant 1's (trustee-1) but the own old index is 0"},
		{"old share without old index", withReshare(joins, func(r *ReshareConfig) { r.OldShare = stays.Reshare.OldShare }), "an old share but old index 0"},
		{"old index of another", withReshare(stays, func(r *ReshareConfig) { r.OldIndex = 2; r.OldShare = old.rs[1].Share }), "not old participant 2's (trustee-2)"},
		{"no old share", withReshare(stays, func(r *ReshareConfig) { r.OldShare = nil }), "has no old share"},
		{"old share of another index", withReshare(stays, func(r *ReshareConfig) { r.OldShare = old.rs[1].Share }), "old share has index 2"},
		{"wrong old share", withReshare(stays, func(r *ReshareConfig) { r.OldShare = &badShare }), "does not match the old commitment"},
		{"old share of another key", withReshare(stays, func(r *ReshareConfig) { r.OldShare = &otherKey }), "another group key"},
		{"own index below 0", func() CeremonyConfig { c := stays; c.Index = -1; return c }(), "own index -1 outside 0..7"},
		{"long-term key of another", func() CeremonyConfig { c := stays; c.Index = 1; return c }(), "not participant 1's (trustee-2)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewCeremony(c.cfg)
			if !errors.Is(err, ErrBadCeremonyConfig) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	// Outside a reshare, index 0 is refused as before.
	plain := dkgConfigs(t, 3, 2, "reshare/config/plain")[0]
	plain.Index = 0
	if _, err := NewCeremony(plain); !errors.Is(err, ErrBadCeremonyConfig) || !strings.Contains(err.Error(), "own index 0 outside 1..3") {
		t.Fatalf("index 0 in a DKG: %v", err)
	}
}

// TestReshareResultChecks: Finish refuses a result whose new commitment
// does not commit to the old key, or whose own share does not match.
func TestReshareResultChecks(t *testing.T) {
	t.Parallel()
	old := dkgFive(t)
	cfgs := reshareConfigs(t, old, newSeven, 4, "reshare/checks/ceremony")
	net := newDKGNet(t, cfgs)
	net.run()
	// Trustee-6 is told another old key than the one the deals reshare.
	c := net.cs[5]
	c.cfg = withReshare(c.cfg, func(r *ReshareConfig) { r.OldCommitment[0] = group.Point().Pick(dkgRandStream("reshare/checks/key")) })
	if _, err := c.Finish(); !errors.Is(err, ErrCeremonyResult) || !strings.Contains(err.Error(), "not the group key") {
		t.Fatalf("another old key: %v", err)
	}
	// Trustee-7 takes a wrong share as justified.
	c = net.cs[6]
	c.justified[2] = &share.PriShare{I: c.cfg.Index - 1, V: group.Suite().Scalar().Pick(dkgRandStream("reshare/checks/share"))}
	if _, err := c.Finish(); !errors.Is(err, ErrCeremonyResult) {
		t.Fatalf("a wrong justified share: %v", err)
	}
}

// TestReshareMessages: messages are checked against the roster of their
// sender's role.
func TestReshareMessages(t *testing.T) {
	t.Parallel()
	old := dkgFive(t)
	cfgs := reshareConfigs(t, old, newSeven, 4, "reshare/messages/ceremony")
	net := newDKGNet(t, cfgs)
	leaves, joins := net.cs[4], net.cs[5] // trustee-5; trustee-6 (new 3)
	if d, _ := joins.Deals(); len(d) != 0 {
		t.Fatalf("a trustee that joins deals %d messages", len(d))
	}
	d5, _ := leaves.Deals()
	if len(d5) != 7 || d5[0].From != 5 || d5[0].To != 1 {
		t.Fatalf("the trustee that leaves deals %v", d5)
	}
	d1, _ := net.cs[0].Deals() // trustee-1: old 1, new 2
	last := d1[len(d1)-1]
	if len(d1) != 7 || last.Kind != KindResponse || last.From != 2 || last.To != 0 {
		t.Fatalf("a trustee in both rosters starts with %d messages, last %v", len(d1), last)
	}
	if p := leaves.Phase(); p != PhaseResponses {
		t.Fatalf("the trustee that leaves waits in phase %s", p)
	}
	// A deal cannot be delivered to the trustee that leaves.
	if _, err := leaves.ProcessDeal(d1[0]); !errors.Is(err, ErrBadDKGMessage) {
		t.Fatalf("deal to the trustee that leaves: %v", err)
	}
	// A response counts once, also where it is tallied by hand.
	if _, err := leaves.Process(last); err != nil {
		t.Fatal(err)
	}
	if _, err := leaves.Process(last); !errors.Is(err, ErrBadDKGMessage) {
		t.Fatalf("second response: %v", err)
	}
	// A deal from old index 6 or a response from new index 8 is out of range.
	w, _ := parseWire(d5[2].Bytes)
	w.From = 6
	m, _ := w.message()
	if _, err := joins.ProcessDeal(m); !errors.Is(err, ErrBadDKGMessage) || !strings.Contains(err.Error(), "deal sender 6 outside 1..5") {
		t.Fatalf("deal from old index 6: %v", err)
	}
	w, _ = parseWire(last.Bytes)
	w.From = 8
	m, _ = w.message()
	if _, err := joins.ProcessResponse(m); !errors.Is(err, ErrBadDKGMessage) || !strings.Contains(err.Error(), "response sender 8 outside 1..7") {
		t.Fatalf("response from new index 8: %v", err)
	}
	// A response from the dealer itself is how kyber's reshare counts the
	// dealer's approval; in a DKG it is refused.
	if _, err := joins.Process(last); err != nil {
		t.Fatalf("a dealer's response to its own deal: %v", err)
	}
}

// TestReshareNewParticipantDown: a new participant never starts; after
// the timeout every deal still has enough responses, also in the tally of
// the trustee that leaves.
func TestReshareNewParticipantDown(t *testing.T) {
	t.Parallel()
	old := dkgFive(t)
	cfgs := reshareConfigs(t, old, newSeven, 4, "reshare/down/ceremony")
	net := newDKGNet(t, cfgs, 8) // trustee-8, new participant 7
	net.run()
	for i, c := range net.cs[:7] {
		if _, err := c.Finish(); !errors.Is(err, ErrCeremonyIncomplete) {
			t.Fatalf("trustee %d before the timeout: %v", i+1, err)
		}
	}
	net.timeout()
	rs := net.finish()
	for i, r := range rs[:7] {
		if !slices.Equal(r.Qualified, []int{1, 2, 3, 4, 5}) || len(r.Disqualified) != 0 {
			t.Fatalf("trustee %d: qualified %v, disqualified %v", i+1, r.Qualified, r.Disqualified)
		}
	}
	out := checkReshare(t, cfgs, rs, old.key)
	x, err := shares.RecoverWithCommitment(out.shares[:4], out.com)
	if err != nil || !group.Point().Mul(x, nil).Equal(old.key) {
		t.Fatalf("recover: %v", err)
	}
}

// TestReshareDealThresholdIsOurs: kyber holds a deal to the threshold the
// deal claims; the ceremony holds it to its own. A deal claiming t = 2
// that only 3 of 7 new participants answer does not qualify.
func TestReshareDealThresholdIsOurs(t *testing.T) {
	t.Parallel()
	old := dkgFive(t)
	cfgs := reshareConfigs(t, old, newSeven, 4, "reshare/claimed-t/ceremony")
	net := newDKGNet(t, cfgs)
	// kyber's responses carry a session id computed from the claimed t; a
	// throwaway copy of participant 1 tells the one to put in the deals.
	rewriteDeals(t, net.cs[4], []int{1}, func(d *vss.Deal) { d.T = 2 })
	probe, err := NewCeremony(cfgs[1])
	if err != nil {
		t.Fatal(err)
	}
	d5, _ := net.cs[4].Deals()
	resp, err := probe.ProcessDeal(d5[0])
	if err != nil {
		t.Fatal(err)
	}
	w, _ := parseWire(resp[0].Bytes)
	rewriteDeals(t, net.cs[4], []int{1, 2, 3, 4, 5, 6, 7}, func(d *vss.Deal) { d.T, d.SessionID = 2, w.Response.SessionID })
	net.drop = func(m Message) bool { return m.Kind == KindResponse && m.From <= 4 && responseDealer(t, m) == 5 }
	net.run()
	net.timeout()
	rs := net.finish()
	for i, r := range rs {
		if cfgs[i].Index > 4 && !slices.Equal(r.Qualified, []int{1, 2, 3, 4}) {
			t.Fatalf("trustee %d: qualified %v", i+1, r.Qualified)
		}
	}
	rs[4] = nil // it never saw the responses about its deal either
	for i := range rs {
		if cfgs[i].Index >= 1 && cfgs[i].Index <= 4 {
			rs[i] = nil // they answered the deal but nobody else heard them
		}
	}
	checkReshare(t, cfgs, rs, old.key)
}

func responseDealer(t *testing.T, m Message) int {
	w, err := parseWire(m.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return w.Response.Dealer
}

// TestReshareJustificationForAnotherHolder: a dealer answers a complaint
// by revealing another participant's share; the complaint stands.
func TestReshareJustificationForAnotherHolder(t *testing.T) {
	t.Parallel()
	old := dkgFive(t)
	cfgs := reshareConfigs(t, old, newSeven, 4, "reshare/holder/ceremony")
	net := newDKGNet(t, cfgs)
	dealer := net.cs[0]       // trustee-1: old 1, new 2
	corruptDeal(t, dealer, 5) // to trustee-7
	justs := net.deliver(net.deliver(net.deals()))
	if len(justs) != 1 {
		t.Fatalf("%d justifications", len(justs))
	}
	// Swap the revealed share for participant 6's, and sign it again.
	w, _ := parseWire(justs[0].Bytes)
	j, err := justificationFromWire(w.From, w.Justification)
	if err != nil {
		t.Fatal(err)
	}
	j.Justification.Deal, _ = rebuiltDealer(t, dealer).PlaintextDeal(6 - 1)
	if j.Justification.Signature, err = schnorr.Sign(dealer.suite, dealer.cfg.Longterm, j.Justification.Hash(dealer.suite)); err != nil {
		t.Fatal(err)
	}
	w.Justification = justificationToWire(j)
	m, _ := w.message()
	for i, c := range net.cs {
		if i == 0 {
			continue
		}
		var mis *MisbehaviourError
		if err := c.ProcessJustification(m); !errors.As(err, &mis) || mis.Participant != 1 || !strings.Contains(mis.Reason, "reveals the share of participant 6") {
			t.Fatalf("trustee %d: %v", i+1, err)
		}
	}
}

// TestReshareJustificationChecks: the old trustee that leaves checks a
// justification itself (kyber gives it no verifier), as strictly as a new
// participant's kyber verifier does.
func TestReshareJustificationChecks(t *testing.T) {
	t.Parallel()
	old := dkgFive(t)
	cfgs := reshareConfigs(t, old, newSeven, 4, "reshare/checkj/ceremony")
	net := newDKGNet(t, cfgs)
	dealer := net.cs[0]       // trustee-1: old 1, new 2
	corruptDeal(t, dealer, 5) // to trustee-7
	d1, _ := dealer.Deals()
	var complaint Message
	for _, d := range d1[:6] {
		for _, c := range net.cs {
			if c.cfg.Index == d.To {
				resp, err := c.ProcessDeal(d)
				if err != nil {
					t.Fatal(err)
				}
				if d.To == 5 {
					complaint = resp[0]
				}
			}
		}
	}
	watchers := map[string]*Ceremony{"the trustee that leaves": net.cs[4], "a new participant": net.cs[2]}
	for _, w := range watchers {
		if _, err := w.Process(complaint); err != nil {
			t.Fatal(err)
		}
	}
	justification := func(f func(j *vss.Justification)) Message {
		d, _ := rebuiltDealer(t, dealer).PlaintextDeal(5 - 1)
		j := &dkg.Justification{Index: 0, Justification: &vss.Justification{SessionID: d.SessionID, Index: 5 - 1, Deal: d}}
		f(j.Justification)
		var err error
		if j.Justification.Signature, err = schnorr.Sign(dealer.suite, dealer.cfg.Longterm, j.Justification.Hash(dealer.suite)); err != nil {
			t.Fatal(err)
		}
		w := dealer.header(KindJustification, 0)
		w.Justification = justificationToWire(j)
		m, err := w.message()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	other := []byte("another session id, 32 bytes...")
	for _, c := range []struct {
		name string
		f    func(*vss.Justification)
	}{
		{"another session", func(j *vss.Justification) { j.SessionID, j.Deal.SessionID = other, other }},
		{"a share off its commitments", func(j *vss.Justification) {
			j.Deal.SecShare.V = group.Suite().Scalar().Pick(dkgRandStream("reshare/checkj/v"))
		}},
		{"another threshold", func(j *vss.Justification) { j.Deal.T = 3 }},
	} {
		m := justification(c.f)
		for who, w := range watchers {
			var mis *MisbehaviourError
			if err := w.ProcessJustification(m); !errors.As(err, &mis) || mis.Participant != 1 || !strings.Contains(mis.Reason, "justification") {
				t.Fatalf("%s takes a justification with %s: %v", who, c.name, err)
			}
			t.Logf("%s, %s: %v", who, c.name, mis.Reason)
			delete(w.badDeal, 1)
		}
	}
	good := justification(func(*vss.Justification) {})
	for who, w := range watchers {
		if err := w.ProcessJustification(good); err != nil {
			t.Fatalf("%s refuses a good justification: %v", who, err)
		}
		if len(w.complaints[1]) != 0 {
			t.Fatalf("%s keeps the complaint", who)
		}
	}
}

package ceremony

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	"github.com/keyquorum/keyquorum/shares"
	"go.dedis.ch/kyber/v3"
	dkg "go.dedis.ch/kyber/v3/share/dkg/pedersen"
	vss "go.dedis.ch/kyber/v3/share/vss/pedersen"
	"go.dedis.ch/kyber/v3/sign/schnorr"
	"go.dedis.ch/kyber/v3/util/random"
)

// dkgRand is a deterministic randomness source for tests.
func dkgRand(label string) io.Reader { return group.Suite().XOF([]byte("test/" + label)) }

// dkgConfigs makes the configurations of n participants of one ceremony.
func dkgConfigs(t *testing.T, n, thr int, label string) []CeremonyConfig {
	t.Helper()
	r := dkgRand(label)
	var id [16]byte
	r.Read(id[:])
	var parts []DKGParticipant
	var keys []*DKGKey
	for i := 1; i <= n; i++ {
		k, err := GenerateDKGKey(r)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		parts = append(parts, DKGParticipant{Name: fmt.Sprintf("trustee-%d", i), Key: k.Public})
	}
	var cfgs []CeremonyConfig
	for i := 1; i <= n; i++ {
		cfgs = append(cfgs, CeremonyConfig{
			ID: id, Epoch: 7, Threshold: thr, Participants: parts, Index: i,
			Longterm: keys[i-1].Private, Rand: dkgRand(fmt.Sprintf("%s/%d", label, i)),
		})
	}
	return cfgs
}

// dkgNet is an in-memory relay: it carries every message, phase by phase,
// and records what it saw.
type dkgNet struct {
	t    *testing.T
	cs   []*Ceremony // nil: participant down
	drop func(Message) bool
	seen [][]byte
}

func newDKGNet(t *testing.T, cfgs []CeremonyConfig, down ...int) *dkgNet {
	t.Helper()
	net := &dkgNet{t: t, cs: make([]*Ceremony, len(cfgs))}
	for i, cfg := range cfgs {
		if slices.Contains(down, i+1) {
			continue
		}
		c, err := NewCeremony(cfg)
		if err != nil {
			t.Fatal(err)
		}
		net.cs[i] = c
	}
	return net
}

// deliver sends msgs to their recipients and returns the answers.
func (net *dkgNet) deliver(msgs []Message) []Message {
	net.t.Helper()
	var out []Message
	for _, m := range msgs {
		if net.drop != nil && net.drop(m) {
			continue
		}
		net.seen = append(net.seen, m.Bytes)
		// What goes over the wire is the bytes only.
		pm, err := ParseMessage(m.Bytes)
		if err != nil {
			net.t.Fatal(err)
		}
		if pm.Kind != m.Kind || pm.From != m.From || pm.To != m.To {
			net.t.Fatalf("header %+v parsed as %+v", m, pm)
		}
		for i, c := range net.cs {
			if c == nil || sentBy(c, m) || (m.To != 0 && m.To != c.cfg.Index) {
				continue
			}
			ans, err := c.Process(pm)
			var mis *MisbehaviourError
			if err != nil && !errors.As(err, &mis) {
				net.t.Fatalf("participant %d processing %s from %d: %v", i+1, m.Kind, m.From, err)
			}
			out = append(out, ans...)
		}
	}
	return out
}

// sentBy says whether c sent m: From counts among the dealers for a deal
// or a justification and among the participants for a response (the same
// roster in a DKG, the old and the new one in a reshare).
func sentBy(c *Ceremony, m Message) bool {
	if m.Kind == KindResponse {
		return m.From == c.cfg.Index
	}
	return m.From == c.ownDealer()
}

func (net *dkgNet) deals() []Message {
	var all []Message
	for _, c := range net.cs {
		if c != nil {
			d, _ := c.Deals()
			all = append(all, d...)
		}
	}
	return all
}

// run carries deals, then responses, then justifications.
func (net *dkgNet) run() {
	responses := net.deliver(net.deals())
	justifications := net.deliver(responses)
	if rest := net.deliver(justifications); len(rest) != 0 {
		net.t.Fatalf("justifications answered with %d messages", len(rest))
	}
}

// restart marshals every ceremony and restores it: the restored one has
// the same first messages, phase and state.
func (net *dkgNet) restart(cfgs []CeremonyConfig) {
	t := net.t
	t.Helper()
	for i, c := range net.cs {
		if c == nil {
			continue
		}
		st, err := c.MarshalState()
		if err != nil {
			t.Fatal(err)
		}
		before, _ := c.Deals()
		rc, err := RestoreCeremony(st, cfgs[i])
		if err != nil {
			t.Fatalf("participant %d: %v", i+1, err)
		}
		after, _ := rc.Deals()
		if len(before) != len(after) {
			t.Fatalf("participant %d: %d first messages restored as %d", i+1, len(before), len(after))
		}
		for k := range before {
			if !bytes.Equal(before[k].Bytes, after[k].Bytes) {
				t.Fatalf("participant %d: restored ceremony has other first messages", i+1)
			}
		}
		if rc.Phase() != c.Phase() {
			t.Fatalf("participant %d: phase %s restored as %s", i+1, c.Phase(), rc.Phase())
		}
		if again, err := rc.MarshalState(); err != nil || !bytes.Equal(again, st) {
			t.Fatalf("participant %d: state not stable across a restore: %v", i+1, err)
		}
		net.cs[i] = rc
	}
}

func (net *dkgNet) timeout() {
	for _, c := range net.cs {
		if c != nil {
			c.SetTimeout()
		}
	}
}

func (net *dkgNet) finish() []*DKGResult {
	net.t.Helper()
	rs := make([]*DKGResult, len(net.cs))
	for i, c := range net.cs {
		if c == nil {
			continue
		}
		r, err := c.Finish()
		if err != nil {
			net.t.Fatalf("participant %d: %v", i+1, err)
		}
		if c.Phase() != PhaseDone {
			net.t.Fatalf("participant %d in phase %s after Finish", i+1, c.Phase())
		}
		rs[i] = r
	}
	return rs
}

// checkResults checks that every result agrees, that every share verifies
// against the group file's public shares, and that every t-subset
// interpolates to a secret x with x·G = the group key. Combining shares
// happens only here, in the test: no participant computes x.
func checkResults(t *testing.T, cfgs []CeremonyConfig, rs []*DKGResult) (*escrow.GroupFile, kyber.Scalar) {
	t.Helper()
	var first *DKGResult
	var held []shares.Share
	for i, r := range rs {
		if r == nil {
			continue
		}
		if first == nil {
			first = r
		}
		if !r.GroupKey.Equal(first.GroupKey) || len(r.Commitment) != len(first.Commitment) ||
			!slices.Equal(r.Qualified, first.Qualified) || len(r.Disqualified) != len(first.Disqualified) {
			t.Fatalf("participant %d disagrees: %v %v vs %v %v", i+1, r.GroupKey, r.Qualified, first.GroupKey, first.Qualified)
		}
		for j := range r.Commitment {
			if !r.Commitment[j].Equal(first.Commitment[j]) {
				t.Fatalf("participant %d commitment %d differs", i+1, j)
			}
		}
		if r.Share.Index != i+1 || r.Share.Epoch != cfgs[i].Epoch || !r.Share.GroupKey.Equal(r.GroupKey) {
			t.Fatalf("participant %d share header %+v", i+1, r.Share)
		}
		held = append(held, shares.Share{Index: r.Share.Index, Value: r.Share.Share})
	}
	thr := cfgs[0].Threshold
	g := &escrow.GroupFile{Version: escrow.GroupFileVersion, KeyGeneration: "dkg", Threshold: thr}
	for i, p := range cfgs[0].Participants {
		g.Trustees = append(g.Trustees, escrow.GroupMember{Index: i + 1, Name: p.Name})
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g.Epochs = []escrow.GroupEpoch{first.GroupEpoch(escrow.GroupEpoch{ValidFrom: t0, ValidUntil: t0.Add(30 * 24 * time.Hour)})}
	b, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := escrow.ParseGroupFile(b); err != nil {
		t.Fatal(err)
	}
	eg, err := g.EscrowGroup(cfgs[0].Epoch)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range held {
		if !group.Point().Mul(s.Value, nil).Equal(eg.PublicShares[s.Index]) {
			t.Fatalf("share %d does not match the group file's public share", s.Index)
		}
	}
	var x kyber.Scalar
	var subsets func(start int, pick []shares.Share)
	count := 0
	subsets = func(start int, pick []shares.Share) {
		if len(pick) == thr {
			s, err := shares.Recover(pick, thr)
			if err != nil {
				t.Fatal(err)
			}
			if !group.Point().Mul(s, nil).Equal(first.GroupKey) {
				t.Fatalf("subset %v does not recover the group secret", pick)
			}
			x = s
			count++
			return
		}
		for k := start; k < len(held); k++ {
			subsets(k+1, append(slices.Clone(pick), held[k]))
		}
	}
	subsets(0, nil)
	if count == 0 {
		t.Fatal("no subset checked")
	}
	return g, x
}

func TestDKGFiveParticipants(t *testing.T) {
	cfgs := dkgConfigs(t, 5, 3, "five")
	net := newDKGNet(t, cfgs)
	if p := net.cs[0].Phase(); p != PhaseDeals {
		t.Fatalf("phase %s at start", p)
	}
	if _, err := net.cs[0].Finish(); !errors.Is(err, ErrCeremonyIncomplete) {
		t.Fatalf("Finish before any message: %v", err)
	}
	net.run()
	if p := net.cs[0].Phase(); p != PhaseResponses {
		t.Fatalf("phase %s after all messages", p)
	}
	rs := net.finish()
	for _, r := range rs {
		if !slices.Equal(r.Qualified, []int{1, 2, 3, 4, 5}) || len(r.Disqualified) != 0 {
			t.Fatalf("qualified %v, disqualified %v", r.Qualified, r.Disqualified)
		}
		if len(r.Commitment) != 3 || !r.Commitment[0].Equal(r.GroupKey) {
			t.Fatal("commitment is not t points starting with the group key")
		}
	}
	g, _ := checkResults(t, cfgs, rs)

	// A session escrowed to the DKG key opens with three DKG shares.
	eg, err := g.EscrowGroup(7)
	if err != nil {
		t.Fatal(err)
	}
	r := dkgRand("five/session")
	ctx := &escrow.Context{Epoch: 7, GroupKeyID: escrow.KeyIDOf(eg.Key), Sender: "alice", Recipient: "bob",
		Start: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	r.Read(ctx.SessionID[:])
	K := make([]byte, escrow.KeySize)
	r.Read(K)
	env, err := escrow.SealEnvelope(K, ctx, eg.EpochKey())
	if err != nil {
		t.Fatal(err)
	}
	req, err := escrow.GenerateRequesterKey(r)
	if err != nil {
		t.Fatal(err)
	}
	var partials []*escrow.PartialDecryption
	for _, i := range []int{2, 4, 5} {
		s := rs[i-1].Share
		p, err := escrow.PartialDecrypt(s.Index, s.Share, env, req.Public, r)
		if err != nil {
			t.Fatal(err)
		}
		partials = append(partials, p)
	}
	res, err := escrow.Combine(eg, env, req, partials)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Key, K) {
		t.Fatal("combined key differs")
	}
}

func TestDKGOneDownCompletesWithFour(t *testing.T) {
	cfgs := dkgConfigs(t, 5, 3, "one down")
	net := newDKGNet(t, cfgs, 5)
	net.run()
	if _, err := net.cs[0].Finish(); !errors.Is(err, ErrCeremonyIncomplete) {
		t.Fatalf("Finish before the timeout: %v", err)
	}
	net.timeout()
	rs := net.finish()
	for _, r := range rs[:4] {
		if !slices.Equal(r.Qualified, []int{1, 2, 3, 4}) {
			t.Fatalf("qualified %v", r.Qualified)
		}
		if len(r.Disqualified) != 1 || r.Disqualified[0].Participant != 5 || r.Disqualified[0].Name != "trustee-5" ||
			!strings.Contains(r.Disqualified[0].Reason, "no deal") {
			t.Fatalf("disqualified %v", r.Disqualified)
		}
	}
	checkResults(t, cfgs, rs)
}

func TestDKGTooManyDownAborts(t *testing.T) {
	cfgs := dkgConfigs(t, 5, 3, "three down")
	net := newDKGNet(t, cfgs, 3, 4, 5)
	net.run()
	net.timeout()
	for i, c := range net.cs[:2] {
		r, err := c.Finish()
		var ab *AbortError
		if !errors.Is(err, ErrCeremonyAborted) || !errors.As(err, &ab) || r != nil {
			t.Fatalf("participant %d: %v, %v", i+1, r, err)
		}
		// 3, 4 and 5 never dealt; the deals of 1 and 2 lack more than
		// n-t responses, so they cannot qualify either.
		var silent []int
		for _, m := range ab.Disqualified {
			if strings.Contains(m.Reason, "no deal") {
				silent = append(silent, m.Participant)
			}
		}
		if !slices.Equal(silent, []int{3, 4, 5}) || len(ab.Qualified) >= 3 {
			t.Fatalf("abort names %v, qualified %v", ab.Disqualified, ab.Qualified)
		}
		if c.Phase() != PhaseAborted {
			t.Fatalf("phase %s", c.Phase())
		}
		if _, err := c.Finish(); !errors.Is(err, ErrCeremonyAborted) {
			t.Fatalf("second Finish: %v", err)
		}
	}
}

// corruptDeal replaces c's deal to participant `to` by one whose share
// does not match its commitments.
func corruptDeal(t *testing.T, c *Ceremony, to int) {
	t.Helper()
	rewriteDeals(t, c, []int{to}, func(d *vss.Deal) { d.SecShare.V = group.Suite().Scalar().Pick(random.New()) })
}

// rewriteDeals replaces c's deals to the participants to by ones changed
// by f. They come from c's dealer rebuilt from its seed, so the deals
// carry the right session and commitments and only what f changes is
// wrong.
func rewriteDeals(t *testing.T, c *Ceremony, to []int, f func(*vss.Deal)) {
	t.Helper()
	dealer := rebuiltDealer(t, c)
	for k, m := range c.deals {
		if m.Kind != KindDeal || !slices.Contains(to, m.To) {
			continue
		}
		pd, _ := dealer.PlaintextDeal(m.To - 1)
		f(pd)
		enc, err := dealer.EncryptedDeal(m.To - 1)
		if err != nil {
			t.Fatal(err)
		}
		dd := &dkg.Deal{Index: uint32(c.ownDealer() - 1), Deal: enc}
		buf, _ := dd.MarshalBinary()
		if dd.Signature, err = schnorr.Sign(c.suite, c.cfg.Longterm, buf); err != nil {
			t.Fatal(err)
		}
		if c.deals[k], err = c.dealMessage(m.To, dd); err != nil {
			t.Fatal(err)
		}
	}
}

// rebuiltDealer rebuilds c's dealer from its seed, as kyber's generator
// built it.
func rebuiltDealer(t *testing.T, c *Ceremony) *vss.Dealer {
	t.Helper()
	secret := group.Suite().Scalar().Pick(random.New(seedStream(c.seed, labelDKGSecret)))
	if c.resharing() {
		secret = c.cfg.Reshare.OldShare.Share
	}
	suite := &ceremonySuite{SuiteEd25519: group.Suite(), det: seedStream(c.seed, labelDKGPoly)}
	var pubs []kyber.Point
	for _, p := range c.cfg.Participants {
		pubs = append(pubs, p.Key)
	}
	dealer, err := vss.NewDealer(suite, c.cfg.Longterm, secret, pubs, c.cfg.Threshold)
	suite.det = nil
	if err != nil {
		t.Fatal(err)
	}
	// An old trustee that leaves a reshare has no verifier of its own deal.
	if v := c.gen.Verifiers()[uint32(c.ownDealer()-1)]; v != nil {
		for j, p := range dealer.Commits() {
			if !p.Equal(v.Commits()[j]) {
				t.Fatal("rebuilt dealer differs from the ceremony's")
			}
		}
	}
	return dealer
}

func TestDKGBadDealIsNamed(t *testing.T) {
	cfgs := dkgConfigs(t, 5, 3, "bad deal")
	net := newDKGNet(t, cfgs)
	corruptDeal(t, net.cs[4], 1)
	// Participant 5 also withholds its justification.
	net.drop = func(m Message) bool { return m.Kind == KindJustification && m.From == 5 }
	responses := net.deliver(net.deals())
	mis := net.cs[0].Misbehaviour()
	if len(mis) != 1 || mis[0].Participant != 5 || !strings.Contains(mis[0].Reason, "does not match its commitments") {
		t.Fatalf("participant 1 names %v", mis)
	}
	net.deliver(net.deliver(responses))
	if p := net.cs[1].Phase(); p != PhaseJustifications {
		t.Fatalf("phase %s with an open complaint", p)
	}
	if _, err := net.cs[1].Finish(); !errors.Is(err, ErrCeremonyIncomplete) {
		t.Fatalf("Finish with an open complaint: %v", err)
	}
	net.timeout()
	rs := net.finish()
	// Participant 5 applied its own justification and counts itself in;
	// its result disagrees with everyone else's, which is why the group
	// file must be signed by every qualified trustee before anyone uses it.
	if !slices.Equal(rs[4].Qualified, []int{1, 2, 3, 4, 5}) || rs[4].GroupKey.Equal(rs[0].GroupKey) {
		t.Fatalf("the cheating dealer's view: %v", rs[4].Qualified)
	}
	rs[4] = nil
	for i, r := range rs[:4] {
		if !slices.Equal(r.Qualified, []int{1, 2, 3, 4}) || len(r.Disqualified) != 1 || r.Disqualified[0].Participant != 5 {
			t.Fatalf("participant %d: qualified %v disqualified %v", i+1, r.Qualified, r.Disqualified)
		}
		t.Logf("participant %d: %v", i+1, r.Disqualified[0])
	}
	checkResults(t, cfgs, rs)
}

func TestDKGBadDealJustified(t *testing.T) {
	cfgs := dkgConfigs(t, 5, 3, "justified")
	net := newDKGNet(t, cfgs)
	corruptDeal(t, net.cs[4], 1)
	responses := net.deliver(net.deals())
	justifications := net.deliver(responses)
	if len(justifications) != 1 || justifications[0].From != 5 {
		t.Fatalf("justifications %v", justifications)
	}
	net.deliver(justifications)
	rs := net.finish() // no timeout needed: the complaint was answered
	for _, r := range rs {
		if !slices.Equal(r.Qualified, []int{1, 2, 3, 4, 5}) {
			t.Fatalf("qualified %v", r.Qualified)
		}
	}
	checkResults(t, cfgs, rs)
}

// TestDKGRestart runs the same ceremony twice with the same randomness;
// the second time every participant is marshalled and restored after the
// deals. Both runs give the same key and shares.
func TestDKGRestart(t *testing.T) {
	plain := newDKGNet(t, dkgConfigs(t, 5, 3, "restart"))
	plain.run()
	want := plain.finish()

	cfgs := dkgConfigs(t, 5, 3, "restart")
	net := newDKGNet(t, cfgs)
	responses := net.deliver(net.deals())
	net.restart(cfgs)
	net.deliver(net.deliver(responses))
	got := net.finish()
	checkResults(t, cfgs, got)
	for i := range got {
		if !got[i].GroupKey.Equal(want[i].GroupKey) || !got[i].Share.Share.Equal(want[i].Share.Share) {
			t.Fatalf("participant %d: restarted run differs", i+1)
		}
	}

	// State belongs to its ceremony and participant.
	st, _ := net.cs[0].MarshalState()
	other := cfgs[1]
	if _, err := RestoreCeremony(st, other); !errors.Is(err, ErrBadDKGState) {
		t.Fatalf("restore as another participant: %v", err)
	}
	other = cfgs[0]
	other.ID[0] ^= 1
	if _, err := RestoreCeremony(st, other); !errors.Is(err, ErrBadDKGState) {
		t.Fatalf("restore into another ceremony: %v", err)
	}
	if _, err := RestoreCeremony(append(st, 'x'), cfgs[0]); !errors.Is(err, ErrBadDKGState) {
		t.Fatalf("restore trailing garbage: %v", err)
	}
}

// TestDKGRelayLearnsNothing checks what the coordinator relays: no share
// and no x appears in it, and a deal cannot be opened without its
// recipient's long-term key.
func TestDKGRelayLearnsNothing(t *testing.T) {
	cfgs := dkgConfigs(t, 5, 3, "relay")
	net := newDKGNet(t, cfgs)
	net.run()
	rs := net.finish()
	_, x := checkResults(t, cfgs, rs)
	secrets := [][]byte{group.ScalarBytes(x)}
	for _, r := range rs {
		secrets = append(secrets, group.ScalarBytes(r.Share.Share))
	}
	for _, c := range net.cs {
		for _, co := range c.gen.Verifiers() {
			// every dealer's share to every participant
			if d := co.Deal(); d != nil {
				secrets = append(secrets, group.ScalarBytes(d.SecShare.V))
			}
		}
	}
	for _, m := range net.seen {
		for _, s := range secrets {
			if bytes.Contains(m, s) || bytes.Contains(m, []byte(base64.StdEncoding.EncodeToString(s))) {
				t.Fatal("a relayed message contains a secret scalar")
			}
		}
		if strings.Contains(string(m), `"justification"`) {
			t.Fatal("an honest run relayed a justification")
		}
	}

	// The relay puts its own key in place of participant 2's and tries to
	// open the deal addressed to participant 2.
	relayKey, err := GenerateDKGKey(dkgRand("relay/key"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := cfgs[1]
	cfg.Participants = slices.Clone(cfg.Participants)
	cfg.Participants[1].Key = relayKey.Public
	cfg.Longterm = relayKey.Private
	relay, err := NewCeremony(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := net.cs[0].Deals()
	var to2 Message
	for _, m := range d {
		if m.To == 2 {
			to2 = m
		}
	}
	if _, err := relay.ProcessDeal(to2); err == nil {
		t.Fatal("a deal opened without its recipient's key")
	} else {
		t.Logf("relay: %v", err)
	}
	// Participant 3 cannot open participant 2's deal either.
	if _, err := net.cs[2].ProcessDeal(to2); !errors.Is(err, ErrBadDKGMessage) {
		t.Fatalf("misrouted deal: %v", err)
	}
}

func TestDKGMessages(t *testing.T) {
	cfgs := dkgConfigs(t, 3, 2, "messages")
	net := newDKGNet(t, cfgs)
	d, _ := net.cs[0].Deals()
	m := d[0]
	pm, err := ParseMessage(m.Bytes)
	if err != nil || !bytes.Equal(pm.Bytes, m.Bytes) {
		t.Fatalf("round trip: %v", err)
	}
	bad := map[string][]byte{
		"spaces":   bytes.Replace(m.Bytes, []byte(`,"kind"`), []byte(` ,"kind"`), 1),
		"version":  bytes.Replace(m.Bytes, []byte("v1"), []byte("v2"), 1),
		"kind":     bytes.Replace(m.Bytes, []byte(`"kind":"deal"`), []byte(`"kind":"response"`), 1),
		"trailing": append(slices.Clone(m.Bytes), '{', '}'),
		"unknown":  bytes.Replace(m.Bytes, []byte(`{"version"`), []byte(`{"x":1,"version"`), 1),
	}
	for name, b := range bad {
		if _, err := ParseMessage(b); !errors.Is(err, ErrBadDKGMessage) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Another ceremony's participants refuse it.
	other := newDKGNet(t, dkgConfigs(t, 3, 2, "other"))
	if _, err := other.cs[m.To-1].ProcessDeal(m); !errors.Is(err, ErrBadDKGMessage) {
		t.Fatalf("deal of another ceremony: %v", err)
	}
	// A deal is taken once.
	if _, err := net.cs[m.To-1].ProcessDeal(m); err != nil {
		t.Fatal(err)
	}
	if _, err := net.cs[m.To-1].ProcessDeal(m); !errors.Is(err, ErrBadDKGMessage) {
		t.Fatalf("second deal: %v", err)
	}
	// Configuration errors.
	cfg := cfgs[0]
	cfg.Threshold = 1
	if _, err := NewCeremony(cfg); err == nil {
		t.Fatal("t = 1 accepted")
	}
	cfg = cfgs[0]
	cfg.Index = 2
	if _, err := NewCeremony(cfg); err == nil {
		t.Fatal("someone else's index accepted")
	}
}

// FuzzParseDKGMessage: whatever parses is in canonical form, so
// marshal(parse(b)) == b.
func FuzzParseDKGMessage(f *testing.F) {
	cfgs := dkgConfigs(&testing.T{}, 3, 2, "fuzz")
	c, err := NewCeremony(cfgs[0])
	if err != nil {
		f.Fatal(err)
	}
	d, _ := c.Deals()
	for _, m := range d {
		f.Add(m.Bytes)
	}
	c2, _ := NewCeremony(cfgs[1])
	resp, _ := c2.ProcessDeal(d[0])
	for _, m := range resp {
		f.Add(m.Bytes)
	}
	f.Add([]byte(`{"version":"keyquorum dkg message v1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			if !errors.Is(err, ErrBadDKGMessage) {
				t.Fatalf("error not wrapping ErrBadDKGMessage: %v", err)
			}
			return
		}
		w, err := parseWire(m.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		again, err := w.message()
		if err != nil || !bytes.Equal(again.Bytes, b) || again.Kind != m.Kind || again.From != m.From || again.To != m.To {
			t.Fatalf("not a round trip: %v", err)
		}
	})
}

// TestVerifySchnorrMatchesKyber checks the fast signature check against
// kyber's own on valid and altered signatures.
func TestVerifySchnorrMatchesKyber(t *testing.T) {
	suite := group.Suite()
	key, err := GenerateDKGKey(dkgRand("schnorr"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := GenerateDKGKey(dkgRand("schnorr/other"))
	for i := 0; i < 20; i++ {
		msg := []byte(fmt.Sprintf("message %d", i))
		sig, err := schnorr.Sign(suite, key.Private, msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifySchnorr(group.PointBytes(key.Public), msg, sig); err != nil {
			t.Fatalf("valid signature refused: %v", err)
		}
		bad := map[string][]byte{
			"other message": nil, "flipped R": slices.Clone(sig), "flipped s": slices.Clone(sig),
			"s + l": slices.Clone(sig), "identity R": slices.Clone(sig), "short": sig[:63],
		}
		bad["flipped R"][3] ^= 1
		bad["flipped s"][40] ^= 1
		// s + ℓ: the same scalar, non-canonically encoded.
		l := []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
		carry := 0
		for k := 0; k < 32; k++ {
			v := int(bad["s + l"][32+k]) + int(l[k]) + carry
			bad["s + l"][32+k], carry = byte(v), v>>8
		}
		copy(bad["identity R"][:32], append([]byte{1}, make([]byte, 31)...))
		for name, b := range bad {
			m := msg
			if b == nil {
				b, m = sig, []byte("another")
			}
			fast := verifySchnorr(group.PointBytes(key.Public), m, b)
			slow := schnorr.Verify(suite, key.Public, m, b)
			if fast == nil || slow == nil {
				t.Fatalf("%s: fast %v, kyber %v", name, fast, slow)
			}
		}
		if verifySchnorr(group.PointBytes(other.Public), msg, sig) == nil {
			t.Fatal("signature verified under another key")
		}
	}
}

package ceremony

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	"github.com/keyquorum/keyquorum/shares"
	"go.dedis.ch/kyber/v3"
	"golang.org/x/mod/sumdb/note"
)

// cnode is one trustee of an in-process federation served over loopback
// HTTP: a real CeremonyHost behind the real ceremony Handler, keeping its
// shares in memory.
type cnode struct {
	t      *testing.T
	name   string
	signer note.Signer
	member escrow.GroupMember
	node   *memNode
	store  *MemCeremonyStore
	host   *CeremonyHost
	srv    *httptest.Server
	api    atomic.Pointer[Handler]

	mu      sync.Mutex
	group   []byte
	shares  map[uint32]*escrow.EpochShare
	events  []Event // the audit records the node wrote
	logDown string  // events of this kind cannot be logged
}

func (n *cnode) record(ev Event) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.logDown != "" && ev.Kind == n.logDown {
		return errors.New("audit log unavailable")
	}
	n.events = append(n.events, ev)
	return nil
}

func newCeremonyNode(t *testing.T, i int) *cnode {
	t.Helper()
	name := fmt.Sprintf("trustee-%d", i)
	skey, vkey, err := note.GenerateKey(dkgRand("ceremony/log/"+t.Name()+"/"+name), escrow.LogKeyName(name))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	n := &cnode{t: t, name: name, signer: signer, store: &MemCeremonyStore{}, shares: map[uint32]*escrow.EpochShare{}}
	n.node = &memNode{shares: map[uint32]*escrow.EpochShare{}}
	n.restart()
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.api.Load().ServeHTTP(w, r) }))
	t.Cleanup(n.srv.Close)
	n.member = escrow.GroupMember{Index: i, Name: name, Address: strings.TrimPrefix(n.srv.URL, "http://"), LogKey: vkey}
	testNodes.Store(vkey, n)
	t.Cleanup(func() { testNodes.Delete(vkey) })
	return n
}

// restart makes a new ceremony host over the same store, as a restarted
// process would: everything in memory is gone.
func (n *cnode) restart() {
	h, err := NewCeremonyHost(CeremonyHostConfig{
		Name: n.name, LogSigner: n.signer, Store: n.store, Install: n.install, Share: n.node.Share, Record: n.record,
		Group: func() []byte {
			n.mu.Lock()
			defer n.mu.Unlock()
			return n.group
		},
	})
	if err != nil {
		n.t.Fatal(err)
	}
	n.host = h
	n.api.Store(&Handler{Host: h})
}

func (n *cnode) install(signed []byte, g *escrow.GroupFile, ss []*escrow.EpochShare, replace bool) error {
	pub := map[uint32]kyber.Point{}
	for _, s := range ss {
		eg, err := g.EscrowGroup(s.Epoch)
		if err != nil {
			return err
		}
		pub[s.Epoch] = eg.PublicShares[s.Index]
	}
	if replace {
		n.node.replaceShares(ss)
	} else {
		for _, s := range ss {
			if !group.Point().Mul(s.Share, nil).Equal(pub[s.Epoch]) {
				return fmt.Errorf("share of epoch %d does not match its public share", s.Epoch)
			}
			n.node.addShare(s)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = slices.Clone(signed)
	if replace {
		n.shares = map[uint32]*escrow.EpochShare{}
	}
	for _, s := range ss {
		n.shares[s.Epoch] = s
	}
	return nil
}

func ceremonyFederation(t *testing.T, n int) ([]*cnode, []escrow.GroupMember) {
	var ns []*cnode
	var roster []escrow.GroupMember
	for i := 1; i <= n; i++ {
		c := newCeremonyNode(t, i)
		ns = append(ns, c)
		roster = append(roster, c.member)
	}
	return ns, roster
}

// testNodes finds a test node by its log key, so that the option
// builders below can play every operator: sign a proposal and approve it.
var testNodes sync.Map

// dkgOptions proposes a first DKG among roster (epoch 1, November 2026),
// signed by its first trustee and approved by every one.
func dkgOptions(roster []escrow.GroupMember, thr int) DKGOptions {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	p, err := DKGProposal(roster, thr, escrow.GroupEpoch{Epoch: 1, ValidFrom: t0, ValidUntil: t0.Add(30 * 24 * time.Hour)}, time.Now().Add(10*time.Minute), rand.Reader)
	if err != nil {
		panic(err)
	}
	return approvedOptions(p, nil)
}

// NextEpochOptions proposes the rotation after signed's last epoch and
// has every trustee approve it.
func NextEpochOptions(signed []byte, now time.Time, length time.Duration) (DKGOptions, error) {
	p, err := RotationProposal(signed, now, length, time.Now().Add(10*time.Minute), rand.Reader)
	if err != nil {
		return DKGOptions{}, err
	}
	return approvedOptions(p, signed), nil
}

// reshareOptions proposes a reshare of signed to roster and threshold,
// approved by every old and new trustee.
func reshareOptions(signed []byte, roster []escrow.GroupMember, thr int) DKGOptions {
	p, err := ReshareProposal(signed, roster, thr, time.Now().Add(10*time.Minute), rand.Reader)
	if err != nil {
		panic(err)
	}
	return approvedOptions(p, signed)
}

// sign has p signed by the log key of its roster's first trustee, or
// with a current group, of that group's first trustee.
func sign(p *Proposal, group ...[]byte) []byte {
	m := p.Roster[0]
	if len(group) > 0 && group[0] != nil {
		g, _, err := escrow.VerifyGroupFile(group[0], true)
		if err != nil {
			panic(err)
		}
		m = g.Trustees[0]
	}
	n, ok := testNodes.Load(m.LogKey)
	if !ok {
		panic("no test node for " + m.Name)
	}
	signed, err := SignProposal(p, n.(*cnode).signer)
	if err != nil {
		panic(err)
	}
	return signed
}

// approvedOptions signs p, approves it on every trustee of its roster and
// of group except those named in skip, and returns the options to run it.
func approvedOptions(p *Proposal, group []byte, skip ...string) DKGOptions {
	signed := sign(p, group)
	ms := slices.Clone(p.Roster)
	if group != nil {
		g, _, err := escrow.VerifyGroupFile(group, true)
		if err != nil {
			panic(err)
		}
		ms = append(ms, g.Trustees...)
	}
	done := map[string]bool{}
	for _, m := range ms {
		if done[m.Name] || slices.Contains(skip, m.Name) {
			continue
		}
		done[m.Name] = true
		n, ok := testNodes.Load(m.LogKey)
		if !ok {
			continue
		}
		if _, _, err := n.(*cnode).host.Approve(signed, group); err != nil {
			panic(fmt.Sprintf("%s: %v", m.Name, err))
		}
	}
	return DKGOptions{Proposal: signed, Group: group, PhaseTimeout: 2 * time.Second}
}

// checkInstalled checks that every holder installed a share that matches
// the signed group file and that every threshold subset recovers the
// epoch key; it returns the secret, which only the test computes.
func checkInstalled(t *testing.T, ns []*cnode, rep *DKGReport, epoch uint32) kyber.Scalar {
	t.Helper()
	g, _, err := escrow.VerifyGroupFile(rep.Signed, true)
	if err != nil {
		t.Fatal(err)
	}
	eg, err := g.EscrowGroup(epoch)
	if err != nil {
		t.Fatal(err)
	}
	var held []shares.Share
	for _, idx := range rep.Holders {
		var n *cnode
		for _, c := range ns {
			if c.member.Name == g.Trustees[idx-1].Name {
				n = c
			}
		}
		n.mu.Lock()
		s := n.shares[epoch]
		same := bytes.Equal(n.group, rep.Signed)
		n.mu.Unlock()
		if s == nil || !same {
			t.Fatalf("%s did not install epoch %d (share %v, same group file %v)", n.name, epoch, s != nil, same)
		}
		if !group.Point().Mul(s.Share, nil).Equal(eg.PublicShares[idx]) {
			t.Fatalf("%s's share does not match its public share", n.name)
		}
		if ids, _ := n.store.CeremonyIDs(); len(ids) != 0 {
			t.Fatalf("%s kept ceremony state after commit: %v", n.name, ids)
		}
		held = append(held, shares.Share{Index: idx, Value: s.Share})
	}
	var x kyber.Scalar
	for i := 0; i+g.Threshold <= len(held); i++ {
		s, err := shares.Recover(held[i:i+g.Threshold], g.Threshold)
		if err != nil {
			t.Fatal(err)
		}
		if !group.Point().Mul(s, nil).Equal(eg.Key) {
			t.Fatalf("shares %d.. do not recover the epoch key", i)
		}
		x = s
	}
	if few, err := shares.Recover(held[:g.Threshold-1], g.Threshold-1); err == nil && group.Point().Mul(few, nil).Equal(eg.Key) {
		t.Fatal("t-1 shares recover the key")
	}
	return x
}

func TestRunDKGOverAPI(t *testing.T) {
	ns, roster := ceremonyFederation(t, 5)
	opts := dkgOptions(roster, 3)
	var seen [][]byte
	opts.Observe = func(_, _ string, a *CeremonyAnswer) {
		seen = append(seen, []byte(a.KeyNote), []byte(a.Signed))
		seen = append(seen, a.Outbox...)
		if a.Outcome != nil {
			seen = append(seen, []byte(fmt.Sprint(*a.Outcome)))
		}
	}
	rep, err := runDKG(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Holders, []int{1, 2, 3, 4, 5}) || len(rep.Disqualified) != 0 || len(rep.Excluded) != 0 {
		t.Fatalf("holders %v disqualified %v excluded %v", rep.Holders, rep.Disqualified, rep.Excluded)
	}
	if rep.Group.KeyGeneration != "dkg" || rep.Group.Epochs[0].Holders != nil {
		t.Fatalf("group file %+v", rep.Group)
	}
	x := checkInstalled(t, ns, rep, 1)
	// Every participant logged its approval, then the completion, with
	// the group file it installed.
	for _, n := range ns {
		if len(n.events) != 2 || n.events[0].Kind != EventApproved || n.events[1].Kind != EventCompleted ||
			n.events[1].Ceremony != rep.CeremonyID || n.events[1].Group != HashGroup(rep.Signed) || !slices.Equal(n.events[1].Epochs, []uint32{1}) ||
			n.events[0].Proposal != n.events[1].Proposal || n.events[1].Roster != RosterHash(rep.Group.Trustees) {
			t.Fatalf("%s logged %+v", n.name, n.events)
		}
	}
	// What the coordinator received contains neither the key nor any
	// share, in any encoding: it relayed only public or encrypted bytes.
	secrets := [][]byte{group.ScalarBytes(x)}
	for _, n := range ns {
		secrets = append(secrets, group.ScalarBytes(n.shares[1].Share))
	}
	for _, b := range seen {
		for _, s := range secrets {
			if bytes.Contains(b, s) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString(s))) {
				t.Fatal("the coordinator received a secret")
			}
		}
	}
	if len(seen) < 5*4 {
		t.Fatalf("only %d answers observed", len(seen))
	}
}

func TestRunDKGRelaySwapsAKey(t *testing.T) {
	// A relay that puts its own DKG key in place of trustee-2's (to open
	// the deals addressed to it) is caught: the announcement must be
	// signed by trustee-2's log key.
	ns, roster := ceremonyFederation(t, 3)
	opts := dkgOptions(roster, 2)
	opts.Dial = testDial
	co := newCoordinator(opts)
	if err := co.setup(); err != nil {
		t.Fatal(err)
	}
	notes, down, err := co.prepare(context.Background())
	if err != nil || len(down) != 0 {
		t.Fatal(err, down)
	}
	relayKey, _ := GenerateDKGKey(dkgRand("swap/relay"))
	forged := ceremonyKeyNote(&co.params, "trustee-2", group.PointBytes(relayKey.Public))
	relaySkey, _, _ := note.GenerateKey(dkgRand("swap/relay/log"), escrow.LogKeyName("trustee-2"))
	relaySigner, _ := note.NewSigner(relaySkey)
	fn, _ := note.Sign(&note.Note{Text: forged}, relaySigner)
	notes[1] = string(fn)
	_, err = ns[0].host.Start(co.params.ID, notes)
	if !errors.Is(err, ErrCeremonyRefused) || !strings.Contains(err.Error(), "trustee-2") {
		t.Fatalf("start with a swapped key: %v", err)
	}
	// Parameters other than the approved proposal's are refused, and
	// nothing is stored for them.
	other := co.params
	other.Threshold = 3
	before, _ := ns[2].store.CeremonyIDs()
	if _, err := ns[2].host.Prepare(other); !errors.Is(err, ErrNotApproved) || !strings.Contains(err.Error(), "differ from the approved proposal") {
		t.Fatalf("prepare with changed parameters: %v", err)
	}
	if after, _ := ns[2].store.CeremonyIDs(); !slices.Equal(before, after) {
		t.Fatalf("a refused prepare changed the stored ceremonies: %v -> %v", before, after)
	}
}

func TestRunDKGOneDownAtStart(t *testing.T) {
	ns, roster := ceremonyFederation(t, 5)
	ns[1].srv.Close()
	rep, err := runDKG(context.Background(), dkgOptions(roster, 3))
	if err != nil {
		t.Fatal(err)
	}
	// The roster is the proposal's: trustee-2 stays in it, holding no
	// share of the epoch.
	if !slices.Equal(rep.Excluded, []string{"trustee-2"}) || len(rep.Group.Trustees) != 5 || !slices.Equal(rep.Holders, []int{1, 3, 4, 5}) {
		t.Fatalf("excluded %v roster %v holders %v", rep.Excluded, rep.Group.Trustees, rep.Holders)
	}
	checkInstalled(t, ns, rep, 1)
	if ns[1].node.Index() != 0 || len(ns[1].node.Epochs()) != 0 {
		t.Fatal("the trustee that was down holds a share")
	}
}

func TestRunDKGOneStopsMidway(t *testing.T) {
	ns, roster := ceremonyFederation(t, 5)
	opts := dkgOptions(roster, 3)
	opts.afterPhase = func(phase string, _ *coordinator) {
		if phase == "start" {
			ns[3].srv.Close() // trustee-4 dealt, then dies
		}
	}
	rep, err := runDKG(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Holders, []int{1, 2, 3, 5}) || !slices.Equal(rep.Group.Epochs[0].Holders, []int{1, 2, 3, 5}) {
		t.Fatalf("holders %v", rep.Holders)
	}
	checkInstalled(t, ns, rep, 1)
}

func TestRunDKGTooFewAborts(t *testing.T) {
	ns, roster := ceremonyFederation(t, 5)
	ns[0].srv.Close()
	ns[1].srv.Close()
	ns[2].srv.Close()
	_, err := runDKG(context.Background(), dkgOptions(roster, 3))
	if !errors.Is(err, ErrCeremonyFailed) || !strings.Contains(err.Error(), "only 2 of the roster's trustees answered, threshold is 3") {
		t.Fatalf("err %v", err)
	}
	for _, n := range ns[3:] {
		if ids, _ := n.store.CeremonyIDs(); len(ids) != 0 || len(n.node.Epochs()) != 0 || n.group != nil {
			t.Fatalf("%s kept something of an aborted ceremony: %v", n.name, ids)
		}
	}
	// Midway: two die after dealing, so 3 of 5 deals cannot all qualify
	// with a threshold of 4.
	ns, roster = ceremonyFederation(t, 5)
	opts := dkgOptions(roster, 4)
	opts.afterPhase = func(phase string, _ *coordinator) {
		if phase == "start" {
			ns[3].srv.Close()
			ns[4].srv.Close()
		}
	}
	_, err = runDKG(context.Background(), opts)
	if !errors.Is(err, ErrCeremonyFailed) {
		t.Fatalf("err %v", err)
	}
	t.Log(err)
	for _, n := range ns[:3] {
		if ids, _ := n.store.CeremonyIDs(); len(ids) != 0 || len(n.node.Epochs()) != 0 {
			t.Fatalf("%s kept something of an aborted ceremony: %v", n.name, ids)
		}
		// Logged: the approval, then the abort.
		if k := len(n.events); k != 2 || n.events[0].Kind != EventApproved || n.events[1].Kind != EventAborted || n.events[1].Code == "" {
			t.Fatalf("%s logged %+v", n.name, n.events)
		}
	}
}

func TestRunDKGBadDealIsNamed(t *testing.T) {
	ns, roster := ceremonyFederation(t, 5)
	opts := dkgOptions(roster, 3)
	opts.afterPhase = func(phase string, co *coordinator) {
		if phase != "start" {
			return
		}
		// trustee-5 sends trustee-1 a share that does not match its
		// commitments, and later withholds its justification.
		hc, err := ns[4].host.started(co.params.ID)
		if err != nil {
			t.Fatal(err)
		}
		corruptDeal(t, hc.cs[1], 1)
		hc.st.Outbox = nil
		for _, d := range hc.cs[1].deals {
			hc.st.Outbox = append(hc.st.Outbox, d.Bytes)
		}
		co.ps[4].outbox = hc.st.Outbox
		hc.mu.Unlock()
	}
	opts.dropMessage = func(m Message) bool { return m.Kind == KindJustification && m.From == 5 }
	rep, err := runDKG(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Disqualified) != 1 || rep.Disqualified[0].Name != "trustee-5" || !strings.Contains(rep.Disqualified[0].Reason, "does not match its commitments") {
		t.Fatalf("disqualified %+v", rep.Disqualified)
	}
	if !slices.Equal(rep.Holders, []int{1, 2, 3, 4}) {
		t.Fatalf("holders %v", rep.Holders)
	}
	t.Logf("named: %s: %s; problems: %v", rep.Disqualified[0].Name, rep.Disqualified[0].Reason, rep.Problems)
	checkInstalled(t, ns, rep, 1)
}

func TestRunDKGRestartMidCeremony(t *testing.T) {
	ns, roster := ceremonyFederation(t, 5)
	opts := dkgOptions(roster, 3)
	restarted := 0
	opts.afterPhase = func(phase string, _ *coordinator) {
		if phase == "start" || phase == "round 1" {
			// trustee-3's process restarts: only its store survives.
			ns[2].restart()
			restarted++
		}
	}
	rep, err := runDKG(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if restarted != 2 || !slices.Equal(rep.Holders, []int{1, 2, 3, 4, 5}) {
		t.Fatalf("restarted %d, holders %v", restarted, rep.Holders)
	}
	checkInstalled(t, ns, rep, 1)
}

// TestRestartResumesOnlyApproved: a restarted node keeps its operator's
// approvals in its store and resumes the approved ceremony, but a
// ceremony with other parameters is still refused after the restart, and
// a used proposal cannot be run again.
func TestRestartResumesOnlyApproved(t *testing.T) {
	ns, roster := ceremonyFederation(t, 3)
	opts := dkgOptions(roster, 2)
	var other CeremonyParams
	opts.afterPhase = func(phase string, co *coordinator) {
		if phase == "start" {
			ns[1].restart()
			other = co.params
			other.ValidUntil = other.ValidUntil.Add(24 * time.Hour)
			if _, err := ns[1].host.Prepare(other); !errors.Is(err, ErrNotApproved) {
				t.Errorf("after a restart, other parameters: %v", err)
			}
		}
	}
	rep, err := runDKG(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, ns, rep, 1)
	if _, err := ns[1].host.Prepare(other); !errors.Is(err, ErrNotApproved) {
		t.Errorf("after the ceremony: %v", err)
	}
	again := other
	again.ValidUntil = rep.Group.Epochs[0].ValidUntil
	if _, err := ns[1].host.Prepare(again); !errors.Is(err, ErrNotApproved) || !strings.Contains(err.Error(), "keyquorum trustee approve") {
		t.Errorf("the used proposal again: %v", err)
	}
	if hs, _ := ns[1].store.ApprovalHashes(); len(hs) != 0 {
		t.Errorf("approvals kept after the ceremony: %v", hs)
	}
}

func TestRotateAndRetention(t *testing.T) {
	ns, roster := ceremonyFederation(t, 4)
	rep, err := runDKG(context.Background(), dkgOptions(roster, 3))
	if err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, ns, rep, 1)
	opts, err := NextEpochOptions(rep.Signed, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), 0)
	if err != nil {
		t.Fatal(err)
	}
	opts.PhaseTimeout, opts.Rand = 2*time.Second, dkgRand("rotate")
	rep2, err := runDKG(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep2.Group.Epochs) != 2 || rep2.Group.Epochs[1].Epoch != 2 || !rep2.Group.Epochs[1].ValidFrom.Equal(rep.Group.Epochs[0].ValidUntil) {
		t.Fatalf("epochs %+v", rep2.Group.Epochs)
	}
	checkInstalled(t, ns, rep2, 2)
	// The proposal was used up: running it again is refused by every
	// trustee.
	if _, err := runDKG(context.Background(), opts); !errors.Is(err, ErrCeremonyFailed) || !strings.Contains(err.Error(), "not approved") {
		t.Fatalf("replayed rotation: %v", err)
	}
	// A new proposal of a rotation from the stale group file cannot even
	// be approved.
	stale, err := RotationProposal(rep.Signed, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), 0, time.Now().Add(time.Minute), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ns[0].host.Approve(sign(stale), nil); !errors.Is(err, ErrBadProposal) || !strings.Contains(err.Error(), "another group file") {
		t.Fatalf("approving a stale rotation: %v", err)
	}
}

func TestReshareOverAPI(t *testing.T) {
	ns, roster := ceremonyFederation(t, 5)
	rep, err := runDKG(context.Background(), dkgOptions(roster, 3))
	if err != nil {
		t.Fatal(err)
	}
	ropts, err := NextEpochOptions(rep.Signed, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), 0)
	if err != nil {
		t.Fatal(err)
	}
	ropts.PhaseTimeout, ropts.Rand = 2*time.Second, dkgRand("reshare/rotate")
	rep, err = runDKG(context.Background(), ropts)
	if err != nil {
		t.Fatal(err)
	}
	before := rep.Group
	oldShare := ns[0].node.Share(1)
	// 3-of-5 to 4-of-7: trustee-5 leaves, three join, indices move.
	var joiners []*cnode
	for i := 6; i <= 8; i++ {
		joiners = append(joiners, newCeremonyNode(t, i))
	}
	newRoster := []escrow.GroupMember{joiners[0].member, ns[0].member, ns[1].member, ns[2].member, ns[3].member, joiners[1].member, joiners[2].member}
	for i := range newRoster {
		newRoster[i].Index = i + 1
	}
	opts := reshareOptions(rep.Signed, newRoster, 4)
	rep2, err := runDKG(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	g := rep2.Group
	if g.Threshold != 4 || len(g.Trustees) != 7 || len(g.Epochs) != 2 || !slices.Equal(rep2.Holders, []int{1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("group after reshare: t=%d n=%d epochs=%d holders %v", g.Threshold, len(g.Trustees), len(g.Epochs), rep2.Holders)
	}
	all := append(slices.Clone(ns), joiners...)
	for i, e := range g.Epochs {
		if e.Key != before.Epochs[i].Key || !e.ValidFrom.Equal(before.Epochs[i].ValidFrom) {
			t.Fatalf("epoch %d changed its key or window", e.Epoch)
		}
		if slices.Equal(e.Commitment[:3], before.Epochs[i].Commitment[1:]) {
			t.Fatal("commitment not renewed")
		}
	}
	for _, e := range []uint32{1, 2} {
		checkInstalled(t, all, rep2, e)
	}
	// trustee-5 left: it holds nothing, and logged the erasure before
	// it happened; trustee-1 moved to index 2.
	if len(ns[4].node.Epochs()) != 0 || ns[4].node.Index() != 0 {
		t.Fatalf("the leaving trustee still holds epochs %v", ns[4].node.Epochs())
	}
	if ev := ns[4].events; len(ev) < 3 || ev[len(ev)-2].Kind != EventSharesErased || !slices.Equal(ev[len(ev)-2].Epochs, []uint32{1, 2}) || ev[len(ev)-1].Kind != EventCompleted {
		t.Fatalf("the leaving trustee logged %+v", ev)
	}
	if ns[0].node.Index() != 2 || joiners[0].node.Index() != 1 {
		t.Fatalf("indices after reshare: trustee-1 %d, trustee-6 %d", ns[0].node.Index(), joiners[0].node.Index())
	}
	// An old share does not fit the new sharing, alone or mixed.
	eg, _ := g.EscrowGroup(1)
	if group.Point().Mul(oldShare.Share, nil).Equal(eg.PublicShares[oldShare.Index]) {
		t.Fatal("an old share verifies against the new commitment")
	}
	mixed := []shares.Share{{Index: oldShare.Index, Value: oldShare.Share}}
	for _, n := range ns[1:4] {
		s := n.node.Share(1)
		mixed = append(mixed, shares.Share{Index: s.Index, Value: s.Share})
	}
	if x, err := shares.Recover(mixed, 4); err == nil && group.Point().Mul(x, nil).Equal(eg.Key) {
		t.Fatal("old and new shares mixed recover the key")
	}
	// A stale reshare (the old group file) is refused by the new roster.
	if _, err := runDKG(context.Background(), opts); !errors.Is(err, ErrCeremonyFailed) {
		t.Fatalf("reshare from the old group file: %v", err)
	}
}

// TestCeremonyHostSlotFilling: an outsider who reaches the API prepares
// ceremonies the operator never approved. None is stored, so none holds a
// slot; the operator's own approvals are bounded, expire at their
// deadlines, and the approved ceremony still runs.
func TestCeremonyHostSlotFilling(t *testing.T) {
	ns, roster := ceremonyFederation(t, 2)
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	store := &MemCeremonyStore{}
	var events []Event
	h, err := NewCeremonyHost(CeremonyHostConfig{
		Name: ns[0].name, LogSigner: ns[0].signer, Store: store, Install: ns[0].install,
		Share: ns[0].node.Share, Group: func() []byte { return nil }, Clock: func() time.Time { return now },
		Record: func(ev Event) error { events = append(events, ev); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	proposal := func(deadline time.Duration) (*Proposal, []byte) {
		p, err := DKGProposal(roster, 2, escrow.GroupEpoch{Epoch: 1, ValidFrom: now, ValidUntil: now.Add(time.Hour)}, now.Add(deadline), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return p, sign(p)
	}
	for i := 0; i < 100; i++ {
		p, signed := proposal(time.Minute)
		params := p.params("")
		params.Proposal = string(signed)
		if _, err := h.Prepare(params); !errors.Is(err, ErrNotApproved) {
			t.Fatalf("unapproved prepare %d: %v", i, err)
		}
	}
	if ids, _ := store.CeremonyIDs(); len(ids) != 0 || len(events) != 0 {
		t.Fatalf("unapproved calls left %d ceremonies and %d audit records", len(ids), len(events))
	}
	// The operator's approvals are bounded too.
	var last []byte
	for i := 0; i < DefaultMaxApprovals; i++ {
		_, last = proposal(time.Minute)
		if _, _, err := h.Approve(last, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, signed := proposal(time.Minute); true {
		if _, _, err := h.Approve(signed, nil); !errors.Is(err, ErrCeremonyRefused) || !strings.Contains(err.Error(), "already keeps 8 approved") {
			t.Fatalf("approval %d: %v", DefaultMaxApprovals+1, err)
		}
	}
	if len(events) != DefaultMaxApprovals || events[0].Kind != EventApproved {
		t.Fatalf("%d audit records for %d approvals", len(events), DefaultMaxApprovals)
	}
	// A deadline beyond the node's limit, or passed, is refused.
	if _, signed := proposal(2 * time.Hour); true {
		if _, _, err := h.Approve(signed, nil); !errors.Is(err, ErrCeremonyRefused) || !strings.Contains(err.Error(), "this node's limit") {
			t.Fatalf("far deadline: %v", err)
		}
	}
	now = now.Add(2 * time.Minute) // every approval passed its deadline
	if _, _, err := h.Approve(last, nil); !errors.Is(err, ErrCeremonyRefused) || !strings.Contains(err.Error(), "passed its deadline") {
		t.Fatalf("expired proposal: %v", err)
	}
	p, signed := proposal(time.Minute)
	if _, _, err := h.Approve(signed, nil); err != nil {
		t.Fatalf("after the deadlines: %v", err)
	}
	params := p.params("")
	params.Proposal = string(signed)
	if _, err := h.Prepare(params); err != nil {
		t.Fatal(err)
	}
	if ids, _ := h.Pending(); len(ids) != 1 {
		t.Fatalf("%d ceremonies kept", len(ids))
	}
}

// FuzzCeremonyAPI sends arbitrary bodies to every ceremony endpoint of a
// real node: each gets an answer (never a panic), and nothing but a
// well-formed call is accepted.
func FuzzCeremonyAPI(f *testing.F) {
	id := "0123456789abcdef0123456789abcdef"
	f.Add(uint8(0), []byte(`{"id":"`+id+`","params":{"version":"keyquorum ceremony v1","id":"`+id+`","kind":"dkg","epoch":1,"threshold":2,"roster":[]}}`))
	f.Add(uint8(1), []byte(`{"id":"`+id+`","keys":["a","b"]}`))
	f.Add(uint8(2), []byte(`{"id":"`+id+`","messages":["eyJ2ZXJzaW9uIjoia2V5cXVvcnVtIGRrZyBtZXNzYWdlIHYxIn0="]}`))
	f.Add(uint8(5), []byte(`{"id":"`+id+`","group":"x\n\n— trustee-1.keyquorum AAAA\n"}`))
	f.Add(uint8(7), []byte(`{"id":"../../etc"}`))
	f.Add(uint8(3), []byte(`[]`))
	var n *cnode
	paths := []string{PathCeremonyPrepare, PathCeremonyStart, PathCeremonyDeliver, PathCeremonyTimeout, PathCeremonyFinish, PathCeremonySign, PathCeremonyCommit, PathCeremonyAbort}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		if n == nil {
			n = newCeremonyNode(t, 1)
		}
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, paths[int(which)%len(paths)], bytes.NewReader(body))
		n.api.Load().ServeHTTP(w, r)
		if w.Code == http.StatusOK && int(which)%len(paths) != 7 {
			t.Fatalf("%s accepted %q", paths[int(which)%len(paths)], body)
		}
		if w.Code >= 500 {
			t.Fatalf("%s: %d %s", paths[int(which)%len(paths)], w.Code, w.Body)
		}
	})
}

func TestRotationProposalWindow(t *testing.T) {
	_, roster := ceremonyFederation(t, 3)
	rep, err := runDKG(context.Background(), dkgOptions(roster, 2)) // 2026-11-01 for 30 days
	if err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name       string
		now        time.Time
		length     time.Duration
		from, till time.Time
	}{
		{"running", time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), 0, end, end.Add(30 * 24 * time.Hour)},
		{"running, shorter", time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), 24 * time.Hour, end, end.Add(24 * time.Hour)},
		{"ended long ago", time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC), 0, end, time.Date(2027, 3, 31, 12, 0, 0, 0, time.UTC)},
	} {
		o, err := RotationProposal(rep.Signed, c.now, c.length, time.Now().Add(time.Minute), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if o.Epoch != 2 || !o.ValidFrom.Equal(c.from) || !o.ValidUntil.Equal(c.till) || o.Threshold != 2 || len(o.Roster) != 3 {
			t.Errorf("%s: epoch %d %s..%s", c.name, o.Epoch, o.ValidFrom, o.ValidUntil)
		}
	}
	unsigned, _ := rep.Group.Marshal()
	if _, err := RotationProposal(unsigned, end, 0, time.Now().Add(time.Minute), rand.Reader); !errors.Is(err, escrow.ErrGroupUnsigned) {
		t.Errorf("unsigned group: %v", err)
	}
}

func TestRotateWithATrusteeDown(t *testing.T) {
	ns, roster := ceremonyFederation(t, 5)
	rep, err := runDKG(context.Background(), dkgOptions(roster, 3))
	if err != nil {
		t.Fatal(err)
	}
	ns[2].srv.Close() // trustee-3 is down for the rotation
	opts, err := NextEpochOptions(rep.Signed, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), 0)
	if err != nil {
		t.Fatal(err)
	}
	opts.PhaseTimeout, opts.Rand = time.Second, dkgRand("rotate/down")
	rep2, err := runDKG(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep2.Excluded, []string{"trustee-3"}) || !slices.Equal(rep2.Group.Epochs[1].Holders, []int{1, 2, 4, 5}) ||
		len(rep2.Group.Trustees) != 5 || rep2.Group.Epochs[0].Holders != nil {
		t.Fatalf("excluded %v, epochs %+v", rep2.Excluded, rep2.Group.Epochs)
	}
	checkInstalled(t, ns, rep2, 2)
	if slices.Contains(ns[2].node.Epochs(), 2) {
		t.Fatal("the absent trustee holds the new epoch")
	}

	// With three of five down the threshold of 3 cannot be met: nothing is
	// made, and the others forget the
	ns[3].srv.Close()
	ns[4].srv.Close()
	opts, _ = NextEpochOptions(rep2.Signed, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), 0)
	opts.PhaseTimeout, opts.Rand = time.Second, dkgRand("rotate/down/3")
	if _, err := runDKG(context.Background(), opts); !errors.Is(err, ErrCeremonyFailed) || !strings.Contains(err.Error(), "threshold is 3") {
		t.Fatalf("rotation with 2 of 5 up: %v", err)
	}
	for _, n := range ns[:2] {
		if ids, _ := n.store.CeremonyIDs(); len(ids) != 0 || len(n.node.Epochs()) != 2 {
			t.Fatalf("%s: ceremonies %v epochs %v", n.name, ids, n.node.Epochs())
		}
	}
}

func TestReshareWithAnOldTrusteeDown(t *testing.T) {
	ns, roster := ceremonyFederation(t, 4)
	rep, err := runDKG(context.Background(), dkgOptions(roster, 2))
	if err != nil {
		t.Fatal(err)
	}
	ns[3].srv.Close() // trustee-4 is down and leaves
	newRoster := slices.Clone(roster[:3])
	opts := reshareOptions(rep.Signed, newRoster, 3)
	opts.PhaseTimeout = time.Second
	rep2, err := runDKG(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Group.Threshold != 3 || len(rep2.Group.Trustees) != 3 || !slices.Equal(rep2.Holders, []int{1, 2, 3}) {
		t.Fatalf("group %+v holders %v", rep2.Group, rep2.Holders)
	}
	if rep2.Group.Epochs[0].Key != rep.Group.Epochs[0].Key {
		t.Fatal("the key changed")
	}
	checkInstalled(t, ns, rep2, 1)
}

func TestAbsentTrusteeCatchesUp(t *testing.T) {
	ns, roster := ceremonyFederation(t, 4)
	rep, err := runDKG(context.Background(), dkgOptions(roster, 2))
	if err != nil {
		t.Fatal(err)
	}
	// trustee-4 misses the rotation to epoch 2 (its server refuses
	// connections), then comes back for the one to epoch 3.
	down := ns[3].api.Load()
	ns[3].api.Store(nil)
	ns[3].srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := ns[3].api.Load(); a != nil {
			a.ServeHTTP(w, r)
			return
		}
		hj, _ := w.(http.Hijacker)
		c, _, _ := hj.Hijack()
		c.Close()
	})
	now := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	opts, _ := NextEpochOptions(rep.Signed, now, 0)
	opts.PhaseTimeout, opts.Rand = 3*time.Second, dkgRand("catch up/2")
	rep2, err := runDKG(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep2.Group.Epochs[1].Holders, []int{1, 2, 3}) {
		t.Fatalf("epoch 2 holders %v", rep2.Group.Epochs[1].Holders)
	}
	ns[3].api.Store(down)
	opts, _ = NextEpochOptions(rep2.Signed, now, 0)
	opts.PhaseTimeout, opts.Rand = 10*time.Second, dkgRand("catch up/3")
	rep3, err := runDKG(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep3.Group.Epochs[2].Holders != nil || !slices.Equal(ns[3].node.Epochs(), []uint32{1, 3}) || !bytes.Equal(ns[3].group, rep3.Signed) {
		t.Fatalf("epoch 3 holders %v; trustee-4 holds %v", rep3.Group.Epochs[2].Holders, ns[3].node.Epochs())
	}
	checkInstalled(t, ns, rep3, 3)
}

func TestCeremonyHostRefusals(t *testing.T) {
	ns, roster := ceremonyFederation(t, 3)
	h := ns[0].host
	r := dkgRand("refusals")
	now := time.Now().UTC().Truncate(time.Second)
	params := func(edit func(*CeremonyParams)) CeremonyParams {
		id, _ := NewCeremonyID(r)
		p := CeremonyParams{Version: CeremonyParamsVersion, ID: id, Kind: CeremonyDKG, Epoch: 1, Threshold: 2,
			Roster: slices.Clone(roster), ValidFrom: now, ValidUntil: now.Add(time.Hour), Deadline: now.Add(time.Minute)}
		if edit != nil {
			edit(&p)
		}
		return p
	}
	otherKey := ns[1].member.LogKey
	// A call that names no approved proposal is refused first, whatever
	// else is wrong with it, and leaves nothing behind.
	for _, c := range []struct {
		name string
		p    CeremonyParams
	}{
		{"not in roster", params(func(p *CeremonyParams) { p.Roster = p.Roster[1:]; p.Roster[0].Index, p.Roster[1].Index = 1, 2 })},
		{"another log key", params(func(p *CeremonyParams) { p.Roster[0].LogKey = otherKey })},
		{"past deadline", params(func(p *CeremonyParams) { p.Deadline = now.Add(-time.Second) })},
		{"rotation without a group", params(func(p *CeremonyParams) { p.Group = "x" })},
		{"threshold 1", params(func(p *CeremonyParams) { p.Threshold = 1 })},
		{"bad id", params(func(p *CeremonyParams) { p.ID = "XYZ" })},
		{"kind", params(func(p *CeremonyParams) { p.Kind = "deal" })},
		{"version", params(func(p *CeremonyParams) { p.Version = "v0" })},
		{"window", params(func(p *CeremonyParams) { p.ValidUntil = p.ValidFrom })},
		{"garbage proposal", params(func(p *CeremonyParams) { p.Proposal = "keyquorum ceremony proposal v1\nid x\n\n— x y\n" })},
	} {
		if _, err := h.Prepare(c.p); !errors.Is(err, ErrNotApproved) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if ids, _ := ns[0].store.CeremonyIDs(); len(ids) != 0 || len(ns[0].events) != 0 {
		t.Fatalf("refused calls left ceremonies %v and %d audit records", ids, len(ns[0].events))
	}
	// The node's own checks apply when its operator reviews a proposal.
	epoch := escrow.GroupEpoch{Epoch: 1, ValidFrom: now, ValidUntil: now.Add(time.Hour)}
	for _, c := range []struct {
		name   string
		roster []escrow.GroupMember
		dl     time.Duration
		want   string
	}{
		{"not in roster", []escrow.GroupMember{{Index: 1, Name: roster[1].Name, LogKey: roster[1].LogKey}, {Index: 2, Name: roster[2].Name, LogKey: roster[2].LogKey}}, time.Minute, "does not list this trustee"},
		{"another log key", []escrow.GroupMember{{Index: 1, Name: roster[1].Name, LogKey: roster[1].LogKey}, {Index: 2, Name: roster[0].Name, LogKey: roster[2].LogKey}}, time.Minute, "not this node's"},
		{"past deadline", []escrow.GroupMember{roster[1], roster[0]}, -time.Second, "passed its deadline"},
	} {
		for i := range c.roster {
			c.roster[i].Index = i + 1
		}
		p, err := DKGProposal(c.roster, 2, epoch, now.Add(c.dl), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := h.Approve(sign(p), nil); !errors.Is(err, ErrCeremonyRefused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("approve %s: %v", c.name, err)
		}
	}
	if hs, _ := ns[0].store.ApprovalHashes(); len(hs) != 0 || len(ns[0].events) != 0 {
		t.Fatalf("refused approvals left approvals %v and %d audit records", hs, len(ns[0].events))
	}
	id, _ := NewCeremonyID(r)
	if _, err := h.Start(id, nil); !errors.Is(err, ErrNoCeremony) {
		t.Errorf("start of an unknown ceremony: %v", err)
	}
	prop, err := DKGProposal(roster, 2, epoch, now.Add(time.Minute), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signed := sign(prop)
	if _, _, err := h.Approve(signed, nil); err != nil {
		t.Fatal(err)
	}
	p := prop.params("")
	p.Proposal = string(signed)
	if _, err := h.Prepare(p); err != nil {
		t.Fatal(err)
	}
	again := p
	again.Threshold = 3
	if _, err := h.Prepare(again); !errors.Is(err, ErrNotApproved) || !strings.Contains(err.Error(), "differ from the approved proposal") {
		t.Errorf("prepare again with other parameters: %v", err)
	}
	if _, _, err := h.Deliver(p.ID, nil); !errors.Is(err, ErrCeremonyRefused) || !strings.Contains(err.Error(), "has not started") {
		t.Errorf("deliver before start: %v", err)
	}
	if _, err := h.Start(p.ID, []string{"a", "b"}); !errors.Is(err, ErrCeremonyRefused) || !strings.Contains(err.Error(), "2 key announcements for 3") {
		t.Errorf("start with too few announcements: %v", err)
	}
	if err := h.Commit(p.ID, []byte("{}")); !errors.Is(err, ErrCeremonyRefused) || !strings.Contains(err.Error(), "has not started") {
		t.Errorf("commit before start: %v", err)
	}
	if err := h.Abort(p.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Deliver(p.ID, nil); !errors.Is(err, ErrNoCeremony) {
		t.Errorf("deliver after abort: %v", err)
	}

	// A whole ceremony, then a node is asked to sign or commit what it did
	// not compute.
	opts := dkgOptions(roster, 2)
	var co *coordinator
	opts.afterPhase = func(phase string, c *coordinator) {
		if phase == "finish" {
			co = c
			g, err := co.groupFile()
			if err != nil {
				t.Fatal(err)
			}
			g.Epochs[0].ValidUntil = g.Epochs[0].ValidUntil.Add(time.Hour)
			b, _ := g.Marshal()
			if _, err := ns[1].host.Sign(co.params.ID, b); !errors.Is(err, ErrCeremonyRefused) || !strings.Contains(err.Error(), "not what this node computed") {
				t.Errorf("sign another window: %v", err)
			}
			if err := ns[1].host.Commit(co.params.ID, b); !errors.Is(err, ErrCeremonyRefused) {
				t.Errorf("commit an unsigned file: %v", err)
			}
		}
	}
	if _, err := runDKG(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if co == nil {
		t.Fatal("no finish phase")
	}
}

// memNode keeps a test trustee's shares as a node's vault would.
type memNode struct {
	mu     sync.Mutex
	index  int
	shares map[uint32]*escrow.EpochShare
}

func (m *memNode) Share(epoch uint32) *escrow.EpochShare {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.shares[epoch]
}

func (m *memNode) Epochs() []uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var es []uint32
	for e := range m.shares {
		es = append(es, e)
	}
	slices.Sort(es)
	return es
}

func (m *memNode) Index() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.index
}

func (m *memNode) addShare(s *escrow.EpochShare) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.shares[s.Epoch], m.index = s, s.Index
}

func (m *memNode) replaceShares(ss []*escrow.EpochShare) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.shares, m.index = map[uint32]*escrow.EpochShare{}, 0
	for _, s := range ss {
		m.shares[s.Epoch], m.index = s, s.Index
	}
}

// testDial reaches the test nodes over plain HTTP on loopback.
func testDial(m escrow.GroupMember) (Caller, error) {
	return &HTTPCaller{Name: m.Name, Base: "http://" + m.Address, Client: http.DefaultClient}, nil
}

// runDKG is RunDKG over testDial.
func runDKG(ctx context.Context, opts DKGOptions) (*DKGReport, error) {
	if opts.Dial == nil {
		opts.Dial = testDial
	}
	return RunDKG(ctx, opts)
}

// TestNoLogNoInstall: a node whose audit log fails when the ceremony
// completes installs nothing (fail closed); the others go ahead.
func TestNoLogNoInstall(t *testing.T) {
	ns, roster := ceremonyFederation(t, 3)
	ns[2].logDown = EventCompleted
	rep, err := runDKG(context.Background(), dkgOptions(roster, 2))
	if err != nil || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "not installed on: trustee-3") || !strings.Contains(rep.Problems[0], "could not be logged, so nothing is installed") {
		t.Fatalf("ceremony with a node that cannot log: %v, problems %v", err, rep.Problems)
	}
	if len(ns[2].node.Epochs()) != 0 || ns[2].group != nil {
		t.Fatalf("the node that could not log installed epochs %v", ns[2].node.Epochs())
	}
	for _, ev := range ns[2].events {
		if ev.Kind == EventCompleted {
			t.Fatal("a completion was logged")
		}
	}
}

// TestHandlerRouting: each ceremony endpoint takes POST only (405 with
// Allow: POST otherwise), and a path that is no ceremony call is a 404;
// both are JSON errors with the bad-message code.
func TestHandlerRouting(t *testing.T) {
	n := newCeremonyNode(t, 1)
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodGet, PathCeremonyPrepare, http.StatusMethodNotAllowed, "POST"},
		{http.MethodPut, PathCeremonyCommit, http.StatusMethodNotAllowed, "POST"},
		{http.MethodPost, "/v1/ceremony/nothing", http.StatusNotFound, ""},
		{http.MethodPost, PathCeremonyAbort, http.StatusForbidden, ""}, // a bad id: the call itself answers
	} {
		req, err := http.NewRequest(tc.method, n.srv.URL+tc.path, strings.NewReader(`{"id":"c-unknown"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e apiError
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.status || resp.Header.Get("Allow") != tc.allow || e.Error.Code == "" {
			t.Errorf("%s %s: %d, Allow %q, error %+v (%v)", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), e.Error, err)
		}
	}
}

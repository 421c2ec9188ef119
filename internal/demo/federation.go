package demo

import (
	"fmt"
	"io"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/sim"
	"github.com/keyquorum/keyquorum/shares"
	"github.com/keyquorum/keyquorum/trustee"
	"golang.org/x/mod/sumdb/note"
)

// federation is a set of in-process trustee nodes holding the dealt shares.
type federation struct {
	nodes   []*trustee.Node
	logKeys []note.Verifier
	rand    io.Reader
}

func newFederation(w *world, retention int, rand io.Reader) (*federation, error) {
	f := &federation{rand: rand}
	policy := trustee.DefaultPolicy(w.judge)
	policy.RetentionEpochs = retention
	for _, m := range w.group.Trustees {
		skey, vkey, err := note.GenerateKey(rand, m.Name+".log")
		if err != nil {
			return nil, err
		}
		signer, err := note.NewSigner(skey)
		if err != nil {
			return nil, err
		}
		verifier, err := note.NewVerifier(vkey)
		if err != nil {
			return nil, err
		}
		node, err := trustee.New(m.Name, m.Index, policy, trustee.NewMemAuditStore(), signer,
			trustee.WithClock(func() time.Time { return w.now }), trustee.WithRandom(rand))
		if err != nil {
			return nil, err
		}
		for _, d := range w.dealt {
			if d.Trustee.Index != m.Index {
				continue
			}
			g := w.groups[d.Epoch]
			es := &trustee.EpochShare{Epoch: d.Epoch, Index: m.Index, Share: d.Share.Value.Clone(), GroupKey: g.Key}
			if err := node.AddEpochShare(es, g.PublicShares[m.Index]); err != nil {
				return nil, err
			}
		}
		if retention > 0 {
			last := w.group.Epochs[len(w.group.Epochs)-1].Epoch
			if _, err := node.DestroyEpochsBefore(last); err != nil {
				return nil, err
			}
		}
		f.nodes = append(f.nodes, node)
		f.logKeys = append(f.logKeys, verifier)
	}
	return f, nil
}

// decryption is what a requester holds after one request: every verified
// partial decryption, the keys it combined, and each trustee's refusal.
type decryption struct {
	partials map[escrow.SessionID][]*escrow.PartialDecryption
	keys     map[escrow.SessionID][]byte
	refusals []error
}

// decrypt runs one warranted request from the requester in w against the
// trustees not marked down, verifying every answer's audit evidence and
// proofs, and combining each envelope.
func (f *federation) decrypt(w *world, envelopes [][]byte, down map[int]bool) (*decryption, error) {
	return f.request(w, w.warrant, w.requester, envelopes, down)
}

func (f *federation) request(w *world, warrant []byte, req *escrow.RequesterKey, envelopes [][]byte, down map[int]bool) (*decryption, error) {
	r, err := escrow.NewDecryptionRequest(warrant, envelopes, req, w.now, f.rand)
	if err != nil {
		return nil, err
	}
	wire := r.Marshal()
	d := &decryption{partials: map[escrow.SessionID][]*escrow.PartialDecryption{}, keys: map[escrow.SessionID][]byte{}}
	for i, n := range f.nodes {
		if down[n.Index()] {
			continue
		}
		ans, err := n.Decide(wire)
		if err != nil {
			d.refusals = append(d.refusals, err)
			continue
		}
		// The answer must prove its decision was logged.
		tree, err := trustee.VerifyHead(ans.Head, f.logKeys[i])
		if err != nil {
			return nil, fmt.Errorf("demo: %s: %w", n.Name(), err)
		}
		if err := trustee.VerifyInclusion(tree, ans.RecordIndex, ans.Record, ans.Proof); err != nil {
			return nil, fmt.Errorf("demo: %s: %w", n.Name(), err)
		}
		for _, p := range ans.Partials {
			d.partials[p.SessionID] = append(d.partials[p.SessionID], p)
		}
	}
	for _, b := range envelopes {
		env, err := escrow.ParseEnvelope(b)
		if err != nil {
			continue
		}
		g, ok := w.groups[env.Context.Epoch]
		if !ok {
			continue
		}
		res, err := escrow.Combine(g, env, req, d.partials[env.Context.SessionID])
		if err != nil {
			continue
		}
		d.keys[env.Context.SessionID] = res.Key
	}
	return d, nil
}

func (d *decryption) read(w *world, c *sim.Captured) ([]string, bool) {
	K, ok := d.keys[c.Context.SessionID]
	if !ok {
		return nil, false
	}
	return readSession(w, c, K)
}

// exposedTo counts the sessions a requester holding this decryption's view
// can open: every session it has a combined key for or can combine from the
// partial decryptions it received.
func (d *decryption) exposedTo(w *world, sessions []*sim.Captured) int {
	n := 0
	for _, c := range sessions {
		if _, ok := d.read(w, c); ok {
			n++
			continue
		}
		env := w.envelope(c)
		if env == nil {
			continue
		}
		g := w.groups[env.Context.Epoch]
		if res, err := escrow.Combine(g, env, w.requester, d.partials[env.Context.SessionID]); err == nil {
			if _, ok := readSession(w, c, res.Key); ok {
				n++
			}
		}
	}
	return n
}

// storedShares collects what an attacker gets by breaking into trustees
// with index ≤ k: their stored epoch shares.
func (f *federation) storedShares(take func(index int) bool) map[uint32][]shares.Share {
	out := map[uint32][]shares.Share{}
	for _, n := range f.nodes {
		if !take(n.Index()) {
			continue
		}
		for _, s := range n.StoredShares() {
			out[s.Epoch] = append(out[s.Epoch], shares.Share{Index: s.Index, Value: s.Share})
		}
	}
	return out
}

// loggedEverywhere reports whether each session appears in a granted
// decision record of at least t trustees' audit logs, reading the logs.
func (f *federation) loggedEverywhere(w *world, sessions []*sim.Captured) (bool, error) {
	count := map[string]int{}
	for _, n := range f.nodes {
		h, err := n.AuditLog().Head()
		if err != nil {
			return false, err
		}
		inThisLog := map[string]bool{}
		for i := int64(0); i < h.Tree.N; i++ {
			rec, _, err := n.AuditLog().Record(i)
			if err != nil {
				return false, err
			}
			if rec.Decision != trustee.AuditGranted {
				continue
			}
			for _, s := range rec.Sessions {
				inThisLog[s] = true
			}
		}
		for s := range inThisLog {
			count[s]++
		}
	}
	for _, c := range sessions {
		if count[c.Context.SessionID.String()] < w.cfg.Threshold {
			return false, nil
		}
	}
	return true, nil
}

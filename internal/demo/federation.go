package demo

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/fedrun"
	"github.com/keyquorum/keyquorum/internal/sim"
	"github.com/keyquorum/keyquorum/shares"
	"github.com/keyquorum/keyquorum/trustee"
	"golang.org/x/mod/sumdb/note"
)

// member is one trustee as the demo reaches it: an in-process node, or a
// real trustee process over its TLS API.
type member interface {
	name() string
	index() int
	decide(ctx context.Context, req []byte) (*trustee.Answer, error)
	// storedShares is what an attacker who breaks into this trustee's
	// storage gets.
	storedShares() ([]escrow.EpochShare, error)
	logKey() note.Verifier
}

// federation is a set of trustees holding the epoch shares.
type federation struct {
	members []member
	rand    io.Reader
	procs   *fedrun.Federation          // nil in-process
	stolen  map[int][]escrow.EpochShare // stored shares already read, by index
	// enter, if set, puts the trustees in the state this federation's
	// design needs before its first use ([world.federation]).
	enter func() error
}

type nodeMember struct {
	n   *trustee.Node
	key note.Verifier
}

func (m nodeMember) name() string                               { return m.n.Name() }
func (m nodeMember) index() int                                 { return m.n.Index() }
func (m nodeMember) logKey() note.Verifier                      { return m.key }
func (m nodeMember) storedShares() ([]escrow.EpochShare, error) { return m.n.StoredShares(), nil }
func (m nodeMember) decide(_ context.Context, req []byte) (*trustee.Answer, error) {
	return m.n.Decide(req)
}

type procMember struct {
	t    *fedrun.Trustee
	key  note.Verifier
	pass string
}

func (m procMember) name() string                               { return m.t.Name }
func (m procMember) index() int                                 { return m.t.Index }
func (m procMember) logKey() note.Verifier                      { return m.key }
func (m procMember) storedShares() ([]escrow.EpochShare, error) { return m.t.StoredShares(m.pass) }
func (m procMember) decide(ctx context.Context, req []byte) (*trustee.Answer, error) {
	return m.t.Client.Decrypt(ctx, req)
}

// newFederation builds in-process nodes holding the shares in w.held.
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
		for _, d := range w.held {
			if d.Trustee.Index != m.Index {
				continue
			}
			g := w.groups[d.Epoch]
			es := &escrow.EpochShare{Epoch: d.Epoch, Index: m.Index, Share: d.Share.Value.Clone(), GroupKey: g.Key}
			if err := node.AddEpochShare(es, g.PublicShares[m.Index]); err != nil {
				return nil, err
			}
		}
		if retention > 0 {
			if _, err := node.DestroyEpochsBefore(w.currentEpoch); err != nil {
				return nil, err
			}
		}
		f.members = append(f.members, nodeMember{n: node, key: verifier})
	}
	return f, nil
}

// passphrase is every demo trustee's passphrase; the demo's own
// processes, in a directory it removes, are the only ones that use it.
const passphrase = "demo passphrase: not for real trustees"

// The argon2id cost of the demo trustees' passphrase. The passphrase sits
// in a file next to their stores, so a costly key derivation would protect
// nothing, and each trustee derives its key several times (init, start,
// restart, and the attacker who copies its disk): the default cost, about
// 0.2 s each on two idle cores and far more on busy ones, would be most of
// the demo's run time. Real trustees keep the default.
const (
	demoKDFMemoryMiB = 8
	demoKDFPasses    = 1
)

// newProcessFederation sets up and starts real trustee processes holding
// the dealt shares, under dir.
func newProcessFederation(ctx context.Context, w *world, dir string, retention int, rand io.Reader) (*federation, error) {
	var names []string
	for _, m := range w.group.Trustees {
		names = append(names, m.Name)
	}
	fr, err := fedrun.Setup(ctx, fedrun.Options{
		Binary: w.cfg.Binary, Dir: dir, Names: names, Threshold: w.cfg.Threshold,
		Judges: []string{w.judgeKey}, Retention: retention, Passphrase: passphrase,
		KDFMemoryMiB: demoKDFMemoryMiB, KDFPasses: demoKDFPasses,
		KeyGeneration: fedrun.KeyGenerationDealer, Dealt: w.group, DealtShares: w.held,
	})
	if err != nil {
		return nil, err
	}
	// The senders escrowed under w.group's keys: the group file every
	// trustee signed must carry exactly those keys and commitments.
	for i, e := range w.group.Epochs {
		if i >= len(fr.Group.Epochs) || !slices.Equal(fr.Group.Epochs[i].Commitment, e.Commitment) {
			return nil, fmt.Errorf("demo: the group file the trustees signed lacks epoch %d's key the senders used", e.Epoch)
		}
	}
	if err := fr.StartAll(ctx); err != nil {
		fr.Close()
		return nil, err
	}
	f, err := procsFederation(fr, rand)
	if err != nil {
		fr.Close()
		return nil, err
	}
	return f, nil
}

// procsFederation is the demo's view of running trustee processes.
func procsFederation(fr *fedrun.Federation, rand io.Reader) (*federation, error) {
	f := &federation{rand: rand, procs: fr}
	for _, t := range fr.Members() {
		v, err := note.NewVerifier(t.Member.LogKey)
		if err != nil {
			return nil, err
		}
		f.members = append(f.members, procMember{t: t, key: v, pass: passphrase})
	}
	return f, nil
}

// close stops a process federation.
func (f *federation) close() {
	if f.procs != nil {
		f.procs.Close()
	}
}

// decryption is what a requester holds after one request: every verified
// partial decryption, the keys it combined, and each trustee's refusal.
type decryption struct {
	// batches holds the granted answers' partial decryptions, by epoch
	// (one escrow.BatchAnswer per trustee), over the request's envelopes
	// of that epoch (envs), for request reqID.
	batches  map[uint32][]*escrow.BatchAnswer
	envs     map[uint32][]*escrow.Envelope
	reqID    [16]byte
	keys     map[escrow.SessionID][]byte
	refusals []error
	answers  []memberAnswer // every trustee asked, in roster order
}

// memberAnswer is one trustee's answer to a request: err is nil when it
// granted.
type memberAnswer struct {
	name  string
	index int
	err   error
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
	d := &decryption{batches: map[uint32][]*escrow.BatchAnswer{}, envs: map[uint32][]*escrow.Envelope{}, reqID: r.ID, keys: map[escrow.SessionID][]byte{}}
	for _, b := range envelopes {
		if env, err := escrow.ParseEnvelope(b); err == nil {
			d.envs[env.Context.Epoch] = append(d.envs[env.Context.Epoch], env)
		}
	}
	for _, n := range f.members {
		if down[n.index()] {
			continue
		}
		if err := w.ctx.Err(); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second)
		ans, err := n.decide(ctx, wire)
		cancel()
		d.answers = append(d.answers, memberAnswer{name: n.name(), index: n.index(), err: err})
		if err != nil {
			d.refusals = append(d.refusals, err)
			continue
		}
		// The answer must prove its decision was logged.
		tree, err := trustee.VerifyHead(ans.Head, n.logKey())
		if err != nil {
			return nil, fmt.Errorf("demo: %s: %w", n.name(), err)
		}
		if err := trustee.VerifyInclusion(tree, ans.RecordIndex, ans.Record, ans.Proof); err != nil {
			return nil, fmt.Errorf("demo: %s: %w", n.name(), err)
		}
		for _, b := range ans.Batches {
			d.batches[b.Epoch] = append(d.batches[b.Epoch], b)
		}
	}
	d.keys = d.combine(w, req)
	return d, nil
}

// combine opens every session of the request it can with the batches
// received, re-encrypted to req: per epoch, one batch combination, which
// checks the proofs of the answers it needs.
func (d *decryption) combine(w *world, req *escrow.RequesterKey) map[escrow.SessionID][]byte {
	keys := map[escrow.SessionID][]byte{}
	for epoch, bs := range d.batches {
		g, ok := w.groups[epoch]
		if !ok {
			continue
		}
		c, err := escrow.NewCombiner(g, req)
		if err != nil {
			continue
		}
		res, err := c.CombineBatch(d.reqID, d.envs[epoch], bs)
		if err != nil {
			continue
		}
		for j, e := range d.envs[epoch] {
			if res.Errs[j] == nil {
				keys[e.Context.SessionID] = res.Keys[j]
			}
		}
	}
	return keys
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
	var mine map[escrow.SessionID][]byte // combined with w's requester key, if needed
	for _, c := range sessions {
		if _, ok := d.read(w, c); ok {
			n++
			continue
		}
		if mine == nil {
			mine = d.combine(w, w.requester)
		}
		if K, ok := mine[c.Context.SessionID]; ok {
			if _, ok := readSession(w, c, K); ok {
				n++
			}
		}
	}
	return n
}

// storedShares collects what an attacker gets by breaking into trustees
// with index ≤ k: their stored epoch shares.
func (f *federation) storedShares(take func(index int) bool) (map[uint32][]shares.Share, error) {
	out := map[uint32][]shares.Share{}
	for _, n := range f.members {
		if !take(n.index()) {
			continue
		}
		if f.stolen == nil {
			f.stolen = map[int][]escrow.EpochShare{}
		}
		stolen, ok := f.stolen[n.index()]
		if !ok {
			var err error
			if stolen, err = n.storedShares(); err != nil {
				return nil, fmt.Errorf("demo: reading %s's stored shares: %w", n.name(), err)
			}
			f.stolen[n.index()] = stolen
		}
		for _, s := range stolen {
			out[s.Epoch] = append(out[s.Epoch], shares.Share{Index: s.Index, Value: s.Share})
		}
	}
	return out, nil
}

// auditLogs reads and verifies every trustee's whole audit log: each record
// checked against the trustee's signed head. In process mode this is the
// auditor's code over the network.
func (f *federation) auditLogs(w *world) ([]*trustee.VerifiedLog, error) {
	if f.procs != nil {
		res, err := trustee.Audit(w.ctx, f.procs.Group, f.procs.Clients(), nil, trustee.AuditOptions{})
		if err != nil {
			return nil, err
		}
		if bad := res.Failed(); len(bad) > 0 || len(res.Logs) != len(f.members) {
			return nil, fmt.Errorf("demo: audit failed: %+v", res.Trustees)
		}
		return res.Logs, nil
	}
	var logs []*trustee.VerifiedLog
	for _, m := range f.members {
		l := m.(nodeMember).n.AuditLog()
		h, err := l.Head()
		if err != nil {
			return nil, err
		}
		tree, err := trustee.VerifyHead(h.Note, m.logKey())
		if err != nil {
			return nil, err
		}
		vl := &trustee.VerifiedLog{Trustee: m.name(), Index: m.index(), Tree: tree, Head: h.Note}
		for i := int64(0); i < tree.N; i++ {
			rec, b, err := l.Record(i)
			if err != nil {
				return nil, err
			}
			p, err := l.InclusionProof(i, tree.N)
			if err != nil {
				return nil, err
			}
			if err := trustee.VerifyInclusion(tree, i, b, p); err != nil {
				return nil, err
			}
			vl.Records = append(vl.Records, rec)
		}
		logs = append(logs, vl)
	}
	return logs, nil
}

// loggedEverywhere reports whether each session appears in a granted
// decision record of at least t trustees' verified audit logs.
func loggedEverywhere(w *world, logs []*trustee.VerifiedLog, sessions []*sim.Captured) bool {
	count := map[string]int{}
	for _, l := range logs {
		inThisLog := map[string]bool{}
		for _, rec := range l.Records {
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
			return false
		}
	}
	return true
}

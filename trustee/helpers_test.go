package trustee_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
	"go.dedis.ch/kyber/v3"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The test world's timeline. Three epochs; the default warrant covers
// alice's sessions that started in the first week of epoch 3, is valid for a
// week from day 18, and the clock starts on day 21.
var (
	t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

	testEpochs = []escrow.GroupEpoch{
		{Epoch: 1, ValidFrom: t0, ValidUntil: t0.Add(7 * day)},
		{Epoch: 2, ValidFrom: t0.Add(7 * day), ValidUntil: t0.Add(14 * day)},
		{Epoch: 3, ValidFrom: t0.Add(14 * day), ValidUntil: t0.Add(28 * day)},
	}

	windowStart = t0.Add(14 * day)
	windowEnd   = t0.Add(21 * day)
	validFrom   = t0.Add(18 * day)
	validUntil  = t0.Add(25 * day)
	startClock  = t0.Add(21 * day)
)

const (
	day = 24 * time.Hour

	// caseText is the warrant's case reference. It must never appear in an
	// audit record, only its hash.
	caseText = "case 2026/0117 concerning a confidential informant"

	testThreshold = 3
	testTrustees  = 5
)

// detRand returns a deterministic randomness source named by seed: a
// ChaCha8 stream keyed by SHA-256 of the seed.
func detRand(seed string) io.Reader {
	return mrand.NewChaCha8(sha256.Sum256([]byte(seed)))
}

// judgeKey is a judge's signer and verifier.
type judgeKey struct {
	name     string
	signer   note.Signer
	verifier note.Verifier
}

func newJudge(t testing.TB, name string) judgeKey {
	t.Helper()
	skey, vkey, err := escrow.NewJudgeKey(name, detRand("judge/"+name))
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return judgeKey{name: name, signer: s, verifier: v}
}

// world is everything a node test needs: a dealt 3-of-5 group with three
// epochs, judges, requesters, users and a movable clock that every node
// built from it reads.
type world struct {
	group     *escrow.GroupFile
	dealt     []escrow.DealtShare
	judge     judgeKey // trusted by the default policy
	judge2    judgeKey // a second judge, trusted where a test says so
	rogue     judgeKey // trusted by nobody
	requester *escrow.RequesterKey
	other     *escrow.RequesterKey // a different investigator
	users     map[string]*escrow.UserKey
	pubs      map[string]*escrow.UserPublic
	rand      io.Reader

	mu   sync.Mutex
	now  time.Time
	envs map[escrow.SessionID][]byte // every session's envelope, for combine
}

// newWorld builds a fresh world, with the group dealt from a fixed seed.
func newWorld(t testing.TB) *world {
	t.Helper()
	names := []string{"trustee-1", "trustee-2", "trustee-3", "trustee-4", "trustee-5"}
	g, dealt, err := escrow.Deal(names, testThreshold, testEpochs, detRand("deal"))
	if err != nil {
		t.Fatal(err)
	}
	w := &world{
		group: g, dealt: dealt,
		judge: newJudge(t, "judge-hale"), judge2: newJudge(t, "judge-okafor"), rogue: newJudge(t, "judge-rogue"),
		users: map[string]*escrow.UserKey{}, pubs: map[string]*escrow.UserPublic{},
		rand: detRand("world/" + t.Name()),
		now:  startClock,
	}
	if w.requester, err = escrow.GenerateRequesterKey(detRand("requester")); err != nil {
		t.Fatal(err)
	}
	if w.other, err = escrow.GenerateRequesterKey(detRand("other requester")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		u, err := escrow.GenerateUserKey(name, detRand("user/"+name))
		if err != nil {
			t.Fatal(err)
		}
		w.users[name] = u
		w.pubs[name] = u.Public()
	}
	return w
}

func (w *world) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *world) setClock(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = t
}

func (w *world) escrowGroup(t testing.TB, epoch uint32) *escrow.Group {
	t.Helper()
	g, err := w.group.EscrowGroup(epoch)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// testSession is one escrowed session with one message in it, as the
// provider captured it, plus the key the endpoints hold.
type testSession struct {
	keys     *escrow.SessionKeys
	session  *escrow.Session
	envelope []byte
	text     string
}

func (s *testSession) id() escrow.SessionID { return s.keys.Context.SessionID }

// session starts a session from one user to another at start, escrowed
// under the epoch the group file says is current then.
func (w *world) session(t testing.TB, from, to string, start time.Time) *testSession {
	t.Helper()
	e, err := w.group.EpochAt(start)
	if err != nil {
		t.Fatal(err)
	}
	return w.sessionUnder(t, from, to, start, e.Epoch, w.escrowGroup(t, e.Epoch).Key)
}

// sessionUnder starts a session escrowed under an explicit epoch and key.
func (w *world) sessionUnder(t testing.TB, from, to string, start time.Time, epoch uint32, point kyber.Point) *testSession {
	t.Helper()
	keys, s, err := escrow.StartSession(w.users[from], w.pubs[to], epoch, escrow.NewEpochKey(point), start, w.rand)
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("%s to %s at %s", from, to, start.Format(time.RFC3339))
	m, err := keys.Seal(w.users[from], 0, text)
	if err != nil {
		t.Fatal(err)
	}
	s.Messages = append(s.Messages, m)
	ts := &testSession{keys: keys, session: s, envelope: s.Envelope, text: text}
	w.mu.Lock()
	if w.envs == nil {
		w.envs = map[escrow.SessionID][]byte{}
	}
	w.envs[ts.id()] = s.Envelope
	w.mu.Unlock()
	return ts
}

// defaultWarrant is the warrant most tests use: alice's sessions in the
// first week of epoch 3, for the test requester, signed by the trusted
// judge.
func (w *world) defaultWarrant() *escrow.Warrant {
	return &escrow.Warrant{
		ID:          "W-2026-0001",
		Case:        caseText,
		Requester:   w.requester.Public,
		Targets:     []string{"alice"},
		WindowStart: windowStart,
		WindowEnd:   windowEnd,
		ValidFrom:   validFrom,
		ValidUntil:  validUntil,
		MaxSessions: 10,
		Purpose:     "read the target's sessions in the week of the incident",
	}
}

// signWarrant encodes wr and has each judge sign it in turn.
func signWarrant(t testing.TB, wr *escrow.Warrant, judges ...judgeKey) []byte {
	t.Helper()
	b, err := wr.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range judges {
		if b, err = escrow.SignWarrant(b, j.signer); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// warrant returns the default warrant, changed by edit if not nil, signed
// by the trusted judge.
func (w *world) warrant(t testing.TB, edit func(*escrow.Warrant)) []byte {
	t.Helper()
	wr := w.defaultWarrant()
	if edit != nil {
		edit(wr)
	}
	return signWarrant(t, wr, w.judge)
}

// request encodes a decryption request signed by req at the world's clock.
func (w *world) request(t testing.TB, warrant []byte, req *escrow.RequesterKey, sessions ...*testSession) []byte {
	t.Helper()
	var envs [][]byte
	for _, s := range sessions {
		envs = append(envs, s.envelope)
	}
	return w.requestEnvelopes(t, warrant, req, envs...)
}

func (w *world) requestEnvelopes(t testing.TB, warrant []byte, req *escrow.RequesterKey, envs ...[]byte) []byte {
	t.Helper()
	r, err := escrow.NewDecryptionRequest(warrant, envs, req, w.clock(), w.rand)
	if err != nil {
		t.Fatal(err)
	}
	return r.Marshal()
}

func (w *world) policy() trustee.Policy {
	return trustee.DefaultPolicy(w.judge.verifier)
}

// testNode is a trustee node with what a test needs to check its answers.
type testNode struct {
	*trustee.Node
	logKey note.Verifier
}

// bareNode builds trustee index with policy p over store (a fresh memory
// store if nil), holding no share yet.
func (w *world) bareNode(t testing.TB, index int, p trustee.Policy, store trustee.AuditStore) *testNode {
	t.Helper()
	name := fmt.Sprintf("trustee-%d", index)
	skey, vkey, err := note.GenerateKey(detRand("log/"+name), name+".log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if store == nil {
		store = trustee.NewMemAuditStore()
	}
	n, err := trustee.New(name, index, p, store, signer,
		trustee.WithClock(w.clock), trustee.WithRandom(detRand("node/"+name)))
	if err != nil {
		t.Fatal(err)
	}
	return &testNode{Node: n, logKey: verifier}
}

// node builds trustee index with policy p over store (a fresh memory store
// if nil) and installs its dealt shares of every epoch.
func (w *world) node(t testing.TB, index int, p trustee.Policy, store trustee.AuditStore) *testNode {
	t.Helper()
	n := w.bareNode(t, index, p, store)
	for _, d := range w.dealt {
		if d.Trustee.Index != index {
			continue
		}
		if err := n.AddEpochShare(w.epochShare(t, d), w.escrowGroup(t, d.Epoch).PublicShares[index]); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// epochShare turns a dealt share into the node's form, with its own copy
// of the secret (a node overwrites it when it destroys the epoch).
func (w *world) epochShare(t testing.TB, d escrow.DealtShare) *escrow.EpochShare {
	t.Helper()
	return &escrow.EpochShare{Epoch: d.Epoch, Index: d.Trustee.Index, Share: d.Share.Value.Clone(), GroupKey: w.escrowGroup(t, d.Epoch).Key}
}

// dealtShare returns the dealt share of trustee index for epoch.
func (w *world) dealtShare(t testing.TB, index int, epoch uint32) escrow.DealtShare {
	t.Helper()
	for _, d := range w.dealt {
		if d.Trustee.Index == index && d.Epoch == epoch {
			return d
		}
	}
	t.Fatalf("no dealt share for trustee %d epoch %d", index, epoch)
	return escrow.DealtShare{}
}

// federation builds all five trustees with the same policy.
func (w *world) federation(t testing.TB, p trustee.Policy) []*testNode {
	t.Helper()
	var ns []*testNode
	for i := 1; i <= testTrustees; i++ {
		ns = append(ns, w.node(t, i, p, nil))
	}
	return ns
}

// logSize returns the number of records in n's audit log.
func logSize(t testing.TB, n *testNode) int64 {
	t.Helper()
	h, err := n.AuditLog().Head()
	if err != nil {
		t.Fatal(err)
	}
	return h.Tree.N
}

// lastRecord returns the newest record of n's audit log.
func lastRecord(t testing.TB, n *testNode) (trustee.AuditRecord, []byte) {
	t.Helper()
	size := logSize(t, n)
	if size == 0 {
		t.Fatalf("%s: audit log is empty", n.Name())
	}
	rec, b, err := n.AuditLog().Record(size - 1)
	if err != nil {
		t.Fatal(err)
	}
	return rec, b
}

// grant asks n to decide req, requires a grant, and checks the answer's
// audit evidence: a head signed by n's log key, the record included in it,
// the record being the log's own, and a granted decision.
func grant(t testing.TB, n *testNode, req []byte) *trustee.Answer {
	t.Helper()
	before := logSize(t, n)
	ans, err := n.Decide(req)
	if err != nil {
		t.Fatalf("%s refused, want a grant: %v", n.Name(), err)
	}
	if ans.Trustee != n.Name() || ans.Index != n.Index() {
		t.Errorf("answer names trustee %s/%d, want %s/%d", ans.Trustee, ans.Index, n.Name(), n.Index())
	}
	tree, err := trustee.VerifyHead(ans.Head, n.logKey)
	if err != nil {
		t.Fatalf("%s: answer head: %v", n.Name(), err)
	}
	if err := trustee.VerifyInclusion(tree, ans.RecordIndex, ans.Record, ans.Proof); err != nil {
		t.Fatalf("%s: answer record: %v", n.Name(), err)
	}
	if ans.RecordIndex != before || tree.N != before+1 {
		t.Errorf("%s: record %d in tree of %d, want record %d in tree of %d", n.Name(), ans.RecordIndex, tree.N, before, before+1)
	}
	_, logged, err := n.AuditLog().Record(ans.RecordIndex)
	if err != nil {
		t.Fatal(err)
	}
	if string(logged) != string(ans.Record) {
		t.Errorf("%s: answer record differs from the logged one:\n%s\n%s", n.Name(), ans.Record, logged)
	}
	rec, err := trustee.ParseAuditRecord(ans.Record)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind != trustee.AuditKindDecision || rec.Decision != trustee.AuditGranted || rec.Refusal != nil {
		t.Errorf("%s: record is %s/%s/%v, want a granted decision", n.Name(), rec.Kind, rec.Decision, rec.Refusal)
	}
	return ans
}

// refuse asks n to decide req and requires a refusal with the given code
// that wraps sentinel, no answer, and exactly one new log record: a
// refused decision carrying that code and releasing no session.
// unauthenticated reports whether a refusal for sentinel is one of a
// request the node cannot attribute to a trusted judge, which it does not
// log.
func unauthenticated(sentinel error) bool {
	for _, s := range []error{escrow.ErrWarrantSignature, escrow.ErrUnknownJudge, escrow.ErrTooFewJudges, escrow.ErrBadWarrant, escrow.ErrBadRequest, trustee.ErrStaleRequest} {
		if sentinel == s {
			return true
		}
	}
	return false
}

func refuse(t testing.TB, n *testNode, req []byte, code string, sentinel error) *trustee.RefusalError {
	t.Helper()
	before := logSize(t, n)
	ans, err := n.Decide(req)
	if ans != nil {
		t.Errorf("%s returned an answer for %d sessions alongside a refusal", n.Name(), ans.Sessions())
	}
	var re *trustee.RefusalError
	if !errors.As(err, &re) {
		t.Fatalf("%s: got %v (%T), want a *trustee.RefusalError with code %s", n.Name(), err, err, code)
	}
	if re.Code != code {
		t.Errorf("%s: refusal code %q, want %q (%v)", n.Name(), re.Code, code, err)
	}
	if re.Trustee != n.Name() {
		t.Errorf("refusal names trustee %q, want %q", re.Trustee, n.Name())
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("%s: refusal %v does not wrap %v", n.Name(), err, sentinel)
	}
	if unauthenticated(sentinel) {
		// Not signed by the judges the node trusts (or not even a
		// request): refused without a record.
		if !errors.Is(err, trustee.ErrUnauthenticated) {
			t.Errorf("%s: refusal %v does not wrap ErrUnauthenticated", n.Name(), err)
		}
		if after := logSize(t, n); after != before {
			t.Fatalf("%s: log went from %d to %d records on an unauthenticated request, want no record", n.Name(), before, after)
		}
		return re
	}
	if errors.Is(err, trustee.ErrUnauthenticated) {
		t.Errorf("%s: refusal %v wraps ErrUnauthenticated", n.Name(), err)
	}
	if after := logSize(t, n); after != before+1 {
		t.Fatalf("%s: log went from %d to %d records on a refusal, want one more", n.Name(), before, after)
	}
	rec, _ := lastRecord(t, n)
	if rec.Kind != trustee.AuditKindDecision || rec.Decision != trustee.AuditRefused {
		t.Errorf("%s: last record is %s/%s, want a refused decision", n.Name(), rec.Kind, rec.Decision)
	}
	if rec.Refusal == nil || rec.Refusal.Code != code {
		t.Errorf("%s: last record's refusal is %+v, want code %s", n.Name(), rec.Refusal, code)
	}
	if len(rec.Sessions) != 0 {
		t.Errorf("%s: refused record lists released sessions %v", n.Name(), rec.Sessions)
	}
	return re
}

// open combines the partials for s from the answers and checks that the
// key is the session's and that it opens the session's message.
func (w *world) open(t testing.TB, s *testSession, answers []*trustee.Answer) {
	t.Helper()
	K, err := w.combine(s, answers)
	if err != nil {
		t.Fatalf("session %s: %v", s.id(), err)
	}
	if string(K) != string(s.keys.Key) {
		t.Fatalf("session %s: combined key differs from the session key", s.id())
	}
	env, err := escrow.ParseEnvelope(s.envelope)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := escrow.KeysFromRecovered(env, K)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := keys.Open(s.session.Messages[0], w.pubs)
	if err != nil {
		t.Fatalf("session %s: recovered key does not open the message: %v", s.id(), err)
	}
	if pt.Text != s.text {
		t.Fatalf("session %s: read %q, want %q", s.id(), pt.Text, s.text)
	}
}

// combine collects the batches that answer s from answers and combines
// them as the default requester ([escrow.Combiner.CombineBatch] over the
// batches' sessions), returning s's key.
func (w *world) combine(s *testSession, answers []*trustee.Answer) ([]byte, error) {
	env, err := escrow.ParseEnvelope(s.envelope)
	if err != nil {
		return nil, err
	}
	g, err := w.group.EscrowGroup(env.Context.Epoch)
	if err != nil {
		return nil, err
	}
	var batches []*escrow.BatchAnswer
	for _, a := range answers {
		for _, b := range a.Batches {
			if slices.Contains(b.Sessions, s.id()) {
				batches = append(batches, b)
			}
		}
	}
	envs, at := []*escrow.Envelope{env}, 0
	var reqID [16]byte
	if len(batches) > 0 {
		reqID, envs = batches[0].RequestID, nil
		for x, sid := range batches[0].Sessions {
			w.mu.Lock()
			b := w.envs[sid]
			w.mu.Unlock()
			e, err := escrow.ParseEnvelope(b)
			if err != nil {
				return nil, err
			}
			envs = append(envs, e)
			if sid == s.id() {
				at = x
			}
		}
	}
	c, err := escrow.NewCombiner(g, w.requester)
	if err != nil {
		return nil, err
	}
	res, err := c.CombineBatch(reqID, envs, batches)
	if err != nil {
		return nil, err
	}
	if res.Errs[at] != nil {
		return nil, res.Errs[at]
	}
	return res.Keys[at], nil
}

// failingStore is an AuditStore that refuses to append while fail is set,
// as a full disk or a lost database connection would.
type failingStore struct {
	*trustee.MemAuditStore
	mu   sync.Mutex
	fail bool
}

var errStoreDown = errors.New("audit store: disk full")

func (s *failingStore) setFail(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = v
}

func (s *failingStore) Append(start int64, records [][]byte, hashes []tlog.Hash, checkpoint []byte) error {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail {
		return errStoreDown
	}
	return s.MemAuditStore.Append(start, records, hashes, checkpoint)
}

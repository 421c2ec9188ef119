package trustee

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyquorum/keyquorum/ceremony"
	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// MaxRequestAge is how far a request's creation time may be from the
// trustee's clock.
const MaxRequestAge = 15 * time.Minute

// Refusal codes: stable strings a requester (and the HTTP API) can switch on.
const (
	CodeBadRequest       = "bad-request"
	CodeBadWarrant       = "bad-warrant"
	CodeWarrantExpired   = "warrant-expired"
	CodeNotYetValid      = "warrant-not-yet-valid"
	CodeUnknownJudge     = "unknown-judge"
	CodeTooFewJudges     = "too-few-judges"
	CodeBadSignature     = "bad-request-signature"
	CodePolicyLimit      = "policy-limit"
	CodeRateLimited      = "rate-limited"
	CodeBadEnvelope      = "bad-envelope"
	CodeUnknownEpoch     = "unknown-epoch"
	CodeEpochDestroyed   = "epoch-destroyed"
	CodeOutOfScope       = "out-of-scope"
	CodeProspectiveOnly  = "prospective-only"
	CodeSessionCap       = "session-cap"
	CodeAuditUnavailable = "audit-unavailable"
)

// Sentinels for the refusals a caller is likely to test for. Each
// [RefusalError] wraps one of these or an escrow sentinel.
var (
	ErrPolicyLimit     = errors.New("trustee: warrant exceeds this trustee's policy")
	ErrRateLimited     = errors.New("trustee: judge rate limit reached")
	ErrUnknownEpoch    = errors.New("trustee: envelope is escrowed under an epoch this trustee never held")
	ErrEpochDestroyed  = errors.New("trustee: this trustee destroyed its share of that epoch under its retention policy; the session can no longer be decrypted by anyone")
	ErrProspectiveOnly = errors.New("trustee: this trustee only releases sessions that started after the warrant became valid")
	ErrSessionCap      = errors.New("trustee: the warrant's session cap is reached")
	ErrStaleRequest    = errors.New("trustee: request too old or from the future")
	ErrAuditFailed     = errors.New("trustee: the audit log could not be written, so nothing is released (fail closed)")
)

// RefusalError is a refused request: a stable code, the trustee's name and
// the reason, which tells the requester what to do next.
type RefusalError struct {
	Trustee string
	Code    string
	Err     error
}

func (e *RefusalError) Error() string {
	return fmt.Sprintf("trustee %s refused (%s): %v", e.Trustee, e.Code, e.Err)
}

func (e *RefusalError) Unwrap() error { return e.Err }

// Answer is a granted request: the trustee's partial decryptions, one
// [escrow.BatchAnswer] per epoch the request's envelopes are of (in the
// order each epoch first appears, each over that epoch's envelopes in
// request order: m values V_j and one composite proof), and the audit
// evidence of the decision.
type Answer struct {
	Trustee     string
	Index       int
	Batches     []*escrow.BatchAnswer
	RecordIndex int64
	Record      []byte
	Head        []byte // signed tree head note
	Proof       tlog.RecordProof
}

// Node is a trustee. It is safe for concurrent use.
type Node struct {
	name  string
	index int
	clock func() time.Time
	rand  io.Reader
	log   *AuditLog
	erase func(epoch uint32) error

	mu        sync.Mutex
	policy    Policy
	shares    map[uint32]*escrow.EpochShare
	destroyed map[uint32]bool
	// pendingErase holds destroyed epochs whose stored share could not be
	// erased yet.
	pendingErase map[uint32]bool
	public       map[uint32]kyber.Point               // X_i of every held epoch, checked against the group
	released     map[string]map[escrow.SessionID]bool // by warrant id
	judgeUse     map[string][]time.Time               // grant times by judge
	// seen holds the requests decided within twice MaxRequestAge, by id,
	// oldest first in seenOrder, to answer replays the same way.
	seen      map[requestID]*decided
	seenOrder []requestID
	// logging holds the requests whose decision is being appended to the
	// log outside the lock; the channel closes when it is settled.
	logging map[requestID]chan struct{}
	// granting counts grants reserved under the lock and being logged
	// outside it; settled is signalled when it drops. Retention and
	// resharing wait for it to reach 0 before they touch a share.
	granting int
	settled  *sync.Cond
	// witnesses cosign the checkpoint an answer goes out under.
	witnesses atomic.Pointer[Witnesses]
}

// Option configures a Node.
type Option func(*Node)

// WithClock sets the node's clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(n *Node) { n.clock = now } }

// WithRandom sets the node's randomness source (default crypto/rand).
func WithRandom(r io.Reader) Option { return func(n *Node) { n.rand = r } }

// WithShareEraser sets how a destroyed epoch share is erased from durable
// storage. [Node.DestroyEpochsBefore] calls it after logging the
// destruction and before forgetting the share in memory.
func WithShareEraser(erase func(epoch uint32) error) Option {
	return func(n *Node) { n.erase = erase }
}

// New returns a trustee node with the given name, 1-based share index and
// policy that writes its audit log to store, signing tree heads with
// logSigner.
func New(name string, index int, policy Policy, store AuditStore, logSigner note.Signer, opts ...Option) (*Node, error) {
	if index < 0 {
		return nil, fmt.Errorf("trustee: share index must be 1 or more (or 0 for a node that joins its group through a key ceremony), got %d", index)
	}
	if err := policy.Validate(); err != nil {
		return nil, err
	}
	n := &Node{
		name: name, index: index, policy: policy,
		clock: time.Now, rand: rand.Reader,
		shares:       map[uint32]*escrow.EpochShare{},
		destroyed:    map[uint32]bool{},
		pendingErase: map[uint32]bool{},
		public:       map[uint32]kyber.Point{},
		released:     map[string]map[escrow.SessionID]bool{},
		judgeUse:     map[string][]time.Time{},
		seen:         map[requestID]*decided{},
		logging:      map[requestID]chan struct{}{},
	}
	n.settled = sync.NewCond(&n.mu)
	for _, o := range opts {
		o(n)
	}
	log, err := NewAuditLog(store, logSigner, n.clock)
	if err != nil {
		return nil, err
	}
	n.log = log
	if err := n.replay(); err != nil {
		return nil, err
	}
	return n, nil
}

// replay rebuilds what the node must remember across restarts from its own
// audit log, the one durable record of every decision: the sessions
// released under each warrant (for the session cap), when each judge's
// warrants were last granted (for the rate limit), and which epochs were
// destroyed. Nothing is counted that the log does not hold, so a crash
// between logging a grant and answering counts the grant, which errs on the
// side of the cap.
func (n *Node) replay() error {
	size, err := n.log.Size()
	if err != nil {
		return fmt.Errorf("trustee: reading the audit log at start: %w", err)
	}
	for i := int64(0); i < size; i++ {
		rec, _, err := n.log.Record(i)
		if err != nil {
			return fmt.Errorf("trustee: replaying the audit log at start: %w", err)
		}
		if rec.Kind == AuditKindDecision && rec.Request != "" && rec.RequestHash != "" {
			var id requestID
			if b, err := hex.DecodeString(rec.Request); err == nil && len(b) == len(id) {
				copy(id[:], b)
				d := &decided{index: i, hash: rec.RequestHash, at: rec.Time}
				if rec.Refusal != nil {
					d.code = rec.Refusal.Code
				}
				n.remember(id, d)
			}
		}
		switch {
		case rec.Kind == AuditKindShareDestroyed:
			n.destroyed[uint32(rec.Epoch)] = true
		case rec.Kind == AuditKindDecision && rec.Decision == AuditGranted:
			rel := n.released[rec.WarrantID]
			if rel == nil {
				rel = map[escrow.SessionID]bool{}
				n.released[rec.WarrantID] = rel
			}
			for _, s := range rec.Sessions {
				sid, err := escrow.ParseSessionID(s)
				if err != nil {
					return fmt.Errorf("%w: record %d: %w", ErrAuditStoreCorrupt, i, err)
				}
				rel[sid] = true
			}
			for _, j := range rec.Judges {
				n.judgeUse[j] = append(n.judgeUse[j], rec.Time)
			}
		}
	}
	return nil
}

// Name returns the trustee's name.
func (n *Node) Name() string { return n.name }

// Index returns the trustee's 1-based share index, 0 while it holds no
// share yet.
func (n *Node) Index() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.index
}

// AuditLog returns the node's audit log.
func (n *Node) AuditLog() *AuditLog { return n.log }

// AddEpochShare installs this trustee's share of an epoch key, after checking
// it against the trustee's public share from the group's commitment.
// A node made with index 0 takes the index of its first share.
func (n *Node) AddEpochShare(s *escrow.EpochShare, publicShare kyber.Point) error {
	if !group.Point().Mul(s.Share, nil).Equal(publicShare) {
		return fmt.Errorf("trustee: share for epoch %d does not match the group's public share for trustee %d; the dealer or the file is wrong", s.Epoch, s.Index)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.index == 0 && len(n.shares) == 0 && s.Index > 0 {
		n.index = s.Index
	}
	if s.Index != n.index {
		return fmt.Errorf("trustee: share is for index %d, this trustee is %d", s.Index, n.index)
	}
	if n.destroyed[s.Epoch] {
		return fmt.Errorf("%w: epoch %d was destroyed (its audit log says so); it cannot be reinstalled", ErrEpochDestroyed, s.Epoch)
	}
	if old, ok := n.shares[s.Epoch]; ok && !old.Share.Equal(s.Share) {
		return fmt.Errorf("trustee: a different share for epoch %d is already installed; refusing to replace it", s.Epoch)
	}
	c := *s // keep our own copy: retention zeroes it
	c.Share = s.Share.Clone()
	n.shares[s.Epoch] = &c
	n.public[s.Epoch] = publicShare.Clone()
	return nil
}

// ReplaceShares installs the shares a reshare gave this node in place of
// every share it held: old shares are zeroed and forgotten, and the node
// takes the index of the new ones (0 if it holds none: it left the group).
// publicShares gives, by epoch, the new public share each must match.
func (n *Node) ReplaceShares(shares []*escrow.EpochShare, publicShares map[uint32]kyber.Point) error {
	index := 0
	for _, s := range shares {
		if index != 0 && s.Index != index {
			return fmt.Errorf("trustee: new shares with indices %d and %d", index, s.Index)
		}
		index = s.Index
		if p := publicShares[s.Epoch]; p == nil || !group.Point().Mul(s.Share, nil).Equal(p) {
			return fmt.Errorf("trustee: new share for epoch %d does not match the group's public share for trustee %d", s.Epoch, s.Index)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.waitGrantsLocked()
	for e, old := range n.shares {
		old.Share.Zero()
		delete(n.shares, e)
		delete(n.public, e)
	}
	n.index = index
	for _, s := range shares {
		c := *s
		c.Share = s.Share.Clone()
		n.shares[s.Epoch] = &c
		n.public[s.Epoch] = publicShares[s.Epoch].Clone()
	}
	return nil
}

// Share returns a copy of the node's share of an epoch, or nil.
func (n *Node) Share(epoch uint32) *escrow.EpochShare {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.shares[epoch]
	if !ok {
		return nil
	}
	c := *s
	c.Share = s.Share.Clone()
	c.GroupKey = s.GroupKey.Clone()
	return &c
}

// Epochs returns the epochs this node holds shares for, ascending.
func (n *Node) Epochs() []uint32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	var es []uint32
	for e := range n.shares {
		es = append(es, e)
	}
	sort.Slice(es, func(i, j int) bool { return es[i] < es[j] })
	return es
}

// DestroyEpochsBefore applies retention with current as the newest epoch:
// shares of epochs older than current−RetentionEpochs+1 are overwritten and
// forgotten, and each destruction is logged. It returns the destroyed epochs.
func (n *Node) DestroyEpochsBefore(current uint32) ([]uint32, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.waitGrantsLocked()
	if n.policy.RetentionEpochs == 0 {
		return nil, nil
	}
	var errs []error
	// Finish erasures that failed before: the destruction is already
	// logged and the share forgotten in memory; only the store lags.
	for e := range n.pendingErase {
		if err := n.erase(e); err != nil {
			errs = append(errs, fmt.Errorf("trustee: erasing the stored share of epoch %d (destroyed earlier) failed again: %w", e, err))
			continue
		}
		delete(n.pendingErase, e)
	}
	var epochs []uint32
	for e := range n.shares {
		epochs = append(epochs, e)
	}
	sort.Slice(epochs, func(i, j int) bool { return epochs[i] < epochs[j] })
	var gone []uint32
	for _, e := range epochs {
		s := n.shares[e]
		if uint64(e)+uint64(n.policy.RetentionEpochs) > uint64(current) {
			continue
		}
		rec := AuditRecord{Time: n.clock(), Kind: AuditKindShareDestroyed, Epoch: uint64(e)}
		if _, _, _, err := n.log.Append(rec); err != nil {
			return gone, errors.Join(append(errs, fmt.Errorf("%w: %w", ErrAuditFailed, err))...)
		}
		// Logged: from now on the node must never use the share again,
		// whatever happens to the stored copy.
		s.Share.Zero()
		delete(n.shares, e)
		delete(n.public, e)
		n.destroyed[e] = true
		gone = append(gone, e)
		if n.erase != nil {
			if err := n.erase(e); err != nil {
				n.pendingErase[e] = true
				errs = append(errs, fmt.Errorf("trustee: epoch %d is destroyed (logged, and gone from memory) but erasing its stored share failed: %w; it is retried at the next retention pass", e, err))
			}
		}
	}
	return gone, errors.Join(errs...)
}

// Decide checks an encoded decryption request and either returns partial
// decryptions with the audit evidence, or a *RefusalError.
//
// # What is logged
//
// A request that does not carry a valid signature from enough judges this
// node trusts, or that is malformed or stale, is refused without an audit
// record: the refusal wraps [ErrUnauthenticated]. Otherwise anybody could
// grow the public log at will. Every other decision, granted or refused,
// is one record; a grant is durably logged before any share is computed,
// and every reason to withhold shares (including U+Q being the identity)
// is checked before the grant is logged.
//
// # Replays
//
// A request whose id the node has already decided (within
// [MaxRequestAge], across restarts: the records say) gets the same answer
// again without a new record and without counting against caps or rate
// limits: the same refusal code, or partial decryptions for the same
// sessions with the original grant's record and a fresh proof. A
// different request under an id already used is refused
// ([ErrRequestIDReused]), also without a new record.
//
// Decide is safe to call concurrently. The stateless checks (signatures,
// envelope proofs) and the partial decryptions run outside the node's lock,
// on all cores for large requests; only the checks against what the node
// remembers (rate limits, session caps, held epochs), the log append and
// the counting are serialised.
func (n *Node) Decide(reqBytes []byte) (*Answer, error) {
	now := n.clock()
	rec := AuditRecord{Time: now, Kind: AuditKindDecision}
	req, vw, refusal := n.authenticate(reqBytes, now, &rec)
	if req == nil {
		return nil, refusal // not authenticated: no record
	}
	if prev, ok := n.decided(req.ID); ok {
		return n.again(prev, req, vw, refusal, rec.RequestHash, now)
	}
	var d *decision
	if refusal == nil {
		d, refusal = n.check(req, vw, now, &rec, false)
	}
	if refusal == nil {
		var ans *Answer
		var held []kyber.Scalar
		var prev *decided
		ans, held, prev, refusal = n.commit(d, now, &rec)
		if prev != nil {
			return n.again(prev, req, vw, nil, rec.RequestHash, now)
		}
		if refusal == nil {
			return n.answer(ans, d, held)
		}
		if refusal.Code == CodeAuditUnavailable {
			return nil, refusal
		}
	}
	return nil, n.logRefusal(req.ID, rec, refusal, now)
}

// logRefusal logs a refusal of an authenticated request and remembers it
// for replays. If logging fails the refusal still stands, and the
// requester is told the log failed.
func (n *Node) logRefusal(id requestID, rec AuditRecord, refusal *RefusalError, now time.Time) *RefusalError {
	rec.Decision = AuditRefused
	rec.Sessions, rec.Epochs = nil, nil
	rec.Refusal = &AuditRefusal{Code: refusal.Code}
	if prev := n.lockUndecided(id); prev != nil {
		n.mu.Unlock()
		// A concurrent copy of this request was decided first.
		if prev.refusal != nil {
			return prev.refusal
		}
		return refusal
	}
	done := n.startLogging(id)
	idx, _, _, err := n.log.Append(rec) // outside the lock: concurrent decisions share a commit
	n.mu.Lock()
	defer n.mu.Unlock()
	n.doneLogging(id, done)
	if err != nil {
		refusal.Err = fmt.Errorf("%w (and the refusal could not be logged: %v)", refusal.Err, err)
		return refusal
	}
	n.remember(id, &decided{index: idx, hash: rec.RequestHash, refusal: refusal, at: now})
	return refusal
}

// lockUndecided takes the node's lock and waits until no concurrent copy
// of request id is being logged. It returns with n.mu held, and with the
// earlier decision of id if there is one.
func (n *Node) lockUndecided(id requestID) *decided {
	n.mu.Lock()
	for {
		if prev, ok := n.seen[id]; ok {
			return prev
		}
		ch, ok := n.logging[id]
		if !ok {
			return nil
		}
		n.mu.Unlock()
		<-ch
		n.mu.Lock()
	}
}

// startLogging marks request id as being logged and releases the lock, so
// that the log can group this record's commit with those of concurrent
// decisions. The caller holds n.mu, and calls doneLogging under it after
// the append.
func (n *Node) startLogging(id requestID) chan struct{} {
	done := make(chan struct{})
	n.logging[id] = done
	n.mu.Unlock()
	return done
}

func (n *Node) doneLogging(id requestID, done chan struct{}) {
	delete(n.logging, id)
	close(done)
}

// waitGrantsLocked waits, with n.mu held, until no grant is being logged,
// so that a share is never destroyed or replaced between a grant's
// reservation and its record.
func (n *Node) waitGrantsLocked() {
	for n.granting > 0 {
		n.settled.Wait()
	}
}

// requestID is a decryption request's id ([escrow.DecryptionRequest].ID).
type requestID = [16]byte

// decided is what the node remembers of a request it decided, to answer
// a replay of it the same way.
type decided struct {
	index   int64  // its audit record
	hash    string // RequestHash of the request
	refusal *RefusalError
	code    string // the refusal code, when only the log told (after a restart)
	at      time.Time
}

// ErrRequestIDReused: a request reuses the id of a different request this
// node already decided. Make a new request (it gets a fresh id).
var ErrRequestIDReused = errors.New("trustee: this request id was already used by a different request; make a new request")

// ErrUnauthenticated is wrapped by the refusal of a request that is
// malformed, stale, or not signed by enough judges this trustee trusts.
// Such a request leaves no audit record (it is counted in the node's
// metrics and operational log instead).
var ErrUnauthenticated = errors.New("trustee: request not authenticated by the judges this trustee trusts (not logged)")

func (n *Node) decided(id requestID) (*decided, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	d, ok := n.seen[id]
	return d, ok
}

// remember records a decided request and forgets those too old to be
// replayed. The caller holds n.mu.
func (n *Node) remember(id requestID, d *decided) {
	n.seen[id] = d
	n.seenOrder = append(n.seenOrder, id)
	for len(n.seenOrder) > 0 {
		old := n.seen[n.seenOrder[0]]
		if old != nil && d.at.Sub(old.at) <= 2*MaxRequestAge {
			break
		}
		delete(n.seen, n.seenOrder[0])
		n.seenOrder = n.seenOrder[1:]
	}
}

// again answers a request already decided, without logging or counting:
// the same refusal, or fresh partial decryptions of the same sessions
// under the original grant's record.
// refusal is the refusal authenticate gave it this time, if any.
func (n *Node) again(prev *decided, req *escrow.DecryptionRequest, vw *escrow.VerifiedWarrant, refusal *RefusalError, hash string, now time.Time) (*Answer, error) {
	if prev.hash != hash {
		return nil, n.refuse(CodeBadRequest, fmt.Errorf("%w (request %x, audit record %d)", ErrRequestIDReused, req.ID[:], prev.index))
	}
	if prev.refusal != nil {
		return nil, prev.refusal
	}
	if prev.code != "" {
		err := fmt.Errorf("trustee: request %x was refused before (%s, audit record %d); a replay gets the same answer", req.ID[:], prev.code, prev.index)
		if sentinel := refusalSentinel(prev.code); sentinel != nil {
			err = fmt.Errorf("%w: %w", sentinel, err)
		}
		return nil, n.refuse(prev.code, err)
	}
	if refusal != nil {
		return nil, refusal
	}
	var rec AuditRecord
	d, refusal := n.check(req, vw, now, &rec, true)
	if refusal != nil {
		return nil, refusal
	}
	n.mu.Lock()
	held := make([]kyber.Scalar, len(d.envs))
	for i, e := range d.envs {
		s, ok := n.shares[e.Context.Epoch]
		if !ok {
			n.mu.Unlock()
			return nil, n.refuse(CodeEpochDestroyed, fmt.Errorf("%w (epoch %d, session %s)", ErrEpochDestroyed, e.Context.Epoch, e.Context.SessionID))
		}
		held[i] = s.Share.Clone()
	}
	index := n.index
	n.mu.Unlock()
	head, err := n.log.Head()
	if err != nil {
		return nil, n.refuse(CodeAuditUnavailable, fmt.Errorf("%w: %w", ErrAuditFailed, err))
	}
	_, data, err := n.log.Record(prev.index)
	if err != nil {
		return nil, n.refuse(CodeAuditUnavailable, fmt.Errorf("%w: %w", ErrAuditFailed, err))
	}
	proof, err := n.log.InclusionProof(prev.index, head.Tree.N)
	if err != nil {
		return nil, n.refuse(CodeAuditUnavailable, fmt.Errorf("%w: %w", ErrAuditFailed, err))
	}
	ans := &Answer{Trustee: n.name, Index: index, RecordIndex: prev.index, Record: data, Head: head.Note, Proof: proof}
	return n.answer(ans, d, held)
}

// commit re-checks what may have changed since check under the lock,
// reserves the grant (its sessions against the cap, its judges' uses
// against the rate limit), logs it outside the lock so that concurrent
// grants share one durable commit, and then counts it, or rolls the
// reservation back if it could not be logged. It returns copies of the
// shares to answer with. If a concurrent copy of the request was decided
// first, it returns that decision instead.
func (n *Node) commit(d *decision, now time.Time, rec *AuditRecord) (*Answer, []kyber.Scalar, *decided, *RefusalError) {
	if prev := n.lockUndecided(d.id); prev != nil {
		n.mu.Unlock()
		return nil, nil, prev, nil
	}
	held, newly, refusal := n.reserveLocked(d, now)
	if refusal != nil {
		n.mu.Unlock()
		return nil, nil, nil, refusal
	}
	n.granting++
	index := n.index
	done := n.startLogging(d.id)
	rec.Decision = AuditGranted
	idx, head, proof, err := n.log.Append(*rec)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.doneLogging(d.id, done)
	n.granting--
	n.settled.Broadcast()
	if err != nil {
		n.unreserveLocked(d, newly, now)
		for _, s := range held {
			s.Zero()
		}
		return nil, nil, nil, n.refuse(CodeAuditUnavailable, fmt.Errorf("%w: %w", ErrAuditFailed, err))
	}
	// Logged: the release counts.
	n.remember(d.id, &decided{index: idx, hash: rec.RequestHash, at: now})
	ans := &Answer{Trustee: n.name, Index: index, RecordIndex: idx, Head: head.Note, Proof: proof}
	ans.Record, _ = rec.Marshal()
	return ans, held, nil, nil
}

// reserveLocked checks the rate limit, the held epochs and the session
// cap, and counts the grant before it is logged: its new sessions against
// the warrant's cap and one use per judge. It returns copies of the shares
// to answer with and the sessions it newly counted, for
// [Node.unreserveLocked]. The caller holds n.mu.
func (n *Node) reserveLocked(d *decision, now time.Time) ([]kyber.Scalar, []escrow.SessionID, *RefusalError) {
	if r := n.rateLimited(d.judges, now); r != nil {
		return nil, nil, r
	}
	held := make([]kyber.Scalar, len(d.envs))
	for i, e := range d.envs {
		s, ok := n.shares[e.Context.Epoch]
		if !ok {
			return nil, nil, n.refuse(CodeEpochDestroyed, fmt.Errorf("%w (epoch %d, session %s)", ErrEpochDestroyed, e.Context.Epoch, e.Context.SessionID))
		}
		held[i] = s.Share
	}
	w := d.warrant
	limit := min(w.MaxSessions, n.policy.MaxSessionsPerWarrant)
	already := n.released[w.ID]
	var newly []escrow.SessionID
	for _, e := range d.envs {
		if !already[e.Context.SessionID] && !slices.Contains(newly, e.Context.SessionID) {
			newly = append(newly, e.Context.SessionID)
		}
	}
	if total := len(already) + len(newly); total > limit {
		return nil, nil, n.refuse(CodeSessionCap, fmt.Errorf("%w: warrant %s may release %d sessions here, %d already released, this request would make %d; ask the judge to raise max-sessions", ErrSessionCap, w.ID, limit, len(already), total))
	}
	if already == nil {
		already = map[escrow.SessionID]bool{}
		n.released[w.ID] = already
	}
	for _, id := range newly {
		already[id] = true
	}
	for _, j := range d.judges {
		n.judgeUse[j] = append(n.judgeUse[j], now)
	}
	for i := range held {
		held[i] = held[i].Clone() // retention may zero the node's copy once the grant is logged
	}
	return held, newly, nil
}

// unreserveLocked undoes reserveLocked for a grant that could not be
// logged. The caller holds n.mu.
func (n *Node) unreserveLocked(d *decision, newly []escrow.SessionID, now time.Time) {
	w := d.warrant
	for _, id := range newly {
		delete(n.released[w.ID], id)
	}
	if len(n.released[w.ID]) == 0 {
		delete(n.released, w.ID)
	}
	for _, j := range d.judges {
		uses := n.judgeUse[j]
		for i := len(uses) - 1; i >= 0; i-- {
			if uses[i].Equal(now) {
				n.judgeUse[j] = slices.Delete(uses, i, i+1)
				break
			}
		}
	}
}

type decision struct {
	id      requestID
	warrant *escrow.Warrant
	judges  []string
	envs    []*escrow.Envelope
}

func (n *Node) refuse(code string, err error) *RefusalError {
	return &RefusalError{Trustee: n.name, Code: code, Err: err}
}

// rateLimited says whether any of the judges reached the rate limit. The
// caller holds n.mu.
func (n *Node) rateLimited(judges []string, now time.Time) *RefusalError {
	if n.policy.RateLimit <= 0 {
		return nil
	}
	for _, j := range judges {
		if c := n.recentUses(j, now); c >= n.policy.RateLimit {
			return n.refuse(CodeRateLimited, fmt.Errorf("%w: judge %s already authorised %d requests in the last %v here; retry later", ErrRateLimited, j, c, n.policy.RatePeriod))
		}
	}
	return nil
}

// authenticate parses the request and checks that it is fresh and that
// its warrant carries valid signatures from enough judges this node
// trusts. Its refusals wrap [ErrUnauthenticated] and come with a nil
// request: they are not logged. A warrant whose signatures verify but
// whose dates do not hold is refused with the request: that is logged.
func (n *Node) authenticate(reqBytes []byte, now time.Time, rec *AuditRecord) (*escrow.DecryptionRequest, *escrow.VerifiedWarrant, *RefusalError) {
	unauthenticated := func(code string, err error) *RefusalError {
		return n.refuse(code, fmt.Errorf("%w: %w", ErrUnauthenticated, err))
	}
	req, err := escrow.ParseDecryptionRequest(reqBytes)
	if err != nil {
		return nil, nil, unauthenticated(CodeBadRequest, err)
	}
	// A request is good for a short while only, so one seen in transit (by
	// another trustee, say) cannot be replayed for long.
	if d := now.Sub(req.Created); d > MaxRequestAge || d < -MaxRequestAge {
		return nil, nil, unauthenticated(CodeBadRequest, fmt.Errorf("%w: request created at %s, this trustee's clock says %s; requests are accepted for %v either way, so make a new one (and check both clocks)",
			ErrStaleRequest, req.Created.Format(time.RFC3339), now.UTC().Format(time.RFC3339), MaxRequestAge))
	}
	pol := n.currentPolicy() // a reload (SetPolicy) may replace it meanwhile
	vw, err := escrow.VerifyWarrant(req.Warrant, escrow.JudgePolicy{Judges: pol.Judges, Required: pol.JudgesRequired}, now)
	if err != nil && !errors.Is(err, escrow.ErrWarrantExpired) && !errors.Is(err, escrow.ErrWarrantNotYetValid) {
		// Only a warrant whose judges' signatures verify gets as far as
		// its validity dates.
		return nil, nil, unauthenticated(warrantCode(err), err)
	}
	rec.Request = hex.EncodeToString(req.ID[:])
	rh := sha256.Sum256(reqBytes)
	rec.RequestHash = hex.EncodeToString(rh[:])
	wh := sha256.Sum256(req.Warrant)
	rec.WarrantHash = hex.EncodeToString(wh[:])
	if err != nil {
		return req, nil, n.refuse(warrantCode(err), err)
	}
	n.describeWarrant(vw, req.Warrant, rec)
	return req, vw, nil
}

// check runs every policy check on an authenticated request in order,
// filling rec as it learns things. It holds the node's lock only to read
// what the node remembers; the session cap is checked by commit, under
// the lock that also logs. A replay (of a request granted before) skips
// the rate limit: it is not counted again.
func (n *Node) check(req *escrow.DecryptionRequest, vw *escrow.VerifiedWarrant, now time.Time, rec *AuditRecord, replay bool) (*decision, *RefusalError) {
	pol := n.currentPolicy() // a reload (SetPolicy) may replace it meanwhile
	w := vw.Warrant
	if win := w.WindowEnd.Sub(w.WindowStart); win > pol.MaxWindow {
		return nil, n.refuse(CodePolicyLimit, fmt.Errorf("%w: session window is %v, this trustee allows at most %v; ask the judge for a narrower warrant", ErrPolicyLimit, win, pol.MaxWindow))
	}
	if v := w.ValidUntil.Sub(w.ValidFrom); v > pol.MaxValidity {
		return nil, n.refuse(CodePolicyLimit, fmt.Errorf("%w: warrant is valid for %v, this trustee allows at most %v", ErrPolicyLimit, v, pol.MaxValidity))
	}
	if err := req.VerifySignature(w.Requester); err != nil {
		return nil, n.refuse(CodeBadSignature, err)
	}
	n.mu.Lock()
	var limited *RefusalError
	if !replay {
		limited = n.rateLimited(vw.Judges, now)
	}
	keys, destroyed := map[uint32]*escrow.EpochKey{}, map[uint32]bool{}
	for e, s := range n.shares {
		keys[e] = s.EpochKey()
	}
	for e := range n.destroyed {
		destroyed[e] = true
	}
	n.mu.Unlock()
	if limited != nil {
		return nil, limited
	}

	// Parse and verify every envelope on all cores, then apply the checks
	// in request order, so the first bad envelope is the one reported.
	envs := make([]*escrow.Envelope, len(req.Envelopes))
	parseErr := make([]error, len(req.Envelopes))
	verifyErr := make([]error, len(req.Envelopes))
	parallel(len(req.Envelopes), runtime.GOMAXPROCS(0), func(i int) {
		envs[i], parseErr[i] = escrow.ParseEnvelope(req.Envelopes[i])
		if parseErr[i] == nil {
			if key, ok := keys[envs[i].Context.Epoch]; ok {
				verifyErr[i] = envs[i].Verify(key)
			}
		}
	})
	d := &decision{id: req.ID, warrant: w, judges: vw.Judges}
	seen := map[escrow.SessionID]bool{}
	epochs := map[uint64]bool{}
	for i, e := range envs {
		if parseErr[i] != nil {
			return nil, n.refuse(CodeBadEnvelope, fmt.Errorf("envelope %d: %w", i, parseErr[i]))
		}
		sid := e.Context.SessionID
		if seen[sid] {
			return nil, n.refuse(CodeBadEnvelope, fmt.Errorf("%w: envelope %d repeats session %s", escrow.ErrBadEnvelope, i, sid))
		}
		seen[sid] = true
		if _, ok := keys[e.Context.Epoch]; !ok {
			if destroyed[e.Context.Epoch] {
				return nil, n.refuse(CodeEpochDestroyed, fmt.Errorf("%w (epoch %d, session %s)", ErrEpochDestroyed, e.Context.Epoch, sid))
			}
			return nil, n.refuse(CodeUnknownEpoch, fmt.Errorf("%w (epoch %d, session %s)", ErrUnknownEpoch, e.Context.Epoch, sid))
		}
		if verifyErr[i] != nil {
			return nil, n.refuse(CodeBadEnvelope, fmt.Errorf("session %s: %w", sid, verifyErr[i]))
		}
		if err := w.Covers(e.Context); err != nil {
			return nil, n.refuse(CodeOutOfScope, fmt.Errorf("session %s: %w", sid, err))
		}
		if pol.ProspectiveOnly && e.Context.Start.Before(w.ValidFrom) {
			return nil, n.refuse(CodeProspectiveOnly, fmt.Errorf("%w: session %s started %s, warrant valid from %s", ErrProspectiveOnly, sid, e.Context.Start.Format(time.RFC3339), w.ValidFrom.Format(time.RFC3339)))
		}
		// Every reason to withhold the share is checked before the grant
		// is logged: U+Q = identity would make the answer useless and is
		// refused by PartialDecrypt.
		if err := escrow.CheckPartialInputs(e, w.Requester); err != nil {
			return nil, n.refuse(CodeBadEnvelope, fmt.Errorf("session %s: %w", sid, err))
		}
		d.envs = append(d.envs, e)
		rec.Sessions = append(rec.Sessions, sid.String())
		if !epochs[uint64(e.Context.Epoch)] {
			epochs[uint64(e.Context.Epoch)] = true
			rec.Epochs = append(rec.Epochs, uint64(e.Context.Epoch))
		}
	}
	slices.Sort(rec.Epochs)
	return d, nil
}

func (n *Node) describeWarrant(vw *escrow.VerifiedWarrant, note []byte, rec *AuditRecord) {
	w := vw.Warrant
	rec.WarrantID = w.ID
	rec.Judges = vw.Judges
	rec.Requester = hex.EncodeToString(group.PointBytes(w.Requester))
	rec.CaseRefHash = CaseRefHash(note, w.Case)
}

// CaseRefHash is how an audit record refers to a warrant's case: SHA-256
// over a label, the length-prefixed signed warrant note and the case
// reference. A plain hash of the case would let anyone confirm a guessed
// case number ("2026/117") from the public log; keyed by the warrant, the
// hash can be checked only by those who hold the warrant, such as the
// court or an oversight body, who can then show that the record is
// about that case.
func CaseRefHash(warrantNote []byte, caseRef string) string {
	h := sha256.New()
	h.Write([]byte(labelCaseRef))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(warrantNote)))
	h.Write(n[:])
	h.Write(warrantNote)
	h.Write([]byte(caseRef))
	return hex.EncodeToString(h.Sum(nil))
}

const labelCaseRef = "keyquorum/v1/audit/case-ref"

func (n *Node) recentUses(judge string, now time.Time) int {
	uses := n.judgeUse[judge]
	keep := uses[:0]
	for _, t := range uses {
		if now.Sub(t) < n.policy.RatePeriod {
			keep = append(keep, t)
		}
	}
	n.judgeUse[judge] = keep
	return len(keep)
}

func warrantCode(err error) string {
	switch {
	case errors.Is(err, escrow.ErrWarrantExpired):
		return CodeWarrantExpired
	case errors.Is(err, escrow.ErrWarrantNotYetValid):
		return CodeNotYetValid
	case errors.Is(err, escrow.ErrUnknownJudge):
		return CodeUnknownJudge
	case errors.Is(err, escrow.ErrTooFewJudges):
		return CodeTooFewJudges
	}
	return CodeBadWarrant
}

// EpochPublicKey is this trustee's public share X_i = x_i·G of one epoch.
type EpochPublicKey struct {
	Epoch uint32
	Key   kyber.Point
}

// PublicShares returns this trustee's public share of every epoch it
// holds, ascending, without touching the secret shares.
func (n *Node) PublicShares() []EpochPublicKey {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []EpochPublicKey
	for e, X := range n.public {
		out = append(out, EpochPublicKey{Epoch: e, Key: X.Clone()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Epoch < out[j].Epoch })
	return out
}

// StoredShares returns copies of the epoch shares this node still holds:
// exactly what an attacker who breaks into this node's storage would get.
// The demo hands these to its attacker code to measure what compromising k
// trustees exposes.
func (n *Node) StoredShares() []escrow.EpochShare {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []escrow.EpochShare
	for _, s := range n.shares {
		c := *s
		c.Share = s.Share.Clone()
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Epoch < out[j].Epoch })
	return out
}

// RecordCeremony appends a ceremony event to the node's audit log and
// returns once it is durable: the [ceremony.CeremonyHostConfig] Record
// function. It fails, and the event must not take effect, if the log
// cannot be written.
func (n *Node) RecordCeremony(ev ceremony.Event) error {
	rec := AuditRecord{Time: n.clock(), Kind: ev.Kind, Ceremony: &AuditCeremony{
		ID: ev.Ceremony, Proposal: ev.Proposal, Roster: ev.Roster, Group: ev.Group, Epochs: ev.Epochs, Code: ev.Code,
	}}
	if len(ev.Epochs) > 0 {
		rec.Epoch = uint64(ev.Epochs[len(ev.Epochs)-1])
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, _, _, err := n.log.Append(rec); err != nil {
		return fmt.Errorf("%w: %w", ErrAuditFailed, err)
	}
	return nil
}

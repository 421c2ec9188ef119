package trustee

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	"github.com/keyquorum/keyquorum/internal/retry"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Errors from [Decrypt].
var (
	// ErrInsufficientQuorum: fewer than t trustees gave a valid answer for
	// some session, so it could not be decrypted. The error is a
	// *[QuorumError] naming every trustee that refused, cheated, was
	// unreachable or gave bad audit evidence, and why.
	ErrInsufficientQuorum = errors.New("trustee: insufficient quorum")
	// ErrQuorumRefused is also wrapped by a *[QuorumError] when refusals
	// alone make the quorum impossible: more than n−t trustees refused the
	// request on policy grounds. Retrying will not help; read their
	// reasons.
	ErrQuorumRefused = errors.New("trustee: too many trustees refused the request")
)

// Outcomes of one trustee in a [DecryptResult].
const (
	// StatusGranted: the trustee granted the request and its audit
	// evidence verified. If its answer was combined (TrusteeResult.Used),
	// its partial decryptions' proofs verified too.
	StatusGranted = "granted"
	// StatusRefused: the trustee refused; Code and Reason say why.
	StatusRefused = "refused"
	// StatusCheated: the trustee sent partial decryptions that fail their
	// DLEQ proof, or an answer that does not match the request. Its bad
	// shares were dropped.
	StatusCheated = "cheated"
	// StatusUnreachable: no answer after every attempt (connection
	// failures, timeouts, server errors, or a certificate that does not
	// match its pin).
	StatusUnreachable = "unreachable"
	// StatusBadEvidence: the trustee answered, but its signed tree head
	// or the inclusion proof of its decision record does not verify, or
	// the record does not say it granted these sessions. Its answer was not
	// used: a share without proof that its release was logged is refused.
	StatusBadEvidence = "bad-audit-evidence"
	// StatusForked: the trustee's checkpoint does not extend the one it
	// showed this requester before ([DecryptOptions.Seen]): its log was
	// rewritten, rolled back or forked. Its answer was not used; Reason
	// and the state keep both checkpoints as evidence.
	StatusForked = "forked"
)

// TrusteeResult is what one trustee did with a request.
type TrusteeResult struct {
	Index    int    `json:"index"`
	Name     string `json:"name"`
	Status   string `json:"status"`
	Code     string `json:"code,omitempty"`   // refusal code, for StatusRefused
	Reason   string `json:"reason,omitempty"` // why, for anything but StatusGranted
	Attempts int    `json:"attempts"`
	// BadShares counts the sessions for which the trustee's partial
	// decryption failed its proof.
	BadShares int `json:"bad_shares,omitempty"`
	// Used says the trustee's answer was combined: its batch proofs
	// verified. A granted answer that was not needed (t others were
	// proven first) is not checked, and not used.
	Used bool `json:"used,omitempty"`
	// RecordIndex and Head are the audit evidence of a grant: the index of
	// the decision record in the trustee's log and the signed head it was
	// proved against.
	RecordIndex int64  `json:"record_index,omitempty"`
	Head        string `json:"head,omitempty"`
	// CosignedBy names the other trustees whose witness cosignatures on
	// Head verified (at least w of them for a grant).
	CosignedBy []string `json:"cosigned_by,omitempty"`
	// Err is the error behind Status, when there is one.
	Err error `json:"-"`

	tree tlog.Tree // what Head says, once verified
}

func (r TrusteeResult) describe() string {
	switch r.Status {
	case StatusRefused:
		return fmt.Sprintf("%s refused (%s): %s", r.Name, r.Code, r.Reason)
	case StatusGranted:
		return r.Name + " granted"
	}
	return fmt.Sprintf("%s %s: %s", r.Name, r.Status, r.Reason)
}

// DecryptResult is the outcome of [Decrypt].
type DecryptResult struct {
	Threshold int
	// Trustees has one entry per trustee, in roster order.
	Trustees []TrusteeResult
	// Keys holds the recovered, confirmed session key K of every session
	// that could be decrypted.
	Keys map[escrow.SessionID][]byte
	// Unrecovered says why each other session could not be decrypted.
	Unrecovered map[escrow.SessionID]string
	// Seen is [DecryptOptions.Seen] updated with the checkpoint of every
	// trustee whose answer was used; a forked trustee keeps the one seen
	// before, as evidence.
	Seen AuditState
}

// QuorumError is the error [Decrypt] returns when some session could not
// be decrypted because fewer than t trustees answered validly. It wraps
// [ErrInsufficientQuorum], and [ErrQuorumRefused] when refusals alone
// decided it.
type QuorumError struct {
	Threshold   int
	Usable      int // trustees whose answers were used
	Trustees    []TrusteeResult
	Unrecovered int // sessions not decrypted
	Sessions    int // sessions requested
	Refused     bool
}

func (e *QuorumError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "trustee: insufficient quorum: %d of %d sessions not decrypted; %d of %d trustees answered validly, %d needed",
		e.Unrecovered, e.Sessions, e.Usable, len(e.Trustees), e.Threshold)
	var why []string
	for _, t := range e.Trustees {
		if t.Status != StatusGranted {
			why = append(why, t.describe())
		}
	}
	if len(why) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(why, "; "))
	}
	return b.String()
}

func (e *QuorumError) Unwrap() []error {
	if e.Refused {
		return []error{ErrInsufficientQuorum, ErrQuorumRefused}
	}
	return []error{ErrInsufficientQuorum}
}

// DecryptOptions tunes [Decrypt]. The zero value is usable.
type DecryptOptions struct {
	// Timeout bounds each attempt at one trustee (default 10 s).
	Timeout time.Duration
	// Attempts is how often a trustee is tried when it cannot be reached or
	// answers with a server error (default 3). Refusals are never retried.
	Attempts int
	// Backoff bounds the wait before the first retry, doubled after each;
	// each wait is drawn from [bound/2, bound) so that requesters do not
	// retry in lockstep (default 200 ms).
	Backoff time.Duration
	// Grace is how long trustees still working get once t trustees have
	// answered validly, before they are given up as unreachable (default
	// 2 s). Their answers, if they come in time, serve to check the
	// others and to replace a cheater.
	Grace time.Duration
	// Now is the request's creation time (default time.Now).
	Now func() time.Time
	// Rand supplies the request id (default crypto/rand).
	Rand io.Reader
	// Workers is how many goroutines parse envelopes (default GOMAXPROCS).
	Workers int
	// Progress, if set, is called as sessions are combined (after each
	// epoch's batch of each request), with the number done and the total.
	// It is never called concurrently.
	Progress func(done, total int)
	// Seen holds the checkpoints each trustee showed this requester
	// before, by trustee name (the requester's state file, in the format
	// of [AuditState]). An answer whose checkpoint does not provably
	// extend the one seen is not used: the trustee is marked
	// [StatusForked]. [DecryptResult.Seen] is the state to keep next.
	Seen AuditState
	// Transcript, if set, is filled with the request and every answer
	// used, for [VerifyTranscript]. It holds one request: more sessions
	// than ChunkSessions are refused with [ErrChunkedTranscript].
	Transcript *Transcript
	// ChunkSessions is the most sessions one request carries (default
	// [DefaultChunkSessions]); more are sent in several requests, one
	// after another, each signed, logged and checked on its own.
	ChunkSessions int
}

func (o *DecryptOptions) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = 200 * time.Millisecond
	}
	if o.Grace <= 0 {
		o.Grace = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.ChunkSessions <= 0 {
		o.ChunkSessions = DefaultChunkSessions
	}
}

// Decrypt is the requester's side of a warranted decryption. It signs one
// request for envelopes under warrant with key, sends it to every trustee
// of g at once (clients[i] talks to g.Trustees[i]), and for each answer
// checks, before using it:
//
//   - the signed tree head, with the log key the group file gives for
//     that trustee ([VerifyHead]);
//   - the inclusion proof of the returned decision record in that head
//     ([VerifyInclusion]);
//   - that the record is a grant of this warrant (by hash) to this
//     requester, for exactly the requested sessions;
//   - that it holds one batch of partial decryptions per epoch, from this
//     trustee, for this request, over that epoch's sessions in order.
//
// Then, per epoch, it checks the batch proofs of the first t such answers
// in the order they arrived (one multi-scalar multiplication each), and of
// more only to replace one that fails, whose trustee it names; it combines
// every session from the t proven answers ([escrow.Combiner.CombineBatch])
// and confirms each key by re-deriving the envelope.
//
// Each trustee gets opts.Attempts tries of opts.Timeout each, with backoff,
// when it cannot be reached or answers with a server error; refusals are
// final. A retry repeats the same signed request; a trustee that did
// answer the first time answers the same again under the same record,
// without logging or counting it twice.
//
// The result lists every trustee's outcome and every recovered key. If a
// session could not be decrypted, Decrypt returns the result together with
// a *[QuorumError] (wrapping [ErrInsufficientQuorum]). Other errors (bad
// input, such as an envelope that does not parse or an epoch the group file
// lacks) come with a nil result and nothing sent.
//
// More envelopes than opts.ChunkSessions are sent in several requests of
// at most that many, one after another (see [DefaultChunkSessions]): the
// requester holds one request's answers at a time, each request is a
// decision of its own in every trustee's log, and the warrant's session
// cap counts them all. A trustee's entry in the result is then its first
// failure, naming the request, or else its last grant.
func Decrypt(ctx context.Context, g *escrow.GroupFile, clients []*Client, warrant []byte, key *escrow.RequesterKey, envelopes [][]byte, opts DecryptOptions) (*DecryptResult, error) {
	opts.defaults()
	if len(clients) != len(g.Trustees) {
		return nil, fmt.Errorf("trustee: %d clients for %d trustees in the group file", len(clients), len(g.Trustees))
	}
	for i, c := range clients {
		if c == nil || c.member.Index != g.Trustees[i].Index || c.member.Name != g.Trustees[i].Name {
			return nil, fmt.Errorf("trustee: client %d does not talk to %s", i, g.Trustees[i].Name)
		}
	}
	if key == nil {
		return nil, errors.New("trustee: no requester key")
	}
	if len(envelopes) > opts.ChunkSessions {
		return decryptChunked(ctx, g, clients, warrant, key, envelopes, opts)
	}
	return decryptOne(ctx, g, clients, warrant, key, envelopes, opts)
}

// decryptOne is [Decrypt] in one request.
func decryptOne(ctx context.Context, g *escrow.GroupFile, clients []*Client, warrant []byte, key *escrow.RequesterKey, envelopes [][]byte, opts DecryptOptions) (*DecryptResult, error) {
	job, err := newDecryptJob(g, warrant, key, envelopes, opts)
	if err != nil {
		return nil, err
	}
	req, err := escrow.NewDecryptionRequest(warrant, envelopes, key, opts.Now(), opts.Rand)
	if err != nil {
		return nil, fmt.Errorf("trustee: %w", err)
	}
	job.requestID, job.reqID = hex.EncodeToString(req.ID[:]), req.ID
	wire := req.Marshal()
	answers := job.fanOut(ctx, clients, wire)
	res, err := job.combine(answers)
	if opts.Transcript != nil {
		var used []verifiedAnswer
		for _, a := range answers {
			if res.Trustees[a.slot].Used {
				used = append(used, a)
			}
		}
		opts.Transcript.record(wire, used)
	}
	return res, err
}

// decryptJob is one request's fixed inputs, parsed once.
type decryptJob struct {
	g           *escrow.GroupFile
	opts        DecryptOptions
	key         *escrow.RequesterKey
	warrantHash string
	requestID   string // hex; the grant record must name it
	requester   string
	envs        []*escrow.Envelope
	sessions    map[string]bool // requested session ids, hex
	groups      map[uint32]*escrow.Group
	results     []TrusteeResult
	byEpoch     []epochGroup // the layout of every answer's batches
	reqID       [16]byte
}

func newDecryptJob(g *escrow.GroupFile, warrant []byte, key *escrow.RequesterKey, envelopes [][]byte, opts DecryptOptions) (*decryptJob, error) {
	wh := sha256.Sum256(warrant)
	j := &decryptJob{
		g: g, opts: opts, key: key,
		warrantHash: hex.EncodeToString(wh[:]),
		requester:   hex.EncodeToString(group.PointBytes(key.Public)),
		envs:        make([]*escrow.Envelope, len(envelopes)),
		sessions:    make(map[string]bool, len(envelopes)),
		groups:      map[uint32]*escrow.Group{},
	}
	errs := make([]error, len(envelopes))
	parallel(len(envelopes), opts.Workers, func(i int) {
		j.envs[i], errs[i] = escrow.ParseEnvelope(envelopes[i])
	})
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("trustee: envelope %d: %w", i, err)
		}
	}
	for i, e := range j.envs {
		sid := e.Context.SessionID.String()
		if j.sessions[sid] {
			return nil, fmt.Errorf("trustee: envelope %d repeats session %s", i, sid)
		}
		j.sessions[sid] = true
		if _, ok := j.groups[e.Context.Epoch]; !ok {
			eg, err := g.EscrowGroup(e.Context.Epoch)
			if err != nil {
				return nil, fmt.Errorf("trustee: session %s: %w", sid, err)
			}
			j.groups[e.Context.Epoch] = eg
		}
	}
	j.byEpoch = byEpoch(j.envs)
	j.results = make([]TrusteeResult, len(g.Trustees))
	for i, m := range g.Trustees {
		j.results[i] = TrusteeResult{Index: m.Index, Name: m.Name}
	}
	return j, nil
}

// verifiedAnswer is a granted answer whose audit evidence verified, with
// its position in the roster.
type verifiedAnswer struct {
	slot int
	ans  *Answer
}

// fanOut asks every trustee at once and returns the answers that passed
// verification, in the order they arrived. It fills j.results for the
// others.
func (j *decryptJob) fanOut(ctx context.Context, clients []*Client, wire []byte) []verifiedAnswer {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	quorum := make(chan struct{})
	var (
		mu       sync.Mutex
		verified []verifiedAnswer
		wg       sync.WaitGroup
		grace    *time.Timer
	)
	for slot, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &j.results[slot] // each goroutine writes only its own slot
			ans, err := j.ask(ctx, c, wire, quorum, res)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			verified = append(verified, verifiedAnswer{slot: slot, ans: ans})
			if len(verified) == j.g.Threshold {
				close(quorum)
				grace = time.AfterFunc(j.opts.Grace, cancel)
			}
		}()
	}
	wg.Wait()
	if grace != nil {
		grace.Stop()
	}
	return verified
}

// ask runs the attempts at one trustee and verifies a granted answer. It
// records the outcome in res and returns the answer only if it may be used.
func (j *decryptJob) ask(ctx context.Context, c *Client, wire []byte, quorum <-chan struct{}, res *TrusteeResult) (*Answer, error) {
	fail := func(status, code string, err error) (*Answer, error) {
		res.Status, res.Code, res.Err = status, code, err
		res.Reason = err.Error()
		var refusal *RefusalError
		var te *TransportError
		switch {
		case errors.As(err, &refusal):
			res.Reason = refusal.Err.Error()
		case errors.As(err, &te):
			res.Reason = fmt.Sprintf("%v (at %s, %d attempt(s))", te.Err, te.Address, res.Attempts)
		}
		return nil, err
	}
	var verifier note.Verifier
	if lk := c.member.LogKey; lk == "" {
		// Checked before sending: without the log key the answer could not
		// be verified, so asking would only make the trustee log a release
		// the requester cannot use.
		return fail(StatusBadEvidence, "", fmt.Errorf("the group file gives no audit log key for %s, so its answers cannot be verified", c.member.Name))
	} else if v, err := note.NewVerifier(lk); err != nil {
		return fail(StatusBadEvidence, "", fmt.Errorf("the group file's audit log key for %s is malformed: %v", c.member.Name, err))
	} else {
		verifier = v
	}
	// Retries wait with jitter, and stop once enough answers are in
	// (quorum closed).
	var ans *Answer
	var err error
	res.Attempts, err = retry.Backoff{Attempts: j.opts.Attempts, Initial: j.opts.Backoff}.Do(ctx, quorum, retryable, func() error {
		actx, cancel := context.WithTimeout(ctx, j.opts.Timeout)
		defer cancel()
		var derr error
		ans, derr = c.Decrypt(actx, wire)
		return derr
	})
	if err != nil {
		var refusal *RefusalError
		var api *APIError
		switch {
		case errors.As(err, &refusal):
			return fail(StatusRefused, refusal.Code, err)
		case errors.As(err, &api) && api.Status < 500:
			return fail(StatusRefused, api.Code, err)
		case errors.Is(err, ErrBadAnswer):
			return fail(StatusCheated, "", err)
		case ctx.Err() != nil && isClosed(quorum):
			return fail(StatusUnreachable, "", fmt.Errorf("no answer within the %v grace after %d trustees had answered (%v)", j.opts.Grace, j.g.Threshold, err))
		}
		return fail(StatusUnreachable, "", err)
	}
	tree, err := j.verify(ans, verifier)
	if err != nil {
		if errors.Is(err, ErrBadAnswer) {
			return fail(StatusCheated, "", err)
		}
		return fail(StatusBadEvidence, "", err)
	}
	if seen, ok := j.opts.Seen[c.member.Name]; ok {
		if err := checkExtends(ctx, c, verifier, []byte(seen.Note), tree); err != nil {
			switch extendsStatus(err) {
			case AuditForked:
				return fail(StatusForked, "", fmt.Errorf("%w; its checkpoint now: %q, the one it showed before: %q", err, ans.Head, seen.Note))
			case AuditBadHead:
				return fail(StatusBadEvidence, "", err)
			}
			return fail(StatusUnreachable, "", err)
		}
	}
	cosigners, err := CheckCosigned(j.g, c.member.Name, ans.Head)
	if err != nil {
		return fail(StatusBadEvidence, "", err)
	}
	res.CosignedBy = cosigners
	res.Status = StatusGranted
	res.tree = tree
	res.RecordIndex = ans.RecordIndex
	res.Head = string(ans.Head)
	return ans, nil
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// retryable reports whether an attempt's error may be transient: anything
// but a refusal, a client-side API error or a malformed answer, and never a
// certificate that does not match its pin.
func retryable(err error) bool {
	var refusal *RefusalError
	var api *APIError
	switch {
	case errors.Is(err, ErrPinMismatch), errors.Is(err, ErrBadAnswer):
		return false
	case errors.As(err, &refusal):
		return retryableRefusal(refusal)
	case errors.As(err, &api):
		return api.Status >= 500
	}
	return true
}

// retryableRefusal: a node that cannot write its audit log, or cannot
// get its checkpoint cosigned, refuses with 503; it may recover.
func retryableRefusal(r *RefusalError) bool {
	return r.Code == CodeAuditUnavailable || r.Code == CodeWitnessQuorum
}

// verify checks an answer's audit evidence and shape against the request,
// and returns the tree its checkpoint describes.
func (j *decryptJob) verify(ans *Answer, logKey note.Verifier) (tlog.Tree, error) {
	tree, err := VerifyHead(ans.Head, logKey)
	if err != nil {
		return tlog.Tree{}, err
	}
	return tree, j.verifyRecord(ans, tree)
}

// verifyRecord checks that the answer's record is in tree and grants
// exactly this request, and the answer's shape.
func (j *decryptJob) verifyRecord(ans *Answer, tree tlog.Tree) error {
	if err := VerifyInclusion(tree, ans.RecordIndex, ans.Record, ans.Proof); err != nil {
		return err
	}
	rec, err := ParseAuditRecord(ans.Record)
	if err != nil {
		return err
	}
	switch {
	case rec.Kind != AuditKindDecision || rec.Decision != AuditGranted:
		return fmt.Errorf("%w: the logged record is a %q %s, not a grant", ErrBadInclusion, rec.Decision, rec.Kind)
	case rec.Request != j.requestID:
		return fmt.Errorf("%w: the logged grant is for request %s, not this one (%s): an old record passed off as this decision", ErrBadInclusion, rec.Request, j.requestID)
	case rec.WarrantHash != j.warrantHash:
		return fmt.Errorf("%w: the logged grant is for another warrant (hash %s)", ErrBadInclusion, rec.WarrantHash)
	case rec.Requester != j.requester:
		return fmt.Errorf("%w: the logged grant is for another requester key", ErrBadInclusion)
	case len(rec.Sessions) != len(j.sessions):
		return fmt.Errorf("%w: the logged grant lists %d sessions, %d were requested", ErrBadInclusion, len(rec.Sessions), len(j.sessions))
	}
	logged := make(map[string]bool, len(rec.Sessions))
	for _, s := range rec.Sessions {
		if !j.sessions[s] || logged[s] {
			return fmt.Errorf("%w: the logged grant lists session %q, which was not requested or is repeated", ErrBadInclusion, s)
		}
		logged[s] = true
	}
	return j.checkBatches(ans)
}

// parallel runs f(0..n-1) on up to workers goroutines, handing out
// indexes in small batches.
func parallel(n, workers int, f func(i int)) {
	if n == 0 {
		return
	}
	workers = max(1, min(workers, n))
	const batch = 16
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				start := int(next.Add(batch)) - batch
				if start >= n {
					return
				}
				for i := start; i < min(start+batch, n); i++ {
					f(i)
				}
			}
		}()
	}
	wg.Wait()
}

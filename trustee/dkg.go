package trustee

import (
	"bytes"
	"crypto/cipher"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/keyquorum/keyquorum/internal/group"
	"github.com/keyquorum/keyquorum/shares"
	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/group/edwards25519"
	"go.dedis.ch/kyber/v3/share"
	dkg "go.dedis.ch/kyber/v3/share/dkg/pedersen"
	vss "go.dedis.ch/kyber/v3/share/vss/pedersen"
	"go.dedis.ch/kyber/v3/sign/schnorr"
	"go.dedis.ch/kyber/v3/util/random"
)

// Versions of the DKG wire message and of the persisted ceremony state.
const (
	DKGMessageVersion = "keyquorum dkg message v1"
	DKGStateVersion   = "keyquorum dkg state v1"
)

// Domain-separation labels for what a ceremony derives from its seed.
const (
	labelDKGSecret = "keyquorum/v1/dkg/secret"
	labelDKGPoly   = "keyquorum/v1/dkg/poly"
)

// Errors of a DKG ceremony. Test them with errors.Is.
var (
	// ErrCeremonyAborted: fewer than t participants dealt correctly, so no
	// key was produced. Nothing of the ceremony is worth keeping.
	ErrCeremonyAborted = errors.New("trustee: dkg ceremony aborted")
	// ErrCeremonyIncomplete: Finish was called while messages are still
	// expected and before SetTimeout.
	ErrCeremonyIncomplete = errors.New("trustee: dkg ceremony not finished")
	// ErrBadDKGMessage: a message that is malformed, for another ceremony
	// or recipient, out of range, a duplicate, or not signed by its sender.
	ErrBadDKGMessage = errors.New("trustee: bad dkg message")
	// ErrBadDKGState: persisted ceremony state that does not parse or does
	// not belong to the configuration given.
	ErrBadDKGState = errors.New("trustee: bad dkg state")
)

// DKGKey is a participant's long-term key for one DKG ceremony, a key pair
// in the Ed25519 group: deals addressed to the participant are encrypted to
// Public, and its deals, responses and justifications are signed (Schnorr)
// with Private. Make a fresh key for every ceremony and publish Public
// through an authenticated channel (the node's TLS API): a key reused
// across ceremonies would let a relay replay an old deal into a new one.
type DKGKey struct {
	Private kyber.Scalar
	Public  kyber.Point
}

// GenerateDKGKey draws a new DKG long-term key from rand.
func GenerateDKGKey(rand io.Reader) (*DKGKey, error) {
	k, err := group.RandomScalar(rand)
	if err != nil {
		return nil, fmt.Errorf("trustee: dkg key: %w", err)
	}
	return &DKGKey{Private: k, Public: group.Point().Mul(k, nil)}, nil
}

// DKGParticipant is one participant as every participant must see it: the
// order of the list fixes the share indices (the i-th participant,
// counting from 1, gets the share at x = i).
type DKGParticipant struct {
	Name string
	Key  kyber.Point // long-term DKG public key
}

// CeremonyConfig is everything a participant needs to take part in one
// ceremony. All fields but Longterm and Rand are the same for every
// participant.
type CeremonyConfig struct {
	ID           [16]byte // random, chosen by the coordinator
	Epoch        uint32
	Threshold    int // t, at least 2 (kyber's VSS refuses t < 2)
	Participants []DKGParticipant
	Index        int          // own 1-based index in Participants
	Longterm     kyber.Scalar // own DKGKey.Private
	// Rand gives the ceremony's seed (32 bytes, from which the secret
	// polynomial follows). Signature nonces and the ephemeral keys that
	// encrypt deals always come from crypto/rand: a restored ceremony
	// replays its inputs, and a nonce drawn twice from a replayed source
	// for two different messages would give the long-term key away.
	Rand io.Reader
}

func (cfg *CeremonyConfig) check() error {
	n := len(cfg.Participants)
	if n < 2 {
		return fmt.Errorf("trustee: dkg needs at least 2 participants, got %d", n)
	}
	if cfg.Threshold < 2 || cfg.Threshold > n {
		return fmt.Errorf("trustee: dkg threshold %d with %d participants: use 2..%d", cfg.Threshold, n, n)
	}
	if cfg.Index < 1 || cfg.Index > n {
		return fmt.Errorf("trustee: dkg own index %d outside 1..%d", cfg.Index, n)
	}
	if cfg.Longterm == nil {
		return errors.New("trustee: dkg config has no long-term key")
	}
	names := map[string]bool{}
	keys := map[string]bool{}
	for i, p := range cfg.Participants {
		if !ValidTrusteeName(p.Name) || names[p.Name] {
			return fmt.Errorf("trustee: dkg participant %d: name %q invalid or repeated", i+1, p.Name)
		}
		names[p.Name] = true
		if p.Key == nil {
			return fmt.Errorf("trustee: dkg participant %d (%s) has no key", i+1, p.Name)
		}
		if _, err := group.ParsePoint(group.PointBytes(p.Key)); err != nil {
			return fmt.Errorf("trustee: dkg participant %d (%s) key: %w", i+1, p.Name, err)
		}
		k := string(group.PointBytes(p.Key))
		if keys[k] {
			return fmt.Errorf("trustee: dkg participant %d (%s) reuses another participant's key", i+1, p.Name)
		}
		keys[k] = true
	}
	if !group.Point().Mul(cfg.Longterm, nil).Equal(cfg.Participants[cfg.Index-1].Key) {
		return fmt.Errorf("trustee: dkg long-term key is not participant %d's (%s)", cfg.Index, cfg.Participants[cfg.Index-1].Name)
	}
	return nil
}

// MisbehaviourError names a participant whose deal or justification was
// wrong, or who did not take part in time.
type MisbehaviourError struct {
	Participant int // 1-based index
	Name        string
	Reason      string
}

func (e *MisbehaviourError) Error() string {
	return fmt.Sprintf("trustee: dkg participant %d (%s): %s", e.Participant, e.Name, e.Reason)
}

// AbortError is the error of a ceremony that cannot produce a key: fewer
// than Threshold deals qualified. It matches [ErrCeremonyAborted].
type AbortError struct {
	Qualified    []int // 1-based indices of the deals that did qualify
	Threshold    int
	Disqualified []*MisbehaviourError
}

func (e *AbortError) Error() string {
	var who []string
	for _, m := range e.Disqualified {
		who = append(who, fmt.Sprintf("%d (%s): %s", m.Participant, m.Name, m.Reason))
	}
	return fmt.Sprintf("%v: %d deals qualified, threshold is %d; disqualified: %s; no key was made: run a new ceremony with participants that are up",
		ErrCeremonyAborted, len(e.Qualified), e.Threshold, strings.Join(who, "; "))
}

func (e *AbortError) Is(target error) bool { return target == ErrCeremonyAborted }

// DKGResult is what one participant holds when a ceremony succeeds. Every
// qualified participant gets the same GroupKey, Commitment, Qualified and
// Disqualified (given the same messages); only Share differs.
type DKGResult struct {
	Share      *EpochShare   // own share; Share.Index is the 1-based x-coordinate
	GroupKey   kyber.Point   // X_e = Commitment[0]
	Commitment []kyber.Point // A_0..A_{t-1} of the joint polynomial
	// Qualified lists (1-based) the participants whose deals make up the key.
	Qualified []int
	// Disqualified names the participants whose deals were left out, and why.
	Disqualified []*MisbehaviourError
}

// GroupEpoch returns the epoch entry of a group file for this result.
func (r *DKGResult) GroupEpoch(e GroupEpoch) GroupEpoch {
	e.Epoch = r.Share.Epoch
	e.Key = b64(group.PointBytes(r.GroupKey))
	e.Commitment = nil
	for _, p := range r.Commitment {
		e.Commitment = append(e.Commitment, b64(group.PointBytes(p)))
	}
	return e
}

// MessageKind says what a [Message] carries.
type MessageKind string

// The three kinds of DKG message.
const (
	KindDeal          MessageKind = "deal"          // to one recipient, encrypted
	KindResponse      MessageKind = "response"      // to every participant
	KindJustification MessageKind = "justification" // to every participant
)

// Message is one serialised DKG message with its routing header. Bytes is
// the whole message (a versioned JSON object); From, To and Kind repeat
// what it says, so a transport can route it without understanding it. To
// is 0 for a message every other participant must receive.
type Message struct {
	Kind  MessageKind
	From  int // 1-based
	To    int // 1-based, or 0: every participant
	Bytes []byte
}

// Phase is where a ceremony stands.
type Phase int

// Phases of a ceremony, in order.
const (
	PhaseDeals          Phase = iota // waiting for deals
	PhaseResponses                   // every deal in, waiting for responses
	PhaseJustifications              // complaints wait for justifications
	PhaseDone                        // Finish produced a share
	PhaseAborted                     // Finish found too few qualified deals
)

func (p Phase) String() string {
	return [...]string{"deals", "responses", "justifications", "done", "aborted"}[p]
}

// Ceremony is one participant's side of a dealerless distributed key
// generation, an explicit state machine over kyber's share/dkg/pedersen.
//
// # Protocol
//
// This is Pedersen's DKG (T. P. Pedersen, "A threshold cryptosystem without
// a trusted party", EUROCRYPT '91): every participant deals a random
// polynomial with Feldman commitments to all the others, every recipient
// checks its share against the commitments and broadcasts an approval or a
// complaint, a dealer answers a complaint by revealing the disputed share
// (a justification), and the group key is the sum of the qualified
// dealers' constant terms. No participant ever computes the group secret
// x; each holds x_i = Σ_j f_j(i). kyber's pedersen package implements this
// joint-Feldman variant, with deals encrypted (ECDH + AES-GCM) to each
// recipient's long-term key and every message Schnorr-signed. It is not
// the variant of Gennaro, Jarecki, Krawczyk and Rabin ("Secure distributed
// key generation for discrete-log based cryptosystems", J. Cryptology
// 2007), who showed that in joint-Feldman an active adversary can bias the
// distribution of the public key by choosing, after seeing the others'
// commitments, whether its own deal qualifies, and who fixed that with a
// first phase of Pedersen (information-theoretically hiding) commitments;
// kyber implements theirs in share/dkg/rabin. The bias does not reveal x,
// and keyquorum uses the key only as an ElGamal-style decryption key; the
// rabin variant would be the one to use where a uniformly random key
// matters.
//
// # Indices
//
// kyber counts participants and share holders from 0 and evaluates share
// I at x = I+1. Everything a Ceremony takes or returns counts from 1 (the
// x-coordinate), as the rest of keyquorum does; the conversion happens only
// at the calls into kyber.
//
// # Timeouts
//
// The coordinator sets the phase deadlines. When it gives up waiting, it
// tells every participant to call [Ceremony.SetTimeout]: a dealer that
// never dealt is then left out, and a deal missing at most n-t responses
// still counts. If fewer than t deals qualify, [Ceremony.Finish] returns
// an [*AbortError] ([ErrCeremonyAborted]) and no key exists. Before the
// timeout Finish succeeds only when every deal and response is in and
// every complaint is justified, so that all participants agree on the
// qualified set. Responses must reach every participant: QUAL is computed
// by each from what it has seen.
//
// # Persisted state
//
// kyber's DistKeyGenerator cannot be serialised, so the state
// ([Ceremony.MarshalState]) stores the inputs instead: the 32-byte seed
// from which the secret polynomial is derived (the constant term through
// kyber's Config.Reader, the other coefficients through the suite's random
// stream while the generator is built), the deals this participant sent,
// every message it has accepted, in order, and whether the timeout was
// set. [RestoreCeremony] rebuilds the generator from the seed, which gives
// the same polynomial and so deals consistent with the ones already sent,
// and replays the messages. The seed determines this participant's
// contribution to x: the state is secret, and callers seal it (the node's
// vault) and destroy it when the ceremony ends.
//
// # Known limits of kyber v3 handled here
//
// A justified complaint does not replace the bad share in kyber's
// verifier; Finish substitutes the justified share. A deal that is
// correctly signed but cannot be decrypted gets no response from kyber;
// the dealer is named, and the final check that every qualified
// participant signs the same group file catches any disagreement.
type Ceremony struct {
	cfg   CeremonyConfig
	seed  [32]byte
	suite *ceremonySuite
	gen   *dkg.DistKeyGenerator
	n     int

	deals    []Message // what this participant dealt, generated once
	received [][]byte  // every accepted message, in order
	timeout  bool

	dealFrom   map[int]bool            // 1-based dealers whose deal arrived
	pending    map[int][]*dkg.Response // responses that came before their deal, by 0-based dealer
	complaints map[int]map[int]bool    // dealer -> complainers (1-based), unjustified
	justified  map[int]*share.PriShare
	badDeal    map[int]string // 1-based dealer -> reason seen here
	ownDeal    map[int]*share.PriShare

	result  *DKGResult
	aborted error
}

// ceremonySuite is kyber's Ed25519 suite whose random stream can be
// switched to one derived from the ceremony seed while the generator is
// being built (so the secret polynomial is reproducible), and is
// crypto/rand otherwise.
type ceremonySuite struct {
	*edwards25519.SuiteEd25519
	det cipher.Stream
}

func (s *ceremonySuite) RandomStream() cipher.Stream {
	if s.det != nil {
		return s.det
	}
	return random.New(crand.Reader)
}

// seedStream is the deterministic stream for one label.
func seedStream(seed [32]byte, label string) kyber.XOF {
	return group.Suite().XOF(append([]byte(label), seed[:]...))
}

// NewCeremony starts a ceremony: it draws the seed, builds kyber's
// generator and makes this participant's deals (see [Ceremony.Deals]).
func NewCeremony(cfg CeremonyConfig) (*Ceremony, error) {
	if cfg.Rand == nil {
		cfg.Rand = crand.Reader
	}
	var seed [32]byte
	if _, err := io.ReadFull(cfg.Rand, seed[:]); err != nil {
		return nil, fmt.Errorf("trustee: dkg seed: %w", err)
	}
	c, err := newCeremony(cfg, seed)
	if err != nil {
		return nil, err
	}
	if err := c.makeDeals(); err != nil {
		return nil, err
	}
	return c, nil
}

func newCeremony(cfg CeremonyConfig, seed [32]byte) (*Ceremony, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	c := &Ceremony{
		cfg: cfg, seed: seed, n: len(cfg.Participants),
		suite:      &ceremonySuite{SuiteEd25519: group.Suite()},
		dealFrom:   map[int]bool{},
		pending:    map[int][]*dkg.Response{},
		complaints: map[int]map[int]bool{},
		justified:  map[int]*share.PriShare{},
		badDeal:    map[int]string{},
	}
	var pubs []kyber.Point
	for _, p := range cfg.Participants {
		pubs = append(pubs, p.Key)
	}
	c.suite.det = seedStream(seed, labelDKGPoly)
	gen, err := dkg.NewDistKeyHandler(&dkg.Config{
		Suite:          c.suite,
		Longterm:       cfg.Longterm,
		NewNodes:       pubs,
		Threshold:      cfg.Threshold,
		Reader:         seedStream(seed, labelDKGSecret),
		UserReaderOnly: true,
	})
	c.suite.det = nil
	if err != nil {
		return nil, fmt.Errorf("trustee: dkg: %w", err)
	}
	c.gen = gen
	return c, nil
}

// makeDeals has kyber make (and process its own) deal; the messages are
// kept only the first time.
func (c *Ceremony) makeDeals() error {
	dd, err := c.gen.Deals()
	if err != nil {
		return fmt.Errorf("trustee: dkg deals: %w", err)
	}
	if c.deals != nil {
		return nil
	}
	for i := 0; i < c.n; i++ {
		d, ok := dd[i]
		if !ok {
			continue // own deal
		}
		w := c.header(KindDeal, i+1)
		w.Deal = &wireDeal{
			DHKey: d.Deal.DHKey, DHSig: d.Deal.Signature, Nonce: d.Deal.Nonce,
			Cipher: d.Deal.Cipher, Signature: d.Signature,
		}
		m, err := w.message()
		if err != nil {
			return err
		}
		c.deals = append(c.deals, m)
	}
	return nil
}

// Deals returns this participant's deals, one per other participant
// (Message.To), each encrypted to its recipient's long-term key. It
// returns the same messages every time, also after a restore.
func (c *Ceremony) Deals() ([]Message, error) {
	return slices.Clone(c.deals), nil
}

// Phase reports where the ceremony stands.
func (c *Ceremony) Phase() Phase {
	switch {
	case c.result != nil:
		return PhaseDone
	case c.aborted != nil:
		return PhaseAborted
	case len(c.dealFrom) < c.n-1 && !c.timeout:
		return PhaseDeals
	}
	for _, who := range c.complaints {
		if len(who) > 0 {
			return PhaseJustifications
		}
	}
	return PhaseResponses
}

// Process dispatches a message to ProcessDeal, ProcessResponse or
// ProcessJustification and returns the messages to send in answer.
func (c *Ceremony) Process(m Message) ([]Message, error) {
	switch m.Kind {
	case KindDeal:
		return c.ProcessDeal(m)
	case KindResponse:
		j, err := c.ProcessResponse(m)
		if j != nil {
			return []Message{*j}, err
		}
		return nil, err
	case KindJustification:
		return nil, c.ProcessJustification(m)
	}
	return nil, fmt.Errorf("%w: kind %q", ErrBadDKGMessage, m.Kind)
}

// ProcessDeal takes a deal addressed to this participant and returns the
// response to send to every participant: an approval, or a complaint if
// the share does not match the dealer's commitments (the dealer is then
// also named in [Ceremony.Misbehaviour]).
func (c *Ceremony) ProcessDeal(m Message) ([]Message, error) {
	w, err := c.parse(m, KindDeal)
	if err != nil {
		return nil, err
	}
	if c.dealFrom[w.From] {
		return nil, fmt.Errorf("%w: second deal from participant %d", ErrBadDKGMessage, w.From)
	}
	dd := &dkg.Deal{
		Index:     uint32(w.From - 1),
		Deal:      &vss.EncryptedDeal{DHKey: w.Deal.DHKey, Signature: w.Deal.DHSig, Nonce: w.Deal.Nonce, Cipher: w.Deal.Cipher},
		Signature: w.Deal.Signature,
	}
	// Check the dealer's signature first: after it, whatever is wrong
	// with the deal is the dealer's doing, not a relay's.
	signed, _ := dd.MarshalBinary()
	if err := schnorr.Verify(c.suite, c.cfg.Participants[w.From-1].Key, signed, dd.Signature); err != nil {
		return nil, fmt.Errorf("%w: deal not signed by participant %d: %v", ErrBadDKGMessage, w.From, err)
	}
	c.received = append(c.received, m.Bytes)
	return c.applyDeal(w.From, dd)
}

func (c *Ceremony) applyDeal(from int, dd *dkg.Deal) ([]Message, error) {
	c.dealFrom[from] = true
	resp, err := c.gen.ProcessDeal(dd)
	if err != nil {
		c.badDeal[from] = "sent a signed deal that does not decrypt or is malformed: " + err.Error()
		return nil, c.misbehaviour(from, c.badDeal[from])
	}
	out := []Message{}
	if resp.Response.Status == vss.StatusComplaint {
		c.badDeal[from] = "its deal's share does not match its commitments"
		c.complain(from, c.cfg.Index)
	}
	rm, err := c.responseMessage(resp)
	if err != nil {
		return nil, err
	}
	out = append(out, rm)
	// Responses that arrived before this deal can be applied now.
	early := c.pending[from-1]
	delete(c.pending, from-1)
	for _, r := range early {
		if _, err := c.applyResponse(r); err != nil {
			continue // the error was the sender's; nothing to answer
		}
	}
	return out, nil
}

func (c *Ceremony) complain(dealer, by int) {
	if c.complaints[dealer] == nil {
		c.complaints[dealer] = map[int]bool{}
	}
	c.complaints[dealer][by] = true
}

func (c *Ceremony) responseMessage(r *dkg.Response) (Message, error) {
	w := c.header(KindResponse, 0)
	w.Response = &wireResponse{
		Dealer: int(r.Index) + 1, SessionID: r.Response.SessionID,
		Approved: r.Response.Status == vss.StatusApproval, Signature: r.Response.Signature,
	}
	return w.message()
}

// ProcessResponse takes another participant's response to some deal. If
// it is a complaint about this participant's own deal, it returns the
// justification to send to every participant.
func (c *Ceremony) ProcessResponse(m Message) (*Message, error) {
	w, err := c.parse(m, KindResponse)
	if err != nil {
		return nil, err
	}
	r := w.Response
	if r.Dealer < 1 || r.Dealer > c.n {
		return nil, fmt.Errorf("%w: response about dealer %d of %d", ErrBadDKGMessage, r.Dealer, c.n)
	}
	if r.Dealer == w.From {
		return nil, fmt.Errorf("%w: participant %d responded to its own deal", ErrBadDKGMessage, w.From)
	}
	resp := &dkg.Response{Index: uint32(r.Dealer - 1), Response: &vss.Response{
		SessionID: r.SessionID, Index: uint32(w.From - 1), Status: r.Approved, Signature: r.Signature,
	}}
	if err := schnorr.Verify(c.suite, c.cfg.Participants[w.From-1].Key, resp.Response.Hash(c.suite), r.Signature); err != nil {
		return nil, fmt.Errorf("%w: response not signed by participant %d: %v", ErrBadDKGMessage, w.From, err)
	}
	c.received = append(c.received, m.Bytes)
	return c.applyResponse(resp)
}

func (c *Ceremony) applyResponse(resp *dkg.Response) (*Message, error) {
	dealer, from := int(resp.Index)+1, int(resp.Response.Index)+1
	j, err := c.gen.ProcessResponse(resp)
	if errors.Is(err, vss.ErrNoDealBeforeResponse) {
		c.pending[int(resp.Index)] = append(c.pending[int(resp.Index)], resp)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: response from participant %d about dealer %d: %v", ErrBadDKGMessage, from, dealer, err)
	}
	if resp.Response.Status == vss.StatusComplaint {
		c.complain(dealer, from)
	}
	if j == nil {
		return nil, nil
	}
	// kyber has applied our own justification to our own verifier.
	delete(c.complaints[dealer], from)
	w := c.header(KindJustification, 0)
	w.Justification = justificationToWire(j)
	m, err := w.message()
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// ProcessJustification takes a dealer's answer to a complaint. An invalid
// justification disqualifies the dealer; the error then is a
// [*MisbehaviourError].
func (c *Ceremony) ProcessJustification(m Message) error {
	w, err := c.parse(m, KindJustification)
	if err != nil {
		return err
	}
	j, err := justificationFromWire(w.From, w.Justification)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadDKGMessage, err)
	}
	if err := schnorr.Verify(c.suite, c.cfg.Participants[w.From-1].Key, j.Justification.Hash(c.suite), j.Justification.Signature); err != nil {
		return fmt.Errorf("%w: justification not signed by participant %d: %v", ErrBadDKGMessage, w.From, err)
	}
	c.received = append(c.received, m.Bytes)
	return c.applyJustification(j)
}

func (c *Ceremony) applyJustification(j *dkg.Justification) error {
	dealer, holder := int(j.Index)+1, int(j.Justification.Index)+1
	if !c.complaints[dealer][holder] {
		return fmt.Errorf("%w: justification by %d for a complaint by %d that was not made or already answered", ErrBadDKGMessage, dealer, holder)
	}
	if err := c.gen.ProcessJustification(j); err != nil {
		c.badDeal[dealer] = fmt.Sprintf("its justification for participant %d's complaint is invalid: %v", holder, err)
		return c.misbehaviour(dealer, c.badDeal[dealer])
	}
	delete(c.complaints[dealer], holder)
	if holder == c.cfg.Index {
		c.justified[dealer] = j.Justification.Deal.SecShare
		delete(c.badDeal, dealer)
	}
	return nil
}

// SetTimeout marks the end of the waiting: missing deals and responses
// will not come. Call it when the coordinator says the phase deadline
// passed.
func (c *Ceremony) SetTimeout() {
	c.timeout = true
	c.gen.SetTimeout()
}

func (c *Ceremony) misbehaviour(i int, reason string) *MisbehaviourError {
	return &MisbehaviourError{Participant: i, Name: c.cfg.Participants[i-1].Name, Reason: reason}
}

// Misbehaviour lists the participants this one has seen misbehave so far:
// bad deals, complaints not (yet) justified, invalid justifications.
func (c *Ceremony) Misbehaviour() []*MisbehaviourError {
	var out []*MisbehaviourError
	for i := 1; i <= c.n; i++ {
		if r, ok := c.badDeal[i]; ok {
			out = append(out, c.misbehaviour(i, r))
		} else if len(c.complaints[i]) > 0 {
			out = append(out, c.misbehaviour(i, c.complaintReason(i)))
		}
	}
	return out
}

func (c *Ceremony) complaintReason(dealer int) string {
	var who []string
	for _, k := range sortedKeys(c.complaints[dealer]) {
		who = append(who, fmt.Sprintf("%d (%s)", k, c.cfg.Participants[k-1].Name))
	}
	return "complaint by " + strings.Join(who, ", ") + " not answered by a valid justification"
}

func sortedKeys(m map[int]bool) []int {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Finish ends the ceremony. It returns the result if every deal and
// response is in and every complaint answered, or, after SetTimeout, if at
// least t deals qualified; an [*AbortError] if after the timeout fewer
// than t did; and an error wrapping [ErrCeremonyIncomplete] if it is too
// early to tell.
func (c *Ceremony) Finish() (*DKGResult, error) {
	if c.result != nil {
		return c.result, nil
	}
	if c.aborted != nil {
		return nil, c.aborted
	}
	if !c.timeout && !c.gen.Certified() {
		return nil, fmt.Errorf("%w: in phase %s; deliver the missing messages or call SetTimeout when the deadline passes", ErrCeremonyIncomplete, c.Phase())
	}
	var qual []int
	for _, i := range c.gen.QUAL() {
		qual = append(qual, i+1)
	}
	slices.Sort(qual)
	var dis []*MisbehaviourError
	for i := 1; i <= c.n; i++ {
		if slices.Contains(qual, i) {
			continue
		}
		dis = append(dis, c.misbehaviour(i, c.exclusionReason(i)))
	}
	if !c.gen.ThresholdCertified() {
		c.aborted = &AbortError{Qualified: qual, Threshold: c.cfg.Threshold, Disqualified: dis}
		return nil, c.aborted
	}
	dks, err := c.gen.DistKeyShare()
	if err != nil {
		return nil, fmt.Errorf("trustee: dkg: %w", err)
	}
	v := dks.Share.V.Clone()
	// kyber keeps the bad share of a justified deal; use the revealed one.
	for dealer, good := range c.justified {
		if !slices.Contains(qual, dealer) {
			continue
		}
		bad := c.gen.Verifiers()[uint32(dealer-1)].Deal().SecShare.V
		v.Sub(v, bad)
		v.Add(v, good.V)
	}
	// kyber's share I is 0-based and evaluated at x = I+1.
	x := dks.Share.I + 1
	if x != c.cfg.Index {
		return nil, fmt.Errorf("trustee: dkg: kyber returned share %d for participant %d", dks.Share.I, c.cfg.Index)
	}
	com := &shares.Commitment{Points: dks.Commits}
	if len(com.Points) != c.cfg.Threshold {
		return nil, fmt.Errorf("trustee: dkg: %d commitments for threshold %d", len(com.Points), c.cfg.Threshold)
	}
	if err := com.Verify(shares.Share{Index: x, Value: v}); err != nil {
		return nil, fmt.Errorf("trustee: dkg: own share does not match the joint commitment: %w", err)
	}
	c.result = &DKGResult{
		Share:        &EpochShare{Epoch: c.cfg.Epoch, Index: x, Share: v, GroupKey: com.Points[0].Clone()},
		GroupKey:     com.Points[0].Clone(),
		Commitment:   dks.Commits,
		Qualified:    qual,
		Disqualified: dis,
	}
	return c.result, nil
}

func (c *Ceremony) exclusionReason(i int) string {
	if r, ok := c.badDeal[i]; ok {
		return r
	}
	if len(c.complaints[i]) > 0 {
		return c.complaintReason(i)
	}
	if i != c.cfg.Index && !c.dealFrom[i] {
		return "sent no deal before the timeout"
	}
	return "too few responses to its deal before the timeout"
}

// ---- wire format ----

type wireMessage struct {
	Version       string             `json:"version"`
	Ceremony      string             `json:"ceremony"` // hex of the 16-byte id
	Epoch         uint32             `json:"epoch"`
	Kind          MessageKind        `json:"kind"`
	From          int                `json:"from"`
	To            int                `json:"to,omitempty"`
	Deal          *wireDeal          `json:"deal,omitempty"`
	Response      *wireResponse      `json:"response,omitempty"`
	Justification *wireJustification `json:"justification,omitempty"`
}

// wireDeal is kyber's dkg.Deal; the dealer's 0-based index is From-1.
type wireDeal struct {
	DHKey     []byte `json:"dh_key"`
	DHSig     []byte `json:"dh_sig"`
	Nonce     []byte `json:"nonce"`
	Cipher    []byte `json:"cipher"`
	Signature []byte `json:"signature"`
}

// wireResponse is kyber's dkg.Response; the responder's 0-based index is
// From-1.
type wireResponse struct {
	Dealer    int    `json:"dealer"` // 1-based
	SessionID []byte `json:"session_id"`
	Approved  bool   `json:"approved"`
	Signature []byte `json:"signature"`
}

// wireJustification is kyber's dkg.Justification; the dealer is From. It
// reveals the complainer's share of the dealer's polynomial, as the
// protocol requires.
type wireJustification struct {
	Holder      int      `json:"holder"` // 1-based complainer
	SessionID   []byte   `json:"session_id"`
	ShareIndex  int      `json:"share_index"` // 1-based x of the revealed share
	Share       []byte   `json:"share"`
	T           uint32   `json:"t"`
	Commitments [][]byte `json:"commitments"`
	DealSID     []byte   `json:"deal_session_id"`
	Signature   []byte   `json:"signature"`
}

func justificationToWire(j *dkg.Justification) *wireJustification {
	d := j.Justification.Deal
	w := &wireJustification{
		Holder: int(j.Justification.Index) + 1, SessionID: j.Justification.SessionID,
		ShareIndex: d.SecShare.I + 1, Share: group.ScalarBytes(d.SecShare.V), T: d.T,
		DealSID: d.SessionID, Signature: j.Justification.Signature,
	}
	for _, p := range d.Commitments {
		w.Commitments = append(w.Commitments, group.PointBytes(p))
	}
	return w
}

func justificationFromWire(from int, w *wireJustification) (*dkg.Justification, error) {
	if w.Holder < 1 || w.ShareIndex < 1 {
		return nil, errors.New("justification indices must be 1-based")
	}
	v, err := group.ParseScalar(w.Share)
	if err != nil {
		return nil, fmt.Errorf("justification share: %w", err)
	}
	d := &vss.Deal{SessionID: w.DealSID, SecShare: &share.PriShare{I: w.ShareIndex - 1, V: v}, T: w.T}
	for k, b := range w.Commitments {
		p, err := group.ParsePoint(b)
		if err != nil {
			return nil, fmt.Errorf("justification commitment %d: %w", k, err)
		}
		d.Commitments = append(d.Commitments, p)
	}
	return &dkg.Justification{Index: uint32(from - 1), Justification: &vss.Justification{
		SessionID: w.SessionID, Index: uint32(w.Holder - 1), Deal: d, Signature: w.Signature,
	}}, nil
}

func (c *Ceremony) header(kind MessageKind, to int) *wireMessage {
	return &wireMessage{
		Version: DKGMessageVersion, Ceremony: hex.EncodeToString(c.cfg.ID[:]), Epoch: c.cfg.Epoch,
		Kind: kind, From: c.cfg.Index, To: to,
	}
}

func (w *wireMessage) message() (Message, error) {
	b, err := json.Marshal(w)
	if err != nil {
		return Message{}, err
	}
	return Message{Kind: w.Kind, From: w.From, To: w.To, Bytes: b}, nil
}

// ParseMessage decodes a DKG message received from a transport and fills
// in its routing header. Only the canonical encoding is accepted.
func ParseMessage(b []byte) (Message, error) {
	w, err := parseWire(b)
	if err != nil {
		return Message{}, err
	}
	return Message{Kind: w.Kind, From: w.From, To: w.To, Bytes: bytes.Clone(b)}, nil
}

func parseWire(b []byte) (*wireMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wireMessage
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDKGMessage, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrBadDKGMessage)
	}
	if w.Version != DKGMessageVersion {
		return nil, fmt.Errorf("%w: version %q, this build reads %q", ErrBadDKGMessage, w.Version, DKGMessageVersion)
	}
	n := 0
	for _, set := range []bool{w.Deal != nil, w.Response != nil, w.Justification != nil} {
		if set {
			n++
		}
	}
	ok := n == 1 && (w.Kind == KindDeal) == (w.Deal != nil) && (w.Kind == KindResponse) == (w.Response != nil) &&
		(w.Kind == KindJustification) == (w.Justification != nil) && (w.Kind == KindDeal) == (w.To != 0)
	if !ok {
		return nil, fmt.Errorf("%w: kind %q does not match its body", ErrBadDKGMessage, w.Kind)
	}
	again, err := json.Marshal(&w)
	if err != nil || !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrBadDKGMessage)
	}
	return &w, nil
}

// parse checks that a message belongs to this ceremony, is of the kind
// expected and comes from another participant.
func (c *Ceremony) parse(m Message, kind MessageKind) (*wireMessage, error) {
	w, err := parseWire(m.Bytes)
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) (*wireMessage, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrBadDKGMessage}, args...)...)
	}
	switch {
	case w.Kind != kind:
		return bad("got a %s where a %s was expected", w.Kind, kind)
	case w.Ceremony != hex.EncodeToString(c.cfg.ID[:]) || w.Epoch != c.cfg.Epoch:
		return bad("message for ceremony %s epoch %d, this is %x epoch %d", w.Ceremony, w.Epoch, c.cfg.ID, c.cfg.Epoch)
	case w.From < 1 || w.From > c.n:
		return bad("sender %d outside 1..%d", w.From, c.n)
	case w.From == c.cfg.Index:
		return bad("message from this participant itself")
	case kind == KindDeal && w.To != c.cfg.Index:
		return bad("deal for participant %d delivered to %d", w.To, c.cfg.Index)
	}
	return w, nil
}

// ---- persisted state ----

type ceremonyState struct {
	Version  string   `json:"version"`
	Ceremony string   `json:"ceremony"`
	Epoch    uint32   `json:"epoch"`
	Index    int      `json:"index"`
	Seed     []byte   `json:"seed"`
	Deals    [][]byte `json:"deals"`
	Received [][]byte `json:"received"`
	Timeout  bool     `json:"timeout"`
}

// MarshalState returns the ceremony's state for a restart. It contains
// the seed of this participant's secret polynomial: seal it (the node's
// vault) before it touches a disk, and destroy it when the ceremony ends.
func (c *Ceremony) MarshalState() ([]byte, error) {
	st := ceremonyState{
		Version: DKGStateVersion, Ceremony: hex.EncodeToString(c.cfg.ID[:]), Epoch: c.cfg.Epoch,
		Index: c.cfg.Index, Seed: c.seed[:], Received: c.received, Timeout: c.timeout,
	}
	for _, d := range c.deals {
		st.Deals = append(st.Deals, d.Bytes)
	}
	return json.Marshal(&st)
}

// RestoreCeremony rebuilds a ceremony from [Ceremony.MarshalState] and the
// configuration it was started with (cfg.Rand is not used): the same
// secret polynomial, the same deals, and every accepted message replayed.
// A ceremony that cannot be resumed (state for another ceremony, or
// corrupt) is an error wrapping [ErrBadDKGState]: abort it and start a new
// one.
func RestoreCeremony(b []byte, cfg CeremonyConfig) (*Ceremony, error) {
	var st ceremonyState
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDKGState, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data", ErrBadDKGState)
	}
	if st.Version != DKGStateVersion {
		return nil, fmt.Errorf("%w: version %q, this build reads %q", ErrBadDKGState, st.Version, DKGStateVersion)
	}
	if st.Ceremony != hex.EncodeToString(cfg.ID[:]) || st.Epoch != cfg.Epoch || st.Index != cfg.Index {
		return nil, fmt.Errorf("%w: state of ceremony %s epoch %d participant %d, config is %x epoch %d participant %d",
			ErrBadDKGState, st.Ceremony, st.Epoch, st.Index, cfg.ID, cfg.Epoch, cfg.Index)
	}
	if len(st.Seed) != 32 {
		return nil, fmt.Errorf("%w: seed of %d bytes", ErrBadDKGState, len(st.Seed))
	}
	var seed [32]byte
	copy(seed[:], st.Seed)
	c, err := newCeremony(cfg, seed)
	if err != nil {
		return nil, err
	}
	for _, d := range st.Deals {
		m, err := ParseMessage(d)
		if err != nil || m.Kind != KindDeal || m.From != cfg.Index {
			return nil, fmt.Errorf("%w: stored deal: %v", ErrBadDKGState, err)
		}
		c.deals = append(c.deals, m)
	}
	if len(c.deals) != c.n-1 {
		return nil, fmt.Errorf("%w: %d stored deals for %d participants", ErrBadDKGState, len(c.deals), c.n)
	}
	if err := c.makeDeals(); err != nil { // processes the own deal; keeps the stored messages
		return nil, err
	}
	for k, b := range st.Received {
		m, err := ParseMessage(b)
		if err != nil {
			return nil, fmt.Errorf("%w: received message %d: %v", ErrBadDKGState, k, err)
		}
		// Errors were reported when the message first came; replaying
		// gives the same state changes.
		_, _ = c.Process(m)
	}
	if len(c.received) != len(st.Received) {
		return nil, fmt.Errorf("%w: %d of %d stored messages replayed", ErrBadDKGState, len(c.received), len(st.Received))
	}
	if st.Timeout {
		c.SetTimeout()
	}
	return c, nil
}

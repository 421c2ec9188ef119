package ceremony

import (
	"bytes"
	"crypto/cipher"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/keyquorum/keyquorum/escrow"
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
	ErrCeremonyAborted = errors.New("ceremony: dkg ceremony aborted")
	// ErrCeremonyIncomplete: Finish was called while messages are still
	// expected and before SetTimeout.
	ErrCeremonyIncomplete = errors.New("ceremony: dkg ceremony not finished")
	// ErrBadDKGMessage: a message that is malformed, for another ceremony
	// or recipient, out of range, a duplicate, or not signed by its sender.
	ErrBadDKGMessage = errors.New("ceremony: bad dkg message")
	// ErrBadDKGState: persisted ceremony state that does not parse or does
	// not belong to the configuration given.
	ErrBadDKGState = errors.New("ceremony: bad dkg state")
	// ErrBadCeremonyConfig: a [CeremonyConfig] that cannot be run: the
	// error says which field is wrong.
	ErrBadCeremonyConfig = errors.New("ceremony: bad dkg ceremony config")
	// ErrCeremonyResult: enough deals qualified but the result does not
	// check out: the own share does not match the joint commitment, or a
	// reshare's new commitment does not commit to the old group key. Do
	// not use the result; run the ceremony again.
	ErrCeremonyResult = errors.New("ceremony: dkg result fails its check")
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
		return nil, fmt.Errorf("ceremony: dkg key: %w", err)
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
// ceremony. All fields but Index, Longterm, Rand and Reshare's OldShare and
// OldIndex are the same for every participant.
type CeremonyConfig struct {
	ID        [16]byte // random, chosen by the coordinator
	Epoch     uint32   // the epoch of the shares made (in a reshare, of the key moved)
	Threshold int      // t, at least 2 (kyber's VSS refuses t < 2)
	// Participants are the trustees who get shares (in a reshare, the new
	// roster).
	Participants []DKGParticipant
	// Index is the own 1-based index in Participants; in a reshare, 0 for
	// an old trustee that leaves.
	Index    int
	Longterm kyber.Scalar // own DKGKey.Private
	// Reshare, if set, makes the ceremony move the existing key of
	// Reshare.OldCommitment to Participants and Threshold instead of
	// making a new key. See [ReshareConfig].
	Reshare *ReshareConfig
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
		return fmt.Errorf("%w: %d participants; a ceremony needs at least 2", ErrBadCeremonyConfig, n)
	}
	if cfg.Threshold < 2 || cfg.Threshold > n {
		return fmt.Errorf("%w: threshold %d with %d participants: use 2..%d", ErrBadCeremonyConfig, cfg.Threshold, n, n)
	}
	lowest := 1
	if cfg.Reshare != nil {
		lowest = 0 // an old trustee that leaves
	}
	if cfg.Index < lowest || cfg.Index > n {
		return fmt.Errorf("%w: own index %d outside %d..%d", ErrBadCeremonyConfig, cfg.Index, lowest, n)
	}
	if cfg.Longterm == nil {
		return fmt.Errorf("%w: no long-term key", ErrBadCeremonyConfig)
	}
	if err := checkRoster("participant", cfg.Participants); err != nil {
		return err
	}
	own := group.Point().Mul(cfg.Longterm, nil)
	if cfg.Index > 0 && !own.Equal(cfg.Participants[cfg.Index-1].Key) {
		return fmt.Errorf("%w: long-term key is not participant %d's (%s)", ErrBadCeremonyConfig, cfg.Index, cfg.Participants[cfg.Index-1].Name)
	}
	if cfg.Reshare != nil {
		return cfg.Reshare.check(cfg, own)
	}
	return nil
}

// checkRoster refuses invalid or repeated names and keys.
func checkRoster(what string, ps []DKGParticipant) error {
	names := map[string]bool{}
	keys := map[string]bool{}
	for i, p := range ps {
		if !escrow.ValidTrusteeName(p.Name) || names[p.Name] {
			return fmt.Errorf("%w: %s %d: name %q invalid or repeated", ErrBadCeremonyConfig, what, i+1, p.Name)
		}
		names[p.Name] = true
		if p.Key == nil {
			return fmt.Errorf("%w: %s %d (%s) has no key", ErrBadCeremonyConfig, what, i+1, p.Name)
		}
		if _, err := group.ParsePoint(group.PointBytes(p.Key)); err != nil {
			return fmt.Errorf("%w: %s %d (%s) key: %w", ErrBadCeremonyConfig, what, i+1, p.Name, err)
		}
		k := string(group.PointBytes(p.Key))
		if keys[k] {
			return fmt.Errorf("%w: %s %d (%s) reuses another's key", ErrBadCeremonyConfig, what, i+1, p.Name)
		}
		keys[k] = true
	}
	return nil
}

// MisbehaviourError names a dealer whose deal or justification was
// wrong, or who did not take part in time.
type MisbehaviourError struct {
	Participant int // 1-based index among the dealers: in a reshare, the old roster
	Name        string
	Reason      string
}

func (e *MisbehaviourError) Error() string {
	return fmt.Sprintf("ceremony: dkg participant %d (%s): %s", e.Participant, e.Name, e.Reason)
}

// AbortError is the error of a ceremony that cannot produce a key: fewer
// than Threshold deals qualified. It matches [ErrCeremonyAborted].
type AbortError struct {
	Qualified    []int // 1-based indices of the deals that did qualify
	Threshold    int   // deals needed: t, or in a reshare the old threshold
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
//
// In a reshare, GroupKey is the old group key, Commitment the new one (t
// points, A_0 = GroupKey) and Share a share of the new sharing. An old
// trustee that leaves gets Share == nil and Commitment == nil: it sees no
// deal, so it cannot learn the new commitment (take it from the new
// participants' results), and its Qualified is its own tally of the
// responses and justifications.
type DKGResult struct {
	Epoch      uint32
	Share      *escrow.EpochShare // own share; Share.Index is the 1-based x-coordinate; nil for an old trustee that leaves
	GroupKey   kyber.Point        // X_e = Commitment[0]
	Commitment []kyber.Point      // A_0..A_{t-1} of the joint polynomial
	// Qualified lists (1-based) the dealers whose deals make up the key
	// (in a reshare, old roster indices).
	Qualified []int
	// Disqualified names the participants whose deals were left out, and why.
	Disqualified []*MisbehaviourError
}

// GroupEpoch returns the epoch entry of a group file for this result. On
// the result of an old trustee that leaves it has no commitment.
func (r *DKGResult) GroupEpoch(e escrow.GroupEpoch) escrow.GroupEpoch {
	e.Epoch = r.Epoch
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
//
// In a reshare the two rosters differ, and each index counts in the roster
// of the role: a deal and a justification come From a dealer's index in
// the old roster; a response comes From a participant's index in the new
// roster; a deal goes To an index in the new roster; and a message with To
// 0 goes to every other trustee of either roster (old trustees that leave
// need the responses and justifications too). In a DKG both rosters are
// Participants.
type Message struct {
	Kind  MessageKind
	From  int // 1-based: the dealer for a deal or justification, the responder for a response
	To    int // 1-based receiver of a deal, or 0: every participant
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
// # Resharing
//
// With [CeremonyConfig].Reshare set, the same state machine, messages and
// state move an existing key to a new roster and threshold instead (kyber's
// resharing mode of the same package; see [ReshareConfig] for the protocol
// and for who sends what). What follows holds for both, with "dealers"
// meaning the old roster in a reshare, where at least the old threshold of
// deals must qualify.
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
// kyber's Config.Reader, or in a reshare the old share; the other
// coefficients through the suite's random stream while the generator, and
// with it kyber's dealer, is built), the deals this participant sent,
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
// verifier; Finish puts the justified share in its place before kyber
// combines the shares. A deal that is
// correctly signed but cannot be decrypted gets no response from kyber;
// the dealer is named, and the final check that every qualified
// participant signs the same group file catches any disagreement.
//
// kyber checks a deal's share against the deal's commitments and the
// threshold the deal claims, not against the ceremony's threshold: a deal
// whose commitments are not t points gets a complaint here, its verifier
// is held to t approvals, and no justification can answer it. In a
// reshare kyber also complains when a deal's A_0 is not the dealer's old
// public share, but would take a justification that reveals a share
// matching the same wrong commitments: here no justification answers that
// complaint either.
//
// In a reshare, kyber gives an old trustee that leaves no verifier: its
// tally of which deals qualified ignores the timeout and justifications,
// and the justification it makes for a complaint about its own deal is
// unsigned. The Ceremony keeps its own tally for such a trustee (by the
// verifiers' rule) and signs its justifications. A trustee in both rosters
// answers its own deal, as kyber's resharing expects.
type Ceremony struct {
	cfg   CeremonyConfig
	seed  [32]byte
	suite *ceremonySuite
	gen   *dkg.DistKeyGenerator
	n     int // participants that get shares (the new roster)

	deals    []Message // what this participant sent first (its deals), generated once
	received [][]byte  // every accepted message, in order
	timeout  bool

	dealFrom   map[int]bool              // 1-based dealers whose deal arrived
	pending    map[int][]*dkg.Response   // responses that came before their deal, by 0-based dealer
	responses  map[int]map[int]*response // dealer -> responder -> what it said (1-based)
	complaints map[int]map[int]bool      // dealer -> complainers (1-based), unjustified
	justified  map[int]*share.PriShare   // dealer -> own share it revealed in a valid justification
	badDeal    map[int]string            // 1-based dealer -> reason seen here
	excluded   map[int]bool              // dealers whose deal no justification can answer

	keyBytes map[string][]byte // encoded long-term keys, by name

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
		return nil, fmt.Errorf("ceremony: dkg seed: %w", err)
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
		responses:  map[int]map[int]*response{},
		complaints: map[int]map[int]bool{},
		justified:  map[int]*share.PriShare{},
		badDeal:    map[int]string{},
		excluded:   map[int]bool{},
	}
	// kyber draws the dealer's polynomial (all but the constant term) from
	// the suite's stream in NewDistKeyHandler, for a DKG and a reshare.
	c.suite.det = seedStream(seed, labelDKGPoly)
	gen, err := dkg.NewDistKeyHandler(c.kyberConfig())
	c.suite.det = nil
	if err != nil {
		return nil, fmt.Errorf("ceremony: dkg: %w", err)
	}
	c.gen = gen
	return c, nil
}

// kyberConfig is the configuration of kyber's generator.
func (c *Ceremony) kyberConfig() *dkg.Config {
	kc := &dkg.Config{Suite: c.suite, Longterm: c.cfg.Longterm, Threshold: c.cfg.Threshold}
	for _, p := range c.cfg.Participants {
		kc.NewNodes = append(kc.NewNodes, p.Key)
	}
	if c.resharing() {
		c.reshareKyberConfig(kc)
	} else {
		kc.Reader = seedStream(c.seed, labelDKGSecret)
		kc.UserReaderOnly = true
	}
	return kc
}

// makeDeals has kyber make (and process its own) deal. The messages are
// kept only the first time; after a restore, the stored ones must be for
// the same recipients.
func (c *Ceremony) makeDeals() error {
	dd, err := c.gen.Deals()
	if err != nil {
		return fmt.Errorf("ceremony: dkg deals: %w", err)
	}
	var fresh []Message
	var own *Message
	for i := 0; i < c.n; i++ {
		d, ok := dd[i]
		if !ok {
			continue // a DKG's own deal, processed by kyber; or no deal at all
		}
		if i+1 == c.cfg.Index {
			// A reshare: kyber hands this trustee its own deal to process
			// and answer like any other.
			own, err = c.processOwnDeal(d)
			if err != nil {
				return err
			}
			continue
		}
		m, err := c.dealMessage(i+1, d)
		if err != nil {
			return err
		}
		fresh = append(fresh, m)
	}
	if own != nil {
		fresh = append(fresh, *own)
	}
	if c.deals == nil {
		c.deals = fresh
		return nil
	}
	if len(fresh) != len(c.deals) {
		return fmt.Errorf("%w: %d stored first messages, the configuration makes %d", ErrBadDKGState, len(c.deals), len(fresh))
	}
	for k, m := range fresh {
		if s := c.deals[k]; s.Kind != m.Kind || s.From != m.From || s.To != m.To {
			return fmt.Errorf("%w: stored first message %d is a %s from %d to %d, the configuration makes a %s from %d to %d",
				ErrBadDKGState, k, s.Kind, s.From, s.To, m.Kind, m.From, m.To)
		}
	}
	return nil
}

// dealMessage is the message of kyber's deal d to participant to.
func (c *Ceremony) dealMessage(to int, d *dkg.Deal) (Message, error) {
	w := c.header(KindDeal, to)
	w.Deal = &wireDeal{
		DHKey: d.Deal.DHKey, DHSig: d.Deal.Signature, Nonce: d.Deal.Nonce,
		Cipher: d.Deal.Cipher, Signature: d.Signature,
	}
	return w.message()
}

// processOwnDeal processes, in a reshare, the deal this trustee made to
// itself, and returns its response to it.
func (c *Ceremony) processOwnDeal(d *dkg.Deal) (*Message, error) {
	resp, err := c.gen.ProcessDeal(d)
	if err != nil {
		return nil, fmt.Errorf("ceremony: dkg: own deal: %w", err)
	}
	if resp.Response.Status != vss.StatusApproval {
		return nil, fmt.Errorf("ceremony: dkg: own deal does not verify")
	}
	c.gen.Verifiers()[d.Index].SetThreshold(c.cfg.Threshold)
	m, err := c.responseMessage(resp)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// Deals returns the messages this participant sends first: its deals, one
// per other participant (Message.To), each encrypted to its recipient's
// long-term key; and, in a reshare, for a trustee in both rosters, its
// response to its own deal (Kind response, To 0). A participant that does
// not deal (a trustee that joins in a reshare) has none. It returns the
// same messages every time, also after a restore.
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
	case len(c.dealFrom) < c.expectedDeals() && !c.timeout:
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
// the share does not match the dealer's commitments, or in a reshare if
// the deal does not reshare the dealer's old share (the dealer is then
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
	if err := c.verifySchnorr(c.dealers()[w.From-1], signed, dd.Signature); err != nil {
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
	ver := c.gen.Verifiers()[dd.Index]
	// kyber takes the threshold the deal claims; hold it to ours.
	ver.SetThreshold(c.cfg.Threshold)
	out := []Message{}
	if fault := c.dealFault(from, ver.Commits()); fault != "" {
		// kyber keeps the response it returns (the same pointer) as this
		// verifier's own: making it a complaint here makes it one there.
		resp.Response.Status = vss.StatusComplaint
		if resp.Response.Signature, err = schnorr.Sign(c.suite, c.cfg.Longterm, resp.Response.Hash(c.suite)); err != nil {
			return nil, fmt.Errorf("ceremony: dkg: sign complaint: %w", err)
		}
		c.badDeal[from] = fault
		c.excluded[from] = true
		c.complain(from, c.cfg.Index)
	} else if resp.Response.Status == vss.StatusComplaint {
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
	if nd := len(c.dealers()); r.Dealer < 1 || r.Dealer > nd {
		return nil, fmt.Errorf("%w: response about dealer %d of %d", ErrBadDKGMessage, r.Dealer, nd)
	}
	// In a DKG kyber counts a dealer's approval of its own deal itself; in
	// a reshare the dealer, if it is also a new participant, sends it.
	if !c.resharing() && r.Dealer == w.From {
		return nil, fmt.Errorf("%w: participant %d responded to its own deal", ErrBadDKGMessage, w.From)
	}
	resp := &dkg.Response{Index: uint32(r.Dealer - 1), Response: &vss.Response{
		SessionID: r.SessionID, Index: uint32(w.From - 1), Status: r.Approved, Signature: r.Signature,
	}}
	if err := c.verifySchnorr(c.cfg.Participants[w.From-1], resp.Response.Hash(c.suite), r.Signature); err != nil {
		return nil, fmt.Errorf("%w: response not signed by participant %d: %v", ErrBadDKGMessage, w.From, err)
	}
	if c.responses[r.Dealer][w.From] != nil {
		return nil, fmt.Errorf("%w: second response from participant %d about dealer %d", ErrBadDKGMessage, w.From, r.Dealer)
	}
	if c.responses[r.Dealer] == nil {
		c.responses[r.Dealer] = map[int]*response{}
	}
	c.responses[r.Dealer][w.From] = &response{approved: r.Approved, session: r.SessionID}
	c.received = append(c.received, m.Bytes)
	return c.applyResponse(resp)
}

func (c *Ceremony) applyResponse(resp *dkg.Response) (*Message, error) {
	dealer, from := int(resp.Index)+1, int(resp.Response.Index)+1
	if c.excluded[dealer] {
		// kyber's verdict on this deal is fixed; only the complaint counts.
		if resp.Response.Status == vss.StatusComplaint {
			c.complain(dealer, from)
		}
		return nil, nil
	}
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
	if j.Justification.Signature == nil {
		// kyber leaves unsigned the justifications of an old trustee that
		// leaves.
		if j.Justification.Signature, err = schnorr.Sign(c.suite, c.cfg.Longterm, j.Justification.Hash(c.suite)); err != nil {
			return nil, fmt.Errorf("ceremony: dkg: sign justification: %w", err)
		}
	}
	// kyber has applied our own justification to our own verifier, if
	// this trustee has one.
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
	if err := c.verifySchnorr(c.dealers()[w.From-1], j.Justification.Hash(c.suite), j.Justification.Signature); err != nil {
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
	d := j.Justification.Deal
	fault := ""
	// A dealer excluded when its deal came fails dealFault here again, or
	// kyber's session check.
	switch {
	case d.SecShare.I+1 != holder:
		fault = fmt.Sprintf("its justification for participant %d's complaint reveals the share of participant %d", holder, d.SecShare.I+1)
	default:
		fault = c.dealFault(dealer, d.Commitments)
	}
	if fault == "" && c.oldOnly() {
		fault = c.justificationFault(dealer, holder, d, j.Justification.SessionID)
	} else if fault == "" {
		if err := c.gen.ProcessJustification(j); err != nil {
			fault = fmt.Sprintf("its justification for participant %d's complaint is invalid: %v", holder, err)
		}
	}
	if fault != "" {
		c.badDeal[dealer] = fault
		return c.misbehaviour(dealer, fault)
	}
	delete(c.complaints[dealer], holder)
	if holder == c.cfg.Index {
		c.justified[dealer] = d.SecShare
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
	return &MisbehaviourError{Participant: i, Name: c.dealers()[i-1].Name, Reason: reason}
}

// Misbehaviour lists the dealers this participant has seen misbehave so
// far: bad deals, complaints not (yet) justified, invalid justifications.
func (c *Ceremony) Misbehaviour() []*MisbehaviourError {
	var out []*MisbehaviourError
	for i := 1; i <= len(c.dealers()); i++ {
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
// least t deals (in a reshare: the old threshold) qualified; an
// [*AbortError] if after the timeout fewer did; and an error wrapping
// [ErrCeremonyIncomplete] if it is too early to tell. A result that fails
// its final check (the own share against the joint commitment, and in a
// reshare the new commitment's A_0 against the old group key) is an error
// wrapping [ErrCeremonyResult].
//
// An old trustee that leaves a reshare gets a result with its tally of the
// qualified deals and the unchanged group key, but no Share and no
// Commitment (see [DKGResult]).
func (c *Ceremony) Finish() (*DKGResult, error) {
	if c.result != nil {
		return c.result, nil
	}
	if c.aborted != nil {
		return nil, c.aborted
	}
	var qual []int
	var complete bool
	if c.oldOnly() {
		qual, complete = c.oldOnlyQual()
	} else {
		complete = c.gen.Certified()
		for _, i := range c.gen.QUAL() {
			qual = append(qual, i+1)
		}
		slices.Sort(qual)
	}
	if !c.timeout && !complete {
		return nil, fmt.Errorf("%w: in phase %s; deliver the missing messages or call SetTimeout when the deadline passes", ErrCeremonyIncomplete, c.Phase())
	}
	var dis []*MisbehaviourError
	for i := 1; i <= len(c.dealers()); i++ {
		if !slices.Contains(qual, i) {
			dis = append(dis, c.misbehaviour(i, c.exclusionReason(i)))
		}
	}
	if need := c.qualifyingDeals(); len(qual) < need {
		c.aborted = &AbortError{Qualified: qual, Threshold: need, Disqualified: dis}
		return nil, c.aborted
	}
	if c.oldOnly() {
		c.result = c.finishOldOnly(qual, dis)
		return c.result, nil
	}
	// kyber keeps the bad share of a justified deal; put the revealed one
	// in its place before kyber adds (DKG) or interpolates (reshare) them.
	for dealer, good := range c.justified {
		if slices.Contains(qual, dealer) {
			c.gen.Verifiers()[uint32(dealer-1)].Deal().SecShare.V = good.V.Clone()
		}
	}
	dks, err := c.gen.DistKeyShare()
	if err != nil {
		return nil, fmt.Errorf("%w: kyber: %v", ErrCeremonyResult, err)
	}
	// kyber's share I is 0-based and evaluated at x = I+1.
	x := dks.Share.I + 1
	if x != c.cfg.Index {
		return nil, fmt.Errorf("%w: kyber returned share %d for participant %d", ErrCeremonyResult, dks.Share.I, c.cfg.Index)
	}
	com := &shares.Commitment{Points: dks.Commits}
	if len(com.Points) != c.cfg.Threshold {
		return nil, fmt.Errorf("%w: %d commitments for threshold %d", ErrCeremonyResult, len(com.Points), c.cfg.Threshold)
	}
	if c.resharing() && !com.Points[0].Equal(c.cfg.Reshare.OldCommitment[0]) {
		return nil, fmt.Errorf("%w: the new commitment's A_0 is not the group key: the qualified deals do not reshare it", ErrCeremonyResult)
	}
	if err := com.Verify(shares.Share{Index: x, Value: dks.Share.V}); err != nil {
		return nil, fmt.Errorf("%w: own share does not match the joint commitment: %w", ErrCeremonyResult, err)
	}
	c.result = &DKGResult{
		Epoch:        c.cfg.Epoch,
		Share:        &escrow.EpochShare{Epoch: c.cfg.Epoch, Index: x, Share: dks.Share.V, GroupKey: com.Points[0].Clone()},
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
	if c.oldOnly() {
		// This trustee sees no deals, only the responses to them.
		if i != c.ownDealer() && len(c.responses[i]) == 0 {
			return "no participant answered a deal from it before the timeout"
		}
	} else if i != c.ownDealer() && !c.dealFrom[i] {
		return "sent no deal before the timeout"
	}
	return "too few responses to its deal before the timeout"
}

// identityEncoding is the encoding of the neutral element.
var identityEncoding = append([]byte{1}, make([]byte, 31)...)

// verifySchnorr checks a kyber Schnorr signature over the Ed25519 group.
// kyber's scheme is Ed25519's (R‖s with s = r + H(R‖A‖m)·a, H =
// SHA-512 reduced mod ℓ), so the standard library's ed25519.Verify checks
// it, several times faster than kyber's generic code. That check accepts
// only the canonical encoding of R = s·B − H·A and a canonical s; A was
// checked to be of prime order when the ceremony was configured, so R is
// too, and the one small-order point left for it, the identity, is
// refused here as kyber refuses it.
func verifySchnorr(pub, msg, sig []byte) error {
	if len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("schnorr: signature of %d bytes, want %d", len(sig), ed25519.SignatureSize)
	}
	if bytes.Equal(sig[:32], identityEncoding) {
		return errors.New("schnorr: signature point of small order")
	}
	if !ed25519.Verify(ed25519.PublicKey(pub), msg, sig) {
		return errors.New("schnorr: invalid signature")
	}
	return nil
}

// verifySchnorr checks a signature by participant p, whose encoded key is
// kept (encoding a point costs an inversion).
func (c *Ceremony) verifySchnorr(p DKGParticipant, msg, sig []byte) error {
	if c.keyBytes == nil {
		c.keyBytes = map[string][]byte{}
	}
	k, ok := c.keyBytes[p.Name]
	if !ok {
		k = group.PointBytes(p.Key)
		c.keyBytes[p.Name] = k
	}
	return verifySchnorr(k, msg, sig)
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
	from := c.ownDealer()
	if kind == KindResponse {
		from = c.cfg.Index
	}
	return &wireMessage{
		Version: DKGMessageVersion, Ceremony: hex.EncodeToString(c.cfg.ID[:]), Epoch: c.cfg.Epoch,
		Kind: kind, From: from, To: to,
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
// expected and comes from another participant: a dealer for a deal or a
// justification, a participant that gets a share for a response.
func (c *Ceremony) parse(m Message, kind MessageKind) (*wireMessage, error) {
	w, err := parseWire(m.Bytes)
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) (*wireMessage, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrBadDKGMessage}, args...)...)
	}
	senders, self := len(c.dealers()), c.ownDealer()
	if kind == KindResponse {
		senders, self = c.n, c.cfg.Index
	}
	switch {
	case w.Kind != kind:
		return bad("got a %s where a %s was expected", w.Kind, kind)
	case w.Ceremony != hex.EncodeToString(c.cfg.ID[:]) || w.Epoch != c.cfg.Epoch:
		return bad("message for ceremony %s epoch %d, this is %x epoch %d", w.Ceremony, w.Epoch, c.cfg.ID, c.cfg.Epoch)
	case w.From < 1 || w.From > senders:
		return bad("%s sender %d outside 1..%d", kind, w.From, senders)
	case w.From == self:
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
	OldIndex int      `json:"old_index,omitempty"` // in a reshare
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
		Index: c.cfg.Index, OldIndex: c.cfg.oldIndex(), Seed: c.seed[:], Received: c.received, Timeout: c.timeout,
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
	oldIndex := cfg.oldIndex()
	if st.Ceremony != hex.EncodeToString(cfg.ID[:]) || st.Epoch != cfg.Epoch || st.Index != cfg.Index || st.OldIndex != oldIndex {
		return nil, fmt.Errorf("%w: state of ceremony %s epoch %d participant %d (old %d), config is %x epoch %d participant %d (old %d)",
			ErrBadDKGState, st.Ceremony, st.Epoch, st.Index, st.OldIndex, cfg.ID, cfg.Epoch, cfg.Index, oldIndex)
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
	c.deals = []Message{}
	for _, d := range st.Deals {
		m, err := ParseMessage(d)
		if err != nil {
			return nil, fmt.Errorf("%w: stored deal: %v", ErrBadDKGState, err)
		}
		c.deals = append(c.deals, m)
	}
	// Processes the own deal; keeps the stored messages if they are for
	// the same recipients as the ones it makes.
	if err := c.makeDeals(); err != nil {
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

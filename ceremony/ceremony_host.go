package ceremony

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
	"golang.org/x/mod/sumdb/note"
)

// Versions of a ceremony's parameters, of a participant's key
// announcement and of the state a node keeps while a ceremony runs.
const (
	CeremonyParamsVersion = "keyquorum ceremony v1"
	ceremonyKeyNoteHeader = "keyquorum ceremony key v1"
	hostedStateVersion    = "keyquorum hosted ceremony v1"
)

// Kinds of key ceremony.
const (
	CeremonyDKG     = "dkg"     // a fresh key for an epoch, made among the roster
	CeremonyReshare = "reshare" // every epoch's key moved to a new roster and threshold
)

// Errors of a node's side of a ceremony. Test them with errors.Is.
var (
	// ErrCeremonyRefused: the node will not take part (parameters that do
	// not fit its group or identity, a ceremony past its deadline, a key
	// announcement that does not verify, a group file it did not agree to).
	ErrCeremonyRefused = errors.New("ceremony: refused")
	// ErrNoCeremony: the node has no state for that ceremony id (never
	// prepared, already committed, or aborted).
	ErrNoCeremony = errors.New("ceremony: no such ceremony on this node")
	// ErrCeremonyBusy: the node is already answering as many ceremony
	// calls as it allows at once; call again shortly.
	ErrCeremonyBusy = errors.New("ceremony: node busy with other ceremony calls; try again shortly")
)

// CeremonyParams is what a coordinator proposes to every participant of a
// key ceremony. Every participant must get the same parameters: each one
// binds the hash of the parameters it saw into its signed key
// announcement, and the others check it.
type CeremonyParams struct {
	Version   string               `json:"version"`
	ID        string               `json:"id"` // 32 hex digits, random
	Kind      string               `json:"kind"`
	Epoch     uint32               `json:"epoch"`
	Threshold int                  `json:"threshold"`
	Roster    []escrow.GroupMember `json:"roster"` // the (new) roster; indices 1..n in order
	// WitnessQuorum is the new group file's w, when the proposal sets it
	// (nil: the default, threshold − 1; see [escrow.GroupFile.Witnesses]).
	WitnessQuorum *int `json:"witness_quorum,omitempty"`
	// ValidFrom and ValidUntil are the new epoch's window.
	ValidFrom  time.Time `json:"valid_from"`
	ValidUntil time.Time `json:"valid_until"`
	// Deadline: a node forgets the ceremony (and refuses its messages)
	// after it.
	Deadline time.Time `json:"deadline"`
	// Group is the current signed group file, for a rotation or a
	// reshare; empty for a group's first ceremony.
	Group string `json:"group,omitempty"`
	// Proposal is the signed proposal the parameters come from; a node
	// takes part only if its operator approved it ([CeremonyHost.Approve]).
	Proposal string `json:"proposal,omitempty"`
}

// Hash returns the SHA-256 of the canonical encoding of p.
func (p *CeremonyParams) Hash() string {
	b, _ := json.Marshal(p)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ceremonyID parses the hex id.
func parseCeremonyID(s string) ([16]byte, error) {
	var id [16]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 || hex.EncodeToString(b) != s {
		return id, fmt.Errorf("%w: ceremony id %q is not 32 lowercase hex digits", ErrCeremonyRefused, truncateForLog(s))
	}
	copy(id[:], b)
	return id, nil
}

// NewCeremonyID draws a random ceremony id.
func NewCeremonyID(r io.Reader) (string, error) {
	var id [16]byte
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return "", fmt.Errorf("ceremony: ceremony id: %w", err)
	}
	return hex.EncodeToString(id[:]), nil
}

// Validate checks the parameters on their own (not against a node).
func (p *CeremonyParams) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrCeremonyRefused}, args...)...)
	}
	if p.Version != CeremonyParamsVersion {
		return bad("parameters version %q, this node reads %q", p.Version, CeremonyParamsVersion)
	}
	if _, err := parseCeremonyID(p.ID); err != nil {
		return err
	}
	if p.Kind != CeremonyDKG && p.Kind != CeremonyReshare {
		return bad("kind %q; this node runs %q and %q ceremonies", p.Kind, CeremonyDKG, CeremonyReshare)
	}
	if p.Kind == CeremonyReshare && p.Group == "" {
		return bad("a reshare names the current group file")
	}
	n := len(p.Roster)
	if p.Threshold < 2 || p.Threshold > n {
		return bad("threshold %d with %d trustees: use 2..%d", p.Threshold, n, n)
	}
	// The roster must make a valid group file; borrow its checks.
	probe := escrow.GroupFile{Version: escrow.GroupFileVersion, KeyGeneration: "dkg", Threshold: p.Threshold, Trustees: p.Roster, WitnessQuorum: p.WitnessQuorum}
	names := map[string]bool{}
	for i, m := range probe.Trustees {
		if m.Index != i+1 || !escrow.ValidTrusteeName(m.Name) || names[m.Name] {
			return bad("roster entry %d (%q): indices must run 1..n in order and names be valid and distinct", i+1, truncateForLog(m.Name))
		}
		names[m.Name] = true
		if _, err := note.NewVerifier(m.LogKey); err != nil {
			return bad("roster entry %d (%s) has no valid log key: %v", i+1, m.Name, err)
		}
	}
	if w := probe.Witnesses(); w < 0 || w > n-1 {
		return bad("witness quorum %d with %d trustees: each trustee has %d others to cosign its checkpoints (leave it out for the default, threshold - 1)", w, n, n-1)
	}
	if p.Kind == CeremonyDKG && !p.ValidUntil.After(p.ValidFrom) {
		return bad("the epoch window ends before it starts")
	}
	return nil
}

// oldGroup returns the verified current group of a rotation or reshare,
// or nil.
func (p *CeremonyParams) oldGroup() (*escrow.GroupFile, error) {
	if p.Group == "" {
		return nil, nil
	}
	g, _, err := escrow.VerifyGroupFile([]byte(p.Group), true)
	if err != nil {
		return nil, refused("the current group file: %v", err)
	}
	return g, nil
}

// epochs lists the epochs the ceremony makes shares of.
func (p *CeremonyParams) epochs(old *escrow.GroupFile) []uint32 {
	if p.Kind != CeremonyReshare {
		return []uint32{p.Epoch}
	}
	var es []uint32
	for _, e := range old.Epochs {
		es = append(es, e.Epoch)
	}
	return es
}

// announcers lists everyone who announces a DKG key: the roster, and in a
// reshare the old roster first and then the trustees who join.
func (p *CeremonyParams) announcers(old *escrow.GroupFile) []escrow.GroupMember {
	if p.Kind != CeremonyReshare {
		return p.Roster
	}
	out := slices.Clone(old.Trustees)
	for _, m := range p.Roster {
		if old.Member(m.Name) == nil {
			out = append(out, m)
		}
	}
	return out
}

// absentKey is the DKG key every participant uses for a trustee absent
// from a ceremony: a point derived from the ceremony id and the trustee's
// name, whose discrete logarithm nobody knows.
func absentKey(id, name string) kyber.Point {
	return group.Point().Pick(group.Suite().XOF([]byte("keyquorum/v1/ceremony/absent\x00" + id + "\x00" + name)))
}

// ceremonyKeyNote is the text of a participant's key announcement.
func ceremonyKeyNote(p *CeremonyParams, name string, key []byte) string {
	return fmt.Sprintf("%s\nceremony %s\nparams %s\ntrustee %s\nkey %s\n",
		ceremonyKeyNoteHeader, p.ID, p.Hash(), name, base64.StdEncoding.EncodeToString(key))
}

// hostedState is what a node stores for a ceremony in progress.
type hostedState struct {
	Version string            `json:"version"`
	Params  CeremonyParams    `json:"params"`
	DKGKey  []byte            `json:"dkg_key"`
	Keys    []string          `json:"keys,omitempty"`   // every announcer's key note, in order
	States  map[uint32][]byte `json:"states,omitempty"` // Ceremony.MarshalState by epoch
	Outbox  [][]byte          `json:"outbox,omitempty"` // every message this node sent
	Seen    []string          `json:"seen,omitempty"`   // hex SHA-256 of every message delivered to it
	Signed  string            `json:"signed,omitempty"` // hex SHA-256 of the group text it signed
}

// hosted is a ceremony in memory.
type hosted struct {
	mu    sync.Mutex
	st    hostedState
	key   *DKGKey
	index int // own 1-based index in the (new) roster, 0 if none
	old   *escrow.GroupFile
	cs    map[uint32]*Ceremony
	seen  map[string]bool
}

// CeremonyOutcome is what a participant reports when its side of a
// ceremony ends: the public result, which every participant must report
// identically.
type CeremonyOutcome struct {
	Trustee string         `json:"trustee"`
	Index   int            `json:"index"`
	Epochs  []EpochOutcome `json:"epochs"`
}

// EpochOutcome is the public result of one epoch's sharing.
type EpochOutcome struct {
	Epoch        uint32                `json:"epoch"`
	GroupKey     string                `json:"group_key"`  // base64
	Commitment   []string              `json:"commitment"` // base64
	Qualified    []int                 `json:"qualified"`
	Disqualified []*MisbehaviourReport `json:"disqualified,omitempty"`
	HoldsShare   bool                  `json:"holds_share"`
}

// MisbehaviourReport is a [MisbehaviourError] on the wire.
type MisbehaviourReport struct {
	Participant int    `json:"participant"`
	Name        string `json:"name"`
	Reason      string `json:"reason"`
}

// CeremonyInstaller makes a ceremony's result the node's own: it installs
// the signed group file and stores the new shares (none if the node holds
// none), then applies retention. With replace (a reshare) the node's old
// shares of every epoch are erased and the new ones, whose index may
// differ, take their place. It must be durable before it returns.
type CeremonyInstaller func(signedGroup []byte, g *escrow.GroupFile, shares []*escrow.EpochShare, replace bool) error

// CeremonyHostConfig configures a [CeremonyHost].
type CeremonyHostConfig struct {
	Name      string      // the node's trustee name
	LogSigner note.Signer // signs key announcements and group files
	Store     HostStore
	// Record writes an audit record of a ceremony event, durably, before
	// the event takes effect; if it fails the event does not happen.
	Record func(Event) error
	// Policy bounds what the operator may approve and what the node
	// accepts; zero fields take the defaults.
	Policy  Policy
	Install CeremonyInstaller
	// Group returns the node's current group file (signed or not), nil if
	// it has none yet.
	Group func() []byte
	// Share returns the node's share of an epoch, nil if it holds none
	// (the old share a reshare deals from).
	Share func(epoch uint32) *escrow.EpochShare
	Clock func() time.Time // default time.Now
	Rand  io.Reader        // default crypto/rand
}

// CeremonyHost is a node's side of key ceremonies run over its API: it
// answers the coordinator's calls, checks everything it is given, keeps
// its state in a [CeremonyStore] after every step so a restart resumes,
// and installs the result only once every holder has signed the same
// group file. The coordinator only relays: deals are encrypted to each
// recipient's DKG key, and every DKG key is announced in a note signed by
// its trustee's log key, so a relay that swapped keys is caught.
//
// A node that has no group yet takes part in a ceremony whose roster
// lists it under its own name and log key; a node that has one takes part
// only in a rotation of that group (the same roster and threshold, the
// next epoch), so nobody can talk it into sharing a key with strangers.
type CeremonyHost struct {
	cfg       CeremonyHostConfig
	maxRoster atomic.Int64 // the largest roster among the approvals
	mu        sync.Mutex
	m         map[string]*hosted
}

// NewCeremonyHost returns a ceremony host. Ceremonies left in the store
// by an earlier run resume when the coordinator next calls.
func NewCeremonyHost(cfg CeremonyHostConfig) (*CeremonyHost, error) {
	if cfg.Name == "" || cfg.LogSigner == nil || cfg.Store == nil || cfg.Install == nil || cfg.Group == nil || cfg.Share == nil || cfg.Record == nil {
		return nil, errors.New("ceremony: ceremony host needs a name, a log signer, a store, an installer, the group, the shares and an audit recorder")
	}
	cfg.Policy = cfg.Policy.withDefaults()
	if cfg.LogSigner.Name() != escrow.LogKeyName(cfg.Name) {
		return nil, fmt.Errorf("ceremony: ceremony host: log signer is %q, want %q", cfg.LogSigner.Name(), escrow.LogKeyName(cfg.Name))
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	h := &CeremonyHost{cfg: cfg, m: map[string]*hosted{}}
	h.noteRosters()
	return h, nil
}

func refused(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCeremonyRefused}, args...)...)
}

// inRoster returns the index under which roster lists this node, 0 if it
// does not; a listing under its name with another log key is an error.
func (h *CeremonyHost) inRoster(roster []escrow.GroupMember) (int, error) {
	for _, m := range roster {
		if m.Name == h.cfg.Name {
			v, err := note.NewVerifier(m.LogKey)
			if err != nil || v.Name() != h.cfg.LogSigner.Name() || v.KeyHash() != h.cfg.LogSigner.KeyHash() {
				return 0, refused("the roster lists %s with a log key that is not this node's; build the roster from the trustees' descriptors", m.Name)
			}
			return m.Index, nil
		}
	}
	return 0, nil
}

// checkParams checks the parameters against this node and returns its
// index in the new roster (0 for an old trustee that leaves in a reshare).
func (h *CeremonyHost) checkParams(p *CeremonyParams) (int, error) {
	if err := h.checkApproved(p); err != nil {
		return 0, err
	}
	return h.checkNode(p)
}

// checkNode checks the parameters against this node's state.
func (h *CeremonyHost) checkNode(p *CeremonyParams) (int, error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	if !h.cfg.Clock().Before(p.Deadline) {
		return 0, refused("the ceremony's deadline %s has passed; start a new one", p.Deadline.UTC().Format(time.RFC3339))
	}
	me, err := h.inRoster(p.Roster)
	if err != nil {
		return 0, err
	}
	theirs, err := p.oldGroup()
	if err != nil {
		return 0, err
	}
	cur := h.cfg.Group()
	switch {
	case cur == nil && p.Kind == CeremonyDKG && theirs != nil:
		return 0, refused("this node has no group yet, so it cannot rotate one; run a first DKG")
	case cur != nil && theirs == nil:
		return 0, refused("this node already belongs to a group; a new key for it is a rotation (keyquorum ceremony rotate), which names the current group file")
	case cur == nil && theirs != nil:
		// A trustee that joins a group by a reshare.
		if old, _ := h.inRoster(theirs.Trustees); old != 0 {
			return 0, refused("the current group lists this trustee, but this node has no group file; restore it")
		}
	case cur != nil:
		mine, err := escrow.ReadGroupFile(cur)
		if err != nil {
			return 0, fmt.Errorf("ceremony: the node's own group file: %w", err)
		}
		idx, err := h.inRoster(mine.Trustees)
		if err != nil || idx == 0 {
			return 0, refused("this node is not in its own group's roster")
		}
		if !catchesUp(mine, theirs, idx) {
			return 0, refused("the group file of the ceremony is neither this node's current group file nor one that only adds epochs it holds no share of; fetch the latest one")
		}
		if p.Kind == CeremonyReshare {
			break
		}
		last := theirs.Epochs[len(theirs.Epochs)-1]
		if !slices.EqualFunc(theirs.Trustees, p.Roster, func(x, y escrow.GroupMember) bool { return x == y }) || theirs.Threshold != p.Threshold ||
			!sameWitnessQuorum(theirs.WitnessQuorum, p.WitnessQuorum) {
			return 0, refused("a rotation keeps the group's roster, threshold and witness quorum; to change them, reshare")
		}
		if p.Epoch != last.Epoch+1 {
			return 0, refused("a rotation makes epoch %d, not %d", last.Epoch+1, p.Epoch)
		}
		if p.ValidFrom.Before(last.ValidUntil) {
			return 0, refused("the new epoch would start before epoch %d ends (%s)", last.Epoch, last.ValidUntil.Format(time.RFC3339))
		}
	}
	if me == 0 && p.Kind != CeremonyReshare {
		return 0, refused("the roster does not list this trustee (%s)", h.cfg.Name)
	}
	return me, nil
}

// sameWitnessQuorum reports whether two group files' (or a group file's
// and a ceremony's) witness_quorum fields are the same: both unset (the
// default) or both set to the same w.
func sameWitnessQuorum(a, b *int) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// catchesUp reports whether theirs is mine, or mine with more epochs
// that trustee idx holds no share of: what a trustee that was down during
// a rotation finds at the next ceremony. It then takes part, and installs
// the newer file when the ceremony commits.
func catchesUp(mine, theirs *escrow.GroupFile, idx int) bool {
	a, _ := mine.Marshal()
	b, _ := theirs.Marshal()
	if bytes.Equal(a, b) {
		return true
	}
	if theirs.KeyGeneration != mine.KeyGeneration || theirs.Threshold != mine.Threshold || !sameWitnessQuorum(theirs.WitnessQuorum, mine.WitnessQuorum) ||
		!slices.EqualFunc(theirs.Trustees, mine.Trustees, func(x, y escrow.GroupMember) bool { return x == y }) ||
		len(theirs.Epochs) <= len(mine.Epochs) {
		return false
	}
	for i, e := range theirs.Epochs {
		if i < len(mine.Epochs) {
			m := mine.Epochs[i]
			if e.Epoch != m.Epoch || e.Key != m.Key || !slices.Equal(e.Commitment, m.Commitment) ||
				!e.ValidFrom.Equal(m.ValidFrom) || !e.ValidUntil.Equal(m.ValidUntil) || !slices.Equal(e.Holders, m.Holders) {
				return false
			}
		} else if slices.Contains(theirs.HolderIndices(e), idx) {
			return false // it would be listed as holding a share it never got
		}
	}
	return true
}

// get returns the ceremony with that id, loading it from the store after
// a restart. It returns with the ceremony locked.
func (h *CeremonyHost) get(id string) (*hosted, error) {
	if _, err := parseCeremonyID(id); err != nil {
		return nil, err
	}
	h.mu.Lock()
	hc, ok := h.m[id]
	if !ok {
		b, err := h.cfg.Store.Ceremony(id)
		if err != nil {
			h.mu.Unlock()
			return nil, err
		}
		if b == nil {
			h.mu.Unlock()
			return nil, fmt.Errorf("%w: %s (never prepared here, already finished, or aborted)", ErrNoCeremony, id)
		}
		hc, err = h.restore(b)
		if err != nil {
			h.mu.Unlock()
			return nil, err
		}
		h.m[id] = hc
	}
	h.mu.Unlock()
	hc.mu.Lock()
	if !h.cfg.Clock().Before(hc.st.Params.Deadline) {
		rerr := h.record(hc, EventAborted, AbortDeadline, nil, nil)
		hc.mu.Unlock()
		if rerr != nil {
			return nil, fmt.Errorf("ceremony: %s passed its deadline, but its abort could not be logged: %w", id, rerr)
		}
		h.drop(id)
		return nil, refused("ceremony %s passed its deadline %s and was forgotten; start a new one", id, hc.st.Params.Deadline.UTC().Format(time.RFC3339))
	}
	return hc, nil
}

// drop forgets a ceremony, in memory and in the store.
func (h *CeremonyHost) drop(id string) error {
	h.mu.Lock()
	delete(h.m, id)
	h.mu.Unlock()
	return h.cfg.Store.DeleteCeremony(id)
}

func (h *CeremonyHost) restore(b []byte) (*hosted, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	hc := &hosted{seen: map[string]bool{}}
	if err := dec.Decode(&hc.st); err != nil || hc.st.Version != hostedStateVersion {
		return nil, fmt.Errorf("%w: stored ceremony state does not parse (%v); abort the ceremony", ErrBadDKGState, err)
	}
	k, err := group.ParseScalar(hc.st.DKGKey)
	if err != nil {
		return nil, fmt.Errorf("%w: stored dkg key: %v", ErrBadDKGState, err)
	}
	hc.key = &DKGKey{Private: k, Public: group.Point().Mul(k, nil)}
	hc.index, _ = h.inRoster(hc.st.Params.Roster)
	if hc.old, err = hc.st.Params.oldGroup(); err != nil {
		return nil, err
	}
	for _, s := range hc.st.Seen {
		hc.seen[s] = true
	}
	if hc.st.States != nil {
		hc.cs = map[uint32]*Ceremony{}
		for _, e := range hc.st.Params.epochs(hc.old) {
			cfg, err := h.ceremonyConfig(hc, hc.st.Keys, e)
			if err != nil {
				return nil, err
			}
			if hc.cs[e], err = RestoreCeremony(hc.st.States[e], cfg); err != nil {
				return nil, err
			}
		}
	}
	return hc, nil
}

// save persists the ceremony's state. Called with hc locked.
func (h *CeremonyHost) save(hc *hosted) error {
	if hc.cs != nil {
		hc.st.States = map[uint32][]byte{}
		for e, c := range hc.cs {
			b, err := c.MarshalState()
			if err != nil {
				return err
			}
			hc.st.States[e] = b
		}
	}
	b, err := json.Marshal(&hc.st)
	if err != nil {
		return err
	}
	return h.cfg.Store.PutCeremony(hc.st.Params.ID, b)
}

// maxProblems bounds the problem reports of one deliver call.
const maxProblems = 32

// maxMessages is how many messages the ceremony can deliver to one
// trustee: per epoch, a deal from each dealer and a response and a
// justification about each dealer from each participant.
func (hc *hosted) maxMessages() int {
	p := &hc.st.Params
	d := len(p.announcers(hc.old))
	n := len(p.Roster)
	if hc.old != nil {
		n += len(hc.old.Trustees)
	}
	return len(p.epochs(hc.old)) * d * (1 + 2*n)
}

// MaxCeremonies is how many ceremonies a node keeps state for at once;
// more are refused until one ends or passes its deadline, so that nobody
// who reaches the API can fill the node's store with ceremonies.
const MaxCeremonies = 8

// makeRoom forgets ceremonies past their deadline and refuses a new one if
// MaxCeremonies are still in progress.
func (h *CeremonyHost) makeRoom() error {
	ids, err := h.cfg.Store.CeremonyIDs()
	if err != nil {
		return err
	}
	live := 0
	for _, id := range ids {
		hc, err := h.get(id) // drops it if past its deadline
		if err != nil {
			continue
		}
		hc.mu.Unlock()
		live++
	}
	if live >= MaxCeremonies {
		return refused("this node already takes part in %d ceremonies; finish or abort one (or wait for their deadlines) first", live)
	}
	return nil
}

// Prepare takes part in a ceremony: it checks the parameters, draws this
// node's DKG key for it and returns the key's announcement, a note signed
// with the node's log key. Preparing again with the same parameters
// returns the same announcement.
func (h *CeremonyHost) Prepare(p CeremonyParams) ([]byte, error) {
	index, err := h.checkParams(&p)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	hc, ok := h.m[p.ID]
	h.mu.Unlock()
	if !ok {
		if b, err := h.cfg.Store.Ceremony(p.ID); err != nil {
			return nil, err
		} else if b != nil {
			if hc, err = h.get(p.ID); err != nil {
				return nil, err
			}
			hc.mu.Unlock()
		}
	}
	if hc != nil {
		hc.mu.Lock()
		defer hc.mu.Unlock()
		if hc.st.Params.Hash() != p.Hash() {
			return nil, refused("ceremony %s is already prepared here with other parameters", p.ID)
		}
		return h.keyNote(hc)
	}
	if err := h.makeRoom(); err != nil {
		return nil, err
	}
	key, err := GenerateDKGKey(h.cfg.Rand)
	if err != nil {
		return nil, err
	}
	old, _ := p.oldGroup() // checked by checkParams
	hc = &hosted{st: hostedState{Version: hostedStateVersion, Params: p, DKGKey: group.ScalarBytes(key.Private)}, key: key, index: index, old: old, seen: map[string]bool{}}
	hc.mu.Lock()
	defer hc.mu.Unlock()
	h.mu.Lock()
	if _, raced := h.m[p.ID]; raced {
		h.mu.Unlock()
		return nil, refused("ceremony %s is being prepared by another call", p.ID)
	}
	h.m[p.ID] = hc
	h.mu.Unlock()
	if err := h.save(hc); err != nil {
		h.mu.Lock()
		delete(h.m, p.ID)
		h.mu.Unlock()
		return nil, err
	}
	return h.keyNote(hc)
}

func (h *CeremonyHost) keyNote(hc *hosted) ([]byte, error) {
	text := ceremonyKeyNote(&hc.st.Params, h.cfg.Name, group.PointBytes(hc.key.Public))
	return note.Sign(&note.Note{Text: text}, h.cfg.LogSigner)
}

// ceremonyConfig builds one epoch's DKG configuration from the key
// announcements, verifying each against its trustee's log key.
func (h *CeremonyHost) ceremonyConfig(hc *hosted, keyNotes []string, epoch uint32) (CeremonyConfig, error) {
	p := &hc.st.Params
	ann := p.announcers(hc.old)
	if len(keyNotes) != len(ann) {
		return CeremonyConfig{}, refused("%d key announcements for %d participants", len(keyNotes), len(ann))
	}
	keys := map[string]kyber.Point{}
	absent := 0
	for i, m := range ann {
		if keyNotes[i] == "" {
			// A trustee that did not answer at the start of a rotation or
			// reshare: it takes part under a key nobody knows the discrete
			// log of, so what is dealt to it is lost, and it deals nothing.
			if m.Name == h.cfg.Name {
				return CeremonyConfig{}, refused("no key announcement for this node (%s)", m.Name)
			}
			keys[m.Name] = absentKey(p.ID, m.Name)
			absent++
			continue
		}
		v, err := note.NewVerifier(m.LogKey)
		if err != nil {
			return CeremonyConfig{}, refused("participant %s: %v", m.Name, err)
		}
		n, err := note.Open([]byte(keyNotes[i]), note.VerifierList(v))
		if err != nil {
			return CeremonyConfig{}, refused("the key announcement of %s is not signed by its log key (%v): the relay changed it, or it is another trustee's; abort this ceremony", m.Name, err)
		}
		prefix := ceremonyKeyNote(p, m.Name, nil)
		prefix = prefix[:strings.LastIndex(prefix, "key ")+4]
		if !strings.HasPrefix(n.Text, prefix) || !strings.HasSuffix(n.Text, "\n") {
			return CeremonyConfig{}, refused("the key announcement of %s is for another ceremony or other parameters: every participant must be sent the same parameters", m.Name)
		}
		kb, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSuffix(n.Text[len(prefix):], "\n"))
		if err != nil {
			return CeremonyConfig{}, refused("%s announced a key that is not base64", m.Name)
		}
		k, err := group.ParsePoint(kb)
		if err != nil {
			return CeremonyConfig{}, refused("%s announced an invalid key: %v", m.Name, err)
		}
		keys[m.Name] = k
	}
	if absent > 0 {
		count := func(ms []escrow.GroupMember) (n int) {
			for _, m := range ms {
				if keyNotes[slices.IndexFunc(ann, func(a escrow.GroupMember) bool { return a.Name == m.Name })] == "" {
					n++
				}
			}
			return n
		}
		if a := count(p.Roster); a > len(p.Roster)-p.Threshold {
			return CeremonyConfig{}, refused("%d trustees of the roster absent; with threshold %d of %d at most %d may be", a, p.Threshold, len(p.Roster), len(p.Roster)-p.Threshold)
		}
		if p.Kind == CeremonyReshare {
			if a := count(hc.old.Trustees); a > len(hc.old.Trustees)-hc.old.Threshold {
				return CeremonyConfig{}, refused("%d trustees of the current group absent; with its threshold %d of %d at most %d may be", a, hc.old.Threshold, len(hc.old.Trustees), len(hc.old.Trustees)-hc.old.Threshold)
			}
		}
	}
	if !keys[h.cfg.Name].Equal(hc.key.Public) {
		return CeremonyConfig{}, refused("the announcements list another key for this node: the relay substituted it; abort this ceremony")
	}
	id, _ := parseCeremonyID(p.ID)
	cfg := CeremonyConfig{ID: id, Epoch: epoch, Threshold: p.Threshold, Index: hc.index, Longterm: hc.key.Private}
	for _, m := range p.Roster {
		cfg.Participants = append(cfg.Participants, DKGParticipant{Name: m.Name, Key: keys[m.Name]})
	}
	if p.Kind == CeremonyReshare {
		com, err := hc.old.Commitment(epoch)
		if err != nil {
			return CeremonyConfig{}, err
		}
		r := &ReshareConfig{OldThreshold: hc.old.Threshold, OldCommitment: com.Points}
		for _, m := range hc.old.Trustees {
			r.OldParticipants = append(r.OldParticipants, DKGParticipant{Name: m.Name, Key: keys[m.Name]})
		}
		if old := hc.old.Member(h.cfg.Name); old != nil {
			r.OldIndex = old.Index
			if r.OldShare = h.cfg.Share(epoch); r.OldShare == nil {
				return CeremonyConfig{}, refused("this node holds no share of epoch %d to reshare (destroyed by retention?); drop the epoch from the group first", epoch)
			}
		}
		cfg.Reshare = r
	}
	return cfg, nil
}

// Start begins the ceremony once every participant's key announcement is
// in: it verifies them all and returns this node's outbox, its deals.
// Starting again with the same announcements returns the same outbox.
func (h *CeremonyHost) Start(id string, keyNotes []string) ([][]byte, error) {
	hc, err := h.get(id)
	if err != nil {
		return nil, err
	}
	defer hc.mu.Unlock()
	if hc.cs != nil {
		if !slices.Equal(hc.st.Keys, keyNotes) {
			return nil, refused("ceremony %s already started with other key announcements", id)
		}
		return hc.st.Outbox, nil
	}
	cs := map[uint32]*Ceremony{}
	var outbox [][]byte
	for _, e := range hc.st.Params.epochs(hc.old) {
		cfg, err := h.ceremonyConfig(hc, keyNotes, e)
		if err != nil {
			return nil, err
		}
		cfg.Rand = h.cfg.Rand
		c, err := NewCeremony(cfg)
		if err != nil {
			return nil, err
		}
		deals, _ := c.Deals()
		for _, d := range deals {
			outbox = append(outbox, d.Bytes)
		}
		cs[e] = c
	}
	hc.cs, hc.st.Keys, hc.st.Outbox = cs, slices.Clone(keyNotes), outbox
	if err := h.save(hc); err != nil {
		hc.cs, hc.st.Keys, hc.st.Outbox, hc.st.States = nil, nil, nil, nil
		return nil, err
	}
	return hc.st.Outbox, nil
}

func (h *CeremonyHost) started(id string) (*hosted, error) {
	hc, err := h.get(id)
	if err != nil {
		return nil, err
	}
	if hc.cs == nil {
		hc.mu.Unlock()
		return nil, refused("ceremony %s has not started on this node; send the key announcements first", id)
	}
	return hc, nil
}

// Deliver hands the node messages of other participants. Messages it has
// seen before are skipped, so a coordinator can resend after a lost
// answer or a restart. It returns the node's whole outbox, and a problem
// report for each message that was refused or showed misbehaviour.
func (h *CeremonyHost) Deliver(id string, msgs [][]byte) ([][]byte, []string, error) {
	hc, err := h.started(id)
	if err != nil {
		return nil, nil, err
	}
	defer hc.mu.Unlock()
	var problems []string
	changed := false
	report := func(p string) {
		if len(problems) < maxProblems {
			problems = append(problems, p)
		}
	}
	limit := hc.maxMessages()
	if len(msgs) > limit {
		return nil, nil, refused("%d messages in one call; this ceremony sends at most %d to a trustee", len(msgs), limit)
	}
	for _, b := range msgs {
		sum := sha256.Sum256(b)
		key := hex.EncodeToString(sum[:])
		if hc.seen[key] {
			continue
		}
		if len(hc.st.Seen) >= limit {
			report(fmt.Sprintf("%v: this trustee already holds the %d messages this ceremony can send it; the rest are dropped", ErrBadDKGMessage, limit))
			break
		}
		// Route by the header; Process checks the whole message.
		var hdr struct {
			Epoch uint32      `json:"epoch"`
			Kind  MessageKind `json:"kind"`
		}
		if err := json.Unmarshal(b, &hdr); err != nil {
			report(fmt.Sprintf("%v: %v", ErrBadDKGMessage, err))
			continue
		}
		c := hc.cs[hdr.Epoch]
		if c == nil {
			report(fmt.Sprintf("%v: a message for epoch %d, which this ceremony does not make", ErrBadDKGMessage, hdr.Epoch))
			continue
		}
		m := Message{Kind: hdr.Kind, Bytes: b}
		out, err := c.Process(m)
		var mb *MisbehaviourError
		if err != nil && !errors.As(err, &mb) {
			// Not from a participant (unsigned, malformed, a replay):
			// nothing of it is kept, so junk cannot fill the store.
			report(err.Error())
			continue
		}
		hc.seen[key] = true
		hc.st.Seen = append(hc.st.Seen, key)
		changed = true
		if err != nil {
			report(err.Error())
		}
		for _, o := range out {
			hc.st.Outbox = append(hc.st.Outbox, o.Bytes)
		}
	}
	if changed {
		if err := h.save(hc); err != nil {
			return nil, nil, err
		}
	}
	return hc.st.Outbox, problems, nil
}

// Timeout tells the node that the coordinator stopped waiting: missing
// deals and responses will not come.
func (h *CeremonyHost) Timeout(id string) error {
	hc, err := h.started(id)
	if err != nil {
		return err
	}
	defer hc.mu.Unlock()
	for _, c := range hc.cs {
		c.SetTimeout()
	}
	return h.save(hc)
}

// results finishes every epoch's ceremony.
func (hc *hosted) results() (map[uint32]*DKGResult, error) {
	out := map[uint32]*DKGResult{}
	for e, c := range hc.cs {
		r, err := c.Finish()
		if err != nil {
			return nil, err
		}
		out[e] = r
	}
	return out, nil
}

// Finish reports the node's result. It returns an error wrapping
// [ErrCeremonyIncomplete] while messages are missing, and an
// [*AbortError] if too few deals qualified, in which case the node
// forgets the ceremony.
func (h *CeremonyHost) Finish(id string) (*CeremonyOutcome, error) {
	hc, err := h.started(id)
	if err != nil {
		return nil, err
	}
	defer hc.mu.Unlock()
	rs, err := hc.results()
	if errors.Is(err, ErrCeremonyAborted) {
		if rerr := h.record(hc, EventAborted, AbortTooFew, nil, nil); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		h.drop(id)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	out := &CeremonyOutcome{Trustee: h.cfg.Name, Index: hc.index}
	for _, e := range hc.st.Params.epochs(hc.old) {
		res := rs[e]
		eo := EpochOutcome{Epoch: e, Qualified: res.Qualified, HoldsShare: res.Share != nil}
		if res.GroupKey != nil {
			eo.GroupKey = b64(group.PointBytes(res.GroupKey))
		}
		for _, p := range res.Commitment {
			eo.Commitment = append(eo.Commitment, b64(group.PointBytes(p)))
		}
		for _, d := range res.Disqualified {
			eo.Disqualified = append(eo.Disqualified, &MisbehaviourReport{Participant: d.Participant, Name: d.Name, Reason: d.Reason})
		}
		out.Epochs = append(out.Epochs, eo)
	}
	return out, nil
}

// checkGroup checks that a group file is the one this ceremony made: its
// roster and threshold; for a DKG the new epoch's key, commitment and
// window and every earlier epoch unchanged; for a reshare every epoch's
// key and window unchanged and its commitment the new one. It returns
// this node's new shares.
func (h *CeremonyHost) checkGroup(hc *hosted, g *escrow.GroupFile) ([]*escrow.EpochShare, error) {
	p := &hc.st.Params
	rs, err := hc.results()
	if err != nil {
		return nil, err
	}
	kg := "dkg"
	if p.Kind == CeremonyReshare {
		kg = hc.old.KeyGeneration
	}
	if g.KeyGeneration != kg || g.Threshold != p.Threshold || !slices.EqualFunc(g.Trustees, p.Roster, func(x, y escrow.GroupMember) bool { return x == y }) ||
		!sameWitnessQuorum(g.WitnessQuorum, p.WitnessQuorum) {
		return nil, refused("the group file's roster, threshold, witness quorum or key generation is not this ceremony's")
	}
	var before []escrow.GroupEpoch
	if hc.old != nil {
		before = hc.old.Epochs
	}
	if p.Kind == CeremonyDKG {
		before = append(slices.Clone(before), escrow.GroupEpoch{Epoch: p.Epoch, ValidFrom: p.ValidFrom.UTC(), ValidUntil: p.ValidUntil.UTC()})
	}
	if len(g.Epochs) != len(before) {
		return nil, refused("the group file lists %d epochs, the ceremony expects %d", len(g.Epochs), len(before))
	}
	var mine []*escrow.EpochShare
	for i, e := range g.Epochs {
		want := before[i]
		if r := rs[want.Epoch]; r != nil && len(r.Commitment) == 0 {
			// An old trustee that leaves learns no new commitment; the
			// holders' signatures vouch for it.
			want.Commitment = e.Commitment
		} else if r != nil {
			want = r.GroupEpoch(want)
			want.Epoch = before[i].Epoch
			if r.Share != nil {
				if !slices.Contains(g.HolderIndices(e), hc.index) {
					return nil, refused("the group file does not list this trustee as holding a share of epoch %d, but it does", e.Epoch)
				}
				mine = append(mine, r.Share)
			}
		} else if !slices.Equal(e.Holders, want.Holders) {
			return nil, refused("the group file changes the holders of epoch %d", e.Epoch)
		}
		if e.Epoch != want.Epoch || e.Key != want.Key || !slices.Equal(e.Commitment, want.Commitment) ||
			!e.ValidFrom.Equal(want.ValidFrom) || !e.ValidUntil.Equal(want.ValidUntil) {
			return nil, refused("the group file's epoch %d is not what this node computed in ceremony %s", e.Epoch, p.ID)
		}
	}
	return mine, nil
}

// Sign checks the group file the coordinator built from every
// participant's outcome (canonical group.json, unsigned) and returns it
// signed by this node.
func (h *CeremonyHost) Sign(id string, groupJSON []byte) ([]byte, error) {
	hc, err := h.started(id)
	if err != nil {
		return nil, err
	}
	defer hc.mu.Unlock()
	if hc.index == 0 {
		return nil, refused("this trustee leaves the group in this reshare; it has nothing to sign")
	}
	g, err := escrow.ParseGroupFile(groupJSON)
	if err != nil {
		return nil, refused("%v", err)
	}
	if _, err := h.checkGroup(hc, g); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(groupJSON)
	hc.st.Signed = hex.EncodeToString(sum[:])
	if err := h.save(hc); err != nil {
		return nil, err
	}
	return escrow.SignGroupFile(groupJSON, h.cfg.LogSigner)
}

// Commit installs the ceremony's result: the group file must be the one
// this node signed, now signed by every holder. The node then stores its
// share and the group file and forgets the ceremony.
func (h *CeremonyHost) Commit(id string, signedGroup []byte) error {
	hc, err := h.started(id)
	if err != nil {
		return err
	}
	defer hc.mu.Unlock()
	g, text, err := escrow.VerifyGroupFile(signedGroup, true)
	if err != nil {
		return refused("%v", err)
	}
	sum := sha256.Sum256(text)
	if hc.index != 0 && (hc.st.Signed == "" || hex.EncodeToString(sum[:]) != hc.st.Signed) {
		return refused("this is not the group file this node signed for ceremony %s", id)
	}
	mine, err := h.checkGroup(hc, g)
	if err != nil {
		return err
	}
	replace := hc.st.Params.Kind == CeremonyReshare
	var made []uint32
	for _, e := range g.Epochs {
		made = append(made, e.Epoch)
	}
	if !replace {
		made = made[len(made)-1:]
	}
	// Logged before they take effect: a node that cannot log installs
	// and erases nothing.
	if replace {
		var held []uint32
		for _, e := range made {
			if h.cfg.Share(e) != nil {
				held = append(held, e)
			}
		}
		if len(held) > 0 {
			if err := h.record(hc, EventSharesErased, "", held, signedGroup); err != nil {
				return fmt.Errorf("ceremony: the erasure of the old shares could not be logged, so nothing is installed: %w", err)
			}
		}
	}
	if err := h.record(hc, EventCompleted, "", made, signedGroup); err != nil {
		return fmt.Errorf("ceremony: the completion could not be logged, so nothing is installed: %w", err)
	}
	if err := h.cfg.Install(signedGroup, g, mine, replace); err != nil {
		return fmt.Errorf("ceremony: installing the result of ceremony %s: %w", id, err)
	}
	if p := hc.proposal(); p != nil {
		h.cfg.Store.DeleteApproval(p.Hash())
	}
	return h.drop(id)
}

// Abort forgets a ceremony and its secrets; nothing of it is installed.
// Aborting a ceremony the node does not know is no error.
func (h *CeremonyHost) Abort(id string) error {
	hc, err := h.get(id)
	if errors.Is(err, ErrNoCeremony) {
		return nil
	}
	if err != nil {
		return err
	}
	rerr := h.record(hc, EventAborted, AbortRequested, nil, nil)
	hc.mu.Unlock()
	if rerr != nil {
		return fmt.Errorf("ceremony: the abort could not be logged: %w", rerr)
	}
	return h.drop(id)
}

// Pending lists the ceremonies with stored state (for logs at start).
func (h *CeremonyHost) Pending() ([]string, error) { return h.cfg.Store.CeremonyIDs() }

package ceremony

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
)

// HostStore is what a [CeremonyHost] keeps: ceremonies in progress and
// the approvals of its operator.
type HostStore interface {
	CeremonyStore
	ApprovalStore
}

// ErrNotApproved: the node's operator has not approved the proposal a
// ceremony call names (or approved another one). Nothing was stored.
var ErrNotApproved = errors.New("ceremony: not approved by this trustee's operator")

// Policy bounds the ceremonies a node takes part in. It holds without
// authentication: an approval outside it is refused, and so is a call.
type Policy struct {
	// MaxDeadline: a proposal's deadline may be at most this far after
	// its approval (default 1 hour).
	MaxDeadline time.Duration
	// MaxEpochLength: the longest epoch window a proposal may make
	// (default 400 days).
	MaxEpochLength time.Duration
	// MaxStartAhead: how far in the future a new epoch may start
	// (default 400 days).
	MaxStartAhead time.Duration
	// MaxApprovals: how many approved proposals a node keeps at once
	// (default 8); an approval past its deadline is forgotten.
	MaxApprovals int
}

// Defaults of [Policy].
const (
	DefaultMaxDeadline    = time.Hour
	DefaultMaxEpochLength = 400 * 24 * time.Hour
	DefaultMaxStartAhead  = 400 * 24 * time.Hour
	DefaultMaxApprovals   = 8
)

func (p Policy) withDefaults() Policy {
	if p.MaxDeadline <= 0 {
		p.MaxDeadline = DefaultMaxDeadline
	}
	if p.MaxEpochLength <= 0 {
		p.MaxEpochLength = DefaultMaxEpochLength
	}
	if p.MaxStartAhead <= 0 {
		p.MaxStartAhead = DefaultMaxStartAhead
	}
	if p.MaxApprovals <= 0 {
		p.MaxApprovals = DefaultMaxApprovals
	}
	return p
}

// Kinds of ceremony audit event.
const (
	EventApproved     = "ceremony-approved"  // the operator approved a proposal
	EventCompleted    = "ceremony-completed" // the node installs a ceremony's result
	EventAborted      = "ceremony-aborted"   // the node forgets a ceremony without a result
	EventSharesErased = "shares-erased"      // the node erases shares a reshare replaced or took away
)

// Reasons of an aborted ceremony (Event.Code).
const (
	AbortRequested = "abort-requested" // the coordinator called abort
	AbortDeadline  = "deadline-passed"
	AbortTooFew    = "too-few-qualified" // too few deals qualified
)

// Event is an audit record of a ceremony event. It holds ids, hashes and
// epochs, never names or free text.
type Event struct {
	Kind     string
	Ceremony string   // ceremony id
	Proposal string   // hex SHA-256 of the proposal text
	Epochs   []uint32 // epochs made, moved or erased
	Roster   string   // hex SHA-256 of the (new) roster
	Group    string   // hex SHA-256 of the group file installed
	Code     string   // why an abort happened
}

// Review checks a signed proposal as [CeremonyHost.Approve] would and
// returns the proposal and its plain-language summary, approving nothing.
// group is the current signed group file the proposal names; nil takes
// the node's own. (A trustee that joins by a reshare has none, and one
// that missed a rotation has an older one, which the named file must
// only extend.)
func (h *CeremonyHost) Review(signed, group []byte) (*Proposal, string, error) {
	p, cur, who, err := h.review(signed, group)
	if err != nil {
		return nil, "", err
	}
	return p, p.Summary(cur, who), nil
}

func (h *CeremonyHost) review(signed, group []byte) (*Proposal, *escrow.GroupFile, []string, error) {
	if group == nil {
		group = h.cfg.Group()
	}
	var p *Proposal
	var who []string
	var err error
	if p, err = peekProposal(signed); err != nil {
		return nil, nil, nil, err
	}
	if p.Kind == ProposeDKG {
		group = nil
	}
	if p, who, err = OpenProposal(signed, group); err != nil {
		return nil, nil, nil, err
	}
	var cur *escrow.GroupFile
	if group != nil {
		cur, _, _ = escrow.VerifyGroupFile(group, true) // checked by OpenProposal
	}
	now := h.cfg.Clock()
	pol := h.cfg.Policy
	switch {
	case !now.Before(p.Deadline):
		return nil, nil, nil, refused("proposal %s passed its deadline %s; ask for a new one", p.ID, p.Deadline.Format(time.RFC3339))
	case p.Deadline.After(now.Add(pol.MaxDeadline)):
		return nil, nil, nil, refused("proposal %s has its deadline %s, more than %s from now, this node's limit; ask for one with a nearer deadline", p.ID, p.Deadline.Format(time.RFC3339), pol.MaxDeadline)
	case p.Kind != ProposeReshare && p.ValidUntil.Sub(p.ValidFrom) > pol.MaxEpochLength:
		return nil, nil, nil, refused("the proposed epoch lasts %s, more than this node's limit of %s", p.ValidUntil.Sub(p.ValidFrom), pol.MaxEpochLength)
	case p.Kind != ProposeReshare && p.ValidFrom.After(now.Add(pol.MaxStartAhead)):
		return nil, nil, nil, refused("the proposed epoch starts %s, more than %s from now, this node's limit", p.ValidFrom.Format(time.RFC3339), pol.MaxStartAhead)
	}
	// The parameters must fit this node as a ceremony call would.
	params := p.params(string(group))
	if _, err := h.checkNode(&params); err != nil {
		return nil, nil, nil, err
	}
	if p.Kind == ProposeReshare && cur != nil {
		if _, err := h.inRoster(cur.Trustees); err != nil {
			return nil, nil, nil, err
		}
	}
	return p, cur, who, nil
}

// peekProposal parses the text of a signed proposal without checking its
// signatures (to learn its kind).
func peekProposal(signed []byte) (*Proposal, error) {
	for i := 0; i+1 < len(signed); i++ {
		if signed[i] == '\n' && signed[i+1] == '\n' {
			return ParseProposalText(string(signed[:i+1]))
		}
	}
	return nil, fmt.Errorf("%w: not a signed note (no signature block)", ErrBadProposal)
}

// Approve records that this node's operator approves the proposal: after
// an audit record of the approval, the node takes part in the ceremony it
// fixes, and in nothing else. Call it only from the node's control
// channel. Approving the same proposal again is no error.
func (h *CeremonyHost) Approve(signed, group []byte) (*Proposal, string, error) {
	p, cur, who, err := h.review(signed, group)
	if err != nil {
		return nil, "", err
	}
	hash := p.Hash()
	if b, err := h.cfg.Store.Approval(hash); err != nil {
		return nil, "", err
	} else if b != nil {
		return p, p.Summary(cur, who), nil
	}
	if err := h.pruneApprovals(); err != nil {
		return nil, "", err
	}
	hs, err := h.cfg.Store.ApprovalHashes()
	if err != nil {
		return nil, "", err
	}
	if len(hs) >= h.cfg.Policy.MaxApprovals {
		return nil, "", refused("this node already keeps %d approved proposals; let them run or pass their deadlines first", len(hs))
	}
	var epochs []uint32
	if p.Kind != ProposeReshare {
		epochs = []uint32{p.Epoch}
	} else if cur != nil {
		for _, e := range cur.Epochs {
			epochs = append(epochs, e.Epoch)
		}
	}
	if err := h.cfg.Record(Event{Kind: EventApproved, Ceremony: p.ID, Proposal: hash, Epochs: epochs, Roster: RosterHash(p.Roster), Group: p.GroupHash}); err != nil {
		return nil, "", fmt.Errorf("ceremony: the approval could not be logged, so it is not given: %w", err)
	}
	if err := h.cfg.Store.PutApproval(hash, signed); err != nil {
		return nil, "", err
	}
	h.noteRosters()
	return p, p.Summary(cur, who), nil
}

// pruneApprovals forgets approvals past their deadline.
func (h *CeremonyHost) pruneApprovals() error {
	hs, err := h.cfg.Store.ApprovalHashes()
	if err != nil {
		return err
	}
	now := h.cfg.Clock()
	for _, hash := range hs {
		b, err := h.cfg.Store.Approval(hash)
		if err != nil {
			return err
		}
		p, err := peekProposal(b)
		if err != nil || !now.Before(p.Deadline) {
			if err := h.cfg.Store.DeleteApproval(hash); err != nil {
				return err
			}
		}
	}
	h.noteRosters()
	return nil
}

// checkApproved checks that the parameters are exactly those of a
// proposal this node's operator approved, before anything is stored.
func (h *CeremonyHost) checkApproved(p *CeremonyParams) error {
	if p.Proposal == "" {
		return fmt.Errorf("%w: the call names no proposal; a ceremony starts from a proposal each operator approves (keyquorum ceremony propose, keyquorum trustee approve)", ErrNotApproved)
	}
	prop, err := peekProposal([]byte(p.Proposal))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotApproved, err)
	}
	hash := prop.Hash()
	b, err := h.cfg.Store.Approval(hash)
	if err != nil {
		return err
	}
	if b == nil {
		return fmt.Errorf("%w: proposal %.16s… (ceremony %s); its operator can approve it with keyquorum trustee approve", ErrNotApproved, hash, prop.ID)
	}
	if !h.cfg.Clock().Before(prop.Deadline) {
		return refused("proposal %s passed its deadline %s; ask for a new one", prop.ID, prop.Deadline.Format(time.RFC3339))
	}
	want := prop.params(p.Group)
	want.Proposal = p.Proposal
	if p.Group != "" && HashGroup([]byte(p.Group)) != prop.GroupHash || p.Group == "" && prop.GroupHash != "" {
		return fmt.Errorf("%w: the call's group file is not the one the approved proposal names", ErrNotApproved)
	}
	if p.Hash() != want.Hash() {
		return fmt.Errorf("%w: the call's parameters differ from the approved proposal %s (roster, threshold, window or deadline changed)", ErrNotApproved, prop.ID)
	}
	return nil
}

// proposal returns the proposal of a hosted ceremony.
func (hc *hosted) proposal() *Proposal {
	p, _ := peekProposal([]byte(hc.st.Params.Proposal))
	return p
}

// record writes an event about a hosted ceremony.
func (h *CeremonyHost) record(hc *hosted, kind, code string, epochs []uint32, group []byte) error {
	ev := Event{Kind: kind, Ceremony: hc.st.Params.ID, Epochs: epochs, Roster: RosterHash(hc.st.Params.Roster), Code: code}
	if p := hc.proposal(); p != nil {
		ev.Proposal = p.Hash()
	}
	if group != nil {
		ev.Group = HashGroup(group)
	}
	return h.cfg.Record(ev)
}

// Status is what a node's operator sees of its ceremonies.
type Status struct {
	Approvals  []ApprovalStatus `json:"approvals"`
	InProgress []string         `json:"in_progress"` // ceremony ids with stored state
}

// ApprovalStatus is one approved proposal.
type ApprovalStatus struct {
	Hash     string    `json:"hash"`
	ID       string    `json:"ceremony"`
	Kind     string    `json:"kind"`
	Deadline time.Time `json:"deadline"`
}

// Status lists the approvals and ceremonies in progress.
func (h *CeremonyHost) Status() (*Status, error) {
	if err := h.pruneApprovals(); err != nil {
		return nil, err
	}
	st := &Status{Approvals: []ApprovalStatus{}, InProgress: []string{}}
	hs, err := h.cfg.Store.ApprovalHashes()
	if err != nil {
		return nil, err
	}
	for _, hash := range hs {
		b, err := h.cfg.Store.Approval(hash)
		if err != nil {
			return nil, err
		}
		if p, err := peekProposal(b); err == nil {
			st.Approvals = append(st.Approvals, ApprovalStatus{Hash: hash, ID: p.ID, Kind: p.Kind, Deadline: p.Deadline})
		}
	}
	ids, err := h.cfg.Store.CeremonyIDs()
	if err != nil {
		return nil, err
	}
	st.InProgress = append(st.InProgress, ids...)
	slices.Sort(st.InProgress)
	return st, nil
}

// MaxCallBody is the largest ceremony call body the node reads: what the
// largest roster among its approved proposals needs (deliver calls carry
// about n² messages of a few hundred bytes per epoch), or a small bound
// when it approved nothing, since every call then fails anyway.
func (h *CeremonyHost) MaxCallBody() int64 {
	n := h.maxRoster.Load()
	return min(baseCallBody+perPairCallBody*n*n, maxCallBody)
}

// Bounds of a ceremony call's body.
const (
	baseCallBody    = 256 << 10
	perPairCallBody = 64 << 10
	maxCallBody     = 32 << 20
)

// noteRosters updates the largest roster size among the approvals (the
// current group's counts too while any approval stands).
func (h *CeremonyHost) noteRosters() {
	hs, err := h.cfg.Store.ApprovalHashes()
	if err != nil {
		return
	}
	var n int64
	for _, hash := range hs {
		b, err := h.cfg.Store.Approval(hash)
		if err != nil {
			continue
		}
		if p, err := peekProposal(b); err == nil {
			n = max(n, int64(len(p.Roster)))
		}
	}
	if n > 0 {
		n = max(n, int64(h.currentSize()))
	}
	h.maxRoster.Store(n)
}

// currentSize is the size of the node's current group's roster (a
// reshare's old trustees also deal).
func (h *CeremonyHost) currentSize() int {
	if b := h.cfg.Group(); b != nil {
		if g, err := escrow.ReadGroupFile(b); err == nil {
			return len(g.Trustees)
		}
	}
	return 0
}

package ceremony

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"golang.org/x/mod/sumdb/note"
)

// ProposalVersion is the first line of a proposal note.
const ProposalVersion = "keyquorum ceremony proposal v1"

// Kinds of proposal. A rotation is a DKG for the next epoch of a group.
const (
	ProposeDKG     = "dkg"
	ProposeRotate  = "rotate"
	ProposeReshare = "reshare"
)

// API codes of [ErrNotApproved] and [ErrBadProposal].
const (
	CodeNotApproved = "ceremony-not-approved"
	CodeBadProposal = "bad-proposal"
)

// ErrBadProposal: a proposal does not parse, is not signed by a trustee it
// names, or breaks a rule; the error says which.
var ErrBadProposal = errors.New("ceremony: bad proposal")

// Proposal is a ceremony proposal. Its text form ([Proposal.Text]) is what
// operators approve; [Proposal.Hash] names it.
type Proposal struct {
	ID        string // the ceremony id, 32 hex digits
	Kind      string // ProposeDKG, ProposeRotate or ProposeReshare
	GroupHash string // hex SHA-256 of the current signed group file; "" for a first DKG
	Threshold int
	// WitnessQuorum is w of the group file the ceremony makes: how many
	// other trustees must cosign the checkpoint a share leaves under. nil
	// is the default, threshold − 1 ([escrow.GroupFile.Witnesses]). A
	// rotation keeps the current group's.
	WitnessQuorum *int
	Roster        []escrow.GroupMember // the (new) roster
	// Epoch, ValidFrom and ValidUntil: the new epoch (a DKG or rotation).
	Epoch                 uint32
	ValidFrom, ValidUntil time.Time
	Deadline              time.Time
}

// RosterHash is the hex SHA-256 of the roster's canonical JSON.
func RosterHash(roster []escrow.GroupMember) string {
	b, _ := json.Marshal(roster)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// HashGroup is the hex SHA-256 of a signed group file as given.
func HashGroup(signed []byte) string {
	h := sha256.Sum256(signed)
	return hex.EncodeToString(h[:])
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func undash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// Text returns the proposal's canonical text (the note text).
func (p *Proposal) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nid %s\nkind %s\ngroup %s\nthreshold %d\n", ProposalVersion, p.ID, p.Kind, dash(p.GroupHash), p.Threshold)
	if p.WitnessQuorum != nil {
		fmt.Fprintf(&b, "witnesses %d\n", *p.WitnessQuorum)
	}
	fmt.Fprintf(&b, "roster %s\n", RosterHash(p.Roster))
	for _, m := range p.Roster {
		fmt.Fprintf(&b, "member %d %s %s %s %s %s\n", m.Index, m.Name, dash(m.Address), dash(m.IdentityKey), dash(m.TLSPin), m.LogKey)
	}
	if p.Kind != ProposeReshare {
		fmt.Fprintf(&b, "epoch %d %s %s\n", p.Epoch, p.ValidFrom.UTC().Format(time.RFC3339), p.ValidUntil.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "deadline %s\n", p.Deadline.UTC().Format(time.RFC3339))
	return b.String()
}

// Hash is the hex SHA-256 of the proposal's text: what an approval names.
func (p *Proposal) Hash() string {
	h := sha256.Sum256([]byte(p.Text()))
	return hex.EncodeToString(h[:])
}

// ParseProposalText parses a proposal's text and refuses anything that is
// not exactly what [Proposal.Text] writes.
func ParseProposalText(text string) (*Proposal, error) {
	bad := func(format string, args ...any) (*Proposal, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrBadProposal}, args...)...)
	}
	if len(text) > 1<<20 {
		return bad("longer than 1 MiB")
	}
	lines := strings.Split(text, "\n")
	if len(lines) < 8 || lines[len(lines)-1] != "" {
		return bad("too short, or not ending in a newline")
	}
	lines = lines[:len(lines)-1]
	if lines[0] != ProposalVersion {
		return bad("first line %q; this version reads %q", truncateForLog(lines[0]), ProposalVersion)
	}
	field := func(i int, key string) (string, error) {
		v, ok := strings.CutPrefix(lines[i], key+" ")
		if !ok {
			return "", fmt.Errorf("%w: line %d: want %q", ErrBadProposal, i+1, key)
		}
		return v, nil
	}
	p := &Proposal{}
	var err error
	var v, rosterHash string
	if p.ID, err = field(1, "id"); err != nil {
		return nil, err
	}
	if p.Kind, err = field(2, "kind"); err != nil {
		return nil, err
	}
	if v, err = field(3, "group"); err != nil {
		return nil, err
	}
	p.GroupHash = undash(v)
	if v, err = field(4, "threshold"); err != nil {
		return nil, err
	}
	if p.Threshold, err = strconv.Atoi(v); err != nil {
		return bad("threshold %q", truncateForLog(v))
	}
	i := 5
	if v, ok := strings.CutPrefix(lines[i], "witnesses "); ok {
		w, err := strconv.Atoi(v)
		if err != nil {
			return bad("witnesses %q", truncateForLog(v))
		}
		p.WitnessQuorum = &w
		i++
	}
	if rosterHash, err = field(i, "roster"); err != nil {
		return nil, err
	}
	i++
	for ; i < len(lines) && strings.HasPrefix(lines[i], "member "); i++ {
		f := strings.Split(lines[i], " ")
		if len(f) != 7 {
			return bad("line %d: a member line has index, name, address, identity key, TLS pin and log key", i+1)
		}
		idx, err := strconv.Atoi(f[1])
		if err != nil {
			return bad("line %d: member index %q", i+1, truncateForLog(f[1]))
		}
		p.Roster = append(p.Roster, escrow.GroupMember{Index: idx, Name: f[2], Address: undash(f[3]), IdentityKey: undash(f[4]), TLSPin: undash(f[5]), LogKey: f[6]})
	}
	if i < len(lines) && p.Kind != ProposeReshare {
		if v, err = field(i, "epoch"); err != nil {
			return nil, err
		}
		f := strings.Split(v, " ")
		if len(f) != 3 {
			return bad("line %d: epoch number, valid-from and valid-until", i+1)
		}
		e, err1 := strconv.ParseUint(f[0], 10, 32)
		from, err2 := time.Parse(time.RFC3339, f[1])
		until, err3 := time.Parse(time.RFC3339, f[2])
		if err := errors.Join(err1, err2, err3); err != nil {
			return bad("line %d: %v", i+1, err)
		}
		p.Epoch, p.ValidFrom, p.ValidUntil = uint32(e), from.UTC(), until.UTC()
		i++
	}
	if i != len(lines)-1 {
		return bad("unexpected line %d", i+1)
	}
	if v, err = field(i, "deadline"); err != nil {
		return nil, err
	}
	d, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return bad("deadline: %v", err)
	}
	p.Deadline = d.UTC()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if rosterHash != RosterHash(p.Roster) {
		return bad("the roster hash does not match its members")
	}
	if p.Text() != text {
		return bad("not in canonical form")
	}
	return p, nil
}

// Validate checks the proposal on its own (not against a node).
func (p *Proposal) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadProposal}, args...)...)
	}
	if _, err := parseCeremonyID(p.ID); err != nil {
		return bad("id %q is not 32 lowercase hex digits", truncateForLog(p.ID))
	}
	switch p.Kind {
	case ProposeDKG:
		if p.GroupHash != "" {
			return bad("a first DKG names no current group; a new key for a group is a rotation")
		}
	case ProposeRotate, ProposeReshare:
		if b, err := hex.DecodeString(p.GroupHash); err != nil || len(b) != 32 || hex.EncodeToString(b) != p.GroupHash {
			return bad("a %s names the current group file by its SHA-256 (64 lowercase hex digits)", p.Kind)
		}
	default:
		return bad("kind %q; use %s, %s or %s", truncateForLog(p.Kind), ProposeDKG, ProposeRotate, ProposeReshare)
	}
	if p.Kind != ProposeReshare && !p.ValidUntil.After(p.ValidFrom) {
		return bad("the epoch window ends before it starts")
	}
	if p.Kind != ProposeReshare && p.Epoch == 0 {
		return bad("epochs are numbered from 1")
	}
	if p.Deadline.IsZero() {
		return bad("no deadline")
	}
	group := ""
	if p.Kind != ProposeDKG {
		group = p.GroupHash // stands in for the file, which Validate only needs present
	}
	params := p.params(group)
	if err := params.Validate(); err != nil {
		return bad("%v", err)
	}
	return nil
}

// params returns the ceremony parameters the proposal fixes, with the
// current signed group file.
func (p *Proposal) params(group string) CeremonyParams {
	kind := CeremonyDKG
	if p.Kind == ProposeReshare {
		kind = CeremonyReshare
	}
	return CeremonyParams{
		Version: CeremonyParamsVersion, ID: p.ID, Kind: kind, Epoch: p.Epoch, Threshold: p.Threshold,
		Roster: p.Roster, ValidFrom: p.ValidFrom, ValidUntil: p.ValidUntil, Deadline: p.Deadline, Group: group,
		WitnessQuorum: p.WitnessQuorum,
	}
}

// proposalVerifiers returns the verifiers of everyone who may propose:
// for a first DKG a trustee of its roster; for a rotation or a reshare a
// trustee of the current group, so that nobody outside a group can even
// put a change of its keys before its operators.
func proposalVerifiers(p *Proposal, cur *escrow.GroupFile) (note.Verifiers, error) {
	var vs []note.Verifier
	ms := p.Roster
	if cur != nil {
		ms = cur.Trustees
	}
	for _, m := range ms {
		v, err := note.NewVerifier(m.LogKey)
		if err != nil {
			return nil, fmt.Errorf("%w: %s's log key: %v", ErrBadProposal, m.Name, err)
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}

// SignProposal returns the proposal as a note signed by signer: the log
// key of a trustee of its roster (a first DKG) or of the current group (a
// rotation or a reshare).
func SignProposal(p *Proposal, signer note.Signer) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: p.Text()}, signer)
}

// OpenProposal parses a signed proposal and checks that a trustee who may
// propose it signed it (see [SignProposal]). cur is the current group file of a rotation or
// reshare (its hash must be the proposal's), nil for a first DKG. It
// returns the proposal and the names of the trustees who signed it.
func OpenProposal(signed []byte, cur []byte) (*Proposal, []string, error) {
	if len(signed) > 1<<20 {
		return nil, nil, fmt.Errorf("%w: longer than 1 MiB", ErrBadProposal)
	}
	i := strings.Index(string(signed), "\n\n")
	if i < 0 {
		return nil, nil, fmt.Errorf("%w: not a signed note (no signature block)", ErrBadProposal)
	}
	p, err := ParseProposalText(string(signed[:i+1]))
	if err != nil {
		return nil, nil, err
	}
	var g *escrow.GroupFile
	if p.Kind != ProposeDKG {
		if cur == nil {
			return nil, nil, fmt.Errorf("%w: a %s needs the current group file to check", ErrBadProposal, p.Kind)
		}
		if HashGroup(cur) != p.GroupHash {
			return nil, nil, fmt.Errorf("%w: the proposal is for another group file than %s (hash %.12s…, want %.12s…); fetch the one it names or write a new proposal", ErrBadProposal, "this one", HashGroup(cur), p.GroupHash)
		}
		if g, _, err = escrow.VerifyGroupFile(cur, true); err != nil {
			return nil, nil, fmt.Errorf("%w: the current group file: %v", ErrBadProposal, err)
		}
	}
	vs, err := proposalVerifiers(p, g)
	if err != nil {
		return nil, nil, err
	}
	n, err := note.Open(signed, vs)
	if err != nil {
		who := "a trustee of its roster"
		if g != nil {
			who = "a trustee of the current group"
		}
		return nil, nil, fmt.Errorf("%w: not signed by %s: %v", ErrBadProposal, who, err)
	}
	var who []string
	for _, s := range n.Sigs {
		who = append(who, strings.TrimSuffix(s.Name, ".keyquorum"))
	}
	return p, who, nil
}

// RotationProposal proposes the next epoch of the signed group file:
// the same roster and threshold, starting when the last epoch ends and
// lasting length (default: as long as the last epoch); if the last one
// ended more than that ago, the new one lasts until length after now.
func RotationProposal(signed []byte, now time.Time, length time.Duration, deadline time.Time, rand io.Reader) (*Proposal, error) {
	g, e, err := nextEpoch(signed, now, length)
	if err != nil {
		return nil, err
	}
	id, err := NewCeremonyID(rand)
	if err != nil {
		return nil, err
	}
	p := &Proposal{ID: id, Kind: ProposeRotate, GroupHash: HashGroup(signed), Threshold: g.Threshold, WitnessQuorum: g.WitnessQuorum, Roster: g.Trustees,
		Epoch: e.Epoch, ValidFrom: e.ValidFrom, ValidUntil: e.ValidUntil, Deadline: deadline.UTC().Truncate(time.Second)}
	return p, p.Validate()
}

// DKGProposal proposes a group's first key among roster.
func DKGProposal(roster []escrow.GroupMember, threshold int, epoch escrow.GroupEpoch, deadline time.Time, rand io.Reader) (*Proposal, error) {
	id, err := NewCeremonyID(rand)
	if err != nil {
		return nil, err
	}
	p := &Proposal{ID: id, Kind: ProposeDKG, Threshold: threshold, Roster: roster, Epoch: epoch.Epoch,
		ValidFrom: epoch.ValidFrom.UTC().Truncate(time.Second), ValidUntil: epoch.ValidUntil.UTC().Truncate(time.Second), Deadline: deadline.UTC().Truncate(time.Second)}
	return p, p.Validate()
}

// ReshareProposal proposes moving every epoch key of the signed group
// file to roster and threshold.
func ReshareProposal(signed []byte, roster []escrow.GroupMember, threshold int, deadline time.Time, rand io.Reader) (*Proposal, error) {
	if _, _, err := escrow.VerifyGroupFile(signed, true); err != nil {
		return nil, err
	}
	id, err := NewCeremonyID(rand)
	if err != nil {
		return nil, err
	}
	p := &Proposal{ID: id, Kind: ProposeReshare, GroupHash: HashGroup(signed), Threshold: threshold, Roster: roster, Deadline: deadline.UTC().Truncate(time.Second)}
	return p, p.Validate()
}

// Summary says in plain words what the proposal does, for the operator
// who approves it. cur is the current group file (nil for a first DKG).
func (p *Proposal) Summary(cur *escrow.GroupFile, proposers []string) string {
	names := func(ms []escrow.GroupMember) string {
		var ns []string
		for _, m := range ms {
			ns = append(ns, m.Name)
		}
		return strings.Join(ns, ", ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ceremony %s, proposed by %s, must finish by %s:\n", p.ID, strings.Join(proposers, ", "), p.Deadline.Format(time.RFC3339))
	win := func() string {
		return fmt.Sprintf("epoch %d, valid %s to %s", p.Epoch, p.ValidFrom.Format(time.RFC3339), p.ValidUntil.Format(time.RFC3339))
	}
	switch p.Kind {
	case ProposeDKG:
		fmt.Fprintf(&b, "  first DKG: a new group key (%s) made among %s (%d-of-%d); no machine will hold the key\n", win(), names(p.Roster), p.Threshold, len(p.Roster))
	case ProposeRotate:
		fmt.Fprintf(&b, "  rotation: a new key for %s among the same %d-of-%d group (%s)\n", win(), p.Threshold, len(p.Roster), names(p.Roster))
	case ProposeReshare:
		var es []string
		var leave []string
		if cur != nil {
			for _, e := range cur.Epochs {
				es = append(es, strconv.FormatUint(uint64(e.Epoch), 10))
			}
			for _, m := range cur.Trustees {
				if !slices.ContainsFunc(p.Roster, func(n escrow.GroupMember) bool { return n.Name == m.Name }) {
					leave = append(leave, m.Name)
				}
			}
			fmt.Fprintf(&b, "  reshare: the key of epochs %s moves from %s (%d-of-%d) to %s (%d-of-%d)\n", strings.Join(es, ", "), names(cur.Trustees), cur.Threshold, len(cur.Trustees), names(p.Roster), p.Threshold, len(p.Roster))
			if len(leave) > 0 {
				fmt.Fprintf(&b, "  %s will erase their shares\n", strings.Join(leave, " and "))
			}
			fmt.Fprintf(&b, "  it goes ahead only if at least %d current holders approve it\n", cur.Threshold)
		}
	}
	probe := escrow.GroupFile{Threshold: p.Threshold, WitnessQuorum: p.WitnessQuorum}
	switch w := probe.Witnesses(); {
	case w == 0:
		fmt.Fprintf(&b, "  witnessing off: a trustee releases shares under checkpoints no other trustee has cosigned\n")
	case p.WitnessQuorum != nil:
		fmt.Fprintf(&b, "  a trustee releases shares only under a checkpoint cosigned by %d other trustees (set by the proposal; the default is %d)\n", w, p.Threshold-1)
	default:
		fmt.Fprintf(&b, "  a trustee releases shares only under a checkpoint cosigned by %d other trustees (the default, threshold - 1)\n", w)
	}
	fmt.Fprintf(&b, "  proposal hash %s\n", p.Hash())
	return b.String()
}

package escrow

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/keyquorum/keyquorum/internal/group"
	"github.com/keyquorum/keyquorum/shares"
	"go.dedis.ch/kyber/v3"
)

// GroupFileVersion is the version field of a group file. Version 2 holds
// its signatures inside the JSON object (see [SignedGroupFile]); version 1
// ([ErrGroupFileV1]) had them as note signature lines after it.
const GroupFileVersion = "keyquorum group v2"

// GroupFile is the public description of a trustee group: who the trustees
// are, the threshold, and for each epoch the group key, its Feldman
// commitment (from which every trustee's public share X_i follows) and when
// senders should use it. It holds no secret.
type GroupFile struct {
	Version       string        `json:"version"`
	KeyGeneration string        `json:"key_generation"` // "dealer" or "dkg"
	Threshold     int           `json:"threshold"`
	Trustees      []GroupMember `json:"trustees"`
	Epochs        []GroupEpoch  `json:"epochs"`
	// WitnessQuorum is w: a trustee releases a share only under a
	// checkpoint cosigned by w other trustees. Absent (nil) means the
	// default, t−1 ([GroupFile.Witnesses]); 0 turns witnessing off.
	WitnessQuorum *int `json:"witness_quorum,omitempty"`
}

// Witnesses returns w, the number of other trustees whose cosignatures a
// checkpoint needs before a share leaves under it: WitnessQuorum if set,
// else t−1. With w = 0 one operator can show a requester a release that
// its auditors never see. With w = t−1, hiding a release from auditors (a split view)
// needs the operator and the w witnesses that cosigned it, t trustees in
// all: the coalition that could already decrypt everything without any
// log, so witnessing costs nothing in trust; and whenever t trustees are
// up, each has its t−1 witnesses up, so it costs nothing in availability
// either. A larger w (at most n−1) makes a split view need more colluders
// and makes a release need more trustees up.
func (g *GroupFile) Witnesses() int {
	if g.WitnessQuorum != nil {
		return *g.WitnessQuorum
	}
	return g.Threshold - 1
}

// GroupMember is one trustee in the roster.
type GroupMember struct {
	Index       int    `json:"index"` // 1-based share index
	Name        string `json:"name"`
	Address     string `json:"address,omitempty"`      // host:port of its API
	IdentityKey string `json:"identity_key,omitempty"` // base64 X25519 key shares are sealed to
	TLSPin      string `json:"tls_pin,omitempty"`      // "sha256/" + base64 SHA-256 of the certificate's public key; empty: plain HTTP on loopback only
	LogKey      string `json:"log_key,omitempty"`      // note verifier key of its audit log
}

// GroupEpoch is one epoch's key.
type GroupEpoch struct {
	Epoch      uint32    `json:"epoch"`
	Key        string    `json:"key"`        // base64 X_e
	Commitment []string  `json:"commitment"` // base64 A_0..A_{t-1}, A_0 = X_e
	ValidFrom  time.Time `json:"valid_from"`
	ValidUntil time.Time `json:"valid_until"`
	// Holders lists (1-based, ascending) the trustees that hold a share of
	// this epoch's key, when that is not all of them: a trustee that was
	// down during the epoch's key ceremony holds none. Empty means all.
	Holders []int `json:"holders,omitempty"`
}

// HolderIndices returns the 1-based indices of the trustees that hold a
// share of the epoch.
func (g *GroupFile) HolderIndices(e GroupEpoch) []int {
	if len(e.Holders) > 0 {
		return slices.Clone(e.Holders)
	}
	var all []int
	for _, m := range g.Trustees {
		all = append(all, m.Index)
	}
	return all
}

// ErrBadGroupFile wraps every group-file validation failure.
var ErrBadGroupFile = errors.New("escrow: bad group file")

// Marshal encodes the group file as indented JSON, without signatures.
func (g *GroupFile) Marshal() ([]byte, error) {
	return (&SignedGroupFile{GroupFile: *g}).Marshal()
}

// ParseGroupFile decodes and validates an unsigned group file. Unknown
// fields are refused, and the encoding must be the canonical one
// [GroupFile.Marshal] writes. A file with signatures is refused: read it
// with [VerifyGroupFile] (a client) or [ReadGroupFile] (a trustee's own
// copy), which check them.
func ParseGroupFile(b []byte) (*GroupFile, error) {
	s, err := ParseSignedGroupFile(b)
	if err != nil {
		return nil, err
	}
	if len(s.Signatures) > 0 {
		return nil, fmt.Errorf("%w: the file carries signatures where an unsigned group file was expected; give the file as the dealer or the ceremony wrote it", ErrBadGroupFile)
	}
	return &s.GroupFile, nil
}

// Validate checks the roster, threshold and every epoch's key material.
func (g *GroupFile) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadGroupFile}, args...)...)
	}
	if g.Version != GroupFileVersion {
		return bad("version %q, this build reads %q", g.Version, GroupFileVersion)
	}
	if g.KeyGeneration != "dealer" && g.KeyGeneration != "dkg" {
		return bad("key_generation must be \"dealer\" or \"dkg\"")
	}
	n := len(g.Trustees)
	if g.Threshold < 1 || g.Threshold > n {
		return bad("threshold %d with %d trustees", g.Threshold, n)
	}
	if w := g.Witnesses(); w < 0 || w > n-1 {
		return bad("witness_quorum %d with %d trustees: each trustee has %d others to cosign its checkpoints (omit it for the default, threshold - 1)", w, n, max(n-1, 0))
	}
	names := map[string]bool{}
	for i, m := range g.Trustees {
		if names[m.Name] {
			return bad("trustee name %q appears twice", m.Name)
		}
		names[m.Name] = true
		if m.Index != i+1 {
			return bad("trustee %d has index %d; indices run 1..n in order", i+1, m.Index)
		}
		if !ValidName(m.Name) {
			return bad("trustee %d name %q", m.Index, m.Name)
		}
	}
	if len(g.Epochs) == 0 {
		return bad("no epochs")
	}
	for i, e := range g.Epochs {
		if i > 0 && e.Epoch <= g.Epochs[i-1].Epoch {
			return bad("epochs must be listed in increasing order")
		}
		if !e.ValidUntil.After(e.ValidFrom) {
			return bad("epoch %d valid_until must be after valid_from", e.Epoch)
		}
		for _, t := range []time.Time{e.ValidFrom, e.ValidUntil} {
			if t.Location() != time.UTC || !t.Equal(t.Truncate(time.Second)) {
				return bad("epoch %d times must be UTC whole seconds (write them with a trailing Z)", e.Epoch)
			}
		}
		if i > 0 && e.ValidFrom.Before(g.Epochs[i-1].ValidUntil) {
			return bad("epoch %d starts before epoch %d ends; epochs must not overlap", e.Epoch, g.Epochs[i-1].Epoch)
		}
		for k, h := range e.Holders {
			if h < 1 || h > n || (k > 0 && h <= e.Holders[k-1]) {
				return bad("epoch %d holders must be trustee indices 1..%d in increasing order", e.Epoch, n)
			}
		}
		if len(e.Holders) > 0 && len(e.Holders) < g.Threshold {
			return bad("epoch %d has %d holders, fewer than the threshold %d: its key cannot be used", e.Epoch, len(e.Holders), g.Threshold)
		}
		if len(e.Commitment) != g.Threshold {
			return bad("epoch %d commitment has %d points, threshold is %d", e.Epoch, len(e.Commitment), g.Threshold)
		}
		if _, err := g.commitment(e); err != nil {
			return bad("epoch %d: %v", e.Epoch, err)
		}
	}
	return nil
}

func (g *GroupFile) commitment(e GroupEpoch) (*shares.Commitment, error) {
	key, err := parsePointB64(e.Key)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	c := &shares.Commitment{}
	for j, s := range e.Commitment {
		p, err := parsePointB64(s)
		if err != nil {
			return nil, fmt.Errorf("commitment point %d: %w", j, err)
		}
		c.Points = append(c.Points, p)
	}
	if !c.Points[0].Equal(key) {
		return nil, errors.New("commitment does not commit to the epoch key")
	}
	return c, nil
}

// Member returns the roster entry of the named trustee, or nil.
func (g *GroupFile) Member(name string) *GroupMember {
	for i := range g.Trustees {
		if g.Trustees[i].Name == name {
			return &g.Trustees[i]
		}
	}
	return nil
}

// Epoch returns the named epoch.
func (g *GroupFile) Epoch(epoch uint32) (*GroupEpoch, error) {
	for i := range g.Epochs {
		if g.Epochs[i].Epoch == epoch {
			return &g.Epochs[i], nil
		}
	}
	return nil, fmt.Errorf("escrow: group file has no epoch %d", epoch)
}

// EpochAt returns the epoch senders should use at time t.
func (g *GroupFile) EpochAt(t time.Time) (*GroupEpoch, error) {
	for i := range g.Epochs {
		e := &g.Epochs[i]
		if !t.Before(e.ValidFrom) && t.Before(e.ValidUntil) {
			return e, nil
		}
	}
	return nil, fmt.Errorf("escrow: group file has no epoch valid at %s; rotate the group key", t.Format(time.RFC3339))
}

// EscrowGroup returns the public view of one epoch that a requester needs
// to combine: the key, the threshold and every trustee's public share.
func (g *GroupFile) EscrowGroup(epoch uint32) (*Group, error) {
	e, err := g.Epoch(epoch)
	if err != nil {
		return nil, err
	}
	c, err := g.commitment(*e)
	if err != nil {
		return nil, fmt.Errorf("%w: epoch %d: %w", ErrBadGroupFile, epoch, err)
	}
	eg := &Group{Epoch: epoch, Key: c.Points[0], Threshold: g.Threshold, PublicShares: map[int]kyber.Point{}}
	for _, m := range g.Trustees {
		eg.PublicShares[m.Index] = c.PublicShare(m.Index)
	}
	return eg, nil
}

// PublicShare returns trustee index's public share X_i of an epoch: t
// point multiplications, where [GroupFile.EscrowGroup] does them for every
// trustee.
func (g *GroupFile) PublicShare(epoch uint32, index int) (kyber.Point, error) {
	c, err := g.Commitment(epoch)
	if err != nil {
		return nil, err
	}
	if index < 1 || index > len(g.Trustees) {
		return nil, fmt.Errorf("escrow: no trustee %d in the group file", index)
	}
	return c.PublicShare(index), nil
}

// Commitment returns the Feldman commitment of an epoch.
func (g *GroupFile) Commitment(epoch uint32) (*shares.Commitment, error) {
	e, err := g.Epoch(epoch)
	if err != nil {
		return nil, err
	}
	return g.commitment(*e)
}

// DealtShare is one trustee's share of one epoch, as a dealer hands it out.
type DealtShare struct {
	Trustee GroupMember
	Epoch   uint32
	Share   shares.Share
}

// Deal is dealer mode: it draws each epoch's group secret itself, splits it
// t-of-n with Feldman commitments and returns the group file and every
// trustee's shares. The dealer saw every group secret; anyone who copied its
// memory holds a master key. See the DKG ceremony for the way without one.
func Deal(names []string, t int, epochs []GroupEpoch, rand io.Reader) (*GroupFile, []DealtShare, error) {
	g := &GroupFile{Version: GroupFileVersion, KeyGeneration: "dealer", Threshold: t}
	for i, name := range names {
		g.Trustees = append(g.Trustees, GroupMember{Index: i + 1, Name: name})
	}
	var dealt []DealtShare
	for _, e := range epochs {
		secret, err := group.RandomScalar(rand)
		if err != nil {
			return nil, nil, err
		}
		ss, c, err := shares.Split(secret, t, len(names), rand)
		secret.Zero()
		if err != nil {
			return nil, nil, fmt.Errorf("escrow: %w", err)
		}
		e.Key = b64(group.PointBytes(c.Points[0]))
		e.Commitment = nil
		for _, p := range c.Points {
			e.Commitment = append(e.Commitment, b64(group.PointBytes(p)))
		}
		g.Epochs = append(g.Epochs, e)
		for _, s := range ss {
			dealt = append(dealt, DealtShare{Trustee: g.Trustees[s.Index-1], Epoch: e.Epoch, Share: s})
		}
	}
	if err := g.Validate(); err != nil {
		return nil, nil, err
	}
	return g, dealt, nil
}

func parsePointB64(s string) (kyber.Point, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	return group.ParsePoint(b)
}

// EpochShare is a trustee's share of one epoch's group key.
type EpochShare struct {
	Epoch    uint32
	Index    int // 1-based x-coordinate
	Share    kyber.Scalar
	GroupKey kyber.Point
}

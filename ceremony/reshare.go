package ceremony

import (
	"bytes"
	"fmt"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	"github.com/keyquorum/keyquorum/shares"
	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/share"
	dkg "go.dedis.ch/kyber/v3/share/dkg/pedersen"
	vss "go.dedis.ch/kyber/v3/share/vss/pedersen"
)

// ReshareConfig turns a [Ceremony] into a resharing: the key X of an
// existing t-of-n sharing moves to the roster and threshold of the
// [CeremonyConfig] (Participants, Threshold), without anyone learning x.
//
// # Protocol
//
// This is the redistribution of T. M. Wong, C. Wang and J. M. Wing
// ("Verifiable secret redistribution for threshold sharing schemes",
// CMU-CS-02-114, 2002), as kyber's share/dkg/pedersen implements it: every old holder j deals its old share
// x_j as the constant term of a fresh polynomial of the new degree to the
// new participants, with Feldman commitments; each new participant checks
// its share against the commitments and checks that the constant term
// commits to x_j, i.e. equals the old public share Σ A_k·j^k; once at least
// OldThreshold deals qualify, each new participant i interpolates the
// shares it got from the first OldThreshold qualified dealers (by old
// index) at 0 (Lagrange over the old indices), which gives a point on a
// new polynomial whose constant term is x, and the new commitment follows
// by the same interpolation of the dealers' commitments.
//
// # Who does what
//
//   - Old holders (OldIndex > 0) deal: deals and justifications come from
//     them, and a [Message]'s From is then their index in the old roster.
//   - New participants (Index > 0) receive deals and send responses; a
//     response's From is the index in the new roster, and a deal's To too.
//   - A trustee in both rosters does both; it is listed with the same name
//     and DKG key in both, possibly at different indices. It answers its
//     own deal too (kyber counts that answer), and that response is one of
//     the messages [Ceremony.Deals] returns.
//   - Everyone processes every response and justification.
//
// An old trustee that leaves (Index 0) finishes with a result without a
// share; see [Ceremony.Finish].
//
// Old shares stay valid shares of X after a reshare: the old holders must
// destroy them once the new group is in use, or any OldThreshold of them
// still open everything.
type ReshareConfig struct {
	// OldParticipants is the roster of the current sharing, in the order
	// of its share indices: the i-th (from 1) holds the share at x = i.
	// Each entry's Key is that trustee's DKG key for this ceremony.
	OldParticipants []DKGParticipant
	// OldThreshold is the current sharing's threshold; at least that many
	// old holders must deal correctly.
	OldThreshold int
	// OldCommitment is A_0..A_{t-1} of the current sharing (A_0 is the
	// group key X), as in the group file.
	OldCommitment []kyber.Point
	// OldShare is this trustee's current share, nil for a trustee that
	// joins. Its Index must be OldIndex.
	OldShare *escrow.EpochShare
	// OldIndex is this trustee's 1-based index in OldParticipants, or 0
	// for a trustee that joins.
	OldIndex int
}

func (r *ReshareConfig) check(cfg *CeremonyConfig, own kyber.Point) error {
	nOld := len(r.OldParticipants)
	if nOld == 0 {
		return fmt.Errorf("%w: reshare without an old roster", ErrBadCeremonyConfig)
	}
	if r.OldThreshold < 1 || r.OldThreshold > nOld {
		return fmt.Errorf("%w: reshare old threshold %d with %d old participants: use the threshold of the current sharing, 1..%d",
			ErrBadCeremonyConfig, r.OldThreshold, nOld, nOld)
	}
	if len(r.OldCommitment) != r.OldThreshold {
		return fmt.Errorf("%w: old commitment has %d points, old threshold %d needs %d: take both from the current group file",
			ErrBadCeremonyConfig, len(r.OldCommitment), r.OldThreshold, r.OldThreshold)
	}
	for k, p := range r.OldCommitment {
		if p == nil {
			return fmt.Errorf("%w: old commitment point %d is missing", ErrBadCeremonyConfig, k)
		}
		if _, err := group.ParsePoint(group.PointBytes(p)); err != nil {
			return fmt.Errorf("%w: old commitment point %d: %w", ErrBadCeremonyConfig, k, err)
		}
	}
	if err := checkRoster("old participant", r.OldParticipants); err != nil {
		return err
	}
	// A trustee in both rosters has one name and one key.
	for i, p := range cfg.Participants {
		for j, o := range r.OldParticipants {
			if p.Key.Equal(o.Key) != (p.Name == o.Name) {
				return fmt.Errorf("%w: participant %d (%s) and old participant %d (%s) share a name or a key but not both: a trustee in both rosters is listed with the same name and DKG key",
					ErrBadCeremonyConfig, i+1, p.Name, j+1, o.Name)
			}
		}
	}
	if r.OldIndex < 0 || r.OldIndex > nOld {
		return fmt.Errorf("%w: own old index %d outside 0..%d (0: a trustee that joins)", ErrBadCeremonyConfig, r.OldIndex, nOld)
	}
	if cfg.Index == 0 && r.OldIndex == 0 {
		return fmt.Errorf("%w: own index and old index are both 0: this trustee is in neither roster", ErrBadCeremonyConfig)
	}
	if cfg.Index == 0 {
		if i := findKey(cfg.Participants, own); i > 0 {
			return fmt.Errorf("%w: own key is new participant %d's (%s) but the own index is 0", ErrBadCeremonyConfig, i, cfg.Participants[i-1].Name)
		}
	}
	if r.OldIndex == 0 {
		if j := findKey(r.OldParticipants, own); j > 0 {
			return fmt.Errorf("%w: own key is old participant %d's (%s) but the own old index is 0", ErrBadCeremonyConfig, j, r.OldParticipants[j-1].Name)
		}
		if r.OldShare != nil {
			return fmt.Errorf("%w: an old share but old index 0: a trustee that holds a share gives its old index", ErrBadCeremonyConfig)
		}
		return nil
	}
	me := r.OldParticipants[r.OldIndex-1]
	if !own.Equal(me.Key) {
		return fmt.Errorf("%w: long-term key is not old participant %d's (%s)", ErrBadCeremonyConfig, r.OldIndex, me.Name)
	}
	s := r.OldShare
	if s == nil || s.Share == nil {
		return fmt.Errorf("%w: old participant %d (%s) has no old share: an old holder deals its share; one that lost it cannot take part as an old holder",
			ErrBadCeremonyConfig, r.OldIndex, me.Name)
	}
	if s.Index != r.OldIndex {
		return fmt.Errorf("%w: old share has index %d, own old index is %d", ErrBadCeremonyConfig, s.Index, r.OldIndex)
	}
	if s.GroupKey != nil && !s.GroupKey.Equal(r.OldCommitment[0]) {
		return fmt.Errorf("%w: old share is for another group key than the old commitment's", ErrBadCeremonyConfig)
	}
	com := &shares.Commitment{Points: r.OldCommitment}
	if err := com.Verify(shares.Share{Index: s.Index, Value: s.Share}); err != nil {
		return fmt.Errorf("%w: old share %d does not match the old commitment (wrong share or wrong group file): %w", ErrBadCeremonyConfig, s.Index, err)
	}
	return nil
}

// findKey returns the 1-based index of key in ps, or 0.
func findKey(ps []DKGParticipant, key kyber.Point) int {
	for i, p := range ps {
		if p.Key.Equal(key) {
			return i + 1
		}
	}
	return 0
}

// oldIndex is the own index in the old roster, 0 outside a reshare.
func (cfg *CeremonyConfig) oldIndex() int {
	if cfg.Reshare == nil {
		return 0
	}
	return cfg.Reshare.OldIndex
}

// resharing says whether the ceremony moves an existing key.
func (c *Ceremony) resharing() bool { return c.cfg.Reshare != nil }

// oldOnly says whether this trustee deals but gets no new share.
func (c *Ceremony) oldOnly() bool { return c.resharing() && c.cfg.Index == 0 }

// dealers is the roster whose members deal: the old one in a reshare.
func (c *Ceremony) dealers() []DKGParticipant {
	if c.resharing() {
		return c.cfg.Reshare.OldParticipants
	}
	return c.cfg.Participants
}

// ownDealer is this trustee's 1-based index among the dealers, or 0.
func (c *Ceremony) ownDealer() int {
	if c.resharing() {
		return c.cfg.oldIndex()
	}
	return c.cfg.Index
}

// expectedDeals is how many deals this trustee receives.
func (c *Ceremony) expectedDeals() int {
	if c.cfg.Index == 0 {
		return 0
	}
	if c.ownDealer() > 0 {
		return len(c.dealers()) - 1
	}
	return len(c.dealers())
}

// qualifyingDeals is how many deals must qualify for a result: t in a
// DKG, the old threshold in a reshare (kyber's ThresholdCertified).
func (c *Ceremony) qualifyingDeals() int {
	if c.resharing() {
		return c.cfg.Reshare.OldThreshold
	}
	return c.cfg.Threshold
}

func (c *Ceremony) reshareKyberConfig(kc *dkg.Config) {
	r := c.cfg.Reshare
	for _, p := range r.OldParticipants {
		kc.OldNodes = append(kc.OldNodes, p.Key)
	}
	kc.OldThreshold = r.OldThreshold
	kc.PublicCoeffs = clonePoints(r.OldCommitment)
	if r.OldShare != nil {
		// The constant term of this dealer's polynomial is its old share;
		// kyber's PriShare.I is 0-based.
		kc.Share = &dkg.DistKeyShare{
			Commits: clonePoints(r.OldCommitment),
			Share:   &share.PriShare{I: r.OldIndex - 1, V: r.OldShare.Share.Clone()},
		}
	}
}

func clonePoints(ps []kyber.Point) []kyber.Point {
	out := make([]kyber.Point, len(ps))
	for i, p := range ps {
		out[i] = p.Clone()
	}
	return out
}

// dealFault says what is wrong with a dealer's commitments, or "": they
// must be t points (kyber only checks the threshold a deal claims), and
// in a reshare A_0 must be the dealer's old public share, or the dealer
// is resharing something else than its share of X.
func (c *Ceremony) dealFault(dealer int, commits []kyber.Point) string {
	if len(commits) != c.cfg.Threshold {
		return fmt.Sprintf("its deal commits to %d coefficients, the threshold is %d", len(commits), c.cfg.Threshold)
	}
	if c.resharing() {
		old := &shares.Commitment{Points: c.cfg.Reshare.OldCommitment}
		if commits[0] == nil || !commits[0].Equal(old.PublicShare(dealer)) {
			return fmt.Sprintf("its deal does not reshare its old share: the deal's A_0 is not the old public share of index %d", dealer)
		}
	}
	return ""
}

// response is what a trustee saw of one response: whether it approved,
// and the deal's session id it was about.
type response struct {
	approved bool
	session  []byte
}

// justificationFault checks, without kyber, a justification on an old
// trustee that leaves: it holds no verifier (kyber gives it none), so it
// checks the revealed share against the revealed commitments itself, and
// that the justification is about the deal the complaint was about.
func (c *Ceremony) justificationFault(dealer, holder int, d *vss.Deal, session []byte) string {
	complaint := c.responses[dealer][holder]
	switch {
	case complaint == nil || complaint.approved:
		return "justification for a complaint that was not made"
	case !bytes.Equal(session, complaint.session) || !bytes.Equal(d.SessionID, complaint.session):
		return fmt.Sprintf("its justification for participant %d's complaint is about another deal", holder)
	case int(d.T) != c.cfg.Threshold:
		return fmt.Sprintf("its justification for participant %d's complaint is for threshold %d", holder, d.T)
	}
	com := &shares.Commitment{Points: d.Commitments}
	if err := com.Verify(shares.Share{Index: d.SecShare.I + 1, Value: d.SecShare.V}); err != nil {
		return fmt.Sprintf("its justification for participant %d's complaint is invalid: %v", holder, err)
	}
	return ""
}

// oldOnlyQual computes, on an old trustee that leaves, which deals
// qualify, by kyber's rule for a verifier (at least t approvals, no
// unanswered complaint, and every response in, or after the timeout at
// most n-t missing). kyber's own tally on such a node ignores the timeout
// and justifications, so it is not used. all reports whether every deal
// qualified with every response in. This node sees no deals, so its view
// rests on the responses and justifications alone; the new participants'
// results are the ones that count.
func (c *Ceremony) oldOnlyQual() (qual []int, all bool) {
	n, t := c.n, c.cfg.Threshold
	all = true
	for j := 1; j <= len(c.dealers()); j++ {
		got := len(c.responses[j])
		ok := c.badDeal[j] == "" && len(c.complaints[j]) == 0 && got >= t
		if got < n {
			all = false
			ok = ok && c.timeout && n-got <= n-t
		}
		if ok {
			qual = append(qual, j)
		} else {
			all = false
		}
	}
	return qual, all
}

// finishOldOnly is Finish on an old trustee that leaves: no share, and no
// new commitment, which only the deals (encrypted to the new
// participants) carry; the group key is unchanged.
func (c *Ceremony) finishOldOnly(qual []int, dis []*MisbehaviourError) *DKGResult {
	return &DKGResult{
		Epoch:        c.cfg.Epoch,
		GroupKey:     c.cfg.Reshare.OldCommitment[0].Clone(),
		Qualified:    qual,
		Disqualified: dis,
	}
}

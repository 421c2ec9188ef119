package trustee

import (
	"errors"
	"fmt"
	"slices"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
)

// Refusals of [CheckGroupAgainstShares]. Test them with errors.Is.
var (
	// ErrNotInGroup: the group file does not list this trustee, or lists
	// it with another identity key, log key, TLS pin or address than its
	// own.
	ErrNotInGroup = errors.New("trustee: the group file does not list this trustee as it is")
	// ErrGroupCommitment: an epoch's commitment in the group file does not
	// match the share this trustee stores for it.
	ErrGroupCommitment = errors.New("trustee: the group file's commitment does not match this trustee's share")
	// ErrGroupShareMissing: the group file says this trustee holds a share
	// of an epoch, and it stores none.
	ErrGroupShareMissing = errors.New("trustee: the group file names a share this trustee does not hold")
)

// CheckGroupAgainstShares is what a trustee checks before it signs a
// group file ([SignGroupFile]), so that its signature vouches only for
// what it knows:
//
//   - the roster lists it, by name, with exactly the identity key, log key,
//     TLS pin and address of its descriptor me, so that clients reach
//     this node and check its log with its key;
//   - for every epoch of the file that it holds a share of (stored), the
//     share is for its index, the stored group key is the epoch's key, and
//     share·G is the public share the epoch's commitment gives its index
//     ([GroupFile.EscrowGroup]);
//   - it holds a share of every epoch the file says it holds
//     ([GroupFile.HolderIndices]): a trustee cannot vouch for a
//     commitment it cannot check.
//
// Stored shares of epochs the file does not list are not looked at.
func CheckGroupAgainstShares(g *escrow.GroupFile, me Descriptor, stored []escrow.EpochShare) error {
	i := slices.IndexFunc(g.Trustees, func(m escrow.GroupMember) bool { return m.Name == me.Name })
	if i < 0 {
		return fmt.Errorf("%w: it lists no trustee named %s; this is not this trustee's group, do not sign it", ErrNotInGroup, me.Name)
	}
	m := g.Trustees[i]
	want := me.Member(m.Index)
	for _, f := range []struct{ what, got, want string }{
		{"identity key", m.IdentityKey, want.IdentityKey},
		{"log key", m.LogKey, want.LogKey},
		{"TLS pin", m.TLSPin, want.TLSPin},
		{"address", m.Address, want.Address},
	} {
		if f.got != f.want {
			return fmt.Errorf("%w: it lists trustee %d (%s) with %s %q, this node's is %q; do not sign it: ask whoever made the file to put this node's descriptor in the roster", ErrNotInGroup, m.Index, m.Name, f.what, f.got, f.want)
		}
	}
	for _, e := range g.Epochs {
		k := slices.IndexFunc(stored, func(s escrow.EpochShare) bool { return s.Epoch == e.Epoch })
		if k < 0 {
			if slices.Contains(g.HolderIndices(e), m.Index) {
				return fmt.Errorf("%w: it says trustee %d (%s) holds a share of epoch %d, and this node stores none; import that share first (keyquorum trustee import-share) or do not sign", ErrGroupShareMissing, m.Index, m.Name, e.Epoch)
			}
			continue
		}
		s := stored[k]
		if s.Index != m.Index {
			return fmt.Errorf("%w: epoch %d: this node stores the share of index %d, the file lists it as trustee %d; do not sign it", ErrGroupCommitment, e.Epoch, s.Index, m.Index)
		}
		eg, err := g.EscrowGroup(e.Epoch)
		if err != nil {
			return err
		}
		if s.GroupKey != nil && !s.GroupKey.Equal(eg.Key) {
			return fmt.Errorf("%w: epoch %d: the file's key is not the group key this node's share was dealt for; do not sign it", ErrGroupCommitment, e.Epoch)
		}
		if !group.Point().Mul(s.Share, nil).Equal(eg.PublicShares[m.Index]) {
			return fmt.Errorf("%w: epoch %d: this node's share times G is not the public share the file's commitment gives trustee %d; the file is not the group this share was dealt for, do not sign it", ErrGroupCommitment, e.Epoch, m.Index)
		}
	}
	return nil
}

// SignGroupAsNode is what a trustee does to sign a group file (unsigned,
// or signed by other trustees): it checks the file against its identity
// and stored shares ([CheckGroupAgainstShares]) and adds its signature
// with its log key (escrow.SignGroupFile), keeping the others.
func SignGroupAsNode(groupFile []byte, id *Identity, stored []escrow.EpochShare) ([]byte, error) {
	g, err := escrow.ReadGroupFile(groupFile)
	if err != nil {
		return nil, err
	}
	if err := CheckGroupAgainstShares(g, id.Descriptor(), stored); err != nil {
		return nil, err
	}
	return escrow.SignGroupFile(groupFile, id.LogSigner)
}

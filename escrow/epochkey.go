package escrow

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sync"

	ed "filippo.io/edwards25519"
	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
)

// EpochKey is one epoch's group key X_e as a messaging client uses it:
// decoded and checked once, with its [KeyID], and with a table that makes
// sealing under it (a secret scalar times X_e) cost about a base-point
// multiplication. Get one with [ParseEpochKey] from its 32-byte encoding,
// with [GroupFile.EpochKey] from a verified group file, or with
// [Group.EpochKey]; keep it for the epoch. It is safe for concurrent use.
type EpochKey struct {
	enc   []byte
	id    KeyID
	p     *ed.Point
	table func() *group.FixedBase // built on the first seal
}

// ParseEpochKey decodes a group key, refusing any encoding that is not a
// canonical point of the prime-order subgroup, not of small order.
func ParseEpochKey(b []byte) (*EpochKey, error) {
	p, err := group.ParseFilippoPoint(b)
	if err != nil {
		return nil, fmt.Errorf("escrow: group key refused: %w", err)
	}
	return newEpochKey(bytes.Clone(b), p), nil
}

// newEpochKey wraps a point this process holds with its encoding.
func newEpochKey(enc []byte, p *ed.Point) *EpochKey {
	k := &EpochKey{enc: enc, p: p}
	sum := sha256.Sum256(enc)
	copy(k.id[:], sum[:8])
	k.table = sync.OnceValue(func() *group.FixedBase { return group.NewFixedBase(p) })
	return k
}

// NewEpochKey converts a group key held as a kyber point, by code that
// computes with kyber (a trustee's share, a DKG's result), without the
// checks of [ParseEpochKey]: X must have been parsed or computed. A
// messaging client, which reads the key from a group file, uses
// [GroupFile.EpochKey] or [ParseEpochKey] instead.
func NewEpochKey(X kyber.Point) *EpochKey { return epochKeyOf(X) }

func epochKeyOf(X kyber.Point) *EpochKey {
	enc := group.PointBytes(X)
	return newEpochKey(enc, group.FilippoPointFromEncoding(enc))
}

// Bytes returns the key's 32-byte encoding.
func (k *EpochKey) Bytes() []byte { return bytes.Clone(k.enc) }

// ID returns the key's identifier, the one contexts name.
func (k *EpochKey) ID() KeyID { return k.id }

// String returns the key in base64, as group files write it.
func (k *EpochKey) String() string { return base64.StdEncoding.EncodeToString(k.enc) }

// Equal reports whether k and o are the same key.
func (k *EpochKey) Equal(o *EpochKey) bool { return bytes.Equal(k.enc, o.enc) }

// EpochKey returns the key of the named epoch, parsed once. The caller
// verifies the group file first ([VerifyGroupFile]).
func (g *GroupFile) EpochKey(epoch uint32) (*EpochKey, error) {
	e, err := g.Epoch(epoch)
	if err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.Strict().DecodeString(e.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: epoch %d key is not base64: %w", ErrBadGroupFile, epoch, err)
	}
	k, err := ParseEpochKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: epoch %d: %w", ErrBadGroupFile, epoch, err)
	}
	return k, nil
}

// EpochKey returns the group key of g's epoch as an [EpochKey]. Each call
// converts g.Key afresh; keep the result.
func (g *Group) EpochKey() *EpochKey { return epochKeyOf(g.Key) }

// EpochKey returns the group key the share belongs to as an [EpochKey].
func (s *EpochShare) EpochKey() *EpochKey { return epochKeyOf(s.GroupKey) }

package group

import (
	"encoding/binary"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
	"go.dedis.ch/kyber/v3"
)

// This file is the one place where keyquorum crosses between kyber's
// representation of the group and filippo.io/edwards25519's. Both use the
// same encodings (32-byte compressed points, 32-byte little-endian scalars
// mod l), so every conversion goes through bytes and is exact: a value
// converted and converted back is the same value, and every byte that
// leaves keyquorum is the same whichever library computed it.

// baseEncoding is the standard encoding of the base point G (RFC 8032,
// section 5.1: y = 4/5, x positive).
const baseEncoding = "\x58\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66" +
	"\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66"

// BaseBytes returns the encoding of the base point G, without computing it.
func BaseBytes() []byte { return []byte(baseEncoding) }

// ToFilippoPoint converts a kyber point to a filippo.io/edwards25519 point.
// It performs no subgroup or small-order check: p is assumed to have been
// parsed with [ParsePoint] or computed.
func ToFilippoPoint(p kyber.Point) *edwards25519.Point {
	return FilippoPointFromEncoding(PointBytes(p))
}

// FilippoPointFromEncoding decodes b, the encoding of a point this process
// holds (say from [PointBytes], already computed for a hash), into a
// filippo.io/edwards25519 point without the checks of [ParsePoint]. It
// panics if b does not encode a curve point. Never use it on bytes read
// from outside.
func FilippoPointFromEncoding(b []byte) *edwards25519.Point {
	fp, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		panic("group: point conversion failed: " + err.Error()) // unreachable: b encodes a curve point
	}
	return fp
}

// FromFilippoPoint converts a filippo.io/edwards25519 point to a kyber
// point.
func FromFilippoPoint(p *edwards25519.Point) kyber.Point {
	return PointFromEncoding(p.Bytes())
}

// PointFromEncoding decodes b, the encoding of a point computed by this
// process (for instance the Bytes of a filippo point already encoded for a
// hash), into a kyber point without the checks of [ParsePoint]. It panics if
// b does not encode a curve point. Never use it on bytes read from outside.
func PointFromEncoding(b []byte) kyber.Point {
	p := suite.Point()
	if err := p.UnmarshalBinary(b); err != nil {
		panic("group: point conversion failed: " + err.Error()) // unreachable for an encoding of a curve point
	}
	return p
}

// ToFilippoScalar converts a kyber scalar to a filippo.io/edwards25519
// scalar. kyber's encoding of a scalar is always reduced mod l.
func ToFilippoScalar(s kyber.Scalar) *edwards25519.Scalar {
	fs, err := edwards25519.NewScalar().SetCanonicalBytes(ScalarBytes(s))
	if err != nil {
		panic("group: scalar conversion failed: " + err.Error()) // unreachable: kyber encodes scalars reduced
	}
	return fs
}

// FromFilippoScalar converts a filippo.io/edwards25519 scalar to a kyber
// scalar.
func FromFilippoScalar(s *edwards25519.Scalar) kyber.Scalar {
	ks := suite.Scalar()
	if err := ks.UnmarshalBinary(s.Bytes()); err != nil {
		panic("group: scalar conversion failed: " + err.Error()) // unreachable: 32 bytes
	}
	return ks
}

// FilippoScalarFromInt returns the scalar n (mod l) for a share index or
// other small integer.
func FilippoScalarFromInt(n uint64) *edwards25519.Scalar {
	var b [32]byte
	binary.LittleEndian.PutUint64(b[:8], n)
	s, err := edwards25519.NewScalar().SetCanonicalBytes(b[:])
	if err != nil {
		panic("group: scalar conversion failed: " + err.Error()) // unreachable: n < 2^64 < l
	}
	return s
}

// HashToFilippoScalar is [HashToScalar] computed straight into a
// filippo.io/edwards25519 scalar: the same SHA-512 over the same
// length-prefixed inputs, reduced mod l, so the two are always equal.
func HashToFilippoScalar(label string, inputs ...[]byte) *edwards25519.Scalar {
	s, err := edwards25519.NewScalar().SetUniformBytes(hashToWide(label, inputs))
	if err != nil {
		panic("group: " + err.Error()) // unreachable: SHA-512 gives 64 bytes
	}
	return s
}

// ParseFilippoPoint is [ParsePoint] for callers that compute with
// filippo.io/edwards25519: the same checks, with the same errors, returning
// the decoded point in filippo's representation.
func ParseFilippoPoint(b []byte) (*edwards25519.Point, error) {
	p, err := ParseFilippoPointDeferred(b)
	if err != nil {
		return nil, err
	}
	if !inPrimeOrderSubgroup(p) {
		return nil, ErrNotInSubgroup
	}
	return p, nil
}

// ParseFilippoPointDeferred makes every check of [ParseFilippoPoint] but
// the costly one, membership of the prime-order subgroup (a multiplication
// by l, as dear as an X25519 agreement), which the caller must make with
// [InSubgroup] before anything depends on the point's order. It is for
// values whose use is confirmed otherwise: the V_j of a batch answer,
// whose combination is confirmed by opening the envelope, are checked only
// when their proof is.
func ParseFilippoPointDeferred(b []byte) (*edwards25519.Point, error) {
	if len(b) != PointLen {
		return nil, errPointLength(len(b))
	}
	if !isCanonicalPointEncoding(b) {
		return nil, ErrNonCanonical
	}
	// For a reduced y, filippo's SetBytes and kyber's UnmarshalBinary
	// accept exactly the same encodings: those where (y²−1)/(dy²+1) has a
	// square root (internal/group's tests compare the two).
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		return nil, ErrPointEncoding
	}
	// kyber's HasSmallOrder compares the point's y with the five values
	// (0, 1, −1 and the two y of the order-8 points) that the eight points
	// of order dividing 8 take. A point has one of those y exactly when
	// 8·P is the identity, which is cheap to compute.
	identity := edwards25519.NewIdentityPoint()
	if new(edwards25519.Point).MultByCofactor(p).Equal(identity) == 1 {
		return nil, ErrSmallOrder
	}
	if p.Equal(identity) == 1 {
		return nil, ErrIdentity
	}
	// Decoding must be a bijection: re-encode and compare, so that the
	// sign bit of x = 0 with a set bit is also refused.
	if string(p.Bytes()) != string(b) {
		return nil, ErrNonCanonical
	}
	return p, nil
}

// isCanonicalPointEncoding reports whether the y encoded in b (the low 255
// bits) is below p = 2^255 − 19, as kyber's IsCanonical does.
func isCanonicalPointEncoding(b []byte) bool {
	type canon interface{ IsCanonical([]byte) bool }
	return suite.Point().(canon).IsCanonical(b)
}

// InSubgroup reports whether p, a point from [ParseFilippoPointDeferred],
// lies in the prime-order subgroup. It runs in variable time: p is public.
func InSubgroup(p *edwards25519.Point) bool { return inPrimeOrderSubgroup(p) }

// inPrimeOrderSubgroup reports whether l·P is the identity. filippo reduces
// scalars mod l, so l·P is computed as (l−1)·P + P, in variable time: P is
// public. MultByCofactor cannot help here: 8·P is in the subgroup for every
// P, which is what makes it useful elsewhere and useless for this check.
func inPrimeOrderSubgroup(p *edwards25519.Point) bool {
	one := FilippoScalarFromInt(1)
	minusOne := edwards25519.NewScalar().Negate(one)
	lp := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(minusOne, p, edwards25519.NewScalar())
	lp.Add(lp, p)
	return lp.Equal(edwards25519.NewIdentityPoint()) == 1
}

// EncodePoints returns the encodings of ps, as each one's Bytes would, but
// with one field inversion for all of them instead of one each
// (Montgomery's trick: the Z coordinates' running products are inverted
// once and peeled off from the end). A batch of a thousand points then
// costs a thousand encodings' squarings and multiplications, not a
// thousand inversions. It runs in time that depends only on len(ps).
func EncodePoints(ps []*edwards25519.Point) [][]byte {
	n := len(ps)
	out := make([][]byte, n)
	if n == 0 {
		return out
	}
	X := make([]field.Element, n)
	Y := make([]field.Element, n)
	Z := make([]field.Element, n)
	prefix := make([]field.Element, n+1)
	prefix[0].One()
	for i, p := range ps {
		x, y, z, _ := p.ExtendedCoordinates()
		X[i], Y[i], Z[i] = *x, *y, *z
		prefix[i+1].Multiply(&prefix[i], z)
	}
	var inv, zinv, x, y field.Element
	inv.Invert(&prefix[n])
	for i := n - 1; i >= 0; i-- {
		zinv.Multiply(&inv, &prefix[i]) // Z_i⁻¹
		inv.Multiply(&inv, &Z[i])
		x.Multiply(&X[i], &zinv)
		y.Multiply(&Y[i], &zinv)
		b := y.Bytes()
		b[31] |= byte(x.IsNegative() << 7)
		out[i] = b
	}
	return out
}

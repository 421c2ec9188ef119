// Package group fixes the one prime-order group keyquorum computes in, the
// Ed25519 group of order l = 2^252 + 27742317777372353535851937790883648493
// (RFC 8032, section 5.1), reached through go.dedis.ch/kyber/v3, and the
// strict decoding every point and scalar read from outside must pass.
//
// # Encodings
//
// Points are 32-byte compressed Edwards points (RFC 8032, section 5.1.2);
// scalars are 32-byte little-endian integers below l.
//
// # Why decoding is strict
//
// The curve has a cofactor of 8. A point with a torsion component, sent as
// U to a trustee that answers x_i·(U+Q), would leak x_i mod 8 to whoever
// chose it; a non-canonical encoding would give two byte strings for one
// point and break the "re-derive and compare bytes" checks. [ParsePoint]
// therefore accepts a point only if its encoding is canonical (y < p), it is
// not of small order, and it lies in the prime-order subgroup (l·P = 0).
// [ParseScalar] accepts only canonical scalars (s < l).
//
// # Two libraries, one group
//
// kyber's share packages do the Shamir polynomials, the DKG and resharing,
// and the trustees' shares, public shares and requester keys are kyber
// values ([kyber.Point], [kyber.Scalar]). Its Ed25519 arithmetic is slow,
// though: measured on the project's two-core machine, a kyber
// variable-base multiplication costs 140-200 µs and a base multiplication
// 56-74 µs, where filippo.io/edwards25519 takes 60-80 µs and 20-26 µs and
// computes a·P + b·G as one variable-time double multiplication and sums
// of many products as one multi-scalar multiplication. So the hot paths
// (envelope sealing and its proof check, the recipient's check, request
// signatures, partial decryptions and their DLEQ proofs, batched proofs,
// the Lagrange interpolation in the exponent, and the subgroup check in
// [ParsePoint]) compute with filippo values from end to end: escrow's
// envelopes, proofs and partial decryptions hold filippo points and
// scalars, and kyber values are converted at the edges, once per call or
// once per epoch, with the helpers in filippo.go and nowhere else.
//
// The two libraries encode points and scalars identically, so the
// conversions ([ToFilippoPoint], [FromFilippoPoint], [ToFilippoScalar],
// [FromFilippoScalar]) go through the encodings and every result is byte for
// byte what the kyber computation gives; the tests of this package and of
// escrow compare the two on random inputs, and escrow's test vectors are
// unchanged. A conversion costs about 15 µs per point (kyber's encoding
// needs a field inversion, filippo's decoding a square root), which is why
// none happens per session on the hot path.
//
// # Constant time
//
// Secret scalars (an envelope's r, a share x_i, a proof nonce, the
// requester's q) only ever go through filippo's constant-time ScalarMult
// and ScalarBaseMult or this package's [FixedBase], whose table lookups
// scan every entry with constant-time selects. The variable-time
// multiplications take only public values (proof checks, subgroup checks,
// interpolation over published shares, the composites of batched proofs).
package group

import (
	"crypto/cipher"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"

	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/group/edwards25519"
)

// Suite is the group and hash suite used throughout keyquorum.
var suite = edwards25519.NewBlakeSHA256Ed25519()

// Suite returns the kyber suite for the Ed25519 group. It is stateless and
// safe to share.
func Suite() *edwards25519.SuiteEd25519 { return suite }

// PointLen and ScalarLen are the encoded sizes of a point and a scalar.
const (
	PointLen  = 32
	ScalarLen = 32
)

// Errors returned by [ParsePoint] and [ParseScalar]. They are wrapped with
// the name of the value being parsed.
var (
	ErrPointEncoding  = errors.New("not a valid 32-byte Ed25519 point encoding")
	ErrNonCanonical   = errors.New("non-canonical encoding")
	ErrSmallOrder     = errors.New("point of small order")
	ErrNotInSubgroup  = errors.New("point not in the prime-order subgroup (has a torsion component)")
	ErrIdentity       = errors.New("identity point")
	ErrScalarEncoding = errors.New("not a valid 32-byte scalar encoding")
)

// Point returns a new point set to the identity.
func Point() kyber.Point { return suite.Point().Null() }

// Scalar returns a new scalar set to zero.
func Scalar() kyber.Scalar { return suite.Scalar().Zero() }

// Base returns the standard base point G.
func Base() kyber.Point { return suite.Point().Base() }

// ParsePoint decodes b as a point and checks that it is canonical, not of
// small order, and in the prime-order subgroup. The identity is refused too:
// no honest key, U, Q or V_i is ever the identity. The checks are those of
// [ParseFilippoPoint], computed with filippo.io/edwards25519.
func ParsePoint(b []byte) (kyber.Point, error) {
	if _, err := ParseFilippoPoint(b); err != nil {
		return nil, err
	}
	p := suite.Point()
	if err := p.UnmarshalBinary(b); err != nil {
		return nil, ErrPointEncoding // unreachable: both libraries decode the same encodings
	}
	return p, nil
}

func errPointLength(n int) error {
	return fmt.Errorf("%w: got %d bytes", ErrPointEncoding, n)
}

// InPrimeOrderSubgroup reports whether l·P is the identity. It runs in
// variable time: use it on public points only.
func InPrimeOrderSubgroup(p kyber.Point) bool {
	return inPrimeOrderSubgroup(ToFilippoPoint(p))
}

// ParseScalar decodes b as a canonical scalar (less than l).
func ParseScalar(b []byte) (kyber.Scalar, error) {
	if len(b) != ScalarLen {
		return nil, fmt.Errorf("%w: got %d bytes", ErrScalarEncoding, len(b))
	}
	s := suite.Scalar()
	if !s.(interface{ IsCanonical([]byte) bool }).IsCanonical(b) {
		return nil, ErrNonCanonical
	}
	if err := s.UnmarshalBinary(b); err != nil {
		return nil, ErrScalarEncoding
	}
	return s, nil
}

// PointBytes encodes p. Encoding a kyber point cannot fail.
func PointBytes(p kyber.Point) []byte {
	b, err := p.MarshalBinary()
	if err != nil {
		panic("group: point encoding failed: " + err.Error()) // unreachable for edwards25519
	}
	return b
}

// ScalarBytes encodes s. Encoding a kyber scalar cannot fail.
func ScalarBytes(s kyber.Scalar) []byte {
	b, err := s.MarshalBinary()
	if err != nil {
		panic("group: scalar encoding failed: " + err.Error()) // unreachable for edwards25519
	}
	return b
}

// HashToScalar hashes a domain-separation label and a list of inputs to a
// scalar, uniformly: SHA-512 over the length-prefixed label and inputs,
// read little-endian and reduced mod l (a 512-bit value mod a 253-bit prime has bias < 2^-250).
func HashToScalar(label string, inputs ...[]byte) kyber.Scalar {
	return suite.Scalar().SetBytes(hashToWide(label, inputs))
}

// hashToWide is the SHA-512 of the length-prefixed label and inputs, the
// 64 bytes [HashToScalar] and [HashToFilippoScalar] reduce mod l.
func hashToWide(label string, inputs [][]byte) []byte {
	h := sha512.New()
	writeLP(h, []byte(label))
	for _, in := range inputs {
		writeLP(h, in)
	}
	return h.Sum(nil)
}

func writeLP(w io.Writer, b []byte) {
	var n [8]byte
	l := uint64(len(b))
	for i := 0; i < 8; i++ {
		n[i] = byte(l >> (8 * i))
	}
	w.Write(n[:])
	w.Write(b)
}

// RandomScalar draws a uniformly random non-zero scalar from rand.
func RandomScalar(rand io.Reader) (kyber.Scalar, error) {
	for {
		var buf [64]byte
		if _, err := io.ReadFull(rand, buf[:]); err != nil {
			return nil, fmt.Errorf("group: reading randomness: %w", err)
		}
		s := suite.Scalar().SetBytes(buf[:])
		if !s.Equal(suite.Scalar().Zero()) {
			return s, nil
		}
	}
}

// Stream adapts an io.Reader to the cipher.Stream kyber wants for
// randomness: XORKeyStream fills dst with bytes read from r. A read error
// panics inside kyber, so callers pass crypto/rand or a deterministic
// source that cannot fail.
func Stream(r io.Reader) cipher.Stream { return readerStream{r} }

type readerStream struct{ r io.Reader }

func (s readerStream) XORKeyStream(dst, src []byte) {
	buf := make([]byte, len(src))
	if _, err := io.ReadFull(s.r, buf); err != nil {
		panic("group: randomness source failed: " + err.Error())
	}
	for i := range dst {
		dst[i] = src[i] ^ buf[i]
	}
}

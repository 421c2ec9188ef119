package escrow

import (
	"errors"

	ed "filippo.io/edwards25519"
	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
)

// schnorrProof is a non-interactive Schnorr proof of knowledge of w with
// P = w·G (Schnorr 1991, "Efficient signature generation by smart cards",
// J. Cryptology 4(3); made non-interactive by Fiat–Shamir 1986), encoded as
// the challenge and response (c, z), 64 bytes. The statement and any bound
// data go into the challenge hash under a label.
type schnorrProof struct {
	c, z *ed.Scalar
}

const schnorrProofLen = 2 * group.ScalarLen

var errBadProof = errors.New("proof does not verify")

// proveSchnorr proves knowledge of w for P = w·G, for a w held as a kyber
// scalar (a requester key). See proveSchnorrFast.
func proveSchnorr(label, nonceLabel string, w kyber.Scalar, P kyber.Point, bound ...[]byte) schnorrProof {
	return proveSchnorrFast(label, nonceLabel, group.ToFilippoScalar(w), group.PointBytes(P), bound)
}

// proveSchnorrFast proves knowledge of w for the point P given by its
// encoding. The nonce is derived deterministically from w and the bound
// data (as in RFC 8032's EdDSA), so the proof is a function of its inputs
// and a sender can re-derive it. R = k·G is computed in constant time: k is
// secret.
func proveSchnorrFast(label, nonceLabel string, w *ed.Scalar, P []byte, bound [][]byte) schnorrProof {
	k := group.HashToFilippoScalar(nonceLabel, append([][]byte{w.Bytes(), P}, bound...)...)
	R := new(ed.Point).ScalarBaseMult(k)
	c := schnorrChallenge(label, P, R.Bytes(), bound)
	z := ed.NewScalar().MultiplyAdd(c, w, k) // z = c·w + k
	return schnorrProof{c: c, z: z}
}

// schnorrChallenge hashes the statement: G, P and the commitment R, by
// their encodings, then the bound data.
func schnorrChallenge(label string, P, R []byte, bound [][]byte) *ed.Scalar {
	in := append([][]byte{group.BaseBytes(), P, R}, bound...)
	return group.HashToFilippoScalar(label, in...)
}

// verify checks the proof for a kyber point P (a requester key).
func (p schnorrProof) verify(label string, P kyber.Point, bound ...[]byte) error {
	Pb := group.PointBytes(P)
	return p.verifyFast(label, group.FilippoPointFromEncoding(Pb), Pb, bound)
}

// verifyFast checks the proof for P, given as a point and by its encoding
// Pb: R = z·G − c·P must hash back to c.
func (p schnorrProof) verifyFast(label string, P *ed.Point, Pb []byte, bound [][]byte) error {
	R := schnorrCommitment(p.c, p.z, P)
	if schnorrChallenge(label, Pb, R.Bytes(), bound).Equal(p.c) != 1 {
		return errBadProof
	}
	return nil
}

// schnorrCommitment recomputes R = z·G − c·P as one variable-time double
// multiplication, (−c)·P + z·G: everything in it is public.
func schnorrCommitment(c, z *ed.Scalar, P *ed.Point) *ed.Point {
	negC := ed.NewScalar().Negate(c)
	return new(ed.Point).VarTimeDoubleScalarBaseMult(negC, P, z)
}

func (p schnorrProof) marshal() []byte {
	return append(p.c.Bytes(), p.z.Bytes()...)
}

func parseSchnorrProof(b []byte) (schnorrProof, error) {
	if len(b) != schnorrProofLen {
		return schnorrProof{}, errors.New("proof must be 64 bytes")
	}
	c, err := edScalar(b[:32])
	if err != nil {
		return schnorrProof{}, err
	}
	z, err := edScalar(b[32:])
	if err != nil {
		return schnorrProof{}, err
	}
	return schnorrProof{c: c, z: z}, nil
}

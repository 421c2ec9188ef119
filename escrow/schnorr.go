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
	C, Z kyber.Scalar
}

const schnorrProofLen = 2 * group.ScalarLen

var errBadProof = errors.New("proof does not verify")

// proveSchnorr proves knowledge of w for P = w·G. The nonce is derived
// deterministically from w and the bound data (as in RFC 8032's EdDSA), so
// the proof is a function of its inputs and a sender can re-derive it.
func proveSchnorr(label, nonceLabel string, w kyber.Scalar, P kyber.Point, bound ...[]byte) schnorrProof {
	return proveSchnorrFast(label, nonceLabel, group.ToFilippoScalar(w), group.PointBytes(P), bound)
}

// proveSchnorrFast is proveSchnorr for a secret w already in
// filippo.io/edwards25519 form and P given by its encoding. R = k·G is
// computed in constant time: k is secret.
func proveSchnorrFast(label, nonceLabel string, w *ed.Scalar, P []byte, bound [][]byte) schnorrProof {
	k := group.HashToFilippoScalar(nonceLabel, append([][]byte{w.Bytes(), P}, bound...)...)
	R := new(ed.Point).ScalarBaseMult(k)
	c := schnorrChallenge(label, P, R.Bytes(), bound)
	z := ed.NewScalar().MultiplyAdd(c, w, k) // z = c·w + k
	return schnorrProof{C: group.FromFilippoScalar(c), Z: group.FromFilippoScalar(z)}
}

// schnorrChallenge hashes the statement: G, P and the commitment R, by
// their encodings, then the bound data.
func schnorrChallenge(label string, P, R []byte, bound [][]byte) *ed.Scalar {
	in := append([][]byte{group.BaseBytes(), P, R}, bound...)
	return group.HashToFilippoScalar(label, in...)
}

// verify checks the proof for P: R = z·G − c·P must hash back to c.
func (p schnorrProof) verify(label string, P kyber.Point, bound ...[]byte) error {
	Pb := group.PointBytes(P)
	return p.verifyFast(label, group.FilippoPointFromEncoding(Pb), Pb, bound)
}

// verifyFast is verify for P given both as a filippo.io/edwards25519 point
// and by its encoding Pb.
func (p schnorrProof) verifyFast(label string, P *ed.Point, Pb []byte, bound [][]byte) error {
	R := schnorrCommitment(group.ToFilippoScalar(p.C), group.ToFilippoScalar(p.Z), P)
	// Compared as kyber scalars, as before: kyber compares the stored
	// bytes, so a c that is not reduced never matches.
	if !group.FromFilippoScalar(schnorrChallenge(label, Pb, R.Bytes(), bound)).Equal(p.C) {
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
	return append(group.ScalarBytes(p.C), group.ScalarBytes(p.Z)...)
}

func parseSchnorrProof(b []byte) (schnorrProof, error) {
	if len(b) != schnorrProofLen {
		return schnorrProof{}, errors.New("proof must be 64 bytes")
	}
	c, err := group.ParseScalar(b[:32])
	if err != nil {
		return schnorrProof{}, err
	}
	z, err := group.ParseScalar(b[32:])
	if err != nil {
		return schnorrProof{}, err
	}
	return schnorrProof{C: c, Z: z}, nil
}

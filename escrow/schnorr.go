package escrow

import (
	"errors"

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
	k := group.HashToScalar(nonceLabel, append([][]byte{group.ScalarBytes(w), group.PointBytes(P)}, bound...)...)
	R := group.Point().Mul(k, nil)
	c := schnorrChallenge(label, P, R, bound)
	z := group.Scalar().Mul(c, w)
	z.Add(z, k)
	return schnorrProof{C: c, Z: z}
}

func schnorrChallenge(label string, P, R kyber.Point, bound [][]byte) kyber.Scalar {
	in := append([][]byte{group.PointBytes(group.Base()), group.PointBytes(P), group.PointBytes(R)}, bound...)
	return group.HashToScalar(label, in...)
}

// verify checks the proof for P: R = z·G − c·P must hash back to c.
func (p schnorrProof) verify(label string, P kyber.Point, bound ...[]byte) error {
	R := group.Point().Mul(p.Z, nil)
	R.Sub(R, group.Point().Mul(p.C, P))
	if !schnorrChallenge(label, P, R, bound).Equal(p.C) {
		return errBadProof
	}
	return nil
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

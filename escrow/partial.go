package escrow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
)

// PartialDecryption is trustee i's answer for one envelope: V_i = x_i·(U+Q),
// with a proof that log_G X_i = log_(U+Q) V_i (Chaum–Pedersen 1992, "Wallet
// databases with observers", CRYPTO '92), so the requester can tell a right
// answer from a wrong one without trusting the trustee.
//
// V_i is "re-encrypted" to the requester: combining t of them gives
// x·(U+Q) = S + q·X_e, which is useless without q.
type PartialDecryption struct {
	Trustee   int // 1-based share index (x-coordinate) of the trustee
	SessionID SessionID
	V         kyber.Point
	proof     dleqProof
}

type dleqProof struct {
	C, Z kyber.Scalar
}

const partialVersion = 1

// PartialLen is the encoded size of a partial decryption.
const PartialLen = 1 + 2 + 16 + group.PointLen + 2*group.ScalarLen

// ErrBadPartial is wrapped when a partial decryption cannot be parsed.
var ErrBadPartial = errors.New("escrow: malformed partial decryption")

// dleqTranscript is the challenge hash input: the label, both bases, both
// public values, both commitments, the trustee index and the envelope's
// context, so a proof made for one trustee, session or base is worthless for
// any other.
func dleqChallenge(H, Xi, Vi, A, B kyber.Point, trustee int, ctx []byte) kyber.Scalar {
	var idx [2]byte
	binary.BigEndian.PutUint16(idx[:], uint16(trustee))
	return group.HashToScalar(labelDLEQ,
		group.PointBytes(group.Base()), group.PointBytes(H),
		group.PointBytes(Xi), group.PointBytes(Vi),
		group.PointBytes(A), group.PointBytes(B), idx[:], ctx)
}

// PartialDecrypt computes trustee index's answer for env, re-encrypted to
// the requester key Q, with share xi. The caller (the trustee) must already
// have checked the warrant, the request signature, the envelope's proof and
// that env is in scope. rand supplies the proof nonce.
func PartialDecrypt(index int, xi kyber.Scalar, env *Envelope, Q kyber.Point, rand io.Reader) (*PartialDecryption, error) {
	if index < 1 || index > 0xffff {
		return nil, fmt.Errorf("escrow: trustee index %d out of range", index)
	}
	// Q comes from a warrant, so from outside: a torsion component in Q
	// would make V_i leak x_i mod 8, whatever checked the warrant.
	if _, err := group.ParsePoint(group.PointBytes(Q)); err != nil {
		return nil, fmt.Errorf("escrow: requester key refused: %w", err)
	}
	H := group.Point().Add(env.U, Q)
	if H.Equal(group.Point()) {
		return nil, fmt.Errorf("escrow: U+Q is the identity; refusing to answer")
	}
	Xi := group.Point().Mul(xi, nil)
	Vi := group.Point().Mul(xi, H)
	// The nonce is hedged: fresh randomness hashed with the secret and the
	// statement, so a repeated or weak random source alone cannot reveal x_i.
	var fresh [32]byte
	if _, err := io.ReadFull(rand, fresh[:]); err != nil {
		return nil, fmt.Errorf("escrow: reading randomness: %w", err)
	}
	k := group.HashToScalar(labelDLEQNonce, group.ScalarBytes(xi), group.PointBytes(H), group.PointBytes(Vi), env.ctx, fresh[:])
	A := group.Point().Mul(k, nil)
	B := group.Point().Mul(k, H)
	c := dleqChallenge(H, Xi, Vi, A, B, index, env.ctx)
	z := group.Scalar().Mul(c, xi)
	z.Sub(k, z) // z = k − c·x_i
	return &PartialDecryption{Trustee: index, SessionID: env.Context.SessionID, V: Vi, proof: dleqProof{C: c, Z: z}}, nil
}

// Verify checks the DLEQ proof against the trustee's public share X_i, the
// envelope and the requester key Q.
func (p *PartialDecryption) Verify(Xi kyber.Point, env *Envelope, Q kyber.Point) error {
	if p.SessionID != env.Context.SessionID {
		return fmt.Errorf("answer is for session %s, not %s", p.SessionID, env.Context.SessionID)
	}
	H := group.Point().Add(env.U, Q)
	// A = z·G + c·X_i, B = z·H + c·V_i
	A := group.Point().Mul(p.proof.Z, nil)
	A.Add(A, group.Point().Mul(p.proof.C, Xi))
	B := group.Point().Mul(p.proof.Z, H)
	B.Add(B, group.Point().Mul(p.proof.C, p.V))
	if !dleqChallenge(H, Xi, p.V, A, B, p.Trustee, env.ctx).Equal(p.proof.C) {
		return errors.New("DLEQ proof does not verify: V_i is not x_i·(U+Q)")
	}
	return nil
}

// Marshal encodes the partial decryption:
//
//	version(1) trustee(2) session(16) V(32) c(32) z(32)
func (p *PartialDecryption) Marshal() []byte {
	b := make([]byte, 0, PartialLen)
	b = append(b, partialVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(p.Trustee))
	b = append(b, p.SessionID[:]...)
	b = append(b, group.PointBytes(p.V)...)
	b = append(b, group.ScalarBytes(p.proof.C)...)
	return append(b, group.ScalarBytes(p.proof.Z)...)
}

// ParsePartialDecryption decodes a partial decryption, refusing any V_i that
// is non-canonical, of small order or outside the prime-order subgroup.
func ParsePartialDecryption(b []byte) (*PartialDecryption, error) {
	if len(b) != PartialLen {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrBadPartial, len(b), PartialLen)
	}
	if b[0] != partialVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads version %d", ErrBadPartial, b[0], partialVersion)
	}
	p := &PartialDecryption{Trustee: int(binary.BigEndian.Uint16(b[1:3]))}
	if p.Trustee < 1 {
		return nil, fmt.Errorf("%w: trustee index 0", ErrBadPartial)
	}
	copy(p.SessionID[:], b[3:19])
	var err error
	if p.V, err = group.ParsePoint(b[19:51]); err != nil {
		return nil, fmt.Errorf("%w: V_i: %w", ErrBadPartial, err)
	}
	if p.proof.C, err = group.ParseScalar(b[51:83]); err != nil {
		return nil, fmt.Errorf("%w: proof: %w", ErrBadPartial, err)
	}
	if p.proof.Z, err = group.ParseScalar(b[83:115]); err != nil {
		return nil, fmt.Errorf("%w: proof: %w", ErrBadPartial, err)
	}
	return p, nil
}

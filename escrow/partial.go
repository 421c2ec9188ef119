package escrow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	ed "filippo.io/edwards25519"
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
	v         *ed.Point // V_i
	vb        []byte    // its encoding
	proof     dleqProof
}

type dleqProof struct {
	c, z *ed.Scalar
}

// VBytes returns the encoding of V_i.
func (p *PartialDecryption) VBytes() []byte { return bytes.Clone(p.vb) }

const partialVersion = 1

// PartialLen is the encoded size of a partial decryption.
const PartialLen = 1 + 2 + 16 + group.PointLen + 2*group.ScalarLen

// ErrBadPartial is wrapped when a partial decryption cannot be parsed.
var ErrBadPartial = errors.New("escrow: malformed partial decryption")

// ErrIdentityBase: U+Q is the identity point (the envelope was crafted
// with U = −Q), so a partial decryption would be the identity and prove
// nothing. A trustee refuses such an envelope before it logs a grant.
var ErrIdentityBase = errors.New("escrow: U+Q is the identity point (an envelope crafted against this requester key)")

// CheckPartialInputs reports whether [PartialDecrypt] can answer for env
// and the requester key Q: Q must be a canonical point of the prime-order
// subgroup and U+Q must not be the identity ([ErrIdentityBase]). A
// trustee calls it before it logs a grant, so that nothing it logs as
// granted is then withheld.
func CheckPartialInputs(env *Envelope, Q kyber.Point) error {
	q, err := parseRequesterPoint(Q)
	if err != nil {
		return err
	}
	if H := new(ed.Point).Add(env.u, q); H.Equal(ed.NewIdentityPoint()) == 1 {
		return ErrIdentityBase
	}
	return nil
}

// parseRequesterPoint converts Q, which comes from a warrant and so from
// outside, with every check of a parse: a torsion component in Q would make
// V_i leak x_i mod 8, whatever checked the warrant.
func parseRequesterPoint(Q kyber.Point) (*ed.Point, error) {
	q, err := group.ParseFilippoPoint(group.PointBytes(Q))
	if err != nil {
		return nil, fmt.Errorf("escrow: requester key refused: %w", err)
	}
	return q, nil
}

// dleqChallenge hashes the challenge input: the label, both bases, both
// public values, both commitments (all by their encodings), the trustee
// index and the envelope's context, so a proof made for one trustee, session
// or base is worthless for any other.
func dleqChallenge(H, Xi, Vi, A, B []byte, trustee int, ctx []byte) *ed.Scalar {
	var idx [2]byte
	binary.BigEndian.PutUint16(idx[:], uint16(trustee))
	return group.HashToFilippoScalar(labelDLEQ, group.BaseBytes(), H, Xi, Vi, A, B, idx[:], ctx)
}

// PartialDecrypt computes trustee index's answer for env, re-encrypted to
// the requester key Q, with share xi. The caller (the trustee) must already
// have checked the warrant, the request signature, the envelope's proof and
// that env is in scope. rand supplies the proof nonce.
func PartialDecrypt(index int, xi kyber.Scalar, env *Envelope, Q kyber.Point, rand io.Reader) (*PartialDecryption, error) {
	if index < 1 || index > 0xffff {
		return nil, fmt.Errorf("escrow: trustee index %d out of range", index)
	}
	q, err := parseRequesterPoint(Q)
	if err != nil {
		return nil, err
	}
	H := new(ed.Point).Add(env.u, q)
	if H.Equal(ed.NewIdentityPoint()) == 1 {
		return nil, fmt.Errorf("%w; refusing to answer", ErrIdentityBase)
	}
	// x_i and the nonce k are secret: constant-time multiplications only
	// (filippo.io/edwards25519's; see internal/group).
	x := group.ToFilippoScalar(xi)
	Xib := new(ed.Point).ScalarBaseMult(x).Bytes()
	Hb := H.Bytes()
	Vi := new(ed.Point).ScalarMult(x, H)
	Vib := Vi.Bytes()
	// The nonce is hedged: fresh randomness hashed with the secret and the
	// statement, so a repeated or weak random source alone cannot reveal x_i.
	var fresh [32]byte
	if _, err := io.ReadFull(rand, fresh[:]); err != nil {
		return nil, fmt.Errorf("escrow: reading randomness: %w", err)
	}
	k := group.HashToFilippoScalar(labelDLEQNonce, x.Bytes(), Hb, Vib, env.ctx, fresh[:])
	A := new(ed.Point).ScalarBaseMult(k)
	B := new(ed.Point).ScalarMult(k, H)
	c := dleqChallenge(Hb, Xib, Vib, A.Bytes(), B.Bytes(), index, env.ctx)
	z := ed.NewScalar().Multiply(c, x)
	z.Subtract(k, z) // z = k − c·x_i
	return &PartialDecryption{Trustee: index, SessionID: env.Context.SessionID, v: Vi, vb: Vib,
		proof: dleqProof{c: c, z: z}}, nil
}

// dleqBase returns H = U+Q, the second base of the DLEQ proofs for env and
// the requester key q, by its encoding and as a point. q was computed or
// checked by this process.
func dleqBase(env *Envelope, q *ed.Point) ([]byte, *ed.Point) {
	H := new(ed.Point).Add(env.u, q)
	return H.Bytes(), H
}

// Verify checks the DLEQ proof against the trustee's public share X_i, the
// envelope and the requester key Q.
func (p *PartialDecryption) Verify(Xi kyber.Point, env *Envelope, Q kyber.Point) error {
	Hb, H := dleqBase(env, group.ToFilippoPoint(Q))
	Xib := group.PointBytes(Xi)
	return p.verify(group.FilippoPointFromEncoding(Xib), Xib, env, Hb, H)
}

// verify is [PartialDecryption.Verify] with X_i and the base H = U+Q given
// as points and by their encodings, so that [Combine] computes them once.
func (p *PartialDecryption) verify(Xi *ed.Point, Xib []byte, env *Envelope, Hb []byte, H *ed.Point) error {
	if p.SessionID != env.Context.SessionID {
		return fmt.Errorf("answer is for session %s, not %s", p.SessionID, env.Context.SessionID)
	}
	A, B := dleqCommitments(p.proof.c, p.proof.z, Xi, H, p.v)
	if dleqChallenge(Hb, Xib, p.vb, A.Bytes(), B.Bytes(), p.Trustee, env.ctx).Equal(p.proof.c) != 1 {
		return errors.New("DLEQ proof does not verify: V_i is not x_i·(U+Q)")
	}
	return nil
}

// dleqCommitments recomputes A = z·G + c·X_i (one variable-time double
// multiplication with the base point) and B = z·H + c·V_i (one
// variable-time two-point multiplication). Every input is public.
func dleqCommitments(c, z *ed.Scalar, Xi, H, Vi *ed.Point) (A, B *ed.Point) {
	A = new(ed.Point).VarTimeDoubleScalarBaseMult(c, Xi, z)
	B = new(ed.Point).VarTimeMultiScalarMult([]*ed.Scalar{z, c}, []*ed.Point{H, Vi})
	return A, B
}

// Marshal encodes the partial decryption:
//
//	version(1) trustee(2) session(16) V(32) c(32) z(32)
func (p *PartialDecryption) Marshal() []byte {
	b := make([]byte, 0, PartialLen)
	b = append(b, partialVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(p.Trustee))
	b = append(b, p.SessionID[:]...)
	b = append(b, p.vb...)
	b = append(b, p.proof.c.Bytes()...)
	return append(b, p.proof.z.Bytes()...)
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
	p.vb = bytes.Clone(b[19:51])
	if p.v, err = group.ParseFilippoPoint(p.vb); err != nil {
		return nil, fmt.Errorf("%w: V_i: %w", ErrBadPartial, err)
	}
	if p.proof.c, err = edScalar(b[51:83]); err != nil {
		return nil, fmt.Errorf("%w: proof: %w", ErrBadPartial, err)
	}
	if p.proof.z, err = edScalar(b[83:115]); err != nil {
		return nil, fmt.Errorf("%w: proof: %w", ErrBadPartial, err)
	}
	return p, nil
}

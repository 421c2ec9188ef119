package escrow

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	ed "filippo.io/edwards25519"
	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the size of a session key K.
const KeySize = 32

// aeadOverhead is the Poly1305 tag size.
const aeadOverhead = 16

// envelopeVersion is the first byte of an encoded envelope.
const envelopeVersion = 1

// Envelope is the escrow field attached to a session: the session key K
// encrypted to the trustee group's epoch key X_e, bound to its context.
//
//	r = HashToScalar("keyquorum/v1/envelope/r", K, ctx)
//	U = r·G, S = r·X_e
//	W = HKDF-SHA256(S, salt = U‖X_e, info = "keyquorum/v1/wrap"‖ctx)
//	C = ChaCha20-Poly1305_W(nonce 0, K, ad = ctx‖U)
//	π = Schnorr proof of knowledge of r = log_G U, bound to X_e, ctx and C
//
// Every value is a function of K, ctx and X_e, so the recipient, who gets K
// through HPKE, recomputes the envelope and compares bytes ([CheckEnvelope]).
// The proof lets anyone (a trustee) check that U belongs to this context
// without learning K; without it an investigator could submit another
// session's U under a context the warrant covers.
type Envelope struct {
	Context *Context
	C       []byte // KeySize + 16 bytes
	proof   schnorrProof
	ctx     []byte    // canonical encoding of Context
	u       *ed.Point // U, decoded once
	ub      []byte    // U's encoding
}

// Errors about envelopes.
var (
	// ErrEnvelopeMissing: a session arrived without an escrow field.
	ErrEnvelopeMissing = errors.New("escrow: session has no escrow envelope; the sender's client stripped it, reject the session")
	// ErrEnvelopeMismatch: the envelope is not the one K and the context
	// determine; the sender's client forged or altered it.
	ErrEnvelopeMismatch = errors.New("escrow: escrow envelope does not match the session key and context; the sender's client forged or altered it, reject the session")
	// ErrBadEnvelope: the envelope cannot be parsed or its proof fails.
	ErrBadEnvelope = errors.New("escrow: malformed escrow envelope")
)

// UBytes returns the encoding of U = r·G.
func (e *Envelope) UBytes() []byte { return bytes.Clone(e.ub) }

// SealEnvelope computes the envelope for session key K in context ctx under
// the epoch's group key X_e. It is deterministic.
func SealEnvelope(K []byte, ctx *Context, key *EpochKey) (*Envelope, error) {
	if len(K) != KeySize {
		return nil, fmt.Errorf("escrow: session key must be %d bytes, got %d", KeySize, len(K))
	}
	if key.id != ctx.GroupKeyID {
		return nil, fmt.Errorf("escrow: context names group key %s but the key given is %s", ctx.GroupKeyID, key.id)
	}
	cb, err := ctx.Marshal()
	if err != nil {
		return nil, err
	}
	// r is secret (it opens the envelope): constant-time multiplications
	// only, r·G with filippo's table for G and r·X_e with the epoch key's
	// own (internal/group's FixedBase).
	r := group.HashToFilippoScalar(labelEnvelopeR, K, cb)
	U := new(ed.Point).ScalarBaseMult(r)
	enc := group.EncodePoints([]*ed.Point{U, key.table().ScalarMult(r)})
	Ub, Sb := enc[0], enc[1]
	aead, err := wrapAEAD(Sb, Ub, key.enc, cb)
	if err != nil {
		return nil, err
	}
	C := aead.Seal(nil, make([]byte, chacha20poly1305.NonceSize), K, concat(cb, Ub))
	pi := proveSchnorrFast(labelEnvelopeProof, labelEnvelopeNonce, r, Ub, [][]byte{key.enc, cb, C})
	return &Envelope{Context: ctx, C: C, proof: pi, ctx: cb, u: U, ub: Ub}, nil
}

// wrapAEAD derives W from the encodings of the shared point S, U and X_e and
// returns the AEAD keyed by it.
func wrapAEAD(S, U, groupKey []byte, ctx []byte) (cipher.AEAD, error) {
	W, err := hkdf.Key(sha256.New, S, concat(U, groupKey),
		labelWrap+string(ctx), chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("escrow: deriving wrap key: %w", err)
	}
	return chacha20poly1305.New(W)
}

// Verify checks the envelope's proof: that whoever made it knew r = log_G U
// for this context and ciphertext, under the epoch key. Trustees call it
// before answering; it needs no secret.
func (e *Envelope) Verify(key *EpochKey) error {
	if key.id != e.Context.GroupKeyID {
		return fmt.Errorf("%w: escrowed under group key %s, not %s", ErrBadEnvelope, e.Context.GroupKeyID, key.id)
	}
	if err := e.proof.verifyFast(labelEnvelopeProof, e.u, e.ub, [][]byte{key.enc, e.ctx, e.C}); err != nil {
		return fmt.Errorf("%w: proof binding U to its context fails (was U taken from another session?)", ErrBadEnvelope)
	}
	return nil
}

// CheckEnvelope is the recipient's check: it recomputes the envelope from
// the session key K it received and the context it expects, and compares it
// byte for byte with the envelope that came with the session.
func CheckEnvelope(K []byte, ctx *Context, key *EpochKey, got []byte) error {
	c, err := NewEnvelopeChecker(K, ctx, key)
	if err != nil {
		return err
	}
	return c.Check(got)
}

// EnvelopeChecker holds the one envelope a (K, ctx, X_e) determines, so a
// recipient can check many candidate escrow fields for one session at the
// cost of a byte comparison each.
type EnvelopeChecker struct{ want []byte }

// NewEnvelopeChecker computes the expected envelope.
func NewEnvelopeChecker(K []byte, ctx *Context, key *EpochKey) (*EnvelopeChecker, error) {
	if key.id != ctx.GroupKeyID {
		return nil, fmt.Errorf("%w: the session is escrowed under group key %s, not the trustees' key %s for its epoch", ErrEnvelopeMismatch, ctx.GroupKeyID, key.id)
	}
	want, err := SealEnvelope(K, ctx, key)
	if err != nil {
		return nil, err
	}
	return &EnvelopeChecker{want: want.Marshal()}, nil
}

// Check compares got with the expected envelope: ErrEnvelopeMissing if got
// is empty, ErrEnvelopeMismatch if it differs in any byte.
func (c *EnvelopeChecker) Check(got []byte) error {
	if len(got) == 0 {
		return ErrEnvelopeMissing
	}
	if subtle.ConstantTimeCompare(c.want, got) != 1 {
		return ErrEnvelopeMismatch
	}
	return nil
}

// OpenWithGroupSecret opens an envelope with the whole group secret x_e
// (S = x_e·U). No honest keyquorum party ever holds x_e: this is what a
// single master key holder, a dealer, or t colluding trustees who pooled
// their shares can do, and the demo runs it to measure exactly that.
func OpenWithGroupSecret(env *Envelope, x kyber.Scalar) ([]byte, error) {
	xs := group.ToFilippoScalar(x)
	X := new(ed.Point).ScalarBaseMult(xs)
	key := newEpochKey(X.Bytes(), X)
	if key.id != env.Context.GroupKeyID {
		return nil, ErrCombineCheck
	}
	if err := env.Verify(key); err != nil {
		return nil, err
	}
	S := new(ed.Point).ScalarMult(xs, env.u)
	return env.open(S.Bytes(), env.ub, key.enc)
}

// Marshal encodes the envelope:
//
//	version(1) ctxlen(2) ctx U(32) C(48) proof(64)
func (e *Envelope) Marshal() []byte {
	b := make([]byte, 0, 3+len(e.ctx)+group.PointLen+len(e.C)+schnorrProofLen)
	b = append(b, envelopeVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.ctx)))
	b = append(b, e.ctx...)
	b = append(b, e.ub...)
	b = append(b, e.C...)
	return append(b, e.proof.marshal()...)
}

// ParseEnvelope decodes an envelope and checks every field's encoding: the
// context is canonical and U is a canonical point of the prime-order
// subgroup, not of small order. It does not check the proof; see
// [Envelope.Verify].
func ParseEnvelope(b []byte) (*Envelope, error) {
	if len(b) < 3 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrBadEnvelope, len(b))
	}
	if b[0] != envelopeVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads version %d", ErrBadEnvelope, b[0], envelopeVersion)
	}
	n := int(binary.BigEndian.Uint16(b[1:3]))
	rest := b[3:]
	want := n + group.PointLen + KeySize + aeadOverhead + schnorrProofLen
	if len(rest) != want {
		return nil, fmt.Errorf("%w: length %d, want %d", ErrBadEnvelope, len(b), 3+want)
	}
	ctxb := bytes.Clone(rest[:n])
	ctx, err := ParseContext(ctxb)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadEnvelope, err)
	}
	rest = rest[n:]
	Ub := bytes.Clone(rest[:group.PointLen])
	u, err := group.ParseFilippoPoint(Ub)
	if err != nil {
		return nil, fmt.Errorf("%w: U: %w", ErrBadEnvelope, err)
	}
	rest = rest[group.PointLen:]
	C := bytes.Clone(rest[:KeySize+aeadOverhead])
	pi, err := parseSchnorrProof(rest[len(C):])
	if err != nil {
		return nil, fmt.Errorf("%w: proof: %w", ErrBadEnvelope, err)
	}
	return &Envelope{Context: ctx, C: C, proof: pi, ctx: ctxb, u: u, ub: Ub}, nil
}

// ContextBytes returns the canonical encoding of the envelope's context.
func (e *Envelope) ContextBytes() []byte { return bytes.Clone(e.ctx) }

// open decrypts C given the encodings of S = r·X_e, U and X_e, and checks
// that the result re-derives this exact envelope. It is the last step of
// [Combine] and [Combiner.CombineBatch].
func (e *Envelope) open(S, U, groupKey []byte) ([]byte, error) {
	aead, err := wrapAEAD(S, U, groupKey, e.ctx)
	if err != nil {
		return nil, err
	}
	K, err := aead.Open(nil, make([]byte, chacha20poly1305.NonceSize), e.C, concat(e.ctx, U))
	if err != nil {
		return nil, ErrCombineCheck
	}
	// Re-derive from K: r = H(K, ctx) must give this U. C then matches
	// (it opened under the key S = r·X_e determines), so this is the
	// envelope's U, C and context re-derived at the cost of one base-point
	// multiplication (constant time: r is secret), compared as points
	// (e.u is U decoded, and decoding is one-to-one) without encoding.
	r := group.HashToFilippoScalar(labelEnvelopeR, K, e.ctx)
	if new(ed.Point).ScalarBaseMult(r).Equal(e.u) != 1 {
		return nil, ErrCombineCheck
	}
	return K, nil
}

func concat(parts ...[]byte) []byte {
	var n int
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

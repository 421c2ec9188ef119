package escrow

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"sort"
	"sync"

	ed "filippo.io/edwards25519"
	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
)

// # Batched partial decryptions
//
// A trustee that answers a request of m sessions with m separate
// Chaum–Pedersen proofs spends two constant-time multiplications per
// session on proofs alone, and the requester two variable-time ones per
// session and trustee to check them. [PartialDecryptBatch] instead proves
// all m statements log_G X_i = log_(H_j) V_j (H_j = U_j + Q) at once, with
// one composite proof, and [BatchAnswer.Verify] checks it with two
// multi-scalar multiplications of m points and 128-bit scalars (about the
// cost of one with full-size scalars).
//
// The composite is the one of RFC 9497 (Davidson et al., "Oblivious
// Pseudorandom Functions (OPRFs) Using Prime-Order Groups", 2023), section
// 2.2.1, ComputeComposites: weights d_j are hashed from everything the
// statement contains, M = Σ d_j·H_j and Z = Σ d_j·V_j, and a single DLEQ
// proof shows log_G X_i = log_M Z. The prover, who knows x_i, computes
// Z = x_i·M directly (RFC 9497's ComputeCompositesFast). Unlike RFC 9497,
// whose weights are full scalars, the d_j here are 128-bit integers, the
// "small exponents" batch test of Bellare, Garay and Rabin ("Fast batch
// verification for modular exponentiation and digital signatures",
// EUROCRYPT 1998, section 3.3): the multi-scalar multiplications then do
// half the additions, and the argument below loses only its bound.
//
// Soundness (the batch-DLEQ argument; RFC 9497 section 2.2 and Henry,
// "Efficient Zero-Knowledge Proofs and Applications", PhD thesis,
// University of Waterloo, 2014, section on batch proofs of discrete
// logarithm equality): write V_j = x_i·H_j + E_j with E_j in the
// prime-order group (the requester decodes every V_j with the subgroup
// check). Then Z = x_i·M + Σ d_j·E_j. If some E_k ≠ 0, then for any
// values of the other weights at most one value of d_k mod l makes
// Σ d_j·E_j vanish (E_k has order l), and d_k takes 2^128 distinct values
// mod l. The d_j are outputs of a hash (a random oracle) over a seed that
// fixes every H_j, V_j, X_i and the request before the d_j are known, so
// the sum vanishes with probability at most 2^-128 per hash query; a
// cheating prover who grinds q_H queries succeeds with probability at most
// q_H·2^-128, and otherwise must break the soundness of the single
// Chaum–Pedersen proof (Chaum and Pedersen 1992, special soundness). The
// seed binds the
// trustee index, the epoch, the request id, the number of sessions and,
// in order, each session's context, H_j and V_j, so a proof made for one
// trustee, request, epoch, order or set of sessions says nothing about any
// other.
//
// The challenge hashes the seed, A and B but not M and Z: M and Z are
// deterministic functions of the seed's inputs, so the seed binds them and
// hashing them again would add nothing.

// batchVersion is the first byte of an encoded [BatchAnswer].
const batchVersion = 1

// Labels of the batched proof.
const (
	labelBatchSeed   = "keyquorum/v1/batch/seed"
	labelBatchWeight = "keyquorum/v1/batch/weight"
	labelBatchDLEQ   = "keyquorum/v1/batch/dleq"
	labelBatchNonce  = "keyquorum/v1/batch/dleq-nonce"
)

// batchHeaderLen is version(1) trustee(2) epoch(4) request(16) count(4).
const batchHeaderLen = 1 + 2 + 4 + 16 + 4

// batchEntryLen is session(16) V(32).
const batchEntryLen = 16 + group.PointLen

// Errors about batch answers.
var (
	// ErrBadBatch: a batch answer cannot be parsed.
	ErrBadBatch = errors.New("escrow: malformed batch answer")
	// ErrBatchMismatch: a batch answer is for another request, epoch,
	// trustee or list of sessions than the one it is checked against.
	ErrBatchMismatch = errors.New("escrow: batch answer is not for this request")
	// ErrBatchProof: a batch answer's composite DLEQ proof does not verify:
	// at least one of its V_j is not x_i·(U_j+Q).
	ErrBatchProof = errors.New("escrow: batch DLEQ proof does not verify: some V_j is not x_i·(U_j+Q)")
)

// BatchAnswer is trustee i's answer to a whole decryption request: one
// V_j = x_i·(U_j+Q) per envelope, in the request's order, and one composite
// DLEQ proof over all of them, bound to the trustee index, the request id
// and the epoch.
type BatchAnswer struct {
	Trustee   int // 1-based share index
	Epoch     uint32
	RequestID [16]byte
	Sessions  []SessionID // the envelopes' session ids, in the request's order
	v         []*ed.Point
	vb        [][]byte
	proof     batchProof
}

type batchProof struct{ c, z *ed.Scalar }

// Len returns the number of sessions answered.
func (a *BatchAnswer) Len() int { return len(a.Sessions) }

// V returns the encoding of V_j for the j-th session.
func (a *BatchAnswer) V(j int) []byte { return bytes.Clone(a.vb[j]) }

// BatchKey is a trustee's share of one epoch's key, ready to answer
// batches: x_i and X_i = x_i·G, computed once.
type BatchKey struct {
	index int
	epoch uint32
	x     *ed.Scalar
	xb    []byte // X_i
}

// NewBatchKey prepares trustee index's share x_i of epoch for
// [PartialDecryptBatch]. It costs one base-point multiplication; keep it
// for the epoch.
func NewBatchKey(index int, epoch uint32, xi kyber.Scalar) (*BatchKey, error) {
	if index < 1 || index > 0xffff {
		return nil, fmt.Errorf("escrow: trustee index %d out of range", index)
	}
	x := group.ToFilippoScalar(xi)
	if x.Equal(ed.NewScalar()) == 1 {
		return nil, errors.New("escrow: share is zero")
	}
	return &BatchKey{index: index, epoch: epoch, x: x, xb: new(ed.Point).ScalarBaseMult(x).Bytes()}, nil
}

// batchBases returns H_j = U_j + Q for every envelope, checking that each
// is of the epoch and none is the identity. Q is parsed here, once.
func batchBases(epoch uint32, envs []*Envelope, Q kyber.Point) ([]*ed.Point, [][]byte, error) {
	if len(envs) == 0 || len(envs) > MaxRequestSessions {
		return nil, nil, fmt.Errorf("escrow: a batch has 1 to %d envelopes, got %d", MaxRequestSessions, len(envs))
	}
	q, err := group.ParseFilippoPoint(group.PointBytes(Q))
	if err != nil {
		return nil, nil, fmt.Errorf("escrow: requester key refused: %w", err)
	}
	identity := ed.NewIdentityPoint()
	H := make([]*ed.Point, len(envs))
	for j, e := range envs {
		if e.Context.Epoch != epoch {
			return nil, nil, fmt.Errorf("%w: envelope %d is of epoch %d, the batch of epoch %d", ErrBatchMismatch, j, e.Context.Epoch, epoch)
		}
		H[j] = new(ed.Point).Add(e.u, q)
		if H[j].Equal(identity) == 1 {
			return nil, nil, fmt.Errorf("%w (envelope %d, session %s)", ErrIdentityBase, j, e.Context.SessionID)
		}
	}
	return H, group.EncodePoints(H), nil
}

// PartialDecryptBatch is trustee k's answer to request requestID for the
// envelopes envs (all of k's epoch), re-encrypted to the requester key Q:
// V_j = x_i·(U_j+Q) for each, in order, and one composite DLEQ proof. The
// caller has checked the warrant, the request signature, every envelope's
// proof and scope, as for [PartialDecrypt]. rand supplies the proof nonce's
// fresh half.
func PartialDecryptBatch(k *BatchKey, requestID [16]byte, envs []*Envelope, Q kyber.Point, rand io.Reader) (*BatchAnswer, error) {
	H, Hb, err := batchBases(k.epoch, envs, Q)
	if err != nil {
		return nil, fmt.Errorf("%w; refusing to answer", err)
	}
	a := &BatchAnswer{Trustee: k.index, Epoch: k.epoch, RequestID: requestID,
		Sessions: make([]SessionID, len(envs)), v: make([]*ed.Point, len(envs))}
	for j, e := range envs {
		a.Sessions[j] = e.Context.SessionID
		// x_i is secret: constant-time multiplication.
		a.v[j] = new(ed.Point).ScalarMult(k.x, H[j])
	}
	a.vb = group.EncodePoints(a.v)
	seed := batchSeed(a, k.xb, envs, Hb)
	d := batchWeights(seed, len(envs))
	// M is public (weights and bases are): variable time.
	M := new(ed.Point).VarTimeMultiScalarMult(d, H)
	var fresh [32]byte
	if _, err := io.ReadFull(rand, fresh[:]); err != nil {
		return nil, fmt.Errorf("escrow: reading randomness: %w", err)
	}
	// Hedged nonce, as in PartialDecrypt: secret, constant time.
	nonce := group.HashToFilippoScalar(labelBatchNonce, k.x.Bytes(), seed, fresh[:])
	A := new(ed.Point).ScalarBaseMult(nonce)
	B := new(ed.Point).ScalarMult(nonce, M)
	c := batchChallenge(seed, A.Bytes(), B.Bytes())
	z := ed.NewScalar().Multiply(c, k.x)
	a.proof = batchProof{c: c, z: z.Subtract(nonce, z)} // z = k − c·x_i
	return a, nil
}

// batchSeed hashes everything the composite statement contains: G, X_i,
// the trustee index, epoch and request id, the number of sessions and, per
// session in order, its context, H_j and V_j.
func batchSeed(a *BatchAnswer, Xib []byte, envs []*Envelope, Hb [][]byte) []byte {
	h := sha512.New()
	lp := func(b []byte) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	lp([]byte(labelBatchSeed))
	lp(group.BaseBytes())
	lp(Xib)
	var hdr [2 + 4 + 16 + 4]byte
	binary.BigEndian.PutUint16(hdr[0:], uint16(a.Trustee))
	binary.BigEndian.PutUint32(hdr[2:], a.Epoch)
	copy(hdr[6:], a.RequestID[:])
	binary.BigEndian.PutUint32(hdr[22:], uint32(len(envs)))
	lp(hdr[:])
	for j, e := range envs {
		lp(e.ctx)
		lp(Hb[j])
		lp(a.vb[j])
	}
	return h.Sum(nil)
}

// batchWeights derives d_1..d_m from the seed: d_j is the first 16 bytes
// of SHA-512 of the label, the seed and j, read little-endian, a 128-bit
// integer.
func batchWeights(seed []byte, m int) []*ed.Scalar {
	d := make([]*ed.Scalar, m)
	h := sha512.New()
	var sum [64]byte
	for j := range d {
		h.Reset()
		writeWeightInput(h, seed, j)
		var w [32]byte
		copy(w[:16], h.Sum(sum[:0]))
		var err error
		if d[j], err = ed.NewScalar().SetCanonicalBytes(w[:]); err != nil {
			panic("escrow: " + err.Error()) // unreachable: below 2^128 < l
		}
	}
	return d
}

func writeWeightInput(h hash.Hash, seed []byte, j int) {
	h.Write([]byte(labelBatchWeight))
	h.Write(seed)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(j))
	h.Write(n[:])
}

func batchChallenge(seed, A, B []byte) *ed.Scalar {
	return group.HashToFilippoScalar(labelBatchDLEQ, seed, A, B)
}

// Verify checks the answer against trustee's public share X_i, the request
// id, the envelopes (in the request's order, all of one epoch) and the
// requester key Q: that it is for this request, epoch, trustee and list of
// sessions ([ErrBatchMismatch]), and that its composite proof holds
// ([ErrBatchProof]). It costs two multi-scalar multiplications of m points
// by 128-bit weights.
func (a *BatchAnswer) Verify(Xi kyber.Point, requestID [16]byte, envs []*Envelope, Q kyber.Point) error {
	if err := a.matches(requestID, envs); err != nil {
		return err
	}
	H, Hb, err := batchBases(a.Epoch, envs, Q)
	if err != nil {
		return err
	}
	return a.verify(group.ToFilippoPoint(Xi), group.PointBytes(Xi), envs, H, Hb)
}

// matches checks the answer's binding fields against the request.
func (a *BatchAnswer) matches(requestID [16]byte, envs []*Envelope) error {
	if a.RequestID != requestID {
		return fmt.Errorf("%w: it answers request %x, not %x", ErrBatchMismatch, a.RequestID, requestID)
	}
	if len(a.Sessions) != len(envs) {
		return fmt.Errorf("%w: it answers %d sessions, the request has %d", ErrBatchMismatch, len(a.Sessions), len(envs))
	}
	for j, e := range envs {
		if e.Context.Epoch != a.Epoch {
			return fmt.Errorf("%w: it is for epoch %d, session %s is of epoch %d", ErrBatchMismatch, a.Epoch, e.Context.SessionID, e.Context.Epoch)
		}
		if a.Sessions[j] != e.Context.SessionID {
			return fmt.Errorf("%w: its session %d is %s, the request's is %s (reordered or substituted)", ErrBatchMismatch, j, a.Sessions[j], e.Context.SessionID)
		}
	}
	return nil
}

// verify checks the composite proof given X_i and the bases H_j:
// M = Σ d_j·H_j and Z = Σ d_j·V_j as variable-time multi-scalar
// multiplications by the 128-bit weights (everything in them is public),
// then A = z·G + c·X_i and B = z·M + c·Z.
func (a *BatchAnswer) verify(Xi *ed.Point, Xib []byte, envs []*Envelope, H []*ed.Point, Hb [][]byte) error {
	// The composite proof is sound only for V_j of prime order (see the
	// argument above); ParseBatchAnswer left this check to here.
	for j, v := range a.v {
		if !group.InSubgroup(v) {
			return fmt.Errorf("%w: V of session %d: %w", ErrBadBatch, j, group.ErrNotInSubgroup)
		}
	}
	seed := batchSeed(a, Xib, envs, Hb)
	d := batchWeights(seed, len(envs))
	c, z := a.proof.c, a.proof.z
	M := new(ed.Point).VarTimeMultiScalarMult(d, H)
	Z := new(ed.Point).VarTimeMultiScalarMult(d, a.v)
	B := new(ed.Point).VarTimeMultiScalarMult([]*ed.Scalar{z, c}, []*ed.Point{M, Z})
	A := new(ed.Point).VarTimeDoubleScalarBaseMult(c, Xi, z)
	if batchChallenge(seed, A.Bytes(), B.Bytes()).Equal(c) != 1 {
		return ErrBatchProof
	}
	return nil
}

// Marshal encodes the answer:
//
//	version(1) trustee(2) epoch(4) request(16) count(4) {session(16) V(32)}*count c(32) z(32)
//
// integers big-endian.
func (a *BatchAnswer) Marshal() []byte {
	b := make([]byte, 0, batchHeaderLen+len(a.Sessions)*batchEntryLen+2*group.ScalarLen)
	b = append(b, batchVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(a.Trustee))
	b = binary.BigEndian.AppendUint32(b, a.Epoch)
	b = append(b, a.RequestID[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(a.Sessions)))
	for j, s := range a.Sessions {
		b = append(b, s[:]...)
		b = append(b, a.vb[j]...)
	}
	b = append(b, a.proof.c.Bytes()...)
	return append(b, a.proof.z.Bytes()...)
}

// ParseBatchAnswer decodes a batch answer strictly: every V_j must be a
// canonical point encoding, not of small order, and the proof's scalars
// canonical. Two checks are left to [BatchAnswer.Verify] (and to
// [Combiner.CombineBatch] when it checks proofs): the proof, and that each
// V_j lies in the prime-order subgroup. That check costs about one X25519
// agreement per point, and a requester that combines t answers of m
// sessions needs none of it when every envelope opens: a V_j with a
// torsion component either opens nothing or is cancelled by its Lagrange
// coefficient, and a key is only returned once opening confirms it.
func ParseBatchAnswer(b []byte) (*BatchAnswer, error) {
	fail := func(format string, args ...any) (*BatchAnswer, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrBadBatch}, args...)...)
	}
	if len(b) < batchHeaderLen+2*group.ScalarLen {
		return fail("%d bytes is too short", len(b))
	}
	if b[0] != batchVersion {
		return fail("version %d, this build reads version %d", b[0], batchVersion)
	}
	a := &BatchAnswer{Trustee: int(binary.BigEndian.Uint16(b[1:3])), Epoch: binary.BigEndian.Uint32(b[3:7])}
	if a.Trustee < 1 {
		return fail("trustee index 0")
	}
	copy(a.RequestID[:], b[7:23])
	n := binary.BigEndian.Uint32(b[23:27])
	if n == 0 || n > MaxRequestSessions {
		return fail("session count %d out of range 1 to %d", n, MaxRequestSessions)
	}
	if want := batchHeaderLen + int(n)*batchEntryLen + 2*group.ScalarLen; len(b) != want {
		return fail("length %d, want %d for %d sessions", len(b), want, n)
	}
	rest := b[batchHeaderLen:]
	a.Sessions = make([]SessionID, n)
	a.v = make([]*ed.Point, n)
	a.vb = make([][]byte, n)
	for j := range a.Sessions {
		copy(a.Sessions[j][:], rest[:16])
		vb := bytes.Clone(rest[16:batchEntryLen])
		v, err := group.ParseFilippoPointDeferred(vb)
		if err != nil {
			return fail("V of session %d: %w", j, err)
		}
		a.v[j], a.vb[j] = v, vb
		rest = rest[batchEntryLen:]
	}
	var err error
	if a.proof.c, err = edScalar(rest[:32]); err != nil {
		return fail("proof: %w", err)
	}
	if a.proof.z, err = edScalar(rest[32:]); err != nil {
		return fail("proof: %w", err)
	}
	return a, nil
}

// edScalar decodes a canonical scalar.
func edScalar(b []byte) (*ed.Scalar, error) {
	s, err := ed.NewScalar().SetCanonicalBytes(b)
	if err != nil {
		return nil, group.ErrNonCanonical
	}
	return s, nil
}

// Combiner is a requester's state for one epoch: the group's public view,
// the requester key, q·X_e (computed once) and the Lagrange coefficients of
// every subset of trustees it has combined (computed once per subset). It
// is safe for concurrent use.
type Combiner struct {
	mu      sync.Mutex // guards coeffs
	g       *Group
	req     *RequesterKey
	X       *ed.Point
	Xb      []byte
	qX      *ed.Point
	shares  map[int]*ed.Point // X_i
	sharesB map[int][]byte
	coeffs  map[string][]*ed.Scalar
}

// NewCombiner prepares the requester's combination for one epoch.
func NewCombiner(g *Group, req *RequesterKey) (*Combiner, error) {
	if g.Threshold < 1 {
		return nil, fmt.Errorf("escrow: group threshold %d is invalid", g.Threshold)
	}
	c := &Combiner{g: g, req: req, Xb: group.PointBytes(g.Key), shares: map[int]*ed.Point{}, sharesB: map[int][]byte{}, coeffs: map[string][]*ed.Scalar{}}
	c.X = group.FilippoPointFromEncoding(c.Xb)
	// q is secret: constant-time multiplication.
	c.qX = new(ed.Point).ScalarMult(group.ToFilippoScalar(req.Private), c.X)
	for i, Xi := range g.PublicShares {
		if i < 1 {
			return nil, fmt.Errorf("escrow: public share of trustee index %d; indices start at 1", i)
		}
		c.sharesB[i] = group.PointBytes(Xi)
		c.shares[i] = group.FilippoPointFromEncoding(c.sharesB[i])
	}
	return c, nil
}

// lagrange returns the coefficients λ_j at 0 for the trustee indices xs
// (distinct, at least 1), computed once per subset.
func (c *Combiner) lagrange(xs []int) []*ed.Scalar {
	key := fmt.Sprint(xs)
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.coeffs[key]; ok {
		return l
	}
	l := lagrangeCoefficients(xs)
	c.coeffs[key] = l
	return l
}

// BatchResult is the outcome of [Combiner.CombineBatch]: per envelope, in
// order, the confirmed session key or the reason it could not be opened.
type BatchResult struct {
	Keys [][]byte        // nil where Errs is not
	Errs []error         // nil where the key was confirmed
	Used []int           // the trustees whose answers were combined, ascending
	Bad  []BadShareError // trustees whose answers were refused
}

// CombineBatch is the requester's last step for a whole request: answers
// are the trustees' [BatchAnswer]s to request requestID over envs (in the
// request's order).
//
// It is optimistic. It takes the first t answers that are for this request
// (in the order given, so callers can put the answers they trust or
// received first), combines every session from them, and confirms each key
// by opening the envelope and re-deriving U from it, which no wrong V can
// pass; it checks no proof. Only if some session fails to open does it
// check the proofs of every answer, name each trustee whose proof fails
// (*[BadShareError]), and combine the failed sessions again from t answers
// whose proofs hold. A key is returned only when confirmed.
//
// The envelopes' own proofs are not checked: opening confirms K through
// U = H(K, ctx)·G and the AEAD binds C to ctx‖U, so a key that opens is
// the key of this context whatever π says. If fewer than t answers are
// usable, the error wraps [ErrInsufficientShares] and each *BadShareError.
func (c *Combiner) CombineBatch(requestID [16]byte, envs []*Envelope, answers []*BatchAnswer) (*BatchResult, error) {
	t := c.g.Threshold
	if len(envs) == 0 {
		return nil, errors.New("escrow: no envelopes to combine")
	}
	id := KeyIDOf(c.g.Key)
	for _, e := range envs {
		if e.Context.GroupKeyID != id || e.Context.Epoch != c.g.Epoch {
			return nil, fmt.Errorf("escrow: session %s is escrowed under epoch %d key %s, not the combiner's epoch %d key %s",
				e.Context.SessionID, e.Context.Epoch, e.Context.GroupKeyID, c.g.Epoch, id)
		}
	}
	res := &BatchResult{Keys: make([][]byte, len(envs)), Errs: make([]error, len(envs))}
	bad := func(a *BatchAnswer, err error) {
		res.Bad = append(res.Bad, BadShareError{Trustee: a.Trustee, Reason: err.Error()})
	}
	// Structural checks first: cheap, and no proof is needed to refuse an
	// answer to another request.
	var usable []*BatchAnswer
	seen := map[int]*BatchAnswer{}
	for _, a := range answers {
		if _, ok := c.shares[a.Trustee]; !ok {
			bad(a, errors.New("no such trustee in the group"))
			continue
		}
		if prev := seen[a.Trustee]; prev != nil {
			if !bytes.Equal(prev.Marshal(), a.Marshal()) {
				bad(a, errors.New("two different answers from the same trustee"))
			}
			continue
		}
		if err := a.matches(requestID, envs); err != nil {
			bad(a, err)
			continue
		}
		if a.Epoch != c.g.Epoch {
			bad(a, fmt.Errorf("%w: it is for epoch %d, the group's is %d", ErrBatchMismatch, a.Epoch, c.g.Epoch))
			continue
		}
		seen[a.Trustee] = a
		usable = append(usable, a)
	}
	if len(usable) < t {
		return nil, c.insufficient(len(usable), res.Bad)
	}
	pick := usable[:t]
	failed := c.combineSessions(envs, pick, allIndices(len(envs)), res)
	res.Used = trusteesOf(pick)
	if len(failed) == 0 {
		return res, nil
	}
	// Some session did not open: find out who lied.
	H, Hb, err := batchBases(c.g.Epoch, envs, c.req.Public)
	if err != nil {
		return nil, err
	}
	var valid []*BatchAnswer
	for _, a := range usable {
		if err := a.verify(c.shares[a.Trustee], c.sharesB[a.Trustee], envs, H, Hb); err != nil {
			bad(a, err)
			continue
		}
		valid = append(valid, a)
		if len(valid) == t {
			break
		}
	}
	if len(valid) < t {
		return nil, c.insufficient(len(valid), res.Bad)
	}
	if !slices.Equal(trusteesOf(valid), res.Used) {
		for _, j := range failed {
			res.Errs[j] = nil
		}
		c.combineSessions(envs, valid, failed, res)
		res.Used = trusteesOf(valid)
	}
	// Sessions that still fail keep their ErrCombineCheck: t proven answers
	// that do not open an envelope mean a wrong group file or envelope.
	return res, nil
}

// combineSessions combines the sessions js from the answers pick, setting
// each key or error in res, and returns the sessions that failed.
func (c *Combiner) combineSessions(envs []*Envelope, pick []*BatchAnswer, js []int, res *BatchResult) []int {
	xs := trusteesOfUnsorted(pick)
	lambda := c.lagrange(xs)
	V := make([]*ed.Point, len(pick))
	S := make([]*ed.Point, len(js))
	for i, j := range js {
		for k, a := range pick {
			V[k] = a.v[j]
		}
		S[i] = new(ed.Point).VarTimeMultiScalarMult(lambda, V)
		S[i].Subtract(S[i], c.qX)
	}
	Sb := group.EncodePoints(S)
	var failed []int
	for i, j := range js {
		K, err := envs[j].open(Sb[i], envs[j].ub, c.Xb)
		if err != nil {
			res.Keys[j], res.Errs[j] = nil, fmt.Errorf("session %s: %w", envs[j].Context.SessionID, err)
			failed = append(failed, j)
			continue
		}
		res.Keys[j], res.Errs[j] = K, nil
	}
	return failed
}

func (c *Combiner) insufficient(have int, bad []BadShareError) error {
	errs := []error{fmt.Errorf("%w: have %d usable of %d needed%s", ErrInsufficientShares, have, c.g.Threshold, describeBad(bad))}
	for i := range bad {
		errs = append(errs, &bad[i])
	}
	return errors.Join(errs...)
}

func allIndices(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func trusteesOfUnsorted(as []*BatchAnswer) []int {
	xs := make([]int, len(as))
	for i, a := range as {
		xs[i] = a.Trustee
	}
	return xs
}

func trusteesOf(as []*BatchAnswer) []int {
	xs := trusteesOfUnsorted(as)
	sort.Ints(xs)
	return xs
}

// Combine is the optimistic counterpart of the package's [Combine] for one
// envelope, with the combiner's cached q·X_e, public shares and Lagrange
// coefficients: it combines the first t answers that are for this session
// and from distinct trustees of the group without checking their proofs,
// and checks proofs (and names the trustees whose proofs fail) only if the
// envelope does not open. The envelope's own proof is not checked, for the
// reason [Combiner.CombineBatch] gives. A key is returned only when
// confirmed; wrong answers whose errors cancel in the interpolation (the
// key still opens) are therefore not named.
func (c *Combiner) Combine(env *Envelope, partials []*PartialDecryption) (*Result, error) {
	if env.Context.GroupKeyID != KeyIDOf(c.g.Key) || env.Context.Epoch != c.g.Epoch {
		return nil, fmt.Errorf("escrow: session %s is escrowed under epoch %d key %s, not the combiner's epoch %d",
			env.Context.SessionID, env.Context.Epoch, env.Context.GroupKeyID, c.g.Epoch)
	}
	res := &Result{}
	bad := func(p *PartialDecryption, reason string) {
		res.Bad = append(res.Bad, BadShareError{Trustee: p.Trustee, Reason: reason})
	}
	var usable []*PartialDecryption
	seen := map[int]*PartialDecryption{}
	for _, p := range partials {
		switch prev := seen[p.Trustee]; {
		case c.shares[p.Trustee] == nil:
			bad(p, "no such trustee in the group")
		case prev != nil:
			if !bytes.Equal(prev.Marshal(), p.Marshal()) {
				bad(p, "two different answers from the same trustee")
			}
		case p.SessionID != env.Context.SessionID:
			bad(p, fmt.Sprintf("answer is for session %s, not %s", p.SessionID, env.Context.SessionID))
		default:
			seen[p.Trustee] = p
			usable = append(usable, p)
		}
	}
	t := c.g.Threshold
	if len(usable) < t {
		return nil, c.insufficient(len(usable), res.Bad)
	}
	if K, err := c.combineOne(env, usable[:t]); err == nil {
		res.Key, res.Used = K, sortedTrustees(usable[:t])
		return res, nil
	}
	Hb, H := dleqBase(env, group.ToFilippoPoint(c.req.Public))
	var valid []*PartialDecryption
	for _, p := range usable {
		if err := p.verify(c.shares[p.Trustee], c.sharesB[p.Trustee], env, Hb, H); err != nil {
			bad(p, err.Error())
			continue
		}
		if valid = append(valid, p); len(valid) == t {
			break
		}
	}
	if len(valid) < t {
		return nil, c.insufficient(len(valid), res.Bad)
	}
	K, err := c.combineOne(env, valid)
	if err != nil {
		return nil, err
	}
	res.Key, res.Used = K, sortedTrustees(valid)
	return res, nil
}

// combineOne interpolates the answers ps at 0, removes q·X_e and opens env.
func (c *Combiner) combineOne(env *Envelope, ps []*PartialDecryption) ([]byte, error) {
	xs := make([]int, len(ps))
	V := make([]*ed.Point, len(ps))
	for i, p := range ps {
		xs[i], V[i] = p.Trustee, p.v
	}
	S := new(ed.Point).VarTimeMultiScalarMult(c.lagrange(xs), V)
	S.Subtract(S, c.qX)
	return env.open(S.Bytes(), env.ub, c.Xb)
}

func sortedTrustees(ps []*PartialDecryption) []int {
	xs := make([]int, len(ps))
	for i, p := range ps {
		xs[i] = p.Trustee
	}
	sort.Ints(xs)
	return xs
}

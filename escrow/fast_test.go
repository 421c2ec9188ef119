package escrow

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"testing"

	ed "filippo.io/edwards25519"
	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/share"
	"golang.org/x/crypto/chacha20poly1305"
)

// The tests in this file check the filippo.io/edwards25519 hot paths
// against the straightforward kyber computations they replaced (kept below
// as ref*, as they were written before), on random inputs: same bytes out,
// same accept or refuse, same errors.

const fastCases = 200

// ---- reference implementations: the former, kyber-only code ----

func refSchnorrChallenge(label string, P, R kyber.Point, bound [][]byte) kyber.Scalar {
	in := append([][]byte{group.PointBytes(group.Base()), group.PointBytes(P), group.PointBytes(R)}, bound...)
	return group.HashToScalar(label, in...)
}

func refProveSchnorr(label, nonceLabel string, w kyber.Scalar, P kyber.Point, bound ...[]byte) schnorrProof {
	k := group.HashToScalar(nonceLabel, append([][]byte{group.ScalarBytes(w), group.PointBytes(P)}, bound...)...)
	R := group.Point().Mul(k, nil)
	c := refSchnorrChallenge(label, P, R, bound)
	z := group.Scalar().Mul(c, w)
	z.Add(z, k)
	return schnorrProof{c: fS(c), z: fS(z)}
}

// refSchnorrR is R = z·G − c·P.
func refSchnorrR(p schnorrProof, P kyber.Point) kyber.Point {
	R := group.Point().Mul(kS(p.z), nil)
	return R.Sub(R, group.Point().Mul(kS(p.c), P))
}

func refSchnorrVerify(p schnorrProof, label string, P kyber.Point, bound ...[]byte) error {
	if !refSchnorrChallenge(label, P, refSchnorrR(p, P), bound).Equal(kS(p.c)) {
		return errBadProof
	}
	return nil
}

func refWrapAEAD(S, U, groupKey kyber.Point, ctx []byte) (cipher.AEAD, error) {
	W, err := hkdf.Key(sha256.New, group.PointBytes(S), concat(group.PointBytes(U), group.PointBytes(groupKey)),
		labelWrap+string(ctx), chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	return chacha20poly1305.New(W)
}

func refSealEnvelope(K []byte, ctx *Context, groupKey kyber.Point) (*Envelope, error) {
	if KeyIDOf(groupKey) != ctx.GroupKeyID {
		return nil, fmt.Errorf("escrow: context names group key %s but the key given is %s", ctx.GroupKeyID, KeyIDOf(groupKey))
	}
	cb, err := ctx.Marshal()
	if err != nil {
		return nil, err
	}
	r := group.HashToScalar(labelEnvelopeR, K, cb)
	U := group.Point().Mul(r, nil)
	S := group.Point().Mul(r, groupKey)
	aead, err := refWrapAEAD(S, U, groupKey, cb)
	if err != nil {
		return nil, err
	}
	C := aead.Seal(nil, make([]byte, chacha20poly1305.NonceSize), K, concat(cb, group.PointBytes(U)))
	pi := refProveSchnorr(labelEnvelopeProof, labelEnvelopeNonce, r, U, group.PointBytes(groupKey), cb, C)
	Ub := group.PointBytes(U)
	return &Envelope{Context: ctx, C: C, proof: pi, ctx: cb, u: group.FilippoPointFromEncoding(Ub), ub: Ub}, nil
}

func refEnvelopeVerify(e *Envelope, groupKey kyber.Point) error {
	if KeyIDOf(groupKey) != e.Context.GroupKeyID {
		return fmt.Errorf("%w: escrowed under group key %s, not %s", ErrBadEnvelope, e.Context.GroupKeyID, KeyIDOf(groupKey))
	}
	if err := refSchnorrVerify(e.proof, labelEnvelopeProof, kU(e), group.PointBytes(groupKey), e.ctx, e.C); err != nil {
		return fmt.Errorf("%w: proof binding U to its context fails (was U taken from another session?)", ErrBadEnvelope)
	}
	return nil
}

func refOpenWithS(e *Envelope, S, groupKey kyber.Point) ([]byte, error) {
	aead, err := refWrapAEAD(S, kU(e), groupKey, e.ctx)
	if err != nil {
		return nil, err
	}
	K, err := aead.Open(nil, make([]byte, chacha20poly1305.NonceSize), e.C, concat(e.ctx, group.PointBytes(kU(e))))
	if err != nil {
		return nil, ErrCombineCheck
	}
	if !group.Point().Mul(group.HashToScalar(labelEnvelopeR, K, e.ctx), nil).Equal(kU(e)) {
		return nil, ErrCombineCheck
	}
	return K, nil
}

func refOpenWithGroupSecret(env *Envelope, x kyber.Scalar) ([]byte, error) {
	X := group.Point().Mul(x, nil)
	if KeyIDOf(X) != env.Context.GroupKeyID {
		return nil, ErrCombineCheck
	}
	if err := refEnvelopeVerify(env, X); err != nil {
		return nil, err
	}
	return refOpenWithS(env, group.Point().Mul(x, kU(env)), X)
}

func refDLEQChallenge(H, Xi, Vi, A, B kyber.Point, trustee int, ctx []byte) kyber.Scalar {
	var idx [2]byte
	binary.BigEndian.PutUint16(idx[:], uint16(trustee))
	return group.HashToScalar(labelDLEQ,
		group.PointBytes(group.Base()), group.PointBytes(H),
		group.PointBytes(Xi), group.PointBytes(Vi),
		group.PointBytes(A), group.PointBytes(B), idx[:], ctx)
}

func refPartialDecrypt(index int, xi kyber.Scalar, env *Envelope, Q kyber.Point, rand io.Reader) (*PartialDecryption, error) {
	if index < 1 || index > 0xffff {
		return nil, fmt.Errorf("escrow: trustee index %d out of range", index)
	}
	return refPartialDecryptAnyIndex(index, xi, env, Q, rand)
}

// refPartialDecryptAnyIndex is the former PartialDecrypt without its index
// check, to build answers with an index Combine must cope with.
func refPartialDecryptAnyIndex(index int, xi kyber.Scalar, env *Envelope, Q kyber.Point, rand io.Reader) (*PartialDecryption, error) {
	if _, err := refParsePoint(group.PointBytes(Q)); err != nil {
		return nil, fmt.Errorf("escrow: requester key refused: %w", err)
	}
	H := group.Point().Add(kU(env), Q)
	if H.Equal(group.Point()) {
		return nil, fmt.Errorf("%w; refusing to answer", ErrIdentityBase)
	}
	Xi := group.Point().Mul(xi, nil)
	Vi := group.Point().Mul(xi, H)
	var fresh [32]byte
	if _, err := io.ReadFull(rand, fresh[:]); err != nil {
		return nil, fmt.Errorf("escrow: reading randomness: %w", err)
	}
	k := group.HashToScalar(labelDLEQNonce, group.ScalarBytes(xi), group.PointBytes(H), group.PointBytes(Vi), env.ctx, fresh[:])
	A := group.Point().Mul(k, nil)
	B := group.Point().Mul(k, H)
	c := refDLEQChallenge(H, Xi, Vi, A, B, index, env.ctx)
	z := group.Scalar().Mul(c, xi)
	z.Sub(k, z)
	p := &PartialDecryption{Trustee: index, SessionID: env.Context.SessionID, proof: dleqProof{c: fS(c), z: fS(z)}}
	p.setV(Vi)
	return p, nil
}

// refParsePoint is the former kyber-only group.ParsePoint.
func refParsePoint(b []byte) (kyber.Point, error) {
	if len(b) != group.PointLen {
		return nil, fmt.Errorf("%w: got %d bytes", group.ErrPointEncoding, len(b))
	}
	p := group.Point()
	if !p.(interface{ IsCanonical([]byte) bool }).IsCanonical(b) {
		return nil, group.ErrNonCanonical
	}
	if err := p.UnmarshalBinary(b); err != nil {
		return nil, group.ErrPointEncoding
	}
	if p.(interface{ HasSmallOrder() bool }).HasSmallOrder() {
		return nil, group.ErrSmallOrder
	}
	minusOne := group.Scalar().Neg(group.Scalar().SetInt64(1))
	lp := group.Point().Mul(minusOne, p)
	if !lp.Add(lp, p).Equal(group.Point()) {
		return nil, group.ErrNotInSubgroup
	}
	if p.Equal(group.Point()) {
		return nil, group.ErrIdentity
	}
	if enc, _ := p.MarshalBinary(); string(enc) != string(b) {
		return nil, group.ErrNonCanonical
	}
	return p, nil
}

// refDLEQCommitments is A = z·G + c·X_i, B = z·H + c·V_i.
func refDLEQCommitments(p *PartialDecryption, Xi, H kyber.Point) (A, B kyber.Point) {
	A = group.Point().Mul(kS(p.proof.z), nil)
	A.Add(A, group.Point().Mul(kS(p.proof.c), Xi))
	B = group.Point().Mul(kS(p.proof.z), H)
	B.Add(B, group.Point().Mul(kS(p.proof.c), kV(p)))
	return A, B
}

func refPartialVerify(p *PartialDecryption, Xi kyber.Point, env *Envelope, Q kyber.Point) error {
	if p.SessionID != env.Context.SessionID {
		return fmt.Errorf("answer is for session %s, not %s", p.SessionID, env.Context.SessionID)
	}
	H := group.Point().Add(kU(env), Q)
	A, B := refDLEQCommitments(p, Xi, H)
	if !refDLEQChallenge(H, Xi, kV(p), A, B, p.Trustee, env.ctx).Equal(kS(p.proof.c)) {
		return errors.New("DLEQ proof does not verify: V_i is not x_i·(U+Q)")
	}
	return nil
}

func refMaxIndex(s []*share.PubShare) int {
	m := 0
	for _, p := range s {
		if p.I+1 > m {
			m = p.I + 1
		}
	}
	return m
}

func refCombine(g *Group, env *Envelope, req *RequesterKey, partials []*PartialDecryption) (*Result, error) {
	if g.Threshold < 1 {
		return nil, fmt.Errorf("escrow: group threshold %d is invalid", g.Threshold)
	}
	if err := refEnvelopeVerify(env, g.Key); err != nil {
		return nil, err
	}
	res := &Result{}
	var valid []*share.PubShare
	seen := map[int][]byte{}
	for _, p := range partials {
		bad := func(reason string) {
			res.Bad = append(res.Bad, BadShareError{Trustee: p.Trustee, Reason: reason})
		}
		Xi, ok := g.PublicShares[p.Trustee]
		switch {
		case !ok:
			bad("no such trustee in the group")
		case seen[p.Trustee] != nil:
			if !bytes.Equal(seen[p.Trustee], p.Marshal()) {
				bad("two different answers from the same trustee")
			}
		default:
			if err := refPartialVerify(p, Xi, env, req.Public); err != nil {
				bad(err.Error())
				continue
			}
			seen[p.Trustee] = p.Marshal()
			if len(valid) < g.Threshold {
				valid = append(valid, &share.PubShare{I: p.Trustee - 1, V: kV(p)})
				res.Used = append(res.Used, p.Trustee)
			}
		}
	}
	sort.Ints(res.Used)
	if len(valid) < g.Threshold {
		errs := []error{fmt.Errorf("%w: have %d valid of %d needed%s", ErrInsufficientShares, len(valid), g.Threshold, describeBad(res.Bad))}
		for i := range res.Bad {
			errs = append(errs, &res.Bad[i])
		}
		return nil, errors.Join(errs...)
	}
	V, err := share.RecoverCommit(group.Suite(), valid, g.Threshold, refMaxIndex(valid))
	if err != nil {
		return nil, fmt.Errorf("escrow: lagrange interpolation: %w", err)
	}
	S := group.Point().Sub(V, group.Point().Mul(req.Private, g.Key))
	K, err := refOpenWithS(env, S, g.Key)
	if err != nil {
		return nil, err
	}
	res.Key = K
	return res, nil
}

// ---- helpers ----

func randScalar(tb testing.TB, rand io.Reader) kyber.Scalar {
	tb.Helper()
	s, err := group.RandomScalar(rand)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func randPoint(tb testing.TB, rand io.Reader) kyber.Point {
	tb.Helper()
	return group.Point().Mul(randScalar(tb, rand), nil)
}

func randBytes(tb testing.TB, rand io.Reader, max int) []byte {
	tb.Helper()
	var n [1]byte
	io.ReadFull(rand, n[:])
	b := make([]byte, int(n[0])%(max+1))
	if _, err := io.ReadFull(rand, b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// randContext is a valid context under key X with random names and
// session id.
func randContext(tb testing.TB, rand io.Reader, X kyber.Point, epoch uint32) *Context {
	tb.Helper()
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789._@+-"
	name := func() string {
		b := randBytes(tb, rand, MaxNameLen-1)
		b = append(b, 'x')
		for i := range b {
			b[i] = alphabet[int(b[i])%len(alphabet)]
		}
		return string(b)
	}
	c := &Context{Epoch: epoch, GroupKeyID: KeyIDOf(X), Sender: name(), Recipient: name(), Start: sessionStart}
	io.ReadFull(rand, c.SessionID[:])
	return c
}

func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Error() == b.Error()
}

// kS and fS convert scalars between the two libraries.
func kS(s *ed.Scalar) kyber.Scalar { return group.FromFilippoScalar(s) }
func fS(s kyber.Scalar) *ed.Scalar { return group.ToFilippoScalar(s) }

func pointsEqual(a *ed.Point, b kyber.Point) bool { return bytes.Equal(a.Bytes(), group.PointBytes(b)) }

// ---- the comparisons ----

func TestSchnorrMatchesKyber(t *testing.T) {
	rand := detReader("fast schnorr")
	for i := 0; i < fastCases; i++ {
		w := randScalar(t, rand)
		P := group.Point().Mul(w, nil)
		bound := [][]byte{randBytes(t, rand, 80), randBytes(t, rand, 8)}
		want := refProveSchnorr("test/label", "test/nonce", w, P, bound...)
		got := proveSchnorr("test/label", "test/nonce", w, P, bound...)
		if !bytes.Equal(got.marshal(), want.marshal()) {
			t.Fatalf("case %d: proof %x, kyber gives %x", i, got.marshal(), want.marshal())
		}
		if err := got.verify("test/label", P, bound...); err != nil {
			t.Fatalf("case %d: honest proof refused: %v", i, err)
		}
		// Wrong proofs, wrong keys, wrong bound data: R must be the same
		// point and the verdict the same.
		forged := schnorrProof{c: fS(randScalar(t, rand)), z: fS(randScalar(t, rand))}
		other := randPoint(t, rand)
		for j, c := range []struct {
			p     schnorrProof
			P     kyber.Point
			bound [][]byte
		}{
			{forged, P, bound},
			{got, other, bound},
			{got, P, [][]byte{bound[0], append(bound[1], 0)}},
			{schnorrProof{c: got.c, z: fS(group.Scalar().Add(kS(got.z), group.Scalar().One()))}, P, bound},
		} {
			R := schnorrCommitment(c.p.c, c.p.z, group.ToFilippoPoint(c.P))
			if !pointsEqual(R, refSchnorrR(c.p, c.P)) {
				t.Fatalf("case %d.%d: R differs from kyber's z·G − c·P", i, j)
			}
			werr, gerr := refSchnorrVerify(c.p, "test/label", c.P, c.bound...), c.p.verify("test/label", c.P, c.bound...)
			if !sameError(werr, gerr) || gerr == nil {
				t.Fatalf("case %d.%d: verify says %v, kyber says %v (want a refusal)", i, j, gerr, werr)
			}
		}
	}
}

func TestRequestSignatureMatchesKyber(t *testing.T) {
	rand := detReader("fast request signature")
	for i := 0; i < 20; i++ {
		req, err := GenerateRequesterKey(rand)
		if err != nil {
			t.Fatal(err)
		}
		digest := randBytes(t, rand, 64)
		want := refProveSchnorr(labelRequestSig, labelRequestNonce, req.Private, req.Public, digest)
		got := proveSchnorr(labelRequestSig, labelRequestNonce, req.Private, req.Public, digest)
		if !bytes.Equal(got.marshal(), want.marshal()) {
			t.Fatalf("case %d: signature differs from kyber's", i)
		}
	}
}

func TestSealEnvelopeMatchesKyber(t *testing.T) {
	rand := detReader("fast seal")
	var x kyber.Scalar
	var X kyber.Point
	for i := 0; i < fastCases; i++ {
		if i%20 == 0 {
			x = randScalar(t, rand)
			X = group.Point().Mul(x, nil)
		}
		ctx := randContext(t, rand, X, uint32(i))
		K := randomSessionKey(t, rand)
		want, err := refSealEnvelope(K, ctx, X)
		if err != nil {
			t.Fatal(err)
		}
		got, err := SealEnvelope(K, ctx, ek(X))
		if err != nil {
			t.Fatal(err)
		}
		enc := got.Marshal()
		if !bytes.Equal(enc, want.Marshal()) {
			t.Fatalf("case %d: envelope differs from kyber's:\n got  %x\n want %x", i, enc, want.Marshal())
		}
		if err := got.Verify(ek(X)); err != nil {
			t.Fatalf("case %d: Verify: %v", i, err)
		}
		if err := CheckEnvelope(K, ctx, ek(X), enc); err != nil {
			t.Fatalf("case %d: CheckEnvelope: %v", i, err)
		}
		gk, gerr := OpenWithGroupSecret(got, x)
		wk, werr := refOpenWithGroupSecret(want, x)
		if gerr != nil || werr != nil || !bytes.Equal(gk, K) || !bytes.Equal(wk, K) {
			t.Fatalf("case %d: OpenWithGroupSecret: %v, kyber: %v", i, gerr, werr)
		}
		// A tampered envelope: a flipped bit in C or the proof. Verify and
		// the opening must refuse it exactly as before.
		bad := mustParseEnvelope(t, flipBit(enc, len(enc)-1-i%(48+64)))
		if gerr, werr := bad.Verify(ek(X)), refEnvelopeVerify(bad, X); !sameError(gerr, werr) || gerr == nil {
			t.Fatalf("case %d: tampered envelope: Verify %v, kyber %v", i, gerr, werr)
		}
		if _, gerr := OpenWithGroupSecret(bad, x); !sameError(gerr, func() error { _, e := refOpenWithGroupSecret(bad, x); return e }()) {
			t.Fatalf("case %d: tampered envelope: OpenWithGroupSecret %v", i, gerr)
		}
		// The wrong S does not open it, the same way.
		S := randPoint(t, rand)
		_, gerr = openWithS(got, S, X)
		_, werr = refOpenWithS(want, S, X)
		if !sameError(gerr, werr) || gerr == nil {
			t.Fatalf("case %d: openWithS with a wrong S: %v, kyber %v", i, gerr, werr)
		}
	}
}

func TestPartialDecryptMatchesKyber(t *testing.T) {
	rand := detReader("fast partial")
	var X kyber.Point
	for i := 0; i < fastCases; i++ {
		if i%20 == 0 {
			X = randPoint(t, rand)
		}
		env, err := SealEnvelope(randomSessionKey(t, rand), randContext(t, rand, X, 1), ek(X))
		if err != nil {
			t.Fatal(err)
		}
		xi := randScalar(t, rand)
		Xi := group.Point().Mul(xi, nil)
		Q := randPoint(t, rand)
		index := 1 + i%0xffff
		if i%7 == 0 {
			index = 0xffff - i
		}
		seed := fmt.Sprint("fast partial nonce ", i)
		want, err := refPartialDecrypt(index, xi, env, Q, detReader(seed))
		if err != nil {
			t.Fatal(err)
		}
		got, err := PartialDecrypt(index, xi, env, Q, detReader(seed))
		if err != nil {
			t.Fatal(err)
		}
		enc := got.Marshal()
		if !bytes.Equal(enc, want.Marshal()) {
			t.Fatalf("case %d: answer differs from kyber's:\n got  %x\n want %x", i, enc, want.Marshal())
		}
		if err := got.Verify(Xi, env, Q); err != nil {
			t.Fatalf("case %d: honest answer refused: %v", i, err)
		}
		// Wrong answers: a random V_i, a random proof, the wrong X_i, the
		// wrong Q, another session. A and B must be the same points and the
		// verdict the same refusal.
		wrongV := *got
		wrongV.setV(randPoint(t, rand))
		forged := *got
		forged.proof = dleqProof{c: fS(randScalar(t, rand)), z: fS(randScalar(t, rand))}
		otherSession := *got
		otherSession.SessionID[0] ^= 1
		for j, c := range []struct {
			p     *PartialDecryption
			Xi, Q kyber.Point
		}{
			{&wrongV, Xi, Q},
			{&forged, Xi, Q},
			{got, randPoint(t, rand), Q},
			{got, Xi, randPoint(t, rand)},
			{&otherSession, Xi, Q},
		} {
			Hc := group.Point().Add(kU(env), c.Q)
			A, B := dleqCommitments(c.p.proof.c, c.p.proof.z,
				group.ToFilippoPoint(c.Xi), group.ToFilippoPoint(Hc), group.ToFilippoPoint(kV(c.p)))
			wA, wB := refDLEQCommitments(c.p, c.Xi, Hc)
			if !pointsEqual(A, wA) || !pointsEqual(B, wB) {
				t.Fatalf("case %d.%d: A or B differs from kyber's", i, j)
			}
			gerr, werr := c.p.Verify(c.Xi, env, c.Q), refPartialVerify(c.p, c.Xi, env, c.Q)
			if !sameError(gerr, werr) || gerr == nil {
				t.Fatalf("case %d.%d: Verify says %v, kyber says %v (want a refusal)", i, j, gerr, werr)
			}
		}
	}
}

func TestPartialDecryptRefusalsMatchKyber(t *testing.T) {
	rand := detReader("fast partial refusals")
	X := randPoint(t, rand)
	env, err := SealEnvelope(randomSessionKey(t, rand), randContext(t, rand, X, 1), ek(X))
	if err != nil {
		t.Fatal(err)
	}
	xi := randScalar(t, rand)
	var badQs []kyber.Point
	for _, bp := range badPoints(t) {
		Q := group.Point()
		if Q.UnmarshalBinary(bp.enc) == nil {
			badQs = append(badQs, Q)
		}
	}
	badQs = append(badQs, group.Point().Neg(kU(env))) // U+Q is the identity
	for i, Q := range badQs {
		for _, index := range []int{0, 1, 0x10000} {
			_, gerr := PartialDecrypt(index, xi, env, Q, detReader("n"))
			_, werr := refPartialDecrypt(index, xi, env, Q, detReader("n"))
			if !sameError(gerr, werr) || gerr == nil {
				t.Fatalf("bad Q %d, index %d: %v, kyber %v", i, index, gerr, werr)
			}
		}
	}
	if _, err := PartialDecrypt(1, xi, env, randPoint(t, rand), bytes.NewReader(nil)); err == nil {
		t.Fatal("PartialDecrypt without randomness succeeded")
	}
}

func TestInterpolateMatchesRecoverCommit(t *testing.T) {
	rand := detReader("fast interpolate")
	for i := 0; i < fastCases; i++ {
		var n [2]byte
		io.ReadFull(rand, n[:])
		k := 1 + int(n[0])%7
		// Distinct indices, mostly small, sometimes far apart.
		used := map[int]bool{}
		var xs []int
		for len(xs) < k {
			io.ReadFull(rand, n[:])
			x := 1 + int(n[0])%12
			if n[1]%5 == 0 {
				x = 1 + int(binary.LittleEndian.Uint16(n[:]))
			}
			if i%50 == 0 && len(xs) == 0 {
				// A large index is still a valid x-coordinate. (Not much
				// larger: RecoverCommit allocates a slice of the largest
				// index's length, and panics past what fits in memory.)
				x = 1<<20 + i
			}
			if !used[x] {
				used[x] = true
				xs = append(xs, x)
			}
		}
		pub := make([]*share.PubShare, k)
		Vs := make([]*ed.Point, k)
		for j, x := range xs {
			V := randPoint(t, rand)
			pub[j] = &share.PubShare{I: x - 1, V: V}
			Vs[j] = group.ToFilippoPoint(V)
		}
		want, err := share.RecoverCommit(group.Suite(), pub, k, refMaxIndex(pub))
		if err != nil {
			t.Fatal(err)
		}
		got, err := interpolateAtZero(xs, Vs)
		if err != nil {
			t.Fatal(err)
		}
		if !pointsEqual(got, want) {
			t.Fatalf("case %d (x = %v): interpolation differs from share.RecoverCommit", i, xs)
		}
	}
	// An index below 1 leaves fewer than t usable shares for both.
	for _, xs := range [][]int{{0}, {1, 0}, {-3, 2, 5}} {
		pub := make([]*share.PubShare, len(xs))
		Vs := make([]*ed.Point, len(xs))
		for j, x := range xs {
			V := randPoint(t, rand)
			pub[j] = &share.PubShare{I: x - 1, V: V}
			Vs[j] = group.ToFilippoPoint(V)
		}
		_, werr := share.RecoverCommit(group.Suite(), pub, len(xs), len(xs)+5)
		_, gerr := interpolateAtZero(xs, Vs)
		if !sameError(gerr, werr) || gerr == nil {
			t.Fatalf("x = %v: %v, kyber %v", xs, gerr, werr)
		}
	}
}

// TestCombineMatchesKyber runs Combine and the former kyber-only Combine
// over random groups and random mixes of honest, duplicated, forged,
// misaddressed and mislabelled answers, and wants the same result or the
// same error from both.
func TestCombineMatchesKyber(t *testing.T) {
	rand := detReader("fast combine")
	var ok, refused int
	kinds := map[error]int{}
	for i := 0; i < fastCases; i++ {
		var b [8]byte
		io.ReadFull(rand, b[:])
		th := 1 + int(b[0])%4
		n := th + int(b[1])%3
		tg := dealTestGroup(t, th, n, uint32(i), rand)
		K := randomSessionKey(t, rand)
		env := mustSeal(t, tg, K, randContext(t, rand, tg.Key, tg.Epoch))
		req, err := GenerateRequesterKey(rand)
		if err != nil {
			t.Fatal(err)
		}
		var ps []*PartialDecryption
		for _, j := range allTrustees(n) {
			p, err := PartialDecrypt(j, tg.Shares[j], env, req.Public, rand)
			if err != nil {
				t.Fatal(err)
			}
			switch r := b[2+j%6] % 10; {
			case r < 6: // honest
				ps = append(ps, p)
			case r == 6: // honest, delivered twice
				ps = append(ps, p, p)
			case r == 7: // a different second answer
				q, err := PartialDecrypt(j, tg.Shares[j], env, req.Public, rand)
				if err != nil {
					t.Fatal(err)
				}
				ps = append(ps, p, q)
			case r == 8: // the wrong V_i
				q := *p
				q.setV(randPoint(t, rand))
				ps = append(ps, &q)
			case r == 9: // made with another x_i, or for another session, or from nobody
				q, err := PartialDecrypt(j, randScalar(t, rand), env, req.Public, rand)
				if err != nil {
					t.Fatal(err)
				}
				switch b[7] % 3 {
				case 1:
					q.SessionID[3] ^= 0x80
				case 2:
					q.Trustee = n + 1
				}
				ps = append(ps, q)
			}
		}
		// Shuffle deterministically.
		for j := len(ps) - 1; j > 0; j-- {
			var r [1]byte
			io.ReadFull(rand, r[:])
			k := int(r[0]) % (j + 1)
			ps[j], ps[k] = ps[k], ps[j]
		}
		g := tg.Group
		switch b[1] % 11 {
		case 0: // a group file whose public share for one trustee is wrong but matches its answer
			g = cloneGroup(g)
			x := randScalar(t, rand)
			g.PublicShares[1] = group.Point().Mul(x, nil)
			p, err := PartialDecrypt(1, x, env, req.Public, rand)
			if err != nil {
				t.Fatal(err)
			}
			ps = append([]*PartialDecryption{p}, ps...)
		case 1: // another group's key
			g = cloneGroup(g)
			g.Key = randPoint(t, rand)
		case 2: // a threshold of 0
			g = cloneGroup(g)
			g.Threshold = 0
		}
		gres, gerr := Combine(g, env, req, ps)
		wres, werr := refCombine(g, env, req, ps)
		if !sameError(gerr, werr) || !reflect.DeepEqual(gres, wres) {
			t.Fatalf("case %d (%d of %d): Combine gives %+v, %v\nkyber gives %+v, %v", i, th, n, gres, gerr, wres, werr)
		}
		if gerr == nil {
			ok++
			if !bytes.Equal(gres.Key, K) {
				t.Fatalf("case %d: recovered the wrong key", i)
			}
		} else {
			refused++
			for _, e := range []error{ErrInsufficientShares, ErrCombineCheck, ErrBadEnvelope} {
				if errors.Is(gerr, e) {
					kinds[e]++
				}
			}
		}
	}
	if ok < fastCases/4 || refused < fastCases/10 {
		t.Fatalf("%d combined and %d refused: the mix does not exercise both outcomes", ok, refused)
	}
	for _, e := range []error{ErrInsufficientShares, ErrCombineCheck, ErrBadEnvelope} {
		if kinds[e] == 0 {
			t.Errorf("no case was refused with %v", e)
		}
	}
	t.Logf("%d combined, %d refused %v", ok, refused, kinds)
}

// TestCombineIndexZeroMatchesKyber: an answer from a trustee with index 0
// (which no parser or PartialDecrypt produces, but a hand-built group and
// answer can) is ignored by the interpolation, as kyber's RecoverCommit
// ignored it.
func TestCombineIndexZeroMatchesKyber(t *testing.T) {
	rand := detReader("fast combine index 0")
	tg := dealTestGroup(t, 2, 3, 1, rand)
	K := randomSessionKey(t, rand)
	env := mustSeal(t, tg, K, makeContext(tg, "alice", "bob", 1))
	req, err := GenerateRequesterKey(rand)
	if err != nil {
		t.Fatal(err)
	}
	g := cloneGroup(tg.Group)
	x0 := randScalar(t, rand)
	g.PublicShares[0] = group.Point().Mul(x0, nil)
	p0, err := refPartialDecryptAnyIndex(0, x0, env, req.Public, rand)
	if err != nil {
		t.Fatal(err)
	}
	p1, err := PartialDecrypt(1, tg.Shares[1], env, req.Public, rand)
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range [][]*PartialDecryption{{p0, p1}, {p1, p0}} {
		gres, gerr := Combine(g, env, req, ps)
		wres, werr := refCombine(g, env, req, ps)
		if !sameError(gerr, werr) || !reflect.DeepEqual(gres, wres) || gerr == nil {
			t.Fatalf("Combine gives %+v, %v; kyber gives %+v, %v", gres, gerr, wres, werr)
		}
	}
}

func cloneGroup(g *Group) *Group {
	c := *g
	c.PublicShares = map[int]kyber.Point{}
	for i, X := range g.PublicShares {
		c.PublicShares[i] = X
	}
	return &c
}

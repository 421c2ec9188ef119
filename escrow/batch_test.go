package escrow

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	ed "filippo.io/edwards25519"
	"github.com/keyquorum/keyquorum/internal/group"
)

// batchFixture is m envelopes under a dealt t-of-n group, a requester, a
// request id and every trustee's honest batch answer.
type batchFixture struct {
	tg      *testGroup
	Ks      [][]byte
	envs    []*Envelope
	req     *RequesterKey
	id      [16]byte
	answers map[int]*BatchAnswer
}

func newBatchFixture(tb testing.TB, t, n, m int, seed string) *batchFixture {
	tb.Helper()
	rand := detReader(seed)
	f := &batchFixture{tg: dealTestGroup(tb, t, n, 2, rand), answers: map[int]*BatchAnswer{}}
	for j := 0; j < m; j++ {
		K := randomSessionKey(tb, rand)
		ctx := makeContext(f.tg, "alice", "bob", byte(j))
		ctx.SessionID[15] = byte(j >> 8)
		f.Ks = append(f.Ks, K)
		// Parsed, as a trustee and a requester hold them.
		f.envs = append(f.envs, mustParseEnvelope(tb, mustSeal(tb, f.tg, K, ctx).Marshal()))
	}
	var err error
	if f.req, err = GenerateRequesterKey(rand); err != nil {
		tb.Fatal(err)
	}
	rand.Read(f.id[:])
	for i := 1; i <= n; i++ {
		f.answers[i] = f.answer(tb, i, f.id, f.envs)
	}
	return f
}

func (f *batchFixture) answer(tb testing.TB, i int, id [16]byte, envs []*Envelope) *BatchAnswer {
	tb.Helper()
	k, err := NewBatchKey(i, f.tg.Epoch, f.tg.Shares[i])
	if err != nil {
		tb.Fatal(err)
	}
	a, err := PartialDecryptBatch(k, id, envs, f.req.Public, detReader(fmt.Sprint("batch answer ", i)))
	if err != nil {
		tb.Fatalf("trustee %d: %v", i, err)
	}
	return a
}

func (f *batchFixture) combiner(tb testing.TB) *Combiner {
	tb.Helper()
	c, err := NewCombiner(f.tg.Group, f.req)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func (f *batchFixture) pick(trustees ...int) []*BatchAnswer {
	var out []*BatchAnswer
	for _, i := range trustees {
		out = append(out, f.answers[i])
	}
	return out
}

func (f *batchFixture) checkKeys(t *testing.T, res *BatchResult) {
	t.Helper()
	for j, K := range f.Ks {
		if res.Errs[j] != nil || !bytes.Equal(res.Keys[j], K) {
			t.Fatalf("session %d: key %x, error %v; want %x", j, res.Keys[j], res.Errs[j], K)
		}
	}
}

// cloneAnswer copies a through its encoding.
func cloneAnswer(tb testing.TB, a *BatchAnswer) *BatchAnswer {
	tb.Helper()
	c, err := ParseBatchAnswer(a.Marshal())
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// setV replaces V_j of a (a copy) by the point p.
func setV(tb testing.TB, a *BatchAnswer, j int, p *ed.Point) *BatchAnswer {
	c := cloneAnswer(tb, a)
	c.v[j], c.vb[j] = p, p.Bytes()
	return c
}

func TestBatchEverySubset(t *testing.T) {
	for _, tn := range [][2]int{{1, 2}, {2, 3}, {3, 4}, {3, 5}} {
		thr, n := tn[0], tn[1]
		f := newBatchFixture(t, thr, n, 3, fmt.Sprintf("batch subsets %d of %d", thr, n))
		c := f.combiner(t)
		for _, i := range allTrustees(n) {
			if err := f.answers[i].Verify(f.tg.PublicShares[i], f.id, f.envs, f.req.Public); err != nil {
				t.Fatalf("%d of %d: trustee %d's honest answer refused: %v", thr, n, i, err)
			}
		}
		for k := thr; k <= n; k++ {
			for _, set := range subsets(n, k) {
				res, err := c.CombineBatch(f.id, f.envs, f.pick(set...))
				if err != nil {
					t.Fatalf("%d of %d, trustees %v: %v", thr, n, set, err)
				}
				f.checkKeys(t, res)
				if !slices.Equal(res.Used, set[:thr]) || len(res.Bad) != 0 {
					t.Fatalf("%d of %d, trustees %v: used %v, bad %v", thr, n, set, res.Used, res.Bad)
				}
			}
		}
	}
}

// TestBatchMatchesPerSession: every V_j of a batch answer is the V_i the
// per-session PartialDecrypt gives for the same envelope, so the batch
// combines exactly as the independently cross-checked per-session path.
func TestBatchMatchesPerSession(t *testing.T) {
	f := newBatchFixture(t, 2, 3, 4, "batch vs single")
	for i, a := range f.answers {
		for j, env := range f.envs {
			p, err := PartialDecrypt(i, f.tg.Shares[i], env, f.req.Public, detReader("single"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.V(j), group.PointBytes(kV(p))) || a.Sessions[j] != p.SessionID {
				t.Fatalf("trustee %d session %d: batch V %x, single V %x", i, j, a.V(j), group.PointBytes(kV(p)))
			}
		}
	}
}

// TestBatchNamesCheater: a trustee that swaps one V in its batch (another
// session's V, or a wrong point) is named, and the keys still come out from
// the honest trustees.
func TestBatchNamesCheater(t *testing.T) {
	f := newBatchFixture(t, 3, 5, 4, "batch cheater")
	c := f.combiner(t)
	honest := f.answers[2]
	swapped := setV(t, honest, 1, honest.v[2])
	shifted := setV(t, honest, 3, new(ed.Point).Add(honest.v[3], ed.NewGeneratorPoint()))
	for name, bad := range map[string]*BatchAnswer{"another session's V": swapped, "V + G": shifted} {
		t.Run(name, func(t *testing.T) {
			// The cheater is among the first t: the optimistic combine
			// fails, the proofs are checked, trustee 2 is named.
			res, err := c.CombineBatch(f.id, f.envs, []*BatchAnswer{f.answers[1], bad, f.answers[3], f.answers[4]})
			if err != nil {
				t.Fatal(err)
			}
			f.checkKeys(t, res)
			if len(res.Bad) != 1 || res.Bad[0].Trustee != 2 || !reasonIs(res.Bad[0].Reason, ErrBatchProof) {
				t.Fatalf("bad %v, want trustee 2 with a failed proof", res.Bad)
			}
			if !slices.Equal(res.Used, []int{1, 3, 4}) {
				t.Fatalf("used %v", res.Used)
			}
			// Only t answers: no key, the cheater named through errors.As.
			_, err = c.CombineBatch(f.id, f.envs, []*BatchAnswer{f.answers[1], bad, f.answers[3]})
			var bse *BadShareError
			if !errors.Is(err, ErrInsufficientShares) || !errors.As(err, &bse) || bse.Trustee != 2 {
				t.Fatalf("got %v, want ErrInsufficientShares naming trustee 2", err)
			}
			if err := bad.Verify(f.tg.PublicShares[2], f.id, f.envs, f.req.Public); !errors.Is(err, ErrBatchProof) {
				t.Fatalf("Verify: got %v, want ErrBatchProof", err)
			}
		})
	}
}

func reasonIs(reason string, err error) bool { return reason == err.Error() }

// TestBatchBinding: an answer made for another request id, trustee index,
// epoch or order of sessions is refused with the specific error, by Verify
// and by CombineBatch (which names the trustee).
func TestBatchBinding(t *testing.T) {
	f := newBatchFixture(t, 2, 3, 3, "batch binding")
	c := f.combiner(t)
	otherID := f.id
	otherID[0] ^= 1
	forOther := f.answer(t, 1, otherID, f.envs)
	relabelledID := cloneAnswer(t, forOther)
	relabelledID.RequestID = f.id
	asTrustee2 := cloneAnswer(t, f.answers[1])
	asTrustee2.Trustee = 2
	otherEpoch := cloneAnswer(t, f.answers[1])
	otherEpoch.Epoch++
	reversed := []*Envelope{f.envs[2], f.envs[1], f.envs[0]}
	forReversed := f.answer(t, 1, f.id, reversed)
	relabelledOrder := cloneAnswer(t, forReversed)
	relabelledOrder.Sessions = f.answers[1].Sessions
	vOnlyReordered := cloneAnswer(t, f.answers[1])
	vOnlyReordered.v[0], vOnlyReordered.v[1] = vOnlyReordered.v[1], vOnlyReordered.v[0]
	vOnlyReordered.vb[0], vOnlyReordered.vb[1] = vOnlyReordered.vb[1], vOnlyReordered.vb[0]

	for _, tc := range []struct {
		name    string
		a       *BatchAnswer
		xi      int // whose public share Verify uses
		want    error
		trustee int
		opens   bool // its values are right: CombineBatch confirms the keys without the proof
	}{
		{"answer to another request", forOther, 1, ErrBatchMismatch, 1, false},
		{"proof for another request id, relabelled", relabelledID, 1, ErrBatchProof, 1, true},
		{"trustee 1's answer relabelled as trustee 2", asTrustee2, 2, ErrBatchProof, 2, false},
		{"answer relabelled to another epoch", otherEpoch, 1, ErrBatchMismatch, 1, false},
		{"answer for the sessions in another order", forReversed, 1, ErrBatchMismatch, 1, false},
		{"proof for another order, sessions relabelled", relabelledOrder, 1, ErrBatchProof, 1, false},
		{"two V swapped", vOnlyReordered, 1, ErrBatchProof, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.a.Verify(f.tg.PublicShares[tc.xi], f.id, f.envs, f.req.Public); !errors.Is(err, tc.want) {
				t.Fatalf("Verify: got %v, want %v", err, tc.want)
			}
			if tc.opens {
				// The optimistic combine checks no proof, but a key comes
				// out only confirmed, and these values are right.
				res, err := c.CombineBatch(f.id, f.envs, []*BatchAnswer{tc.a, f.answers[3]})
				if err != nil {
					t.Fatal(err)
				}
				f.checkKeys(t, res)
				return
			}
			// With only this answer and t−1 honest ones, no key and the
			// trustee named.
			honest := f.answers[3]
			_, err := c.CombineBatch(f.id, f.envs, []*BatchAnswer{tc.a, honest})
			var bse *BadShareError
			if !errors.Is(err, ErrInsufficientShares) || !errors.As(err, &bse) || bse.Trustee != tc.trustee {
				t.Fatalf("CombineBatch: got %v, want ErrInsufficientShares naming trustee %d", err, tc.trustee)
			}
		})
	}
	// The requester's envelopes in another order than the answers: refused.
	if err := f.answers[1].Verify(f.tg.PublicShares[1], f.id, reversed, f.req.Public); !errors.Is(err, ErrBatchMismatch) {
		t.Fatalf("reordered request: got %v, want ErrBatchMismatch", err)
	}
}

func TestBatchRefusals(t *testing.T) {
	f := newBatchFixture(t, 2, 3, 2, "batch refusals")
	c := f.combiner(t)
	for _, idx := range []int{0, -1, 0x10000} {
		if _, err := NewBatchKey(idx, f.tg.Epoch, f.tg.Shares[1]); err == nil {
			t.Errorf("trustee index %d accepted", idx)
		}
	}
	k, err := NewBatchKey(1, f.tg.Epoch, f.tg.Shares[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PartialDecryptBatch(k, f.id, nil, f.req.Public, detReader("r")); err == nil {
		t.Error("empty batch answered")
	}
	// Q = −U_1 makes U_1+Q the identity: refused before any answer.
	negU := group.Point().Neg(kU(f.envs[1]))
	if _, err := PartialDecryptBatch(k, f.id, f.envs, negU, detReader("r")); !errors.Is(err, ErrIdentityBase) {
		t.Errorf("U+Q = identity: got %v, want ErrIdentityBase", err)
	}
	// A requester key with a torsion component would leak x_i mod 8.
	for _, bp := range badPoints(t) {
		Q := group.Point()
		if Q.UnmarshalBinary(bp.enc) != nil {
			continue // kyber cannot even hold it
		}
		if _, err := PartialDecryptBatch(k, f.id, f.envs, Q, detReader("r")); !errors.Is(err, bp.want) {
			t.Errorf("Q %s: got %v, want %v", bp.name, err, bp.want)
		}
	}
	wrongEpoch, err := NewBatchKey(1, f.tg.Epoch+1, f.tg.Shares[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PartialDecryptBatch(wrongEpoch, f.id, f.envs, f.req.Public, detReader("r")); !errors.Is(err, ErrBatchMismatch) {
		t.Errorf("key of another epoch: got %v, want ErrBatchMismatch", err)
	}
	// Duplicates: the same answer twice counts once, a different second
	// answer from one trustee is named.
	res, err := c.CombineBatch(f.id, f.envs, f.pick(1, 1, 2))
	if err != nil || len(res.Bad) != 0 {
		t.Fatalf("duplicate identical answer: %v, bad %v", err, res.Bad)
	}
	again := f.answer(t, 1, f.id, f.envs)
	again.proof.z = ed.NewScalar().Add(again.proof.z, group.FilippoScalarFromInt(1))
	res, err = c.CombineBatch(f.id, f.envs, []*BatchAnswer{f.answers[1], again, f.answers[2]})
	if err != nil || len(res.Bad) != 1 || res.Bad[0].Trustee != 1 {
		t.Fatalf("two different answers from trustee 1: %v, bad %v", err, res.Bad)
	}
	// Unknown trustee.
	stranger := cloneAnswer(t, f.answers[1])
	stranger.Trustee = 9
	res, err = c.CombineBatch(f.id, f.envs, []*BatchAnswer{stranger, f.answers[2], f.answers[3]})
	if err != nil || len(res.Bad) != 1 || res.Bad[0].Trustee != 9 {
		t.Fatalf("unknown trustee: %v, bad %v", err, res.Bad)
	}
	// An envelope of another group key is refused before any arithmetic.
	other := dealTestGroup(t, 2, 3, 2, detReader("other group"))
	foreign := mustSeal(t, other, f.Ks[0], makeContext(other, "alice", "bob", 0))
	if _, err := c.CombineBatch(f.id, []*Envelope{foreign}, f.pick(1, 2)); err == nil {
		t.Error("envelope of another group key combined")
	}
	// Wrong public shares in the group file: the proofs fail against them,
	// but right values still open every envelope (keys are confirmed by
	// opening, not by proofs).
	g := cloneGroup(f.tg.Group)
	g.PublicShares[1], g.PublicShares[2] = g.PublicShares[2], g.PublicShares[1]
	if err := f.answers[1].Verify(g.PublicShares[1], f.id, f.envs, f.req.Public); !errors.Is(err, ErrBatchProof) {
		t.Fatalf("swapped public shares: Verify got %v, want ErrBatchProof", err)
	}
	wrong, err := NewCombiner(g, f.req)
	if err != nil {
		t.Fatal(err)
	}
	res, err = wrong.CombineBatch(f.id, f.envs, f.pick(1, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	f.checkKeys(t, res)
}

// TestBatchUnopenableEnvelope: an envelope no answer can open (its
// ciphertext altered after the trustees answered) fails alone, with
// ErrCombineCheck, after every proof was checked; the others open.
func TestBatchUnopenableEnvelope(t *testing.T) {
	f := newBatchFixture(t, 2, 3, 3, "batch unopenable")
	c := f.combiner(t)
	envs := slices.Clone(f.envs)
	altered := *envs[1]
	altered.C = bytes.Clone(altered.C)
	altered.C[0] ^= 1
	envs[1] = &altered
	res, err := c.CombineBatch(f.id, envs, f.pick(1, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res.Errs[1], ErrCombineCheck) || res.Keys[1] != nil {
		t.Fatalf("altered envelope: key %x, error %v", res.Keys[1], res.Errs[1])
	}
	for _, j := range []int{0, 2} {
		if res.Errs[j] != nil || !bytes.Equal(res.Keys[j], f.Ks[j]) {
			t.Fatalf("session %d: %v", j, res.Errs[j])
		}
	}
	if len(res.Bad) != 0 {
		t.Fatalf("honest trustees named: %v", res.Bad)
	}
}

// TestBatchWrongRequester: answers re-encrypted to another requester key
// open nothing for this requester, and every proof fails against its Q.
func TestBatchWrongRequester(t *testing.T) {
	f := newBatchFixture(t, 2, 3, 2, "batch wrong requester")
	other, err := GenerateRequesterKey(detReader("other requester"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCombiner(f.tg.Group, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CombineBatch(f.id, f.envs, f.pick(1, 2, 3)); !errors.Is(err, ErrInsufficientShares) {
		t.Fatalf("got %v, want ErrInsufficientShares", err)
	}
}

func TestBatchAnswerRoundTrip(t *testing.T) {
	f := newBatchFixture(t, 2, 3, 3, "batch round trip")
	for i, a := range f.answers {
		b := a.Marshal()
		p, err := ParseBatchAnswer(b)
		if err != nil {
			t.Fatalf("trustee %d: %v", i, err)
		}
		if p.Trustee != a.Trustee || p.Epoch != a.Epoch || p.RequestID != a.RequestID ||
			!slices.Equal(p.Sessions, a.Sessions) || !slices.EqualFunc(p.vb, a.vb, bytes.Equal) ||
			p.proof.c.Equal(a.proof.c) != 1 || p.proof.z.Equal(a.proof.z) != 1 {
			t.Fatalf("trustee %d: parse(marshal(x)) != x", i)
		}
		if !bytes.Equal(p.Marshal(), b) {
			t.Fatalf("trustee %d: marshal(parse(b)) != b", i)
		}
		if err := p.Verify(f.tg.PublicShares[i], f.id, f.envs, f.req.Public); err != nil {
			t.Fatalf("trustee %d: parsed answer refused: %v", i, err)
		}
	}
}

func TestParseBatchAnswerRefusals(t *testing.T) {
	f := newBatchFixture(t, 2, 3, 2, "batch parse refusals")
	good := f.answers[1].Marshal()
	set := func(off int, v ...byte) []byte {
		b := bytes.Clone(good)
		copy(b[off:], v)
		return b
	}
	vOff := batchHeaderLen + 16
	cases := map[string][]byte{
		"empty":          nil,
		"truncated":      good[:len(good)-1],
		"trailing byte":  append(bytes.Clone(good), 0),
		"version 2":      set(0, 2),
		"trustee 0":      set(1, 0, 0),
		"count 0":        set(23, 0, 0, 0, 0),
		"count too big":  set(23, 0xff, 0xff, 0xff, 0xff),
		"count one more": set(23, 0, 0, 0, 3),
		"c not reduced":  set(len(good)-64, bytes.Repeat([]byte{0xff}, 32)...),
		"z not reduced":  set(len(good)-32, bytes.Repeat([]byte{0xff}, 32)...),
	}
	for _, bp := range badPoints(t) {
		if bp.want != group.ErrNotInSubgroup { // deferred: see TestBatchTorsionV
			cases["V "+bp.name] = set(vOff, bp.enc...)
		}
	}
	for name, b := range cases {
		if _, err := ParseBatchAnswer(b); !errors.Is(err, ErrBadBatch) {
			t.Errorf("%s: got %v, want ErrBadBatch", name, err)
		}
	}
	for _, bp := range badPoints(t) {
		if bp.want == group.ErrNotInSubgroup {
			continue
		}
		if _, err := ParseBatchAnswer(set(vOff, bp.enc...)); !errors.Is(err, bp.want) {
			t.Errorf("V %s: got %v, want %v", bp.name, err, bp.want)
		}
	}
}

// TestBatchTorsionV: a V_j with a torsion component parses (the subgroup
// check is deferred), is refused by Verify with ErrNotInSubgroup, and a
// trustee that sends one among the first t is named by CombineBatch, which
// still recovers every key from honest answers.
func TestBatchTorsionV(t *testing.T) {
	f := newBatchFixture(t, 3, 5, 3, "batch torsion")
	c := f.combiner(t)
	var torsioned []byte
	for _, bp := range badPoints(t) {
		if bp.want == group.ErrNotInSubgroup {
			torsioned = bp.enc
		}
	}
	T, err := new(ed.Point).SetBytes(torsioned)
	if err != nil {
		t.Fatal(err)
	}
	// V_1 + (torsioned − genuine): the torsion component of the bad point.
	genuine := new(ed.Point).ScalarBaseMult(group.HashToFilippoScalar("keyquorum/test/genuine"))
	T.Subtract(T, genuine)
	enc := f.answers[2].Marshal()
	off := batchHeaderLen + batchEntryLen + 16 // V of session 1
	copy(enc[off:], new(ed.Point).Add(f.answers[2].v[1], T).Bytes())
	bad, err := ParseBatchAnswer(enc)
	if err != nil {
		t.Fatalf("torsioned V refused at parse: %v", err)
	}
	if err := bad.Verify(f.tg.PublicShares[2], f.id, f.envs, f.req.Public); !errors.Is(err, group.ErrNotInSubgroup) || !errors.Is(err, ErrBadBatch) {
		t.Fatalf("Verify: got %v, want ErrBadBatch wrapping ErrNotInSubgroup", err)
	}
	res, err := c.CombineBatch(f.id, f.envs, []*BatchAnswer{f.answers[1], bad, f.answers[3], f.answers[4]})
	if err != nil {
		t.Fatal(err)
	}
	f.checkKeys(t, res)
	if len(res.Bad) != 1 || res.Bad[0].Trustee != 2 || !slices.Equal(res.Used, []int{1, 3, 4}) {
		t.Fatalf("bad %v, used %v; want trustee 2 named", res.Bad, res.Used)
	}
}

func FuzzParseBatchAnswer(f *testing.F) {
	bf := newBatchFixture(f, 2, 3, 2, "batch fuzz seeds")
	for _, a := range bf.answers {
		f.Add(a.Marshal())
	}
	f.Add([]byte{})
	f.Add([]byte{batchVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseBatchAnswer(b)
		if err != nil {
			return
		}
		if got := a.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("malleable batch answer encoding: %x re-encodes as %x", b, got)
		}
		again, err := ParseBatchAnswer(a.Marshal())
		if err != nil || !bytes.Equal(again.Marshal(), b) {
			t.Fatalf("re-parse: %v", err)
		}
		// Must not panic, whatever the request.
		_ = a.Verify(bf.tg.PublicShares[1], bf.id, bf.envs, bf.req.Public)
	})
}

// TestCombinerCombine: the optimistic per-session combine recovers K from
// every subset of at least t honest answers, names a cheater among the
// first t, refuses answers for another session or from strangers, and
// agrees with Combine on whether a key comes out and which.
func TestCombinerCombine(t *testing.T) {
	f := newCombineFixture(t, 3, 5, "combiner combine")
	c, err := NewCombiner(f.tg.Group, f.req)
	if err != nil {
		t.Fatal(err)
	}
	for k := 3; k <= 5; k++ {
		for _, set := range subsets(5, k) {
			res, err := c.Combine(f.env, answersOf(f.answers, set))
			if err != nil || !bytes.Equal(res.Key, f.K) || !slices.Equal(res.Used, set[:3]) || len(res.Bad) != 0 {
				t.Fatalf("trustees %v: %+v, %v", set, res, err)
			}
		}
	}
	other := mustSeal(t, f.tg, randomSessionKey(t, detReader("other K")), makeContext(f.tg, "dave", "erin", 0x99))
	wrongSession := partialsFor(t, f.tg, other, f.req.Public, []int{4}, detReader("other answers"))[0]
	relabelled := *wrongSession
	relabelled.SessionID = f.env.Context.SessionID
	stranger := *f.answers[1]
	stranger.Trustee = 9
	for _, tc := range []struct {
		name string
		ps   []*PartialDecryption
		bad  []int
		used []int
	}{
		{"tampered V first", []*PartialDecryption{tamperV(f.answers[2]), f.answers[1], f.answers[3], f.answers[5]}, []int{2}, []int{1, 3, 5}},
		{"answer for another session", []*PartialDecryption{wrongSession, f.answers[1], f.answers[2], f.answers[3]}, []int{4}, []int{1, 2, 3}},
		{"another session's answer relabelled", []*PartialDecryption{&relabelled, f.answers[1], f.answers[2], f.answers[3]}, []int{4}, []int{1, 2, 3}},
		{"stranger", []*PartialDecryption{&stranger, f.answers[1], f.answers[2], f.answers[3]}, []int{9}, []int{1, 2, 3}},
		{"duplicate", []*PartialDecryption{f.answers[1], f.answers[1], f.answers[2], f.answers[3]}, nil, []int{1, 2, 3}},
	} {
		res, err := c.Combine(f.env, tc.ps)
		if err != nil || !bytes.Equal(res.Key, f.K) || !slices.Equal(badTrustees(res), tc.bad) || !slices.Equal(res.Used, tc.used) {
			t.Fatalf("%s: %+v, %v; want bad %v used %v", tc.name, res, err, tc.bad, tc.used)
		}
	}
	// Only t answers, one of them bad: no key, the cheater named.
	_, err = c.Combine(f.env, []*PartialDecryption{f.answers[1], tamperV(f.answers[2]), f.answers[3]})
	var bse *BadShareError
	if !errors.Is(err, ErrInsufficientShares) || !errors.As(err, &bse) || bse.Trustee != 2 {
		t.Fatalf("got %v, want ErrInsufficientShares naming trustee 2", err)
	}
	// Answers re-encrypted to another requester open nothing.
	otherReq, err := GenerateRequesterKey(detReader("other requester"))
	if err != nil {
		t.Fatal(err)
	}
	oc, err := NewCombiner(f.tg.Group, otherReq)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oc.Combine(f.env, answersOf(f.answers, []int{1, 2, 3})); !errors.Is(err, ErrInsufficientShares) {
		t.Fatalf("other requester: got %v", err)
	}
	// An envelope of another epoch is refused outright.
	tg2 := dealTestGroup(t, 3, 5, 9, detReader("epoch 9"))
	if _, err := c.Combine(mustSeal(t, tg2, f.K, makeContext(tg2, "alice", "bob", 1)), answersOf(f.answers, []int{1, 2, 3})); err == nil {
		t.Fatal("envelope of another epoch combined")
	}
	// Agreement with Combine on random mixes of good and bad answers:
	// whenever Combine recovers K, so does Combiner.Combine, and whatever
	// Combiner.Combine returns is K. (It can recover K where Combine
	// refuses: wrong answers whose errors cancel in the interpolation, as
	// V_1+G and V_2+G do for trustees {1, 2, 3}, where λ_1 + λ_2 = 0, still
	// open the envelope, and the key is confirmed by opening.)
	rand := detReader("combiner vs combine")
	for i := 0; i < 60; i++ {
		var ps []*PartialDecryption
		var b [6]byte
		rand.Read(b[:])
		for j := 1; j <= 5; j++ {
			switch b[j] % 4 {
			case 0, 1:
				ps = append(ps, f.answers[j])
			case 2:
				ps = append(ps, tamperV(f.answers[j]))
			}
		}
		want, werr := Combine(f.tg.Group, f.env, f.req, ps)
		got, gerr := c.Combine(f.env, ps)
		if (werr == nil && gerr != nil) || (gerr == nil && !bytes.Equal(got.Key, f.K)) || (werr == nil && !bytes.Equal(want.Key, got.Key)) {
			t.Fatalf("case %d: Combine %v, %v; Combiner.Combine %v, %v", i, want, werr, got, gerr)
		}
	}
}

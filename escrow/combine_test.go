package escrow

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/share"
)

// lagrangeAtZero interpolates the answers' V_i at 0 with no check at all.
func lagrangeAtZero(tb testing.TB, ps []*PartialDecryption) kyber.Point {
	tb.Helper()
	pub := make([]*share.PubShare, len(ps))
	for i, p := range ps {
		pub[i] = &share.PubShare{I: p.Trustee - 1, V: kV(p)}
	}
	V, err := share.RecoverCommit(group.Suite(), pub, len(pub), len(pub))
	if err != nil {
		tb.Fatal(err)
	}
	return V
}

// combineFixture is one envelope under a dealt group, with every trustee's
// honest answer for one requester.
type combineFixture struct {
	tg      *testGroup
	K       []byte
	env     *Envelope
	req     *RequesterKey
	answers map[int]*PartialDecryption
}

func newCombineFixture(tb testing.TB, t, n int, seed string) *combineFixture {
	tb.Helper()
	rand := detReader(seed)
	f := &combineFixture{tg: dealTestGroup(tb, t, n, 2, rand)}
	f.K = randomSessionKey(tb, rand)
	f.env = mustSeal(tb, f.tg, f.K, makeContext(f.tg, "alice", "bob", 0x42))
	var err error
	if f.req, err = GenerateRequesterKey(rand); err != nil {
		tb.Fatal(err)
	}
	f.answers = map[int]*PartialDecryption{}
	for _, p := range partialsFor(tb, f.tg, f.env, f.req.Public, allTrustees(n), rand) {
		f.answers[p.Trustee] = p
	}
	return f
}

func TestCombineEverySubset3of5(t *testing.T) {
	f := newCombineFixture(t, 3, 5, "every subset 3 of 5")
	for k := 3; k <= 5; k++ {
		for _, set := range subsets(5, k) {
			res, err := Combine(f.tg.Group, f.env, f.req, answersOf(f.answers, set))
			if err != nil {
				t.Fatalf("trustees %v: %v", set, err)
			}
			if !bytes.Equal(res.Key, f.K) {
				t.Fatalf("trustees %v recovered %x, want %x", set, res.Key, f.K)
			}
			if len(res.Used) != 3 || len(res.Bad) != 0 {
				t.Fatalf("trustees %v: used %v, bad %v", set, res.Used, res.Bad)
			}
		}
	}
	for _, set := range subsets(5, 2) {
		res, err := Combine(f.tg.Group, f.env, f.req, answersOf(f.answers, set))
		if !errors.Is(err, ErrInsufficientShares) || res != nil {
			t.Fatalf("trustees %v (below threshold): got %v, %v; want nil, ErrInsufficientShares", set, res, err)
		}
	}
}

func TestCombineThresholds(t *testing.T) {
	for _, th := range []int{1, 2, 3, 5} {
		t.Run(fmt.Sprintf("t=%d,n=5", th), func(t *testing.T) {
			f := newCombineFixture(t, th, 5, fmt.Sprint("thresholds ", th))
			for _, set := range subsets(5, th) {
				res, err := Combine(f.tg.Group, f.env, f.req, answersOf(f.answers, set))
				if err != nil || !bytes.Equal(res.Key, f.K) {
					t.Fatalf("trustees %v: err %v", set, err)
				}
				if !slices.Equal(res.Used, set) {
					t.Fatalf("trustees %v: Used = %v", set, res.Used)
				}
			}
			for _, set := range subsets(5, th-1) {
				res, err := Combine(f.tg.Group, f.env, f.req, answersOf(f.answers, set))
				if !errors.Is(err, ErrInsufficientShares) || res != nil {
					t.Fatalf("trustees %v (t−1 answers): got %v, %v; want nil, ErrInsufficientShares", set, res, err)
				}
			}
		})
	}
}

// tamperV returns a copy of p whose V_i is another valid point (V_i + G),
// keeping the proof: a trustee answering with a wrong share.
func tamperV(p *PartialDecryption) *PartialDecryption {
	q := *p
	q.setV(group.Point().Add(kV(p), group.Base()))
	return &q
}

func badTrustees(res *Result) []int {
	var out []int
	for _, b := range res.Bad {
		out = append(out, b.Trustee)
	}
	return out
}

func TestCombineNamesBadTrustee(t *testing.T) {
	f := newCombineFixture(t, 3, 5, "names bad trustee")
	// Trustee 4's answer for another session (an honest proof, but not for
	// this envelope).
	other := mustSeal(t, f.tg, randomSessionKey(t, detReader("other K")), makeContext(f.tg, "dave", "erin", 0x99))
	wrongSession := partialsFor(t, f.tg, other, f.req.Public, []int{4}, detReader("other answers"))[0]
	relabelled := *wrongSession
	relabelled.SessionID = f.env.Context.SessionID

	// The wrong share arrives through the wire format too: splice V_i + G
	// into trustee 2's encoded answer.
	enc := f.answers[2].Marshal()
	copy(enc[19:51], group.PointBytes(group.Point().Add(kV(f.answers[2]), group.Base())))
	wireBad, err := ParsePartialDecryption(enc)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		bad  *PartialDecryption
		at   int
	}{
		{"V replaced by another point", tamperV(f.answers[2]), 2},
		{"V replaced on the wire", wireBad, 2},
		{"answer for another session", wrongSession, 4},
		{"answer for another session, relabelled", &relabelled, 4},
	}
	for _, c := range cases {
		var ps []*PartialDecryption
		for _, i := range allTrustees(5) {
			if i == c.at {
				ps = append(ps, c.bad)
			} else {
				ps = append(ps, f.answers[i])
			}
		}
		res, err := Combine(f.tg.Group, f.env, f.req, ps)
		if err != nil {
			t.Fatalf("%s: combine with 4 good answers failed: %v", c.name, err)
		}
		if !bytes.Equal(res.Key, f.K) {
			t.Fatalf("%s: wrong key", c.name)
		}
		if got := badTrustees(res); !slices.Equal(got, []int{c.at}) {
			t.Errorf("%s: Bad names %v, want [%d]", c.name, got, c.at)
		}
		if slices.Contains(res.Used, c.at) {
			t.Errorf("%s: the bad trustee's share was used: %v", c.name, res.Used)
		}
		if len(res.Used) != 3 {
			t.Errorf("%s: used %v, want 3 trustees", c.name, res.Used)
		}
	}

	// t−1 valid answers and one bad: no key, and the bad trustee is named.
	for _, c := range cases {
		ps := []*PartialDecryption{f.answers[1], c.bad, f.answers[5]}
		res, err := Combine(f.tg.Group, f.env, f.req, ps)
		if res != nil || !errors.Is(err, ErrInsufficientShares) {
			t.Fatalf("%s with 2 valid: got %v, %v; want nil, ErrInsufficientShares", c.name, res, err)
		}
		var bse *BadShareError
		if !errors.As(err, &bse) {
			t.Fatalf("%s with 2 valid: errors.As found no *BadShareError in %v", c.name, err)
		}
		if bse.Trustee != c.at {
			t.Errorf("%s with 2 valid: BadShareError names trustee %d, want %d", c.name, bse.Trustee, c.at)
		}
	}
}

func TestCombineDuplicateAnswers(t *testing.T) {
	f := newCombineFixture(t, 3, 5, "duplicates")
	// One trustee answering three times is one answer, not three; an
	// identical resend (a retried request) is not held against it.
	res, err := Combine(f.tg.Group, f.env, f.req, answersOf(f.answers, []int{1, 1, 1}))
	if res != nil || !errors.Is(err, ErrInsufficientShares) {
		t.Fatalf("trustee 1 three times: got %v, %v; want ErrInsufficientShares", res, err)
	}
	var bse *BadShareError
	if errors.As(err, &bse) {
		t.Fatalf("trustee 1 resending the same answer was blamed: %v", err)
	}
	res, err = Combine(f.tg.Group, f.env, f.req, answersOf(f.answers, []int{1, 2, 1, 2}))
	if res != nil || !errors.Is(err, ErrInsufficientShares) {
		t.Fatalf("trustees 1,2,1,2: got %v, %v; want ErrInsufficientShares", res, err)
	}
	// With enough distinct trustees an identical resend is simply ignored.
	res, err = Combine(f.tg.Group, f.env, f.req, answersOf(f.answers, []int{3, 3, 4, 5}))
	if err != nil || !bytes.Equal(res.Key, f.K) {
		t.Fatalf("trustees 3,3,4,5: %v", err)
	}
	if len(res.Bad) != 0 || !slices.Equal(res.Used, []int{3, 4, 5}) {
		t.Errorf("trustees 3,3,4,5: used %v, bad %v", res.Used, res.Bad)
	}
	// A second, different answer from the same trustee (a fresh-nonce
	// proof) still counts once, and is named.
	again := partialsFor(t, f.tg, f.env, f.req.Public, []int{1}, detReader("dup again"))[0]
	res, err = Combine(f.tg.Group, f.env, f.req, []*PartialDecryption{f.answers[1], again, f.answers[2]})
	if res != nil || !errors.Is(err, ErrInsufficientShares) {
		t.Fatalf("trustee 1 twice with distinct proofs: got %v, %v", res, err)
	}
	if !errors.As(err, &bse) || bse.Trustee != 1 {
		t.Fatalf("trustee 1 with two different answers: want a BadShareError for trustee 1, got %v", err)
	}
}

func TestCombineUnknownTrustee(t *testing.T) {
	f := newCombineFixture(t, 3, 5, "unknown trustee")
	// An answer from index 9, correctly proved for some share, but 9 is
	// not in the group.
	x9, err := group.RandomScalar(detReader("x9"))
	if err != nil {
		t.Fatal(err)
	}
	p9, err := PartialDecrypt(9, x9, f.env, f.req.Public, detReader("p9"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p9.Verify(group.Point().Mul(x9, nil), f.env, f.req.Public); err != nil {
		t.Fatalf("test setup: p9 does not verify for its own share: %v", err)
	}
	res, err := Combine(f.tg.Group, f.env, f.req, []*PartialDecryption{f.answers[1], p9, f.answers[2]})
	if res != nil || !errors.Is(err, ErrInsufficientShares) {
		t.Fatalf("2 valid + unknown: got %v, %v; want ErrInsufficientShares", res, err)
	}
	var bse *BadShareError
	if !errors.As(err, &bse) || bse.Trustee != 9 {
		t.Fatalf("2 valid + unknown: want a BadShareError for trustee 9, got %v", err)
	}
	res, err = Combine(f.tg.Group, f.env, f.req, []*PartialDecryption{f.answers[1], p9, f.answers[2], f.answers[3]})
	if err != nil || !bytes.Equal(res.Key, f.K) || !slices.Equal(badTrustees(res), []int{9}) {
		t.Fatalf("3 valid + unknown: res %+v, err %v", res, err)
	}
	// A trustee that claims another trustee's index with its own share.
	impostor, err := PartialDecrypt(3, f.tg.Shares[4], f.env, f.req.Public, detReader("impostor"))
	if err != nil {
		t.Fatal(err)
	}
	res, err = Combine(f.tg.Group, f.env, f.req, []*PartialDecryption{f.answers[1], f.answers[2], impostor})
	if res != nil || !errors.Is(err, ErrInsufficientShares) || !errors.As(err, &bse) || bse.Trustee != 3 {
		t.Fatalf("impostor using index 3: got %v, %v", res, err)
	}
}

func TestCombineWrongRequester(t *testing.T) {
	f := newCombineFixture(t, 3, 5, "wrong requester")
	// Answers re-encrypted to Q are useless to the holder of another key,
	// and Combine says which answers failed rather than returning junk.
	other, err := GenerateRequesterKey(detReader("other requester"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Combine(f.tg.Group, f.env, other, answersOf(f.answers, allTrustees(5)))
	if res != nil || !errors.Is(err, ErrInsufficientShares) {
		t.Fatalf("answers for Q combined by another requester: got %v, %v", res, err)
	}
	// An eavesdropper interpolating the answers gets S + q·X_e, which does
	// not open the envelope.
	V := lagrangeAtZero(t, answersOf(f.answers, []int{1, 2, 3}))
	if _, err := openWithS(f.env, V, f.tg.Key); !errors.Is(err, ErrCombineCheck) {
		t.Fatalf("V without removing q·X_e opened the envelope: %v", err)
	}
}

func TestCombineWrongPublicShares(t *testing.T) {
	f := newCombineFixture(t, 3, 5, "wrong public shares")
	// A group file whose key is X_e but whose public shares belong to
	// another polynomial: every proof verifies against those shares, yet the
	// result does not open the envelope. Combine must say so, not return a key.
	rogue := dealTestGroup(t, 3, 5, 2, detReader("rogue shares"))
	g := &Group{Epoch: f.tg.Epoch, Key: f.tg.Key, Threshold: 3, PublicShares: rogue.PublicShares}
	ps := partialsFor(t, rogue, f.env, f.req.Public, []int{1, 2, 3}, detReader("rogue answers"))
	res, err := Combine(g, f.env, f.req, ps)
	if res != nil || !errors.Is(err, ErrCombineCheck) {
		t.Fatalf("got %v, %v; want nil, ErrCombineCheck", res, err)
	}
}

func TestCombineRefusals(t *testing.T) {
	f := newCombineFixture(t, 3, 5, "combine refusals")
	bad := *f.tg.Group
	bad.Threshold = 0
	if _, err := Combine(&bad, f.env, f.req, answersOf(f.answers, allTrustees(5))); err == nil {
		t.Error("threshold 0 accepted")
	}
	if res, err := Combine(f.tg.Group, f.env, f.req, nil); res != nil || !errors.Is(err, ErrInsufficientShares) {
		t.Errorf("no answers: got %v, %v", res, err)
	}
	// An envelope from another group: refused before any answer is used.
	other := dealTestGroup(t, 3, 5, 2, detReader("combine refusals other"))
	envOther := mustSeal(t, other, f.K, makeContext(other, "alice", "bob", 1))
	if _, err := Combine(f.tg.Group, envOther, f.req, answersOf(f.answers, allTrustees(5))); !errors.Is(err, ErrBadEnvelope) {
		t.Errorf("envelope under another group key: got %v, want ErrBadEnvelope", err)
	}
}

func TestPartialDecryptionRoundTrip(t *testing.T) {
	f := newCombineFixture(t, 2, 3, "partial round trip")
	for i, p := range f.answers {
		b := p.Marshal()
		if len(b) != PartialLen {
			t.Fatalf("trustee %d: %d bytes, want %d", i, len(b), PartialLen)
		}
		q, err := ParsePartialDecryption(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(q.Marshal(), b) || q.Trustee != i || q.SessionID != p.SessionID || !kV(q).Equal(kV(p)) {
			t.Fatalf("trustee %d: round trip changed the answer", i)
		}
		if err := q.Verify(f.tg.PublicShares[i], f.env, f.req.Public); err != nil {
			t.Fatalf("trustee %d: parsed answer does not verify: %v", i, err)
		}
		// The proof is bound to the trustee index.
		r := *q
		r.Trustee = i%3 + 1
		if err := r.Verify(f.tg.PublicShares[i], f.env, f.req.Public); err == nil {
			t.Errorf("trustee %d's proof verifies under index %d", i, r.Trustee)
		}
	}
}

func TestParsePartialDecryptionRefusals(t *testing.T) {
	f := newCombineFixture(t, 2, 3, "partial refusals")
	good := f.answers[1].Marshal()
	for _, bp := range badPoints(t) {
		b := append([]byte(nil), good...)
		copy(b[19:51], bp.enc)
		_, err := ParsePartialDecryption(b)
		if !errors.Is(err, ErrBadPartial) || !errors.Is(err, bp.want) {
			t.Errorf("V_i = %s: got %v, want ErrBadPartial wrapping %v", bp.name, err, bp.want)
		}
	}
	l := []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		in   []byte
		also error
	}{
		{"empty", nil, nil},
		{"short", good[:len(good)-1], nil},
		{"trailing byte", append(append([]byte(nil), good...), 0), nil},
		{"version 2", mod(func(b []byte) []byte { b[0] = 2; return b }), nil},
		{"trustee 0", mod(func(b []byte) []byte { b[1], b[2] = 0, 0; return b }), nil},
		{"c = l", mod(func(b []byte) []byte { copy(b[51:83], l); return b }), group.ErrNonCanonical},
		{"z = l", mod(func(b []byte) []byte { copy(b[83:115], l); return b }), group.ErrNonCanonical},
	}
	for _, c := range cases {
		_, err := ParsePartialDecryption(c.in)
		if !errors.Is(err, ErrBadPartial) {
			t.Errorf("%s: got %v, want ErrBadPartial", c.name, err)
		}
		if c.also != nil && !errors.Is(err, c.also) {
			t.Errorf("%s: got %v, want it to wrap %v", c.name, err, c.also)
		}
	}
}

func TestPartialDecryptRefusals(t *testing.T) {
	f := newCombineFixture(t, 2, 3, "partial decrypt refusals")
	for _, idx := range []int{0, -1, 0x10000} {
		if _, err := PartialDecrypt(idx, f.tg.Shares[1], f.env, f.req.Public, detReader("r")); err == nil {
			t.Errorf("trustee index %d accepted", idx)
		}
	}
	// Q = −U makes U+Q the identity: a trustee must not answer.
	negU := group.Point().Neg(kU(f.env))
	if _, err := PartialDecrypt(1, f.tg.Shares[1], f.env, negU, detReader("r")); err == nil {
		t.Error("answered for U+Q = identity")
	}
}

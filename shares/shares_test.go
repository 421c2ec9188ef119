package shares

import (
	"bytes"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
)

// testRand is a deterministic randomness source, so failures reproduce.
func testRand(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

func mustScalar(t testing.TB, r *rand.ChaCha8) kyber.Scalar {
	t.Helper()
	s, err := group.RandomScalar(r)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// subsets calls f with every subset of {0..n-1} of size k.
func subsets(n, k int, f func([]int)) {
	var rec func(start int, cur []int)
	rec = func(start int, cur []int) {
		if len(cur) == k {
			f(append([]int(nil), cur...))
			return
		}
		for i := start; i < n; i++ {
			rec(i+1, append(cur, i))
		}
	}
	rec(0, nil)
}

func pick(all []Share, idx []int) []Share {
	out := make([]Share, len(idx))
	for i, j := range idx {
		out[i] = all[j]
	}
	return out
}

func TestEverySubsetOf3of5(t *testing.T) {
	r := testRand(1)
	secret := mustScalar(t, r)
	all, c, err := Split(secret, 3, 5, r)
	if err != nil {
		t.Fatal(err)
	}
	if c.Threshold() != 3 || len(all) != 5 {
		t.Fatalf("threshold %d, %d shares", c.Threshold(), len(all))
	}
	for i, s := range all {
		if s.Index != i+1 {
			t.Fatalf("share %d has index %d; want 1-based indices in order", i, s.Index)
		}
	}
	for k := 3; k <= 5; k++ {
		subsets(5, k, func(idx []int) {
			for _, recover := range []func([]Share) (kyber.Scalar, error){
				func(s []Share) (kyber.Scalar, error) { return Recover(s, 3) },
				func(s []Share) (kyber.Scalar, error) { return RecoverWithCommitment(s, c) },
			} {
				got, err := recover(pick(all, idx))
				if err != nil {
					t.Fatalf("subset %v: %v", idx, err)
				}
				if !got.Equal(secret) {
					t.Fatalf("subset %v: wrong secret", idx)
				}
			}
		})
	}
	for k := 0; k < 3; k++ {
		subsets(5, k, func(idx []int) {
			_, err := RecoverWithCommitment(pick(all, idx), c)
			if !errors.Is(err, ErrTooFewShares) {
				t.Fatalf("subset %v: got %v, want ErrTooFewShares", idx, err)
			}
			want := fmt.Sprintf("%d given, 3 needed", k)
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not say %q", err, want)
			}
			if _, err := Recover(pick(all, idx), 3); !errors.Is(err, ErrTooFewShares) {
				t.Fatalf("Recover, subset %v: got %v, want ErrTooFewShares", idx, err)
			}
		})
	}
}

// TestBelowThresholdRevealsNothing checks the Shamir property concretely:
// for any t−1 shares and any candidate secret, there is a polynomial of
// degree t−1 through the shares with that secret, so the shares rule no
// candidate out.
func TestBelowThresholdRevealsNothing(t *testing.T) {
	r := testRand(2)
	all, _, err := Split(mustScalar(t, r), 3, 5, r)
	if err != nil {
		t.Fatal(err)
	}
	two := []Share{all[1], all[4]}
	for i := 0; i < 10; i++ {
		candidate := mustScalar(t, r)
		// The third point (0, candidate) plus the two shares define a
		// polynomial; it must reproduce both shares and the candidate.
		pts := append([]Share{{Index: 0, Value: candidate}}, two...)
		xs := []int{0, two[0].Index, two[1].Index}
		for _, target := range pts {
			y := group.Scalar()
			for j, l := range lagrangeAt(target.Index, xs) {
				y.Add(y, group.Scalar().Mul(l, pts[j].Value))
			}
			if !y.Equal(target.Value) {
				t.Fatal("interpolation through two shares and a candidate secret failed")
			}
		}
	}
}

func TestSplitTable(t *testing.T) {
	for _, tc := range []struct{ t, n int }{
		{1, 1}, {1, 3}, {2, 2}, {2, 3}, {3, 5}, {5, 5}, {7, 10}, {16, 40}, {255, 255},
	} {
		t.Run(fmt.Sprintf("%d-of-%d", tc.t, tc.n), func(t *testing.T) {
			r := testRand(byte(tc.t))
			secret := mustScalar(t, r)
			all, c, err := Split(secret, tc.t, tc.n, r)
			if err != nil {
				t.Fatal(err)
			}
			// The last t shares, in reverse order: order must not matter.
			var sub []Share
			for i := tc.n - 1; i >= tc.n-tc.t; i-- {
				sub = append(sub, all[i])
			}
			got, err := Recover(sub, tc.t)
			if err != nil || !got.Equal(secret) {
				t.Fatalf("Recover: %v", err)
			}
			if tc.t <= 16 {
				got, err = RecoverWithCommitment(all, c)
				if err != nil || !got.Equal(secret) {
					t.Fatalf("RecoverWithCommitment with all shares: %v", err)
				}
			}
			if !c.PublicKey().Equal(group.Point().Mul(secret, nil)) {
				t.Fatal("PublicKey is not secret·G")
			}
			for _, s := range all[:min(len(all), 5)] {
				if !c.PublicShare(s.Index).Equal(group.Point().Mul(s.Value, nil)) {
					t.Fatalf("PublicShare(%d) is not the share times G", s.Index)
				}
			}
		})
	}
}

// TestAgainstBigInt recomputes shares and the recovered secret with
// math/big modulo l, independently of kyber's scalar arithmetic.
func TestAgainstBigInt(t *testing.T) {
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	le := func(s kyber.Scalar) *big.Int {
		b := group.ScalarBytes(s)
		for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
			b[i], b[j] = b[j], b[i]
		}
		return new(big.Int).SetBytes(b)
	}
	r := testRand(3)
	secret := mustScalar(t, r)
	// Split draws the secret's coefficients from the same stream; redo
	// the draw to know them.
	coeffRand := testRand(3)
	_ = mustScalar(t, coeffRand)
	all, _, err := Split(secret, 4, 7, r)
	if err != nil {
		t.Fatal(err)
	}
	coeffs := []*big.Int{le(secret)}
	for j := 1; j < 4; j++ {
		coeffs = append(coeffs, le(mustScalar(t, coeffRand)))
	}
	for _, s := range all {
		y := new(big.Int)
		for j := len(coeffs) - 1; j >= 0; j-- {
			y.Mul(y, big.NewInt(int64(s.Index)))
			y.Add(y, coeffs[j])
			y.Mod(y, l)
		}
		if y.Cmp(le(s.Value)) != 0 {
			t.Fatalf("share %d differs from the big.Int evaluation", s.Index)
		}
	}
	// Lagrange at 0 for indices 2, 5, 6, 7 by big.Int.
	idx := []int{2, 5, 6, 7}
	lambdas, err := LagrangeCoefficients(idx)
	if err != nil {
		t.Fatal(err)
	}
	for i, xi := range idx {
		num, den := big.NewInt(1), big.NewInt(1)
		for j, xj := range idx {
			if i != j {
				num.Mul(num, big.NewInt(int64(xj)))
				den.Mul(den, big.NewInt(int64(xj-xi)))
			}
		}
		den.Mod(den, l)
		want := num.Mul(num, den.ModInverse(den, l))
		want.Mod(want, l)
		if want.Cmp(le(lambdas[i])) != 0 {
			t.Fatalf("λ for index %d differs from big.Int", xi)
		}
	}
}

func TestLagrangeKnownValues(t *testing.T) {
	// Indices 1 and 2: f(0) = 2·f(1) − f(2).
	l, err := LagrangeCoefficients([]int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	two := group.Scalar().SetInt64(2)
	minusOne := group.Scalar().SetInt64(-1)
	if !l[0].Equal(two) || !l[1].Equal(minusOne) {
		t.Fatalf("got %v, %v; want 2, -1", l[0], l[1])
	}
	// Coefficients sum to 1 for any index set (interpolating f = 1).
	l, _ = LagrangeCoefficients([]int{3, 9, 200, 255, 1})
	sum := group.Scalar()
	for _, x := range l {
		sum.Add(sum, x)
	}
	if !sum.Equal(group.Scalar().One()) {
		t.Fatal("coefficients do not sum to 1")
	}
}

func TestRefusals(t *testing.T) {
	r := testRand(4)
	secret := mustScalar(t, r)
	all, c, err := Split(secret, 3, 5, r)
	if err != nil {
		t.Fatal(err)
	}
	other, otherC, err := Split(mustScalar(t, r), 3, 5, r)
	if err != nil {
		t.Fatal(err)
	}
	tampered := func(s Share) Share {
		return Share{Index: s.Index, Value: group.Scalar().Add(s.Value, group.Scalar().One())}
	}

	t.Run("tampered share named", func(t *testing.T) {
		in := []Share{all[0], tampered(all[2]), all[4]}
		_, err := RecoverWithCommitment(in, c)
		var ie *InconsistentShareError
		if !errors.As(err, &ie) || ie.Index != 3 {
			t.Fatalf("got %v, want InconsistentShareError for share 3", err)
		}
		if err := c.Verify(in[1]); err == nil {
			t.Fatal("Verify accepted a tampered share")
		}
	})
	t.Run("every tampered share named", func(t *testing.T) {
		in := []Share{tampered(all[0]), all[1], tampered(all[3]), all[4]}
		_, err := RecoverWithCommitment(in, c)
		for _, want := range []string{"share 1 does not match", "share 4 does not match"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v does not say %q", err, want)
			}
		}
	})
	t.Run("share of another split", func(t *testing.T) {
		_, err := RecoverWithCommitment([]Share{all[0], all[1], other[2]}, c)
		var ie *InconsistentShareError
		if !errors.As(err, &ie) || ie.Index != 3 {
			t.Fatalf("got %v, want InconsistentShareError for share 3", err)
		}
		_, err = Recover([]Share{all[0], all[1], all[2], other[3]}, 3)
		if !errors.Is(err, ErrMismatchedSplit) {
			t.Fatalf("Recover with a fourth share from another split: got %v, want ErrMismatchedSplit", err)
		}
		_, err = RecoverWithCommitment(other[:3], otherC)
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("duplicate index", func(t *testing.T) {
		for _, f := range []func([]Share) error{
			func(s []Share) error { _, err := Recover(s, 3); return err },
			func(s []Share) error { _, err := RecoverWithCommitment(s, c); return err },
		} {
			err := f([]Share{all[0], all[1], all[1]})
			var de *DuplicateIndexError
			if !errors.As(err, &de) || de.Index != 2 {
				t.Fatalf("got %v, want DuplicateIndexError for 2", err)
			}
		}
		_, err := LagrangeCoefficients([]int{4, 1, 4})
		var de *DuplicateIndexError
		if !errors.As(err, &de) || de.Index != 4 {
			t.Fatalf("got %v, want DuplicateIndexError for 4", err)
		}
	})
	t.Run("invalid index", func(t *testing.T) {
		for _, i := range []int{0, -1, 256} {
			bad := Share{Index: i, Value: all[0].Value}
			if _, err := Recover([]Share{bad, all[1], all[2]}, 3); !errors.Is(err, ErrInvalidIndex) {
				t.Fatalf("index %d: got %v", i, err)
			}
			if err := c.Verify(bad); !errors.Is(err, ErrInvalidIndex) {
				t.Fatalf("Verify, index %d: got %v", i, err)
			}
		}
		if _, err := Recover([]Share{{Index: 1}, all[1], all[2]}, 3); !errors.Is(err, ErrInvalidIndex) {
			t.Fatalf("missing value: got %v", err)
		}
	})
	t.Run("split parameters", func(t *testing.T) {
		for _, tc := range []struct {
			t, n int
			want string
		}{
			{0, 3, "at least 1"},
			{4, 3, "more than the 3 shares"},
			{1, 0, "between 1 and 255"},
			{2, 256, "between 1 and 255"},
		} {
			_, _, err := Split(secret, tc.t, tc.n, r)
			if err == nil || !strings.HasPrefix(err.Error(), "shares: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Split(t=%d, n=%d): got %v, want an error saying %q", tc.t, tc.n, err, tc.want)
			}
		}
		if _, _, err := Split(group.Scalar(), 2, 3, r); err == nil {
			t.Error("Split accepted a zero secret")
		}
		if _, _, err := Split(secret, 2, 3, bytes.NewReader(nil)); err == nil {
			t.Error("Split succeeded with no randomness")
		}
	})
}

func TestRecoverPoint(t *testing.T) {
	r := testRand(5)
	secret := mustScalar(t, r)
	all, _, err := Split(secret, 3, 5, r)
	if err != nil {
		t.Fatal(err)
	}
	p := group.Point().Mul(mustScalar(t, r), nil)
	want := group.Point().Mul(secret, p)
	var pts []IndexedPoint
	for _, s := range all {
		pts = append(pts, IndexedPoint{Index: s.Index, Point: group.Point().Mul(s.Value, p)})
	}
	subsets(5, 3, func(idx []int) {
		var in []IndexedPoint
		for _, i := range idx {
			in = append(in, pts[i])
		}
		got, err := RecoverPoint(in, 3)
		if err != nil || !got.Equal(want) {
			t.Fatalf("subset %v: %v", idx, err)
		}
	})
	if got, err := RecoverPoint(pts, 3); err != nil || !got.Equal(want) {
		t.Fatalf("all five: %v", err)
	}
	if _, err := RecoverPoint(pts[:2], 3); !errors.Is(err, ErrTooFewShares) {
		t.Fatalf("two points: got %v", err)
	}
	bad := append([]IndexedPoint(nil), pts...)
	bad[4] = IndexedPoint{Index: 5, Point: group.Point().Add(pts[4].Point, group.Base())}
	if _, err := RecoverPoint(bad, 3); !errors.Is(err, ErrMismatchedSplit) {
		t.Fatalf("bad fifth point: got %v", err)
	}
	if _, err := RecoverPoint([]IndexedPoint{pts[0], pts[0], pts[1]}, 3); !errors.As(err, new(*DuplicateIndexError)) {
		t.Fatalf("duplicate: got %v", err)
	}
}

func TestCommitmentEncoding(t *testing.T) {
	r := testRand(6)
	for _, th := range []int{1, 2, 5, 255} {
		_, c, err := Split(mustScalar(t, r), th, 255, r)
		if err != nil {
			t.Fatal(err)
		}
		b := c.Marshal()
		if len(b) != 2+32*th {
			t.Fatalf("t=%d: %d bytes", th, len(b))
		}
		c2, err := ParseCommitment(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c2.Marshal(), b) || c2.Threshold() != th {
			t.Fatal("round trip changed the commitment")
		}
	}

	_, c, _ := Split(mustScalar(t, r), 3, 5, r)
	good := c.Marshal()
	identity := group.PointBytes(group.Point())
	withPoint := func(j int, p []byte) []byte {
		b := append([]byte(nil), good...)
		copy(b[2+32*j:], p)
		return b
	}
	nonCanonical := make([]byte, 32)
	nonCanonical[0] = 0xed
	for i := 1; i < 31; i++ {
		nonCanonical[i] = 0xff
	}
	nonCanonical[31] = 0x7f
	order8 := []byte{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a}
	torsioned := group.PointBytes(group.Point().Add(c.Points[1], func() kyber.Point {
		p := group.Point()
		if err := p.UnmarshalBinary(order8); err != nil {
			t.Fatal(err)
		}
		return p
	}()))
	for name, b := range map[string][]byte{
		"empty":             nil,
		"version 2":         append([]byte{2}, good[1:]...),
		"threshold 0":       {1, 0},
		"one byte short":    good[:len(good)-1],
		"one byte long":     append(append([]byte(nil), good...), 0),
		"wrong threshold":   append([]byte{1, 4}, good[2:]...),
		"identity A_0":      withPoint(0, identity),
		"identity A_2":      withPoint(2, identity),
		"non-canonical":     withPoint(1, nonCanonical),
		"small order":       withPoint(1, order8),
		"torsion component": withPoint(1, torsioned),
	} {
		if _, err := ParseCommitment(b); err == nil || !strings.HasPrefix(err.Error(), "shares: ") {
			t.Errorf("%s: got %v, want a shares: error", name, err)
		}
	}
}

func FuzzParseCommitment(f *testing.F) {
	r := testRand(7)
	for _, th := range []int{1, 2, 3} {
		_, c, _ := Split(mustScalar(f, r), th, 3, r)
		f.Add(c.Marshal())
	}
	f.Add([]byte{1, 1})
	f.Add([]byte{})
	f.Add(append([]byte{1, 1}, make([]byte, 32)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCommitment(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Marshal(), b) {
			t.Fatalf("Marshal(Parse(b)) != b for %x", b)
		}
		for _, p := range c.Points {
			if !group.InPrimeOrderSubgroup(p) || p.Equal(group.Point()) {
				t.Fatal("accepted a point outside the prime-order subgroup or the identity")
			}
		}
	})
}

func BenchmarkSplit(b *testing.B) {
	for _, tc := range []struct{ t, n int }{{3, 5}, {10, 20}} {
		b.Run(fmt.Sprintf("%d-of-%d", tc.t, tc.n), func(b *testing.B) {
			secret := mustScalar(b, testRand(8))
			for b.Loop() {
				if _, _, err := Split(secret, tc.t, tc.n, crand.Reader); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRecover(b *testing.B) {
	for _, tc := range []struct{ t, n int }{{3, 5}, {10, 20}} {
		r := testRand(9)
		all, c, err := Split(mustScalar(b, r), tc.t, tc.n, r)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%d-of-%d", tc.t, tc.n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Recover(all[:tc.t], tc.t); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%d-of-%d/commitment", tc.t, tc.n), func(b *testing.B) {
			for b.Loop() {
				if _, err := RecoverWithCommitment(all[:tc.t], c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

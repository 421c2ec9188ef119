package group

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"testing"

	"filippo.io/edwards25519"
	"go.dedis.ch/kyber/v3"
)

// The tests in this file compare the filippo.io/edwards25519 paths with the
// straightforward kyber computations they replaced, on random inputs, so
// that the fast paths can be trusted to give the same answers.

const equivalenceCases = 200

func detRand(seed string) io.Reader { return mrand.NewChaCha8(sha256.Sum256([]byte(seed))) }

// kyberInPrimeOrderSubgroup is the former, kyber-only subgroup check.
func kyberInPrimeOrderSubgroup(p kyber.Point) bool {
	minusOne := suite.Scalar().Neg(suite.Scalar().One())
	lp := suite.Point()
	lp.(kyber.AllowsVarTime).AllowVarTime(true)
	lp.Mul(minusOne, p)
	lp.Add(lp, p)
	return lp.Equal(suite.Point().Null())
}

// kyberParsePoint is the former, kyber-only ParsePoint.
func kyberParsePoint(b []byte) (kyber.Point, error) {
	if len(b) != PointLen {
		return nil, fmt.Errorf("%w: got %d bytes", ErrPointEncoding, len(b))
	}
	p := suite.Point()
	type canon interface{ IsCanonical([]byte) bool }
	if !p.(canon).IsCanonical(b) {
		return nil, ErrNonCanonical
	}
	if err := p.UnmarshalBinary(b); err != nil {
		return nil, ErrPointEncoding
	}
	if p.(interface{ HasSmallOrder() bool }).HasSmallOrder() {
		return nil, ErrSmallOrder
	}
	if !kyberInPrimeOrderSubgroup(p) {
		return nil, ErrNotInSubgroup
	}
	if p.Equal(suite.Point().Null()) {
		return nil, ErrIdentity
	}
	if enc, _ := p.MarshalBinary(); string(enc) != string(b) {
		return nil, ErrNonCanonical
	}
	return p, nil
}

// smallOrderPoints returns the eight points of order dividing 8, as k·T8
// for k = 0..7, T8 of order 8.
func smallOrderPoints(tb testing.TB) []kyber.Point {
	tb.Helper()
	enc, _ := hex.DecodeString(order8Hex)
	T := Point()
	if err := T.UnmarshalBinary(enc); err != nil {
		tb.Fatal(err)
	}
	out := []kyber.Point{Point()}
	for k := 1; k < 8; k++ {
		out = append(out, Point().Add(out[k-1], T))
	}
	if !Point().Add(out[7], T).Equal(Point()) {
		tb.Fatal("T is not of order 8")
	}
	return out
}

func randomPoint(tb testing.TB, rand io.Reader) kyber.Point {
	tb.Helper()
	s, err := RandomScalar(rand)
	if err != nil {
		tb.Fatal(err)
	}
	return Point().Mul(s, nil)
}

// pointTestEncodings returns encodings that exercise every branch of
// ParsePoint: genuine points, genuine points plus each torsion point, the
// small-order points with either sign bit, non-canonical and negative-zero
// encodings, and random byte strings (about half of which are not on the
// curve at all).
func pointTestEncodings(tb testing.TB) [][]byte {
	tb.Helper()
	rand := detRand("group equivalence encodings")
	small := smallOrderPoints(tb)
	var out [][]byte
	for i := 0; i < equivalenceCases; i++ {
		g := randomPoint(tb, rand)
		out = append(out, PointBytes(g))
		out = append(out, PointBytes(Point().Add(g, small[1+i%7])))
		var b [32]byte
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			tb.Fatal(err)
		}
		out = append(out, bytes.Clone(b[:]))
	}
	for _, p := range small {
		b := PointBytes(p)
		out = append(out, b, flipSign(b))
	}
	// y = p + k for small k (non-canonical), with either sign, and y = 2^255 − 1.
	for k := 0; k < 19; k++ {
		b := make([]byte, 32)
		b[0] = byte(0xed + k)
		for i := 1; i < 31; i++ {
			b[i] = 0xff
		}
		b[31] = 0x7f
		out = append(out, b, flipSign(b))
	}
	return out
}

func flipSign(b []byte) []byte {
	c := bytes.Clone(b)
	c[31] ^= 0x80
	return c
}

func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	for _, e := range []error{ErrPointEncoding, ErrNonCanonical, ErrSmallOrder, ErrNotInSubgroup, ErrIdentity} {
		if errors.Is(a, e) != errors.Is(b, e) {
			return false
		}
	}
	return a.Error() == b.Error()
}

// TestParsePointMatchesKyber: the filippo-based ParsePoint accepts and
// refuses exactly what the kyber-only one did, with the same error and the
// same point.
func TestParsePointMatchesKyber(t *testing.T) {
	counts := map[string]int{}
	for _, b := range append(pointTestEncodings(t), []byte{1, 2, 3}, nil, make([]byte, 33)) {
		want, werr := kyberParsePoint(b)
		got, gerr := ParsePoint(b)
		if !sameErr(werr, gerr) {
			t.Fatalf("%x: kyber says %v, ParsePoint says %v", b, werr, gerr)
		}
		fgot, ferr := ParseFilippoPoint(b)
		if !sameErr(werr, ferr) {
			t.Fatalf("%x: kyber says %v, ParseFilippoPoint says %v", b, werr, ferr)
		}
		if werr == nil {
			if !got.Equal(want) || !bytes.Equal(fgot.Bytes(), b) {
				t.Fatalf("%x: decoded to a different point", b)
			}
			counts["ok"]++
		} else {
			counts[werr.Error()]++
		}
	}
	// Every branch must have been taken, or the comparison proves little.
	for _, e := range []error{ErrPointEncoding, ErrNonCanonical, ErrSmallOrder, ErrNotInSubgroup} {
		if counts[e.Error()] == 0 {
			t.Errorf("no test encoding was refused with %v", e)
		}
	}
	if counts["ok"] < equivalenceCases {
		t.Errorf("only %d encodings accepted", counts["ok"])
	}
	t.Logf("outcomes: %v", counts)
}

// TestInPrimeOrderSubgroupMatchesKyber compares the old and new subgroup
// checks on random points, torsioned points and the small-order points.
func TestInPrimeOrderSubgroupMatchesKyber(t *testing.T) {
	rand := detRand("group equivalence subgroup")
	small := smallOrderPoints(t)
	var in, out int
	check := func(p kyber.Point) {
		want := kyberInPrimeOrderSubgroup(p)
		if got := InPrimeOrderSubgroup(p); got != want {
			t.Fatalf("%x: kyber says %v, filippo path says %v", PointBytes(p), want, got)
		}
		if want {
			in++
		} else {
			out++
		}
	}
	for i := 0; i < equivalenceCases; i++ {
		g := randomPoint(t, rand)
		check(g)
		check(Point().Add(g, small[1+i%7]))
	}
	for _, p := range small {
		check(p)
	}
	if in != equivalenceCases+1 || out != equivalenceCases+7 {
		t.Fatalf("%d points in the subgroup and %d outside, want %d and %d", in, out, equivalenceCases+1, equivalenceCases+7)
	}
}

func TestConversionsRoundTrip(t *testing.T) {
	rand := detRand("group conversions")
	for i := 0; i < equivalenceCases; i++ {
		s, err := RandomScalar(rand)
		if err != nil {
			t.Fatal(err)
		}
		fs := ToFilippoScalar(s)
		if !bytes.Equal(fs.Bytes(), ScalarBytes(s)) || !FromFilippoScalar(fs).Equal(s) {
			t.Fatal("scalar conversion changed the value")
		}
		p := Point().Mul(s, nil)
		fp := ToFilippoPoint(p)
		if !bytes.Equal(fp.Bytes(), PointBytes(p)) || !FromFilippoPoint(fp).Equal(p) {
			t.Fatal("point conversion changed the value")
		}
		// The same arithmetic in both libraries.
		fb := new(edwards25519.Point).ScalarBaseMult(fs)
		if fb.Equal(fp) != 1 {
			t.Fatal("s·G differs between kyber and filippo")
		}
		var in [40]byte
		io.ReadFull(rand, in[:])
		n := int(in[0]) % 40
		if !bytes.Equal(HashToFilippoScalar("label", in[:n]).Bytes(), ScalarBytes(HashToScalar("label", in[:n]))) {
			t.Fatal("HashToFilippoScalar differs from HashToScalar")
		}
	}
	for _, n := range []int64{0, 1, 2, 7, 0xffff, 1<<63 - 1} {
		if !FromFilippoScalar(FilippoScalarFromInt(uint64(n))).Equal(Scalar().SetInt64(n)) {
			t.Fatalf("FilippoScalarFromInt(%d) is not %d", n, n)
		}
	}
	if !bytes.Equal(BaseBytes(), PointBytes(Base())) {
		t.Fatal("BaseBytes is not the encoding of G")
	}
	b := BaseBytes()
	b[0] ^= 1
	if !bytes.Equal(BaseBytes(), PointBytes(Base())) {
		t.Fatal("BaseBytes returned shared storage")
	}
	// Torsioned points convert exactly too (the conversion makes no check).
	for _, p := range smallOrderPoints(t) {
		if !FromFilippoPoint(ToFilippoPoint(p)).Equal(p) {
			t.Fatal("small-order point changed in conversion")
		}
	}
}

func BenchmarkParsePoint(b *testing.B) {
	enc := PointBytes(randomPoint(b, detRand("bench parse")))
	for b.Loop() {
		if _, err := ParsePoint(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePointKyber(b *testing.B) {
	enc := PointBytes(randomPoint(b, detRand("bench parse")))
	for b.Loop() {
		if _, err := kyberParsePoint(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParsePointMatchesKyber compares the two ParsePoints on any input.
func FuzzParsePointMatchesKyber(f *testing.F) {
	for _, b := range pointTestEncodings(f)[:24] {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, werr := kyberParsePoint(b)
		got, gerr := ParsePoint(b)
		if !sameErr(werr, gerr) {
			t.Fatalf("%x: kyber says %v, ParsePoint says %v", b, werr, gerr)
		}
		if werr == nil && !got.Equal(want) {
			t.Fatalf("%x: decoded to a different point", b)
		}
	})
}

package group

import (
	"bytes"
	"crypto/sha256"
	mrand "math/rand/v2"
	"testing"

	"filippo.io/edwards25519"
)

// TestFixedBaseMatchesScalarMult compares the table with filippo's
// ScalarMult on random points and scalars and on the scalars at the edges
// of the digit recoding (0, 1, 8, −8 digits, l−1, every digit 7 or −8).
func TestFixedBaseMatchesScalarMult(t *testing.T) {
	rnd := mrand.NewChaCha8(sha256.Sum256([]byte("fixed base")))
	var wide [64]byte
	edge := [][]byte{make([]byte, 32)}
	for _, v := range []byte{1, 7, 8, 9, 15, 16, 0x88} {
		b := make([]byte, 32)
		b[0] = v
		edge = append(edge, b)
	}
	lMinus1 := edwards25519.NewScalar().Negate(FilippoScalarFromInt(1)).Bytes()
	sevens := bytes.Repeat([]byte{0x77}, 32)
	sevens[31] = 0x07
	eights := bytes.Repeat([]byte{0x88}, 32)
	eights[31] = 0x08
	edge = append(edge, lMinus1, sevens, eights)
	for k := 0; k < 8; k++ {
		rnd.Read(wide[:])
		P := new(edwards25519.Point).ScalarBaseMult(mustUniform(t, wide[:]))
		fb := NewFixedBase(P)
		if fb.Point().Equal(P) != 1 {
			t.Fatal("table is for another point")
		}
		var scalars []*edwards25519.Scalar
		for _, b := range edge {
			s, err := edwards25519.NewScalar().SetCanonicalBytes(b)
			if err != nil {
				t.Fatalf("%x: %v", b, err)
			}
			scalars = append(scalars, s)
		}
		for i := 0; i < 50; i++ {
			rnd.Read(wide[:])
			scalars = append(scalars, mustUniform(t, wide[:]))
		}
		for _, s := range scalars {
			want := new(edwards25519.Point).ScalarMult(s, P)
			if got := fb.ScalarMult(s); got.Equal(want) != 1 {
				t.Fatalf("s = %x: table gives %x, ScalarMult %x", s.Bytes(), got.Bytes(), want.Bytes())
			}
		}
	}
}

// TestSignedRadix16 checks the recoding: digits in [−8, 8) that sum back.
func TestSignedRadix16(t *testing.T) {
	rnd := mrand.NewChaCha8(sha256.Sum256([]byte("radix 16")))
	var wide [64]byte
	for i := 0; i < 200; i++ {
		rnd.Read(wide[:])
		s := mustUniform(t, wide[:])
		d := signedRadix16(s.Bytes())
		acc := edwards25519.NewScalar()
		sixteen := FilippoScalarFromInt(16)
		for k := 63; k >= 0; k-- {
			if d[k] < -8 || d[k] >= 8 {
				t.Fatalf("digit %d is %d", k, d[k])
			}
			acc.Multiply(acc, sixteen)
			v := FilippoScalarFromInt(uint64(abs8(d[k])))
			if d[k] < 0 {
				v.Negate(v)
			}
			acc.Add(acc, v)
		}
		if acc.Equal(s) != 1 {
			t.Fatalf("%x recodes to %x", s.Bytes(), acc.Bytes())
		}
	}
}

func abs8(v int8) int {
	if v < 0 {
		return -int(v)
	}
	return int(v)
}

func mustUniform(tb testing.TB, b []byte) *edwards25519.Scalar {
	tb.Helper()
	s, err := edwards25519.NewScalar().SetUniformBytes(b)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func BenchmarkFixedBaseScalarMult(b *testing.B) {
	s := HashToFilippoScalar("bench", []byte("s"))
	fb := NewFixedBase(new(edwards25519.Point).ScalarBaseMult(HashToFilippoScalar("bench", []byte("P"))))
	for b.Loop() {
		fb.ScalarMult(s)
	}
}

func BenchmarkFilippoScalarMult(b *testing.B) {
	s := HashToFilippoScalar("bench", []byte("s"))
	P := new(edwards25519.Point).ScalarBaseMult(HashToFilippoScalar("bench", []byte("P")))
	for b.Loop() {
		new(edwards25519.Point).ScalarMult(s, P)
	}
}

func BenchmarkFilippoScalarBaseMult(b *testing.B) {
	s := HashToFilippoScalar("bench", []byte("s"))
	for b.Loop() {
		new(edwards25519.Point).ScalarBaseMult(s)
	}
}

func BenchmarkNewFixedBase(b *testing.B) {
	P := new(edwards25519.Point).ScalarBaseMult(HashToFilippoScalar("bench", []byte("P")))
	for b.Loop() {
		NewFixedBase(P)
	}
}

// TestEncodePoints compares the batch encoding with Bytes, point by point,
// for batches of 0, 1 and many points, including the identity and points
// with either sign of x.
func TestEncodePoints(t *testing.T) {
	rnd := mrand.NewChaCha8(sha256.Sum256([]byte("encode points")))
	var wide [64]byte
	for _, n := range []int{0, 1, 2, 7, 100} {
		ps := make([]*edwards25519.Point, n)
		for i := range ps {
			rnd.Read(wide[:])
			ps[i] = new(edwards25519.Point).ScalarBaseMult(mustUniform(t, wide[:]))
			if i%5 == 3 {
				ps[i].Negate(ps[i])
			}
			if i == 4 {
				ps[i] = edwards25519.NewIdentityPoint()
			}
			// A Z other than 1: sums keep projective coordinates.
			ps[i].Add(ps[i], edwards25519.NewGeneratorPoint())
		}
		got := EncodePoints(ps)
		if len(got) != n {
			t.Fatalf("%d points gave %d encodings", n, len(got))
		}
		for i, p := range ps {
			if !bytes.Equal(got[i], p.Bytes()) {
				t.Fatalf("n = %d, point %d: %x, Bytes gives %x", n, i, got[i], p.Bytes())
			}
		}
	}
}

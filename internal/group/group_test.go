package group

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
)

// torsion8 is a point of order 8 (RFC 8032 small-order list; also used by
// libsodium's blocklist): y encodes the order-8 point
// c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a.
const order8Hex = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"

func TestParsePointAcceptsGenuinePoints(t *testing.T) {
	for i := 0; i < 50; i++ {
		s, err := RandomScalar(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		p := Point().Mul(s, nil)
		b := PointBytes(p)
		q, err := ParsePoint(b)
		if err != nil {
			t.Fatalf("genuine point refused: %v", err)
		}
		if !q.Equal(p) {
			t.Fatal("round trip changed the point")
		}
	}
}

func TestParsePointRefusals(t *testing.T) {
	order8, _ := hex.DecodeString(order8Hex)
	p8, err := func() (b []byte, err error) {
		pt := Point()
		if err := pt.UnmarshalBinary(order8); err != nil {
			return nil, err
		}
		return PointBytes(pt), nil
	}()
	if err != nil {
		t.Fatal(err)
	}
	// A genuine point plus a torsion component.
	s, _ := RandomScalar(rand.Reader)
	g := Point().Mul(s, nil)
	tp := Point()
	_ = tp.UnmarshalBinary(p8)
	torsioned := PointBytes(Point().Add(g, tp))

	identity := PointBytes(Point())
	// y = p (non-canonical encoding of y = 0): 0xed, 0xff..., 0x7f.
	nonCanon := make([]byte, 32)
	nonCanon[0] = 0xed
	for i := 1; i < 31; i++ {
		nonCanon[i] = 0xff
	}
	nonCanon[31] = 0x7f
	// The sign bit set on a point whose x is zero (y = 1): "-0".
	negZero := append([]byte(nil), identity...)
	negZero[31] |= 0x80

	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"short", []byte{1, 2, 3}, ErrPointEncoding},
		{"order 8", p8, ErrSmallOrder},
		{"identity", identity, ErrSmallOrder},
		{"torsion component", torsioned, ErrNotInSubgroup},
		{"non-canonical y", nonCanon, ErrNonCanonical},
		{"negative zero", negZero, nil}, // checked below: any error
	}
	for _, c := range cases {
		_, err := ParsePoint(c.in)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestParseScalar(t *testing.T) {
	s, _ := RandomScalar(rand.Reader)
	b := ScalarBytes(s)
	got, err := ParseScalar(b)
	if err != nil || !got.Equal(s) {
		t.Fatalf("round trip failed: %v", err)
	}
	// l itself is not canonical.
	l, _ := hex.DecodeString("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
	if _, err := ParseScalar(l); !errors.Is(err, ErrNonCanonical) {
		t.Fatalf("l accepted as scalar: %v", err)
	}
	if _, err := ParseScalar(b[:31]); !errors.Is(err, ErrScalarEncoding) {
		t.Fatalf("short scalar: %v", err)
	}
}

func TestHashToScalarSeparatesDomains(t *testing.T) {
	a := ScalarBytes(HashToScalar("a", []byte("bc")))
	b := ScalarBytes(HashToScalar("ab", []byte("c")))
	c := ScalarBytes(HashToScalar("a", []byte("bc")))
	if bytes.Equal(a, b) {
		t.Fatal("length prefixing failed: different splits hash equal")
	}
	if !bytes.Equal(a, c) {
		t.Fatal("hash not deterministic")
	}
}

func FuzzParsePoint(f *testing.F) {
	f.Add(PointBytes(Base()))
	order8, _ := hex.DecodeString(order8Hex)
	f.Add(order8)
	f.Add(make([]byte, 32))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePoint(b)
		if err != nil {
			return
		}
		if !bytes.Equal(PointBytes(p), b) {
			t.Fatalf("accepted malleable encoding %x", b)
		}
		if !InPrimeOrderSubgroup(p) {
			t.Fatal("accepted point outside subgroup")
		}
	})
}

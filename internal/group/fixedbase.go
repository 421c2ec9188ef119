package group

import (
	"crypto/subtle"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// FixedBase is a precomputed table for multiplying one fixed point P (an
// epoch key X_e) by secret scalars in constant time, at about the cost of
// filippo.io/edwards25519's ScalarBaseMult instead of its ScalarMult.
//
// filippo.io/edwards25519 keeps such a table for G only, and its table
// types are unexported, so this one is built here from the exported field
// arithmetic (filippo.io/edwards25519/field). The method is the one
// filippo and ref10 use for G, without their trick of halving the table:
// a scalar is written in signed radix 16, s = Σ e_i·16^i with
// e_i ∈ [−8, 8), i = 0..63, and s·P = Σ e_i·(16^i·P). The table holds
// j·16^i·P for j = 1..8 in affine "cached" form (y+x, y−x, 2d·x·y), so each
// of the 64 additions is a mixed addition of 7 field multiplications
// (Hisil, Wong, Carter and Dawson, "Twisted Edwards curves revisited",
// ASIACRYPT 2008, section 3.1, a = −1) and no doubling is needed. Each
// entry is selected by scanning all eight with constant-time selects and
// negated with a constant-time swap, so the memory access pattern and the
// sequence of operations do not depend on s. A table is 64·8 entries of
// three field elements, 60 KiB.
type FixedBase struct {
	p     *edwards25519.Point
	table [64][8]affineCached
}

type affineCached struct{ ypx, ymx, t2d field.Element }

// NewFixedBase builds the table for p. It costs about 500 point additions
// and one field inversion (the conversions to affine share it, by
// Montgomery's trick): keep it for as long as p is used.
func NewFixedBase(p *edwards25519.Point) *FixedBase {
	fb := &FixedBase{p: new(edwards25519.Point).Set(p)}
	var pts [64][8]edwards25519.Point
	base := new(edwards25519.Point).Set(p) // 16^i·P
	for i := range pts {
		pts[i][0].Set(base)
		for j := 1; j < 8; j++ {
			pts[i][j].Add(&pts[i][j-1], base)
		}
		base.Add(&pts[i][7], &pts[i][7]) // 16·16^i·P = 2·(8·16^i·P)
	}
	// Affine coordinates for all 512 points with one inversion:
	// prefix[k] = Z_0·…·Z_{k−1}.
	const n = 64 * 8
	var X, Y, Z [n]field.Element
	for i := range pts {
		for j := range pts[i] {
			x, y, z, _ := pts[i][j].ExtendedCoordinates()
			X[i*8+j], Y[i*8+j], Z[i*8+j] = *x, *y, *z
		}
	}
	var prefix [n + 1]field.Element
	prefix[0].One()
	for k := 0; k < n; k++ {
		prefix[k+1].Multiply(&prefix[k], &Z[k])
	}
	var inv, zinv, x, y, xy field.Element
	inv.Invert(&prefix[n])
	d2 := curveD2()
	for k := n - 1; k >= 0; k-- {
		zinv.Multiply(&inv, &prefix[k]) // Z_k⁻¹
		inv.Multiply(&inv, &Z[k])
		x.Multiply(&X[k], &zinv)
		y.Multiply(&Y[k], &zinv)
		e := &fb.table[k/8][k%8]
		e.ypx.Add(&y, &x)
		e.ymx.Subtract(&y, &x)
		e.t2d.Multiply(xy.Multiply(&x, &y), d2)
	}
	return fb
}

// curveD2 returns 2d, d = −121665/121666 the Edwards curve constant.
func curveD2() *field.Element {
	small := func(n byte, m byte) *field.Element {
		var b [32]byte
		b[0], b[1], b[2] = n, m, 0x01 // n + 256·m + 65536
		e, err := new(field.Element).SetBytes(b[:])
		if err != nil {
			panic("group: " + err.Error()) // unreachable: 32 bytes
		}
		return e
	}
	// 121665 = 0x01db41, 121666 = 0x01db42.
	num, den := small(0x41, 0xdb), small(0x42, 0xdb)
	d := new(field.Element).Invert(den)
	d.Multiply(d, num)
	d.Negate(d)
	return d.Add(d, d)
}

// Point returns the point the table is for.
func (fb *FixedBase) Point() *edwards25519.Point { return new(edwards25519.Point).Set(fb.p) }

// ScalarMult returns s·P in constant time.
func (fb *FixedBase) ScalarMult(s *edwards25519.Scalar) *edwards25519.Point {
	digits := signedRadix16(s.Bytes())
	// Accumulator in extended coordinates, starting at the identity.
	var X, Y, Z, T field.Element
	X.Zero()
	Y.One()
	Z.One()
	T.Zero()
	var q affineCached
	var ypx, ymx, pp, mm, tt, z2, x3, y3, z3, t3 field.Element
	for i := range digits {
		fb.selectInto(&q, i, digits[i])
		ypx.Add(&Y, &X)
		ymx.Subtract(&Y, &X)
		pp.Multiply(&ypx, &q.ypx)
		mm.Multiply(&ymx, &q.ymx)
		tt.Multiply(&T, &q.t2d)
		z2.Add(&Z, &Z)
		x3.Subtract(&pp, &mm)
		y3.Add(&pp, &mm)
		z3.Add(&z2, &tt)
		t3.Subtract(&z2, &tt)
		X.Multiply(&x3, &t3)
		Y.Multiply(&y3, &z3)
		Z.Multiply(&z3, &t3)
		T.Multiply(&x3, &y3)
	}
	p, err := new(edwards25519.Point).SetExtendedCoordinates(&X, &Y, &Z, &T)
	if err != nil {
		panic("group: fixed-base result off the curve: " + err.Error()) // unreachable
	}
	return p
}

// selectInto sets q to e·16^i·P in affine cached form, in constant time:
// the identity (1, 1, 0) for e = 0.
func (fb *FixedBase) selectInto(q *affineCached, i int, e int8) {
	sign := int(uint8(e) >> 7) // 1 if e < 0
	abs := uint8(e) ^ uint8(-int8(sign))
	abs += uint8(sign) // |e|, 0..8
	q.ypx.One()
	q.ymx.One()
	q.t2d.Zero()
	for j := range fb.table[i] {
		c := subtle.ConstantTimeByteEq(abs, uint8(j+1))
		q.ypx.Select(&fb.table[i][j].ypx, &q.ypx, c)
		q.ymx.Select(&fb.table[i][j].ymx, &q.ymx, c)
		q.t2d.Select(&fb.table[i][j].t2d, &q.t2d, c)
	}
	// −(x, y) = (−x, y): y+x and y−x swap, 2dxy changes sign.
	q.ypx.Swap(&q.ymx, sign)
	var neg field.Element
	neg.Negate(&q.t2d)
	q.t2d.Select(&neg, &q.t2d, sign)
}

// signedRadix16 writes the 32-byte little-endian scalar b (below 2^253) as
// 64 digits e_i ∈ [−8, 8) with Σ e_i·16^i equal to it, without branches.
func signedRadix16(b []byte) [64]int8 {
	var d [64]int8
	for i := 0; i < 32; i++ {
		d[2*i] = int8(b[i] & 15)
		d[2*i+1] = int8(b[i] >> 4)
	}
	for i := 0; i < 63; i++ {
		carry := (d[i] + 8) >> 4
		d[i] -= carry << 4
		d[i+1] += carry
	}
	return d
}

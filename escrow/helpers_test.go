package escrow

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/share"
)

// detReader returns a deterministic randomness source: a ChaCha8 stream
// keyed by SHA-256 of seed. Different seeds give independent streams, so
// every test can name its own and stay reproducible.
func detReader(seed string) io.Reader {
	return mrand.NewChaCha8(sha256.Sum256([]byte(seed)))
}

// testGroup is a dealt trustee group: the public view Combine needs plus
// the secrets a test plays every trustee with.
type testGroup struct {
	*Group
	EK     *EpochKey // Key, for the envelope API
	N      int
	Secret kyber.Scalar         // x, never held by anyone in a real deployment
	Shares map[int]kyber.Scalar // x_i by 1-based trustee index
}

// dealTestGroup splits a fresh group secret t-of-n with a kyber Shamir
// polynomial. kyber's PriShare.I is 0-based and evaluated at I+1; the
// trustee index used everywhere in escrow is that x-coordinate, I+1.
func dealTestGroup(tb testing.TB, t, n int, epoch uint32, rand io.Reader) *testGroup {
	tb.Helper()
	x, err := group.RandomScalar(rand)
	if err != nil {
		tb.Fatal(err)
	}
	poly := share.NewPriPoly(group.Suite(), t, x, group.Stream(rand))
	tg := &testGroup{
		Group: &Group{
			Epoch:        epoch,
			Key:          group.Point().Mul(x, nil),
			Threshold:    t,
			PublicShares: map[int]kyber.Point{},
		},
		N:      n,
		Secret: x,
		Shares: map[int]kyber.Scalar{},
	}
	tg.EK = tg.EpochKey()
	for _, s := range poly.Shares(n) {
		idx := s.I + 1
		tg.Shares[idx] = s.V
		tg.PublicShares[idx] = group.Point().Mul(s.V, nil)
	}
	return tg
}

// sessionStart is a fixed session start time.
var sessionStart = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// makeContext builds a valid context under tg's key; tag picks the session id.
func makeContext(tg *testGroup, sender, recipient string, tag byte) *Context {
	c := &Context{
		Epoch:      tg.Epoch,
		GroupKeyID: KeyIDOf(tg.Key),
		Sender:     sender,
		Recipient:  recipient,
		Start:      sessionStart,
	}
	for i := range c.SessionID {
		c.SessionID[i] = tag ^ byte(i)
	}
	return c
}

// randomSessionKey reads a session key from rand.
func randomSessionKey(tb testing.TB, rand io.Reader) []byte {
	tb.Helper()
	K := make([]byte, KeySize)
	if _, err := io.ReadFull(rand, K); err != nil {
		tb.Fatal(err)
	}
	return K
}

// mustSeal seals K in ctx under tg's key.
func mustSeal(tb testing.TB, tg *testGroup, K []byte, ctx *Context) *Envelope {
	tb.Helper()
	env, err := SealEnvelope(K, ctx, tg.EK)
	if err != nil {
		tb.Fatal(err)
	}
	return env
}

// mustParseEnvelope parses b, failing the test on error.
func mustParseEnvelope(tb testing.TB, b []byte) *Envelope {
	tb.Helper()
	env, err := ParseEnvelope(b)
	if err != nil {
		tb.Fatal(err)
	}
	return env
}

// partialsFor has each listed trustee answer for env re-encrypted to Q.
func partialsFor(tb testing.TB, tg *testGroup, env *Envelope, Q kyber.Point, trustees []int, rand io.Reader) []*PartialDecryption {
	tb.Helper()
	out := make([]*PartialDecryption, 0, len(trustees))
	for _, i := range trustees {
		p, err := PartialDecrypt(i, tg.Shares[i], env, Q, rand)
		if err != nil {
			tb.Fatalf("trustee %d: %v", i, err)
		}
		out = append(out, p)
	}
	return out
}

// allTrustees returns 1..n.
func allTrustees(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}

// subsets returns every k-element subset of 1..n in lexicographic order.
func subsets(n, k int) [][]int {
	var out [][]int
	var cur []int
	var rec func(next int)
	rec = func(next int) {
		if len(cur) == k {
			out = append(out, append([]int(nil), cur...))
			return
		}
		for i := next; i <= n-(k-len(cur))+1; i++ {
			cur = append(cur, i)
			rec(i + 1)
			cur = cur[:len(cur)-1]
		}
	}
	rec(1)
	return out
}

// pick returns the answers of the listed trustees from byTrustee.
func answersOf(byTrustee map[int]*PartialDecryption, trustees []int) []*PartialDecryption {
	out := make([]*PartialDecryption, 0, len(trustees))
	for _, i := range trustees {
		out = append(out, byTrustee[i])
	}
	return out
}

// order8Hex encodes a point of order 8 (from the small-order list in
// internal/group's tests).
const order8Hex = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"

// badPoints returns encodings that every point parser must refuse, with the
// internal/group error each must wrap.
func badPoints(tb testing.TB) []struct {
	name string
	enc  []byte
	want error
} {
	tb.Helper()
	o8, err := hex.DecodeString(order8Hex)
	if err != nil {
		tb.Fatal(err)
	}
	T := group.Point()
	if err := T.UnmarshalBinary(o8); err != nil {
		tb.Fatal(err)
	}
	genuine := group.Point().Mul(group.HashToScalar("keyquorum/test/genuine"), nil)
	torsioned := group.PointBytes(group.Point().Add(genuine, T))
	// y = p + 2: the encoding of y = 2 with 2^255 − 19 added, which is not
	// reduced.
	nonCanonical := make([]byte, 32)
	nonCanonical[0] = 0xed + 2
	for i := 1; i < 31; i++ {
		nonCanonical[i] = 0xff
	}
	nonCanonical[31] = 0x7f
	return []struct {
		name string
		enc  []byte
		want error
	}{
		{"order 8", group.PointBytes(T), group.ErrSmallOrder},
		{"identity", group.PointBytes(group.Point()), group.ErrSmallOrder},
		{"genuine plus order 8", torsioned, group.ErrNotInSubgroup},
		{"non-canonical y", nonCanonical, group.ErrNonCanonical},
	}
}

// flip returns a copy of b with bit 0 of byte i flipped.
func flipBit(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

// ek converts a kyber group key for the envelope API.
func ek(X kyber.Point) *EpochKey { return epochKeyOf(X) }

// kU returns an envelope's U as a kyber point.
func kU(e *Envelope) kyber.Point { return group.PointFromEncoding(e.ub) }

// kV returns a partial decryption's V_i as a kyber point.
func kV(p *PartialDecryption) kyber.Point { return group.PointFromEncoding(p.vb) }

// setV sets a partial decryption's V_i to the kyber point V.
func (p *PartialDecryption) setV(V kyber.Point) {
	p.vb = group.PointBytes(V)
	p.v = group.FilippoPointFromEncoding(p.vb)
}

// openWithS opens e with S = r·X_e given as kyber points.
func openWithS(e *Envelope, S, key kyber.Point) ([]byte, error) {
	return e.open(group.PointBytes(S), e.ub, group.PointBytes(key))
}

package shares

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/share"
)

// The polynomial arithmetic is kyber's share package (go.dedis.ch/kyber/v3/share):
// PriPoly evaluates the shares and commits to the coefficients, PubPoly
// evaluates and checks public shares, RecoverSecret and RecoverCommit
// interpolate at 0. What stays written here, and why:
//
//   - the coefficients are drawn with [group.RandomScalar] from an
//     io.Reader, where share.NewPriPoly picks them from a cipher.Stream:
//     the randomness stays a plain reader, and the test vectors and every
//     dealt group stay what they were;
//   - kyber's indices are 0-based (PriShare.I, evaluated at I+1); [Share]
//     names the 1-based x-coordinate, and the conversion is in one place
//     (priShares, pubShares);
//   - checking that shares beyond the threshold lie on the polynomial:
//     kyber would rebuild the whole polynomial (share.RecoverPriPoly and
//     RecoverPubPoly, t² point multiplications for points), where
//     interpolating at each extra index ([lagrangeAt]) costs t per share;
//   - [LagrangeCoefficients]: kyber exports only the interpolated value,
//     not the coefficients, which a combiner reuses across many points.

// MaxShares is the largest number of shares a split can have, and so the
// largest share index.
const MaxShares = 255

// A Share is one point (Index, Value) on a split's polynomial.
type Share struct {
	// Index is the share's x-coordinate, 1-based: 1..n.
	Index int
	// Value is f(Index). It is secret.
	Value kyber.Scalar
}

// An IndexedPoint is a share's value moved into the group: Point = x_i·P
// for the share (Index, x_i) and some point P. [RecoverPoint] combines
// them.
type IndexedPoint struct {
	Index int
	Point kyber.Point
}

// A Commitment is the public half of a Feldman split: Points[j] = a_j·G
// for the coefficients a_j of the split's polynomial, so Points[0] is the
// secret times G and len(Points) is the threshold.
type Commitment struct {
	Points []kyber.Point
}

// commitmentVersion is the first byte of a marshalled commitment.
const commitmentVersion = 1

// Threshold returns t, the number of shares needed to recover the secret.
func (c *Commitment) Threshold() int { return len(c.Points) }

// PublicKey returns A_0 = secret·G.
func (c *Commitment) PublicKey() kyber.Point { return c.Points[0].Clone() }

// PublicShare returns f(index)·G = Σ A_j·index^j, the public key that
// share index's value must match.
func (c *Commitment) PublicShare(index int) kyber.Point {
	return c.pubPoly().Eval(index - 1).V
}

// pubPoly is c as kyber's public polynomial over the base point G.
func (c *Commitment) pubPoly() *share.PubPoly {
	return share.NewPubPoly(group.Suite(), nil, c.Points)
}

// Verify checks that s is a share of the split c commits to. It returns an
// error wrapping [ErrInvalidIndex] for an index outside 1..MaxShares and an
// [*InconsistentShareError] if the value does not match.
func (c *Commitment) Verify(s Share) error {
	if err := c.check(); err != nil {
		return err
	}
	if err := checkShare(s); err != nil {
		return err
	}
	if !c.pubPoly().Check(&share.PriShare{I: s.Index - 1, V: s.Value}) {
		return &InconsistentShareError{Index: s.Index}
	}
	return nil
}

func (c *Commitment) check() error {
	if c == nil || len(c.Points) == 0 {
		return errors.New("shares: empty commitment: pass the commitment that Split returned with the shares")
	}
	if len(c.Points) > MaxShares {
		return fmt.Errorf("shares: commitment has %d points, more than the largest threshold %d", len(c.Points), MaxShares)
	}
	return nil
}

// Marshal encodes c: one version byte (1), one byte t, then the t points,
// 32 bytes each.
func (c *Commitment) Marshal() []byte {
	b := make([]byte, 0, 2+group.PointLen*len(c.Points))
	b = append(b, commitmentVersion, byte(len(c.Points)))
	for _, p := range c.Points {
		b = append(b, group.PointBytes(p)...)
	}
	return b
}

// ParseCommitment decodes a commitment written by [Commitment.Marshal].
// Every point must pass [group.ParsePoint]: canonical, in the prime-order
// subgroup and not the identity. An honest split never commits to the
// identity (the secret is non-zero and the other coefficients are drawn
// non-zero), so refusing it costs nothing.
func ParseCommitment(b []byte) (*Commitment, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("shares: commitment: %d bytes, too short to hold a version and a threshold; pass the commitment exactly as Marshal wrote it", len(b))
	}
	if b[0] != commitmentVersion {
		return nil, fmt.Errorf("shares: commitment: unknown version %d (this build reads version %d); use a keyquorum that writes this version", b[0], commitmentVersion)
	}
	t := int(b[1])
	if t == 0 {
		return nil, errors.New("shares: commitment: threshold 0; a commitment has at least one point")
	}
	if want := 2 + t*group.PointLen; len(b) != want {
		return nil, fmt.Errorf("shares: commitment: %d bytes, want %d for threshold %d; the encoding was cut or padded", len(b), want, t)
	}
	c := &Commitment{Points: make([]kyber.Point, t)}
	for j := range c.Points {
		p, err := group.ParsePoint(b[2+j*group.PointLen : 2+(j+1)*group.PointLen])
		if err != nil {
			return nil, fmt.Errorf("shares: commitment: point %d: %w", j, err)
		}
		c.Points[j] = p
	}
	return c, nil
}

// Split shares secret t-of-n: it returns n shares with indices 1..n, any t
// of which recover the secret, and the Feldman commitment that checks them.
// It needs 1 <= t <= n <= MaxShares and a non-zero secret, and reads the
// t−1 random coefficients from rand.
func Split(secret kyber.Scalar, t, n int, rand io.Reader) ([]Share, *Commitment, error) {
	if err := checkSplitParams(t, n); err != nil {
		return nil, nil, err
	}
	if secret == nil || secret.Equal(group.Scalar()) {
		return nil, nil, errors.New("shares: the secret is zero (or missing); its commitment would be the identity point and any share would give it away: split a random non-zero scalar")
	}
	coeffs := make([]kyber.Scalar, t)
	coeffs[0] = secret.Clone()
	for j := 1; j < t; j++ {
		a, err := group.RandomScalar(rand)
		if err != nil {
			return nil, nil, fmt.Errorf("shares: drawing polynomial coefficients: %w", err)
		}
		coeffs[j] = a
	}
	poly := share.CoefficientsToPriPoly(group.Suite(), coeffs)
	_, points := poly.Commit(nil).Info()
	shares := make([]Share, n)
	for i, ps := range poly.Shares(n) {
		shares[i] = Share{Index: ps.I + 1, Value: ps.V}
	}
	for _, a := range coeffs {
		a.Zero()
	}
	return shares, &Commitment{Points: points}, nil
}

func checkSplitParams(t, n int) error {
	switch {
	case n < 1 || n > MaxShares:
		return fmt.Errorf("shares: %d shares asked for; the number of shares must be between 1 and %d", n, MaxShares)
	case t < 1:
		return fmt.Errorf("shares: threshold %d; the threshold must be at least 1", t)
	case t > n:
		return fmt.Errorf("shares: threshold %d is more than the %d shares; choose a threshold of at most %d", t, n, n)
	}
	return nil
}

func checkIndex(i int) error {
	if i < 1 || i > MaxShares {
		return fmt.Errorf("%w %d: indices run from 1 to %d", ErrInvalidIndex, i, MaxShares)
	}
	return nil
}

func checkShare(s Share) error {
	if err := checkIndex(s.Index); err != nil {
		return err
	}
	if s.Value == nil {
		return fmt.Errorf("%w: share %d has no value", ErrInvalidIndex, s.Index)
	}
	return nil
}

func checkThreshold(t int) error {
	if t < 1 || t > MaxShares {
		return fmt.Errorf("shares: threshold %d; it must be between 1 and %d", t, MaxShares)
	}
	return nil
}

// checkIndices refuses invalid and repeated indices.
func checkIndices(indices []int) error {
	var seen [MaxShares + 1]bool
	for _, i := range indices {
		if err := checkIndex(i); err != nil {
			return err
		}
		if seen[i] {
			return &DuplicateIndexError{Index: i}
		}
		seen[i] = true
	}
	return nil
}

// lagrangeAt returns the Lagrange basis coefficients for the distinct,
// valid indices xs evaluated at x: λ_i(x) = Π_{j≠i} (x − x_j)/(x_i − x_j),
// so that f(x) = Σ λ_i(x)·f(x_i) for every polynomial f of degree below
// len(xs).
func lagrangeAt(x int, xs []int) []kyber.Scalar {
	out := make([]kyber.Scalar, len(xs))
	for i, xi := range xs {
		num := group.Scalar().One()
		den := group.Scalar().One()
		for j, xj := range xs {
			if j == i {
				continue
			}
			num.Mul(num, group.Scalar().SetInt64(int64(x-xj)))
			den.Mul(den, group.Scalar().SetInt64(int64(xi-xj)))
		}
		out[i] = num.Div(num, den)
	}
	return out
}

// LagrangeCoefficients returns, for distinct indices x_1..x_k, the
// coefficients λ_i = Π_{j≠i} x_j/(x_j − x_i) with f(0) = Σ λ_i·f(x_i) for
// every polynomial f of degree below k. The i-th coefficient belongs to
// indices[i].
func LagrangeCoefficients(indices []int) ([]kyber.Scalar, error) {
	if len(indices) == 0 {
		return nil, fmt.Errorf("%w: no indices given", ErrTooFewShares)
	}
	if err := checkIndices(indices); err != nil {
		return nil, err
	}
	return lagrangeAt(0, indices), nil
}

// Recover returns the secret shared t-of-n, from at least t of its shares.
// It interpolates at 0 through the first t shares; any further shares must
// lie on the same polynomial, or it returns an error wrapping
// [ErrMismatchedSplit] (without a commitment it cannot tell which share is
// wrong: use [RecoverWithCommitment] for that).
//
// Fewer than t shares give an error wrapping [ErrTooFewShares]; a repeated
// index gives a [*DuplicateIndexError].
func Recover(shares []Share, t int) (kyber.Scalar, error) {
	if err := checkThreshold(t); err != nil {
		return nil, err
	}
	xs, err := shareIndices(shares)
	if err != nil {
		return nil, err
	}
	if len(shares) < t {
		return nil, tooFewShares(len(shares), t)
	}
	base := xs[:t]
	secret, err := share.RecoverSecret(group.Suite(), priShares(shares[:t]), t, t)
	if err != nil {
		return nil, fmt.Errorf("shares: %w", err) // unreachable: t valid, distinct shares
	}
	for _, extra := range shares[t:] {
		y := group.Scalar()
		for i, l := range lagrangeAt(extra.Index, base) {
			y.Add(y, group.Scalar().Mul(l, shares[i].Value))
		}
		if !y.Equal(extra.Value) {
			return nil, fmt.Errorf("%w: share %d does not lie on the polynomial through shares %s (another split, or an altered share); recover with the split's commitment to find which",
				ErrMismatchedSplit, extra.Index, joinInts(base))
		}
	}
	return secret, nil
}

// RecoverPoint combines t or more values x_i·P, one per share index, into
// x·P, where x is the shared secret: Lagrange interpolation at 0 in the
// exponent. It uses the first t points; any further points must lie on the
// same polynomial (in the exponent), or it returns an error wrapping
// [ErrMismatchedSplit]. It does not check that each point is honest:
// callers check a proof for each x_i·P before they combine.
func RecoverPoint(points []IndexedPoint, t int) (kyber.Point, error) {
	if err := checkThreshold(t); err != nil {
		return nil, err
	}
	xs := make([]int, len(points))
	for i, p := range points {
		if err := checkIndex(p.Index); err != nil {
			return nil, err
		}
		if p.Point == nil {
			return nil, fmt.Errorf("%w: point %d is missing", ErrInvalidIndex, p.Index)
		}
		xs[i] = p.Index
	}
	if err := checkIndices(xs); err != nil {
		return nil, err
	}
	if len(points) < t {
		return nil, tooFewShares(len(points), t)
	}
	base := xs[:t]
	result, err := share.RecoverCommit(group.Suite(), pubShares(points[:t]), t, t)
	if err != nil {
		return nil, fmt.Errorf("shares: %w", err) // unreachable: t valid, distinct points
	}
	combine := func(x int) kyber.Point {
		acc := group.Point()
		for i, l := range lagrangeAt(x, base) {
			acc.Add(acc, group.Point().Mul(l, points[i].Point))
		}
		return acc
	}
	for _, extra := range points[t:] {
		if !combine(extra.Index).Equal(extra.Point) {
			return nil, fmt.Errorf("%w: point %d does not lie on the polynomial through points %s; check each point's proof to find the bad one",
				ErrMismatchedSplit, extra.Index, joinInts(base))
		}
	}
	return result, nil
}

// RecoverWithCommitment checks every share against c and then recovers
// the secret from them with threshold c.Threshold(). Shares that fail the
// check are all named: the error joins one [*InconsistentShareError] per bad
// share (find them with [errors.As]), and nothing is recovered even if
// enough good shares remain, so that a bad share is never passed over in
// silence. Fewer than t shares give an error wrapping [ErrTooFewShares].
func RecoverWithCommitment(shares []Share, c *Commitment) (kyber.Scalar, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if _, err := shareIndices(shares); err != nil {
		return nil, err
	}
	var bad []error
	for _, s := range shares {
		if err := c.Verify(s); err != nil {
			bad = append(bad, err)
		}
	}
	if len(bad) > 0 {
		return nil, errors.Join(bad...)
	}
	secret, err := Recover(shares, c.Threshold())
	if err != nil {
		return nil, err
	}
	if !group.Point().Mul(secret, nil).Equal(c.Points[0]) {
		// Unreachable when every share verifies; checked anyway so that
		// a wrong secret is never returned.
		return nil, errors.New("shares: recovered secret does not match the commitment's public key; this is a bug, please report it")
	}
	return secret, nil
}

// priShares converts shares to kyber's 0-based private shares.
func priShares(ss []Share) []*share.PriShare {
	out := make([]*share.PriShare, len(ss))
	for i, s := range ss {
		out[i] = &share.PriShare{I: s.Index - 1, V: s.Value}
	}
	return out
}

// pubShares converts indexed points to kyber's 0-based public shares.
func pubShares(ps []IndexedPoint) []*share.PubShare {
	out := make([]*share.PubShare, len(ps))
	for i, p := range ps {
		out[i] = &share.PubShare{I: p.Index - 1, V: p.Point}
	}
	return out
}

func joinInts(xs []int) string {
	s := append([]int(nil), xs...)
	sort.Ints(s)
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ", ")
}

// shareIndices checks every share and that their indices are valid and
// distinct, and returns the indices in order.
func shareIndices(shares []Share) ([]int, error) {
	xs := make([]int, len(shares))
	for i, s := range shares {
		if err := checkShare(s); err != nil {
			return nil, err
		}
		xs[i] = s.Index
	}
	if err := checkIndices(xs); err != nil {
		return nil, err
	}
	return xs, nil
}

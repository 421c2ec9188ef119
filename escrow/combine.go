package escrow

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	ed "filippo.io/edwards25519"
	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
)

// Errors from [Combine].
var (
	// ErrInsufficientShares: fewer than t valid partial decryptions; no key
	// is produced.
	ErrInsufficientShares = errors.New("escrow: not enough valid partial decryptions to reach the threshold")
	// ErrCombineCheck: t valid shares combined to a value that does not
	// open the envelope. With verified proofs this cannot happen unless the
	// group's public shares are wrong; no key is produced.
	ErrCombineCheck = errors.New("escrow: combined shares do not open the envelope (check the group file's public shares)")
)

// BadShareError names a trustee whose partial decryption was refused.
type BadShareError struct {
	Trustee int
	Reason  string
}

func (e *BadShareError) Error() string {
	return fmt.Sprintf("escrow: trustee %d sent a bad partial decryption: %s", e.Trustee, e.Reason)
}

// Group is the public view of a trustee group for one epoch that
// [Combine] needs: the group key X_e, the threshold and every trustee's
// public share X_i = x_i·G.
type Group struct {
	Epoch        uint32
	Key          kyber.Point
	Threshold    int
	PublicShares map[int]kyber.Point // by 1-based trustee index
}

// Result is a successful combination.
type Result struct {
	Key  []byte          // the session key K, confirmed by re-deriving the envelope
	Used []int           // the t trustees whose shares were combined
	Bad  []BadShareError // trustees whose answers were refused
}

// Combine is the requester's last step for one envelope. It verifies every
// partial decryption's proof against the trustee's public share, names every
// trustee whose answer fails, combines the first t valid answers by Lagrange
// interpolation in the exponent to get V = x·(U+Q), removes q·X_e to get S,
// opens C and confirms K by re-deriving the envelope. It never returns a key
// it has not confirmed.
//
// If fewer than t answers are valid, the error wraps ErrInsufficientShares
// and, with errors.As, each *BadShareError.
func Combine(g *Group, env *Envelope, req *RequesterKey, partials []*PartialDecryption) (*Result, error) {
	if g.Threshold < 1 {
		return nil, fmt.Errorf("escrow: group threshold %d is invalid", g.Threshold)
	}
	key := g.EpochKey()
	if err := env.Verify(key); err != nil {
		return nil, err
	}
	Hb, H := dleqBase(env, group.ToFilippoPoint(req.Public))
	res := &Result{}
	var (
		validIdx []int       // trustee indices of the valid answers, at most t
		validV   []*ed.Point // their V_i
	)
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
			// A retried request can deliver the same answer twice; only a
			// different second answer is suspicious.
			if !bytes.Equal(seen[p.Trustee], p.Marshal()) {
				bad("two different answers from the same trustee")
			}
		default:
			Xib := group.PointBytes(Xi)
			if err := p.verify(group.FilippoPointFromEncoding(Xib), Xib, env, Hb, H); err != nil {
				bad(err.Error())
				continue
			}
			seen[p.Trustee] = p.Marshal()
			if len(validIdx) < g.Threshold {
				validIdx = append(validIdx, p.Trustee)
				validV = append(validV, p.v)
				res.Used = append(res.Used, p.Trustee)
			}
		}
	}
	sort.Ints(res.Used)
	if len(validIdx) < g.Threshold {
		errs := []error{fmt.Errorf("%w: have %d valid of %d needed%s", ErrInsufficientShares, len(validIdx), g.Threshold, describeBad(res.Bad))}
		for i := range res.Bad {
			errs = append(errs, &res.Bad[i])
		}
		return nil, errors.Join(errs...)
	}
	V, err := interpolateAtZero(validIdx, validV)
	if err != nil {
		return nil, fmt.Errorf("escrow: lagrange interpolation: %w", err)
	}
	// V = x·(U+Q) = S + q·X_e, so S = V − q·X_e. q is secret: constant-time
	// multiplication.
	qX := new(ed.Point).ScalarMult(group.ToFilippoScalar(req.Private), key.p)
	S := V.Subtract(V, qX)
	K, err := env.open(S.Bytes(), env.ub, key.enc)
	if err != nil {
		return nil, err
	}
	res.Key = K
	return res, nil
}

// errTooFewCommitShares is the refusal when fewer than t shares have a
// usable index (x-coordinate 1 or more), worded as kyber's
// share.RecoverCommit, which Combine used before, words it.
var errTooFewCommitShares = errors.New("share: not enough good public shares to reconstruct secret commitment")

// interpolateAtZero computes, in the exponent, the value at 0 of the
// polynomial whose values at the x-coordinates xs are the points Vs:
// Σ λ_i·V_i with λ_i = Π_{j≠i} x_j / (x_j − x_i) (Lagrange; Shamir 1979,
// "How to share a secret", CACM 22(11)). The xs are distinct trustee
// indices. It is [share.RecoverCommit] over the same shares, computed with
// one scalar inversion for all the denominators (Montgomery's batch
// inversion) and one variable-time multi-scalar multiplication: the V_i are
// public.
func interpolateAtZero(xs []int, Vs []*ed.Point) (*ed.Point, error) {
	for _, x := range xs {
		if x < 1 {
			// RecoverCommit ignores a share with no valid index, leaving
			// fewer than t.
			return nil, errTooFewCommitShares
		}
	}
	return new(ed.Point).VarTimeMultiScalarMult(lagrangeCoefficients(xs), Vs), nil
}

// lagrangeCoefficients returns λ_i = Π_{j≠i} x_j / (x_j − x_i) for the
// distinct x-coordinates xs (all at least 1), with one scalar inversion for
// all the denominators (Montgomery's batch inversion).
func lagrangeCoefficients(xs []int) []*ed.Scalar {
	n := len(xs)
	x := make([]*ed.Scalar, n)
	for i, xi := range xs {
		x[i] = group.FilippoScalarFromInt(uint64(xi))
	}
	num := make([]*ed.Scalar, n)
	den := make([]*ed.Scalar, n)
	d := ed.NewScalar()
	for i := range x {
		num[i], den[i] = group.FilippoScalarFromInt(1), group.FilippoScalarFromInt(1)
		for j := range x {
			if i == j {
				continue
			}
			num[i].Multiply(num[i], x[j])
			den[i].Multiply(den[i], d.Subtract(x[j], x[i]))
		}
	}
	// Batch inversion: prefix[i] = den[0]·…·den[i−1]; invert the whole
	// product once, then peel one factor off at a time from the end.
	prefix := make([]*ed.Scalar, n+1)
	prefix[0] = group.FilippoScalarFromInt(1)
	for i := range den {
		prefix[i+1] = ed.NewScalar().Multiply(prefix[i], den[i])
	}
	inv := ed.NewScalar().Invert(prefix[n])
	coeff := make([]*ed.Scalar, n)
	for i := n - 1; i >= 0; i-- {
		// inv is (den[0]·…·den[i])⁻¹ here.
		coeff[i] = ed.NewScalar().Multiply(inv, prefix[i]) // den[i]⁻¹
		coeff[i].Multiply(coeff[i], num[i])
		inv.Multiply(inv, den[i])
	}
	return coeff
}

func describeBad(bad []BadShareError) string {
	if len(bad) == 0 {
		return ""
	}
	var names []string
	for _, b := range bad {
		names = append(names, fmt.Sprint(b.Trustee))
	}
	return "; refused answers from trustee(s) " + strings.Join(names, ", ")
}

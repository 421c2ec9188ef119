package escrow

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/share"
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
	if err := env.Verify(g.Key); err != nil {
		return nil, err
	}
	res := &Result{}
	var valid []*share.PubShare
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
			if err := p.Verify(Xi, env, req.Public); err != nil {
				bad(err.Error())
				continue
			}
			seen[p.Trustee] = p.Marshal()
			if len(valid) < g.Threshold {
				valid = append(valid, &share.PubShare{I: p.Trustee - 1, V: p.V})
				res.Used = append(res.Used, p.Trustee)
			}
		}
	}
	sort.Ints(res.Used)
	if len(valid) < g.Threshold {
		errs := []error{fmt.Errorf("%w: have %d valid of %d needed%s", ErrInsufficientShares, len(valid), g.Threshold, describeBad(res.Bad))}
		for i := range res.Bad {
			errs = append(errs, &res.Bad[i])
		}
		return nil, errors.Join(errs...)
	}
	V, err := share.RecoverCommit(group.Suite(), valid, g.Threshold, maxIndex(valid))
	if err != nil {
		return nil, fmt.Errorf("escrow: lagrange interpolation: %w", err)
	}
	// V = x·(U+Q) = S + q·X_e, so S = V − q·X_e.
	S := group.Point().Sub(V, group.Point().Mul(req.Private, g.Key))
	K, err := env.openWithS(S, g.Key)
	if err != nil {
		return nil, err
	}
	res.Key = K
	return res, nil
}

func maxIndex(s []*share.PubShare) int {
	m := 0
	for _, p := range s {
		if p.I+1 > m {
			m = p.I + 1
		}
	}
	return m
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

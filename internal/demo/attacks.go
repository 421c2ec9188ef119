package demo

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	"github.com/keyquorum/keyquorum/internal/sim"
	"github.com/keyquorum/keyquorum/trustee"
)

// runAttacks has the investigator try to get more than the warrant allows
// from the keyquorum federation, and records what happened. It returns the
// attacks, and how many out-of-scope sessions were tried and recovered.
func runAttacks(w *world) ([]Attack, int, int, error) {
	fed := w.feds["threshold"]
	var attacks []Attack
	var outside []*sim.Captured
	for _, c := range w.honest {
		if w.w.Covers(c.Context) != nil && len(outside) < 5 {
			outside = append(outside, c)
		}
	}

	// 1. Ask for sessions the warrant does not name.
	d, err := fed.decrypt(w, envelopesOf(outside), nil)
	if err != nil {
		return nil, 0, 0, err
	}
	recovered := 0
	for _, c := range outside {
		if _, ok := d.read(w, c); ok {
			recovered++
		}
	}
	attacks = append(attacks, Attack{Name: "ask for sessions outside the warrant", Succeeded: recovered > 0, Outcome: refusalSummary(d.refusals)})

	// 2. Scope escape: keep a covered context, splice in another session's
	// U, C and proof.
	in, out := w.inScope[0].Session.Envelope, outside[0].Session.Envelope
	ctxEnd := func(b []byte) int { return 3 + (int(b[1])<<8 | int(b[2])) }
	spliced := append(append([]byte(nil), in[:ctxEnd(in)]...), out[ctxEnd(out):]...)
	d, err = fed.decrypt(w, [][]byte{spliced}, nil)
	if err != nil {
		return nil, 0, 0, err
	}
	attacks = append(attacks, Attack{Name: "splice another session's U into a covered context", Succeeded: len(d.keys) > 0, Outcome: refusalSummary(d.refusals)})

	// 3. Requester-key substitution: a warrant naming Q' = U_B − U_A + q'·G.
	envA, err := escrow.ParseEnvelope(in)
	if err != nil {
		return nil, 0, 0, err
	}
	envB, err := escrow.ParseEnvelope(out)
	if err != nil {
		return nil, 0, 0, err
	}
	fake, err := escrow.GenerateRequesterKey(fed.rand)
	if err != nil {
		return nil, 0, 0, err
	}
	UB, err := group.ParsePoint(envB.UBytes())
	if err != nil {
		return nil, 0, 0, err
	}
	UA, err := group.ParsePoint(envA.UBytes())
	if err != nil {
		return nil, 0, 0, err
	}
	Qp := group.Point().Sub(UB, UA)
	Qp.Add(Qp, fake.Public)
	bent := *w.w
	bent.ID, bent.Requester = "W-2026-0043", Qp
	body, err := bent.MarshalText()
	if err != nil {
		return nil, 0, 0, err
	}
	signed, err := escrow.SignWarrant(body, w.judgeSign)
	if err != nil {
		return nil, 0, 0, err
	}
	// The investigator can only sign with q'; the request names Q'.
	sub := &escrow.RequesterKey{Private: fake.Private, Public: Qp}
	d, err = fed.request(w, signed, sub, [][]byte{in}, nil)
	if err != nil {
		return nil, 0, 0, err
	}
	attacks = append(attacks, Attack{Name: "substitute the requester key to read another session", Succeeded: len(d.batches) > 0, Outcome: refusalSummary(d.refusals)})
	return attacks, len(outside), recovered, nil
}

// refusalSummary names each refusal code and how many trustees gave it.
func refusalSummary(errs []error) string {
	if len(errs) == 0 {
		return "no trustee refused"
	}
	counts := map[string]int{}
	var order []string
	for _, err := range errs {
		code := "error"
		var r *trustee.RefusalError
		if errors.As(err, &r) {
			code = r.Code
		}
		if counts[code] == 0 {
			order = append(order, code)
		}
		counts[code]++
	}
	var parts []string
	for _, c := range order {
		parts = append(parts, fmt.Sprintf("refused by %d trustees (%s)", counts[c], c))
	}
	return strings.Join(parts, ", ")
}

// forgeEnvelopes has the rogue client try random escrow fields against an
// honest recipient's check: the context is kept (so the field looks right),
// U, C and the proof are random. It counts how many the recipient accepts.
func forgeEnvelopes(w *world) (Forgery, error) {
	c := w.honest[0]
	var recipient *escrow.UserKey
	for _, u := range w.traffic.Users {
		if u.Name == c.Context.Recipient {
			recipient = u
		}
	}
	g := w.groups[c.Context.Epoch]
	epochKey := g.EpochKey()
	keys, err := escrow.AcceptSession(recipient, w.pubs[c.Context.Sender], epochKey, c.Session, nil)
	if err != nil {
		return Forgery{}, err
	}
	check, err := escrow.NewEnvelopeChecker(keys.Key, keys.Context, epochKey)
	if err != nil {
		return Forgery{}, err
	}
	rand := sim.NewRand(w.cfg.Seed, "forgery")
	env := c.Session.Envelope
	prefix := 3 + (int(env[1])<<8 | int(env[2]))
	f := Forgery{}
	cand := make([]byte, len(env))
	copy(cand, env[:prefix])
	for i := 0; i < w.cfg.ForgeryTries; i++ {
		if i%4096 == 0 && w.ctx.Err() != nil {
			return f, w.ctx.Err()
		}
		if _, err := rand.Read(cand[prefix:]); err != nil {
			return f, err
		}
		f.Attempted++
		if check.Check(cand) == nil {
			f.Accepted++
		}
	}
	return f, nil
}

// forgeClipper runs Blaze's brute force against the Clipper LEAF model.
func forgeClipper(w *world) (int, error) {
	return forgeClipperFrom(sim.NewRand(w.cfg.Seed, "clipper"))
}

// forgeClipperFrom draws a chip's keys and the forger's tries from rand.
func forgeClipperFrom(rand io.Reader) (int, error) {
	var key, iv [16]byte
	var family [16]byte
	for _, b := range [][]byte{key[:], iv[:], family[:]} {
		if _, err := rand.Read(b); err != nil {
			return 0, err
		}
	}
	return forgeLEAF(newClipperLEAF(key[:], iv[:], family), rand, 1<<24)
}

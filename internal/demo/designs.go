package demo

import (
	"errors"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/sim"
	"go.dedis.ch/kyber/v3"
)

// measureDesigns fills the trade-off table. Every number is a count of
// sessions some code actually opened.
func measureDesigns(w *world) ([]Design, error) {
	n, t := w.cfg.Trustees, w.cfg.Threshold
	upTo := func(k int) func(int) bool { return func(i int) bool { return i <= k } }
	above := func(f int) func(int) bool { return func(i int) bool { return i > f } }
	none := map[uint32]kyber.Scalar{}
	master := interpolate(heldShares(w, upTo(n)))
	detected := rogueDetected(w)

	// no-escrow: the same sessions without an escrow field.
	plain := withoutEscrow(w.honest)
	plainScope := plain[:0:0]
	for _, c := range plain {
		if w.w.Covers(c.Context) == nil {
			plainScope = append(plainScope, c)
		}
	}
	noEscrow := Design{Name: "no-escrow", ExposedByOneWarrant: openWithSecrets(w, plain, master)}
	for k := 0; k <= n; k++ {
		noEscrow.ExposedWhenCompromised = append(noEscrow.ExposedWhenCompromised, openWithSecrets(w, plain, interpolate(heldShares(w, upTo(k)))))
	}
	for f := 0; f <= n; f++ {
		noEscrow.RecoverableWithDown = append(noEscrow.RecoverableWithDown, openWithSecrets(w, plainScope, master))
	}

	// master-key: one agency, trustee slot 1, holds every epoch secret.
	mk := Design{Name: "master-key", PartiesToDecrypt: intp(1), ForgedFieldDetected: detected}
	agency := func(online bool) map[uint32]kyber.Scalar {
		if online {
			return master
		}
		return none
	}
	mk.ExposedByOneWarrant = openWithSecrets(w, w.honest, agency(true))
	for k := 0; k <= n; k++ {
		mk.ExposedWhenCompromised = append(mk.ExposedWhenCompromised, openWithSecrets(w, w.honest, agency(k >= 1)))
	}
	for f := 0; f <= n; f++ {
		mk.RecoverableWithDown = append(mk.RecoverableWithDown, openWithSecrets(w, w.inScope, agency(f < 1)))
	}

	// split-master-key: the combiner rebuilds the key from the first t
	// online trustees' shares and keeps it.
	sp := Design{Name: "split-master-key", PartiesToDecrypt: intp(t), ForgedFieldDetected: detected}
	rebuilt := interpolate(heldShares(w, upTo(t)))
	sp.ExposedByOneWarrant = openWithSecrets(w, w.honest, rebuilt)
	for k := 0; k <= n; k++ {
		sp.ExposedWhenCompromised = append(sp.ExposedWhenCompromised, openWithSecrets(w, w.honest, interpolate(heldShares(w, upTo(k)))))
	}
	for f := 0; f <= n; f++ {
		sp.RecoverableWithDown = append(sp.RecoverableWithDown, openWithSecrets(w, w.inScope, interpolate(heldShares(w, above(f)))))
	}

	designs := []Design{noEscrow, mk, sp}
	for _, name := range []string{"threshold", "threshold-epochs"} {
		fed, err := w.federation(name)
		if err != nil {
			return nil, err
		}
		d := Design{Name: name, PartiesToDecrypt: intp(t), ForgedFieldDetected: detected}
		view, err := fed.decrypt(w, envelopesOf(w.inScope), nil)
		if err != nil {
			return nil, err
		}
		d.ExposedByOneWarrant = view.exposedTo(w, w.honest)
		logs, err := fed.auditLogs(w)
		if err != nil {
			return nil, err
		}
		d.UsesLogged = loggedEverywhere(w, logs, w.inScope)
		for k := 0; k <= n; k++ {
			stolen, err := fed.storedShares(upTo(k))
			if err != nil {
				return nil, err
			}
			d.ExposedWhenCompromised = append(d.ExposedWhenCompromised, openWithSecrets(w, w.honest, interpolate(stolen)))
		}
		for f := 0; f <= n; f++ {
			down := map[int]bool{}
			for i := 1; i <= f; i++ {
				down[i] = true
			}
			got, err := fed.decrypt(w, envelopesOf(w.inScope), down)
			if err != nil {
				return nil, err
			}
			r := 0
			for _, c := range w.inScope {
				if _, ok := got.read(w, c); ok {
					r++
				}
			}
			d.RecoverableWithDown = append(d.RecoverableWithDown, r)
		}
		designs = append(designs, d)
	}
	return designs, nil
}

// withoutEscrow returns copies of sessions without their escrow field.
func withoutEscrow(sessions []*sim.Captured) []*sim.Captured {
	var plain []*sim.Captured
	for _, c := range sessions {
		cp := *c
		s := *c.Session
		s.Envelope = nil
		cp.Session = &s
		plain = append(plain, &cp)
	}
	return plain
}

// rogueDetected reports whether honest recipients rejected every session
// whose escrow field was stripped, forged or backdated, for that reason.
func rogueDetected(w *world) bool {
	if len(w.rogue) == 0 {
		return false
	}
	for _, c := range w.rogue {
		if !errors.Is(c.Rejection, escrow.ErrEnvelopeMissing) && !errors.Is(c.Rejection, escrow.ErrEnvelopeMismatch) && !errors.Is(c.Rejection, escrow.ErrSessionTiming) {
			return false
		}
	}
	return true
}

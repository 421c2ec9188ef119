package demo

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/fedrun"
	"github.com/keyquorum/keyquorum/internal/sim"
	"github.com/keyquorum/keyquorum/shares"
)

// makeKeys makes the epoch keys the senders will use: dealt, made by
// ceremonies in this process, or made by ceremonies among trustee
// processes (which it sets up and starts).
func (w *world) makeKeys(epochs []escrow.GroupEpoch) error {
	cfg := w.cfg
	var names []string
	for i := 1; i <= cfg.Trustees; i++ {
		names = append(names, fmt.Sprintf("trustee-%d", i))
	}
	switch {
	case cfg.KeyGeneration == "dealer":
		var err error
		w.group, w.held, err = escrow.Deal(names, cfg.Threshold, epochs, sim.NewRand(cfg.Seed, "dealer"))
		return err
	case cfg.Processes:
		return w.processCeremonies(names, epochs)
	}
	return w.localCeremonies(names, epochs)
}

func ceremonyKind(i int) string {
	if i == 0 {
		return "dkg"
	}
	return "rotation"
}

// localCeremonies makes each epoch's key by a DKG whose participants all
// run in this process ([fedrun.LocalDKG]), from the demo's seed.
func (w *world) localCeremonies(names []string, epochs []escrow.GroupEpoch) error {
	g := &escrow.GroupFile{Version: escrow.GroupFileVersion, KeyGeneration: "dkg", Threshold: w.cfg.Threshold}
	for i, name := range names {
		g.Trustees = append(g.Trustees, escrow.GroupMember{Index: i + 1, Name: name})
	}
	for i, e := range epochs {
		r, err := fedrun.LocalDKG(fedrun.LocalDKGConfig{
			Names: names, Threshold: w.cfg.Threshold, Epoch: e.Epoch, Parallel: true,
			Rand: sim.NewRand(w.cfg.Seed, fmt.Sprintf("dkg/epoch %d", e.Epoch)),
		})
		if err != nil {
			return fmt.Errorf("demo: the ceremony of epoch %d: %w", e.Epoch, err)
		}
		g.Epochs = append(g.Epochs, r.Results[0].GroupEpoch(e))
		for k, res := range r.Results {
			w.held = append(w.held, escrow.DealtShare{Trustee: g.Trustees[k], Epoch: e.Epoch, Share: shares.Share{Index: res.Share.Index, Value: res.Share.Share}})
		}
		w.ceremonies = append(w.ceremonies, Ceremony{Epoch: e.Epoch, Kind: ceremonyKind(i), Took: r.Took, Holders: len(r.Results)})
	}
	if err := g.Validate(); err != nil {
		return err
	}
	w.group = g
	return nil
}

// processCeremonies sets up and starts the trustee processes, which have
// no key yet, and makes each epoch's key by a ceremony among them: a first
// DKG, then one rotation per further epoch. This process only relays.
func (w *world) processCeremonies(names []string, epochs []escrow.GroupEpoch) error {
	ctx := context.Background()
	fr, err := fedrun.Setup(ctx, fedrun.Options{
		Binary: w.cfg.Binary, Dir: filepath.Join(w.cfg.WorkDir, "federation"), Names: names,
		Threshold: w.cfg.Threshold, Judges: []string{w.judgeKey}, Passphrase: passphrase,
		KeyGeneration: fedrun.KeyGenerationDKG,
	})
	if err != nil {
		return fmt.Errorf("demo: setting up the trustees: %w", err)
	}
	w.procs = fr
	if err := fr.StartAll(ctx); err != nil {
		return fmt.Errorf("demo: starting the trustees: %w", err)
	}
	reps, err := fr.MakeEpochs(ctx, epochs, fedrun.CeremonyOptions{})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	for i, rep := range reps {
		if len(rep.Excluded) > 0 || len(rep.Holders) != len(names) {
			return fmt.Errorf("demo: the ceremony of epoch %d left out %v; every trustee should hold a share", epochs[i].Epoch, rep.Excluded)
		}
		w.ceremonies = append(w.ceremonies, Ceremony{Epoch: epochs[i].Epoch, Kind: ceremonyKind(i), ID: rep.CeremonyID, Took: rep.Took, Holders: len(rep.Holders)})
	}
	w.group = fr.Group
	return nil
}

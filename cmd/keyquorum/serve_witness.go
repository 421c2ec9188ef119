package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
	"golang.org/x/mod/sumdb/note"
)

// startWitnessWait bounds how long a store that was not restored waits
// for its witnesses at start-up: it asks once and goes on without those
// that do not answer (they may be starting too). A restored store keeps
// asking for --witness-wait.
const startWitnessWait = 3 * time.Second

func witnessWaitFlag() cli.Flag {
	return &cli.DurationFlag{Name: "witness-wait", Value: 30 * time.Second, Usage: "how long a restored node keeps asking its witnesses before it gives up", EnvVars: envVar("witness-wait")}
}

// overrideWitnessCheckFlag lets an operator start a restored node that
// cannot reach enough witnesses. It takes a reason, which is logged; it
// has no environment variable, so it never outlives the one start it was
// typed for (a unit's environment file would keep it).
func overrideWitnessCheckFlag() cli.Flag {
	return &cli.StringFlag{
		Name: "override-witness-check",
		Usage: "start a restored node although too few witnesses answered, for `REASON` (logged); " +
			"it may then sign a fork of its log if the backup was not the latest. Never overrides a log found behind its witnesses",
	}
}

// checkWitnessesAtStart asks the other trustees of the group, as the
// witnesses of this node's log, for the latest checkpoint of it they
// cosigned, before the node signs anything. A store put back by trustee
// restore must hear from n−w of the n−1 other trustees of the group
// (those it can reach, if fewer): every checkpoint a share left under was
// cosigned by w of them, so n−w answers include one that holds it. The
// operator may override with a reason; any store found behind a witness
// is refused.
// A restored store's mark is cleared once the check passes.
func checkWitnessesAtStart(c *cli.Context, store *trustee.Store, id *trustee.Identity, g *escrow.GroupFile, logger *slog.Logger) error {
	restored, err := store.Restored()
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	verifier, err := note.NewVerifier(id.LogKey)
	if err != nil {
		return cli.Exit(fmt.Sprintf("the node's log key: %v", err), 2)
	}
	var witnesses []*trustee.Client
	if g != nil {
		for _, m := range g.Trustees {
			if m.Name == id.Name || m.Address == "" {
				continue
			}
			cl, err := trustee.NewClient(m, trustee.WithClientTimeout(5*time.Second))
			if err != nil {
				logger.Warn("witness check: cannot reach a witness", "witness", m.Name, "err", err)
				continue
			}
			defer cl.CloseIdleConnections()
			witnesses = append(witnesses, cl)
		}
	}
	need, wait := 0, startWitnessWait
	if restored != "" {
		need, wait = len(witnesses), c.Duration("witness-wait")
		if g != nil {
			need = min(need, len(g.Trustees)-g.Witnesses())
		}
		logger.Info("this store was restored from a backup: asking its witnesses before serving", "restored", restored, "witnesses", len(witnesses))
	}
	if len(witnesses) == 0 && restored == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var rep *trustee.WitnessReport
	for {
		rep, err = trustee.CheckWitnesses(ctx, store, verifier, witnesses, need)
		if !errors.Is(err, trustee.ErrWitnessesUnreachable) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	var unreachable *trustee.WitnessesUnreachableError
	switch {
	case errors.As(err, &unreachable):
		reason := c.String("override-witness-check")
		if reason == "" {
			return cli.Exit(err.Error(), 1)
		}
		logger.Warn("OPERATOR OVERRIDE: serving a restored store without enough witnesses; if the backup was not the latest this node will sign a fork of its log",
			"reason", reason, "answered", unreachable.Answered, "needed", unreachable.Need, "missing", unreachable.Missing)
		return nil // the mark stays: the next start asks again
	case err != nil:
		return cli.Exit(err.Error(), 1)
	}
	if len(rep.Missing) > 0 {
		logger.Warn("witness check: some witnesses did not answer", "missing", rep.Missing)
	}
	logger.Info("witness check passed", "log_size", rep.Size, "latest_cosigned", rep.Latest, "witnesses", rep.Answered)
	if restored != "" {
		if err := store.ClearRestored(); err != nil {
			return cli.Exit(err.Error(), 1)
		}
	}
	return nil
}

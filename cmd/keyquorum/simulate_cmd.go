package main

import (
	"bytes"
	"fmt"
	"time"

	"github.com/keyquorum/keyquorum/internal/sim"
	"github.com/urfave/cli/v2"
	"go.dedis.ch/kyber/v3"
)

func simulateCommand() *cli.Command {
	return &cli.Command{
		Name:      "simulate",
		Usage:     "generate escrowed sessions between simulated users, as a provider would capture them",
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "group", Required: true, Usage: "group `FILE`, signed by every trustee (keyquorum trustee sign-group), whose epoch keys the sessions are escrowed under", EnvVars: envVar("group")},
			&cli.IntFlag{Name: "users", Value: 8, Usage: "users, the last of whom (mallory) runs a client that strips, forges or backdates the escrow field", EnvVars: envVar("users")},
			&cli.IntFlag{Name: "days", Value: 30, Usage: "days of traffic, from the first epoch's start", EnvVars: envVar("days")},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed: same seed and group, same sessions", EnvVars: envVar("seed")},
			&cli.StringFlag{Name: "out", Required: true, Usage: "capture file to write (JSON Lines)", EnvVars: envVar("out")},
		},
		Action: func(c *cli.Context) error {
			if c.Int("users") < 3 || c.Int("users") > 1000 || c.Int("days") < 1 || c.Int("days") > 3660 {
				return cli.Exit("need 3 to 1000 users and 1 to 3660 days", 2)
			}
			g, err := loadSignedGroup(c.String("group"))
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			users, err := sim.GenerateUsers(c.Int("users"), c.Uint64("seed"))
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			keyAt := func(t time.Time) (uint32, kyber.Point, error) {
				e, err := g.EpochAt(t)
				if err != nil {
					return 0, nil, err
				}
				eg, err := g.EscrowGroup(e.Epoch)
				if err != nil {
					return 0, nil, err
				}
				return e.Epoch, eg.Key, nil
			}
			t, err := sim.Generate(sim.Config{Users: c.Int("users"), Days: c.Int("days"), Seed: c.Uint64("seed"), Start: g.Epochs[0].ValidFrom, SessionsPerUserDay: 1}, users, keyAt)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := sim.WriteCapture(&buf, c.Uint64("seed"), t); err != nil {
				return err
			}
			if err := writePublicFile(c.String("out"), buf.Bytes()); err != nil {
				return err
			}
			rejected := 0
			for _, s := range t.Sessions {
				if !s.Accepted {
					rejected++
				}
			}
			fmt.Fprintf(c.App.Writer, "wrote %s: %d sessions among %d users over %d days; %d rejected by their recipients (escrow field stripped, forged or backdated)\n",
				c.String("out"), len(t.Sessions), len(users), c.Int("days"), rejected)
			return nil
		},
	}
}

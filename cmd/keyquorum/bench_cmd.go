package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/keyquorum/keyquorum/internal/bench"
	"github.com/urfave/cli/v2"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure keyquorum end to end against real trustee processes on loopback",
		Subcommands: []*cli.Command{{
			Name:  "decrypt",
			Usage: "time a warranted decryption of many sessions, and single-session warrants, against a t-of-n federation",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "sessions", Value: 10000, Usage: "sessions in the bulk warrant", EnvVars: envVar("sessions")},
				&cli.IntFlag{Name: "singles", Value: 200, Usage: "single-session warrants timed for latency", EnvVars: envVar("singles")},
				&cli.IntFlag{Name: "trustees", Aliases: []string{"n"}, Value: 5, Usage: "number of trustee processes", EnvVars: envVar("trustees")},
				&cli.IntFlag{Name: "threshold", Aliases: []string{"t"}, Value: 3, Usage: "trustees needed to decrypt", EnvVars: envVar("threshold")},
				&cli.BoolFlag{Name: "json", Usage: "print the figures as JSON", EnvVars: envVar("json")},
			},
			Action: func(c *cli.Context) error {
				bin, err := selfPath()
				if err != nil {
					return err
				}
				dir, err := os.MkdirTemp("", "keyquorum-bench-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				r, err := bench.Decrypt(c.Context, bench.DecryptConfig{
					Binary: bin, WorkDir: dir, Trustees: c.Int("trustees"), Threshold: c.Int("threshold"),
					Sessions: c.Int("sessions"), Singles: c.Int("singles"),
				})
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return json.NewEncoder(c.App.Writer).Encode(r)
				}
				ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
				out := c.App.Writer
				fmt.Fprintf(out, "%d-of-%d trustee processes on loopback, TLS 1.3, real stores\n", c.Int("threshold"), c.Int("trustees"))
				fmt.Fprintf(out, "bulk warrant: %d sessions end to end in %s: %.0f sessions/s\n", r.Sessions, r.Bulk.Round(time.Millisecond), r.SessionsPerSec)
				fmt.Fprintf(out, "  one trustee answering it alone:        %s (checks every envelope proof, logs, one partial decryption with proof per session)\n", r.OneTrustee.Round(time.Millisecond))
				fmt.Fprintf(out, "  requester combining %d answers per session: %s on all cores (checks every DLEQ proof, Lagrange, confirms K)\n", c.Int("threshold"), r.Combine.Round(time.Millisecond))
				if r.Singles > 0 {
					fmt.Fprintf(out, "single-session warrants (%d, one after another): p50 %s, p99 %s\n", r.Singles, ms(r.SingleP50), ms(r.SingleP99))
				}
				fmt.Fprintf(out, "(set-up %s, sealing the test envelopes %s, not counted)\n", r.Setup.Round(time.Millisecond), r.EnvelopeSealing.Round(time.Millisecond))
				return nil
			},
		}},
	}
}

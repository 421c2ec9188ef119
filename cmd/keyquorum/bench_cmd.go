package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/internal/bench"
	"github.com/keyquorum/keyquorum/internal/fedrun"
	"github.com/keyquorum/keyquorum/internal/netlab"
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
				&cli.StringFlag{Name: "cpuprofile", Usage: "write the requester's CPU profile of the bulk warrant to `FILE` (go tool pprof FILE)", EnvVars: envVar("cpuprofile")},
				&cli.IntFlag{Name: "chunk", Usage: "most sessions per request (default 10000); a larger bulk warrant takes several requests, one after another", EnvVars: envVar("chunk")},
				netemFlag(), netemLossFlag(),
				jsonFlag(),
			},
			Action: jsonOnError(schemaBenchDecrypt, func(c *cli.Context) error {
				lab, err := labConfig(c)
				if err != nil {
					return err
				}
				cfg := bench.DecryptConfig{Trustees: c.Int("trustees"), Threshold: c.Int("threshold"),
					Sessions: c.Int("sessions"), Singles: c.Int("singles"), Lab: lab, ChunkSessions: c.Int("chunk")}
				if p := c.String("cpuprofile"); p != "" {
					f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
					if err != nil {
						return cli.Exit(fmt.Sprintf("--cpuprofile: %v; choose a new file", err), 2)
					}
					defer f.Close()
					cfg.CPUProfile = f
				}
				bin, dir, err := benchWorkDir()
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				cfg.Binary, cfg.WorkDir = bin, dir
				r, err := bench.Decrypt(c.Context, cfg)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return writeJSON(c, benchDecryptJSON{Schema: schemaBenchDecrypt, Trustees: c.Int("trustees"), Threshold: c.Int("threshold"), DecryptResult: r})
				}
				ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
				out := c.App.Writer
				fmt.Fprintf(out, "%d-of-%d trustee processes %s, TLS 1.3, real stores\n", c.Int("threshold"), c.Int("trustees"), whereTrustees(lab))
				fmt.Fprintf(out, "bulk warrant: %d sessions end to end in %s (%d request(s)): %.0f sessions/s\n", r.Sessions, r.Bulk.Round(time.Millisecond), r.Requests, r.SessionsPerSec)
				fmt.Fprintf(out, "  one trustee answering a request of %d alone: %s (checks every envelope proof, logs, answers V per session and one batch proof)\n", r.BreakdownSessions, r.OneTrustee.Round(time.Millisecond))
				fmt.Fprintf(out, "  requester combining %d answers: %s (checks each batch proof with one MSM, Lagrange once, confirms every K)\n", c.Int("threshold"), r.Combine.Round(time.Millisecond))
				fmt.Fprintf(out, "  CPU, every process: %.2f ms per session = %.1fx X25519 (%.1f µs, measured now); requester %.2f s, trustees %s\n",
					r.CPUPerSession*1e3, r.CPUPerSessionX25519, r.X25519*1e6, r.CPUSeconds.Requester, secondsList(r.CPUSeconds.Trustees))
				if r.Singles > 0 {
					fmt.Fprintf(out, "single-session warrants (%d, one after another): p50 %s, p99 %s\n", r.Singles, ms(r.SingleP50), ms(r.SingleP99))
				}
				fmt.Fprintf(out, "peak memory: requester %s, trustees %s\n", mib(r.MaxRSS.Requester), mibList(r.MaxRSS.Trustees))
				fmt.Fprintf(out, "(set-up %s, sealing the test envelopes %s, not counted)\n", r.Setup.Round(time.Millisecond), r.EnvelopeSealing.Round(time.Millisecond))
				return nil
			}),
		}, benchDKGCommand()},
	}
}

func benchDKGCommand() *cli.Command {
	return &cli.Command{
		Name:  "dkg",
		Usage: "time one dealerless key generation among trustee processes, next to the same DKG computed in one process",
		Description: "Starts N trustee processes on loopback (not timed), runs one DKG among them with this\n" +
			"process as the coordinator, then runs the same DKG with every participant in this process\n" +
			"and no network, one after another and on every core, and prints the three times.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "trustees", Aliases: []string{"n"}, Value: 16, Usage: "number of trustee processes", EnvVars: envVar("trustees")},
			&cli.IntFlag{Name: "threshold", Aliases: []string{"t"}, Usage: "trustees needed to decrypt (default: a majority, n/2+1)", EnvVars: envVar("threshold")},
			netemFlag(), netemLossFlag(),
			jsonFlag(),
		},
		Action: jsonOnError(schemaBenchDKG, func(c *cli.Context) error {
			n, t := c.Int("trustees"), c.Int("threshold")
			if !c.IsSet("threshold") {
				t = n/2 + 1
			}
			if n < 2 || t < 2 || t > n {
				return cli.Exit(fmt.Sprintf("-n %d -t %d: a DKG needs 2 <= threshold <= trustees", n, t), 2)
			}
			lab, err := labConfig(c)
			if err != nil {
				return err
			}
			bin, dir, err := benchWorkDir()
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			r, err := bench.DKG(c.Context, bench.DKGConfig{Binary: bin, WorkDir: dir, Trustees: n, Threshold: t, Lab: lab})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c, benchDKGJSON{Schema: schemaBenchDKG, DKGResult: r})
			}
			out := c.App.Writer
			sec := func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
			phases := func(ps []fedrun.PhaseTime) string {
				var s []string
				for _, p := range ps {
					s = append(s, fmt.Sprintf("%s %s", p.Phase, sec(p.Took)))
				}
				return strings.Join(s, ", ")
			}
			fmt.Fprintf(out, "DKG, %d-of-%d: %d trustee processes %s (TLS 1.3, real stores), this process coordinating; %d cores shared\n", t, n, n, whereTrustees(lab), r.Cores)
			fmt.Fprintf(out, "  among the processes:        %s  (%s)\n", sec(r.Network), phases(r.NetworkPhases))
			fmt.Fprintf(out, "  in one process, sequential: %s  (%s)\n", sec(r.Sequential), phases(r.SequentialPhases))
			fmt.Fprintf(out, "  in one process, parallel:   %s  (%s)\n", sec(r.Parallel), phases(r.ParallelPhases))
			fmt.Fprintf(out, "  processes / in-process: %.2fx the parallel computation, %.2fx the sequential one\n",
				r.Network.Seconds()/r.Parallel.Seconds(), r.Network.Seconds()/r.Sequential.Seconds())
			fmt.Fprintf(out, "(set-up of the %d trustees %s, not counted)\n", n, r.Setup.Round(time.Millisecond))
			return nil
		}),
	}
}

// benchWorkDir returns this program, to start trustee processes, and a new
// temporary directory for them, which the caller removes.
func benchWorkDir() (bin, dir string, err error) {
	if bin, err = selfPath(); err != nil {
		return "", "", err
	}
	dir, err = os.MkdirTemp("", "keyquorum-bench-")
	return bin, dir, err
}

func netemFlag() cli.Flag {
	return &cli.DurationFlag{Name: "netem", Usage: "put each trustee in a network namespace of its own behind a link of `DELAY` each way " +
		"(so a round trip to it takes 2*DELAY) and --netem-loss; Linux, as root", EnvVars: envVar("netem")}
}

func netemLossFlag() cli.Flag {
	return &cli.Float64Flag{Name: "netem-loss", Value: 0.5, Usage: "with --netem, the `PERCENT` of packets each link drops, each way", EnvVars: envVar("netem-loss")}
}

// labConfig returns the trustees' links that --netem and --netem-loss
// ask for, or nil for loopback.
func labConfig(c *cli.Context) (*netlab.Config, error) {
	if !c.IsSet("netem") {
		if c.IsSet("netem-loss") {
			return nil, cli.Exit("--netem-loss needs --netem DELAY", 2)
		}
		return nil, nil
	}
	d, loss := c.Duration("netem"), c.Float64("netem-loss")
	if d <= 0 || d > 10*time.Second || loss < 0 || loss >= 100 {
		return nil, cli.Exit(fmt.Sprintf("--netem %v --netem-loss %v: give a delay from 1ms to 10s and a loss from 0 up to 100 percent", d, loss), 2)
	}
	if err := netlab.Available(); err != nil {
		return nil, cli.Exit(fmt.Sprintf("--netem: %v", err), 1)
	}
	return &netlab.Config{Delay: d, Loss: loss / 100}, nil
}

// whereTrustees says where the trustee processes run.
func whereTrustees(lab *netlab.Config) string {
	if lab == nil {
		return "on loopback"
	}
	return fmt.Sprintf("each in a network namespace of its own, links of %v each way with %.2g%% loss", lab.Delay, lab.Loss*100)
}

func secondsList(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(s, ", ") + " s"
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

func mibList(ns []int64) string {
	var s []string
	for _, n := range ns {
		s = append(s, fmt.Sprintf("%.0f", float64(n)/(1<<20)))
	}
	return strings.Join(s, ", ") + " MiB"
}

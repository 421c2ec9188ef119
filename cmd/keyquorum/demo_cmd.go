package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyquorum/keyquorum/internal/demo"
	"github.com/urfave/cli/v2"
)

func demoCommand() *cli.Command {
	def := demo.DefaultConfig()
	return &cli.Command{
		Name:  "demo",
		Usage: "run the whole story (trustees, users, a warrant, attacks) and print the measured trade-off table",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "trustees", Aliases: []string{"n"}, Value: def.Trustees, Usage: "number of trustees", EnvVars: envVar("trustees")},
			&cli.IntFlag{Name: "threshold", Aliases: []string{"t"}, Value: def.Threshold, Usage: "trustees needed to decrypt", EnvVars: envVar("threshold")},
			&cli.IntFlag{Name: "users", Value: def.Users, Usage: "simulated users, the last of whom runs a rogue client", EnvVars: envVar("users")},
			&cli.IntFlag{Name: "days", Value: def.Days, Usage: "simulated days of traffic", EnvVars: envVar("days")},
			&cli.Uint64Flag{Name: "seed", Value: def.Seed, Usage: "seed for the simulation (same seed, same story)", EnvVars: envVar("seed")},
			&cli.IntFlag{Name: "epoch-days", Value: def.EpochDays, Usage: "length of a key epoch in days", EnvVars: envVar("epoch-days")},
			&cli.IntFlag{Name: "retention", Value: def.RetentionEpochs, Usage: "epochs kept by trustees in the threshold-epochs design", EnvVars: envVar("retention")},
			&cli.IntFlag{Name: "forgery-tries", Value: def.ForgeryTries, Usage: "random escrow fields the rogue client tries against a recipient", EnvVars: envVar("forgery-tries")},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object instead of the report", EnvVars: envVar("json")},
			&cli.BoolFlag{Name: "in-process", Usage: "run the trustees inside this process on a simulated clock instead of as separate processes over TLS", EnvVars: envVar("in-process")},
			&cli.BoolFlag{Name: "dealer", Usage: "have a dealer make the keys (it sees them whole), for comparison with the default dealerless key ceremonies", EnvVars: envVar("dealer")},
			&cli.BoolFlag{Name: "web", Usage: "keep the trustees running and serve an explorable page on them; the first line printed is its URL", EnvVars: envVar("web")},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:0", Usage: "address the --web page listens on (port 0: one the OS picks)", EnvVars: envVar("listen")},
		},
		Action: func(c *cli.Context) error {
			cfg := def
			cfg.Trustees, cfg.Threshold = c.Int("trustees"), c.Int("threshold")
			cfg.Users, cfg.Days, cfg.Seed = c.Int("users"), c.Int("days"), c.Uint64("seed")
			cfg.EpochDays, cfg.RetentionEpochs, cfg.ForgeryTries = c.Int("epoch-days"), c.Int("retention"), c.Int("forgery-tries")
			if c.Bool("dealer") {
				cfg.KeyGeneration = "dealer"
			}
			if err := cfg.Validate(); err != nil {
				return cli.Exit(err.Error(), 2)
			}
			if !c.Bool("in-process") {
				bin, err := selfPath()
				if err != nil {
					return fmt.Errorf("finding this program to start trustee processes: %w (use --in-process)", err)
				}
				dir, err := os.MkdirTemp("", "keyquorum-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				cfg.Processes, cfg.Binary, cfg.WorkDir = true, bin, dir
			}
			if c.Bool("web") {
				return serveDemo(c, cfg, c.String("listen"))
			}
			began := time.Now()
			rep, err := demo.Run(cfg)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			printReport(c.App.Writer, rep, time.Since(began))
			return nil
		},
	}
}

func printReport(out io.Writer, r *demo.Report, took time.Duration) {
	p := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	p("keyquorum demo: %d trustees, any %d of whom can decrypt (%s, %s key generation)", r.Trustees, r.Threshold, r.Mode, r.KeyGeneration)
	if r.Mode == "processes" {
		p("  Each trustee is its own process with its own encrypted store, served over TLS on loopback.")
	}
	switch {
	case r.KeyGeneration == "dealer":
		p("  note: --dealer: a dealer made every epoch key and saw it whole (by default the trustees make them by a DKG).")
	case len(r.Ceremonies) > 0:
		var took []string
		for _, c := range r.Ceremonies {
			took = append(took, c.Took.Round(time.Millisecond).String())
		}
		p("  Keys: %d epoch keys, each made by a dealerless key ceremony (a DKG, then %d rotations), taking %s.",
			len(r.Ceremonies), len(r.Ceremonies)-1, strings.Join(took, ", "))
		if r.Mode == "processes" {
			p("  The trustee processes ran them over TLS; the demo only relayed: no machine ever held a key.")
			p("  The demo played every operator: it wrote each proposal and approved it on each node.")
		} else {
			p("  In-process, every participant ran inside this process, which saw every share; without")
			p("  --in-process the trustee processes run the ceremonies and no machine holds a key.")
		}
	}
	p("")
	p("1. TRAFFIC  %d users chatted for %d days: %d sessions, each session key escrowed to the", r.Users, r.Days, r.Sessions)
	p("   trustees in an envelope the recipient re-derives and checks (%d key epochs).", r.Epochs)
	p("   The rogue client of %q stripped, forged or backdated its escrow field in %d sessions:", "mallory", r.RogueSessions)
	p("   honest recipients rejected %d of them.", r.RejectedSessions)
	p("")
	p("2. WARRANT  A judge signed a warrant for %q, sessions from %s to %s.", r.Target, r.WindowStart.Format("2006-01-02"), r.WindowEnd.Format("2006-01-02"))
	p("   %d sessions are in scope. Every trustee checked the warrant, logged its decision in", r.InScope)
	p("   its audit log, then answered with partial decryptions only for those sessions.")
	p("   The investigator recovered %d of %d sessions and read %d messages, e.g.", r.Recovered, r.InScope, r.MessagesRead)
	for _, s := range r.Sample {
		p("     %s", s)
	}
	p("")
	p("3. OVERREACH  What the investigator tried next:")
	for _, a := range r.Attacks {
		verdict := "FAILED"
		if a.Succeeded {
			verdict = "SUCCEEDED"
		}
		p("   - %s: %s; %s", a.Name, verdict, a.Outcome)
	}
	p("   Sessions recovered outside the warrant: %d of %d tried.", r.OutOfScopeRecov, r.OutOfScopeTried)
	p("")
	p("4. FORGERY  A Clipper-style 16-bit-checksum escrow field (Blaze, 1994) was forged by brute")
	p("   force in %d tries. %d random keyquorum escrow fields were tried against one recipient:", r.LEAFForgeryTries, r.ForgedEnvelopes.Attempted)
	p("   %d accepted.", r.ForgedEnvelopes.Accepted)
	p("")
	p("5. THE TRADE-OFF  (every cell counted by running code over the %d sessions)", r.Sessions)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "   design\tparties to\texposed by\texposed when k parties\trecoverable with f\tforged field\tuses")
	fmt.Fprintf(tw, "   \tdecrypt\tone warrant\tcompromised, k=0..%d\ttrustees down, f=0..%d\tdetected\tlogged\n", r.Trustees, r.Trustees)
	for _, d := range r.Designs {
		parties := "nobody"
		if d.PartiesToDecrypt != nil {
			parties = fmt.Sprint(*d.PartiesToDecrypt)
		}
		fmt.Fprintf(tw, "   %s\t%s\t%d\t%s\t%s\t%s\t%s\n", d.Name, parties, d.ExposedByOneWarrant,
			joinInts(d.ExposedWhenCompromised), joinInts(d.RecoverableWithDown), yesNo(d.ForgedFieldDetected), yesNo(d.UsesLogged))
	}
	tw.Flush()
	p("")
	p("   What the split buys: no single trustee can read anything; one warrant opens only the")
	p("   %d sessions it names, not all %d; every warranted use is in %d signed audit logs;", r.InScope, r.Sessions, r.Trustees)
	p("   with retention, old epochs are gone for everyone (kept: epochs %s).", joinU32(r.RetainedEpochs))
	if r.Mode == "processes" && r.KeyGeneration == "dkg" {
		p("   (threshold-epochs is the same trustees, restarted with a retention policy: each destroyed")
		p("   its older shares itself and logged it.)")
	}
	p("   What it cannot buy: any %d colluding trustees read every session they hold keys for,", r.Threshold)
	p("   with no warrant and no log entry. And two users who both run modified clients can")
	p("   always encrypt inside the channel: escrow only reaches people who do not try to avoid it.")
	p("")
	p("Audit log sizes: %s.  Finished in %s. Run with --json for the numbers.", auditSizes(r.AuditRecords), took.Round(time.Millisecond))
}

func joinInts(xs []int) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprint(x))
	}
	return strings.Join(s, " ")
}

func joinU32(xs []uint32) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprint(x))
	}
	return strings.Join(s, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func auditSizes(m map[string]int) string {
	var s []string
	for i := 1; ; i++ {
		name := fmt.Sprintf("trustee-%d", i)
		n, ok := m[name]
		if !ok {
			break
		}
		s = append(s, fmt.Sprintf("%s %d", name, n))
	}
	return strings.Join(s, ", ")
}

// selfPath is the path to run this program again: argv[0] as the shell
// found it (so a link named keyquorum stays one), else the executable.
func selfPath() (string, error) {
	if p, err := exec.LookPath(os.Args[0]); err == nil {
		return filepath.Abs(p)
	}
	return os.Executable()
}

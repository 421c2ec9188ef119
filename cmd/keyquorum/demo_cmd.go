package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/keyquorum/keyquorum/internal/demo"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
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
			// Ctrl-C or SIGTERM stops the run: every trustee process is
			// stopped and the temporary directory removed before exiting.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
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
			var pr *demoPrinter
			if !c.Bool("json") {
				pr = newDemoPrinter(c.App.Writer)
				defer pr.stop()
				cfg.Progress = pr.progress
				pr.intro(cfg)
			}
			rep, err := demo.RunContext(ctx, cfg)
			if ctx.Err() != nil {
				return cli.Exit("demo interrupted: every trustee process was stopped and the temporary directory removed", 130)
			}
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			pr.finish()
			return nil
		},
	}
}

// demoWidth is the widest line the demo prints.
const demoWidth = 100

// demoPrinter prints the demo's report section by section as the run
// completes them, and on a terminal shows a progress line for any step
// that takes more than a second.
type demoPrinter struct {
	out   io.Writer
	began time.Time

	mu      sync.Mutex
	step    string    // the step under way, "" between steps
	since   time.Time // when it started
	drawn   int       // width of the progress line on the terminal, 0 if none
	frame   int
	ticker  *time.Ticker
	stopped chan struct{}
}

func newDemoPrinter(out io.Writer) *demoPrinter {
	p := &demoPrinter{out: out, began: time.Now()}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.ticker = time.NewTicker(100 * time.Millisecond)
		p.stopped = make(chan struct{})
		go p.spin(p.ticker.C)
	}
	return p
}

// spin redraws the progress line at every tick until stop.
func (p *demoPrinter) spin(tick <-chan time.Time) {
	for {
		select {
		case <-p.stopped:
			return
		case <-tick:
		}
		p.mu.Lock()
		if p.step != "" && time.Since(p.since) >= time.Second {
			p.frame++
			line := fmt.Sprintf("%c %s (%.0f s)", `|/-\`[p.frame%4], p.step, time.Since(p.since).Seconds())
			line = clip(line, demoWidth-1)
			pad := p.drawn - utf8.RuneCountInString(line)
			fmt.Fprintf(p.out, "\r%s%s", line, strings.Repeat(" ", max(pad, 0)))
			p.drawn = utf8.RuneCountInString(line)
		}
		p.mu.Unlock()
	}
}

// clearLine erases the progress line; p.mu is held.
func (p *demoPrinter) clearLine() {
	if p.drawn > 0 {
		fmt.Fprintf(p.out, "\r%s\r", strings.Repeat(" ", p.drawn))
		p.drawn = 0
	}
}

func (p *demoPrinter) stop() {
	if p.ticker == nil {
		return
	}
	p.ticker.Stop()
	close(p.stopped)
	p.ticker = nil
	p.mu.Lock()
	p.clearLine()
	p.mu.Unlock()
}

// progress is the demo's Config.Progress.
func (p *demoPrinter) progress(ev demo.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.Step != "" {
		p.step, p.since = ev.Step, time.Now()
		return
	}
	p.clearLine()
	p.step = ""
	printSection(p.out, ev.Done, ev.Report)
}

func (p *demoPrinter) intro(cfg demo.Config) {
	p.mu.Lock()
	defer p.mu.Unlock()
	where := "The trustees run inside this process (--in-process), on a simulated clock."
	if cfg.Processes {
		where = "Each trustee is its own process with its own encrypted store, serving over TLS on loopback."
	}
	fmt.Fprintf(p.out, "keyquorum demo: %d trustees, any %d of whom can decrypt; %d users, %d days (seed %d)\n",
		cfg.Trustees, cfg.Threshold, cfg.Users, cfg.Days, cfg.Seed)
	para(p.out, "  ", where)
}

func (p *demoPrinter) finish() {
	p.stop()
	fmt.Fprintf(p.out, "\nFinished in %s. Run with --json for every number.\n", time.Since(p.began).Round(100*time.Millisecond))
}

// printSection prints one completed section of the report.
func printSection(out io.Writer, s demo.Section, r *demo.Report) {
	pf := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	pp := func(format string, a ...any) { para(out, "   ", fmt.Sprintf(format, a...)) }
	switch s {
	case demo.SectionKeys:
		pf("")
		pf("0. KEYS")
		switch {
		case r.KeyGeneration == "dealer":
			pp("A dealer made every epoch key and saw it whole, then split it among the trustees " +
				"(--dealer; by default the trustees make them by a DKG).")
		case len(r.Ceremonies) > 0:
			var took []string
			for _, c := range r.Ceremonies {
				took = append(took, c.Took.Round(time.Millisecond).String())
			}
			pp("%d epoch keys, each made by a dealerless key ceremony (a DKG, then %d rotations), taking %s.",
				len(r.Ceremonies), len(r.Ceremonies)-1, strings.Join(took, ", "))
			if r.Mode == "processes" {
				pp("The trustee processes ran them over TLS; the demo only relayed: no machine ever held a key.")
				pp("The demo played every operator: it wrote each proposal and approved it on each node.")
			} else {
				pp("In-process, every participant ran inside this process, which saw every share; without " +
					"--in-process the trustee processes run the ceremonies and no machine holds a key.")
			}
		}
	case demo.SectionTraffic:
		pf("")
		pf("1. TRAFFIC")
		pp("%d users chatted for %d days: %d sessions, each session key escrowed to the "+
			"trustees in an envelope the recipient re-derives and checks (%d key epochs). "+
			"The rogue client of %q stripped, forged or backdated its escrow field in %d sessions: "+
			"honest recipients rejected %d of them.",
			r.Users, r.Days, r.Sessions, r.Epochs, "mallory", r.RogueSessions, r.RejectedSessions)
	case demo.SectionWarrant:
		pf("")
		pf("2. WARRANT")
		pp("A judge signed a warrant for %q, sessions from %s to %s. %d sessions are in scope. "+
			"Every trustee checked the warrant, logged its decision in its audit log, then answered with "+
			"partial decryptions only for those sessions. The investigator recovered %d of %d sessions "+
			"and read %d messages, e.g.",
			r.Target, r.WindowStart.Format("2006-01-02"), r.WindowEnd.Format("2006-01-02"), r.InScope,
			r.Recovered, r.InScope, r.MessagesRead)
		for _, m := range r.Sample {
			pf("%s", clip("     "+m, demoWidth))
		}
	case demo.SectionOverreach:
		pf("")
		pf("3. OVERREACH  What the investigator tried next:")
		for _, a := range r.Attacks {
			verdict := "FAILED"
			if a.Succeeded {
				verdict = "SUCCEEDED"
			}
			hanging(out, "   - ", "     ", fmt.Sprintf("%s: %s; %s", a.Name, verdict, a.Outcome))
		}
		pp("Sessions recovered outside the warrant: %d of %d tried.", r.OutOfScopeRecov, r.OutOfScopeTried)
	case demo.SectionForgery:
		pf("")
		pf("4. FORGERY")
		pp("A Clipper-style escrow field with a 16-bit checksum (Blaze, 1994) was forged "+
			"by brute force in %d tries. %d random keyquorum escrow fields were tried against one "+
			"recipient: %d accepted.", r.LEAFForgeryTries, r.ForgedEnvelopes.Attempted, r.ForgedEnvelopes.Accepted)
	case demo.SectionTradeOff:
		printTradeOff(out, r)
	case demo.SectionAudit:
		printAudit(out, r)
	}
}

// printTradeOff prints the trade-off table as three small tables, each
// within demoWidth: the per-design facts, then one column per k
// compromised parties, then one per f trustees down.
func printTradeOff(out io.Writer, r *demo.Report) {
	pf := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	pp := func(format string, a ...any) { para(out, "   ", fmt.Sprintf(format, a...)) }
	pf("")
	pf("5. THE TRADE-OFF")
	pp("Every cell is counted by running code over the %d sessions.", r.Sessions)
	pf("")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "   design\tparties needed\tsessions exposed\tforged field\tevery use")
	fmt.Fprintln(tw, "   \tto decrypt\tby one warrant\tdetected\tlogged")
	for _, d := range r.Designs {
		parties := "nobody can"
		if d.PartiesToDecrypt != nil {
			parties = fmt.Sprint(*d.PartiesToDecrypt)
		}
		fmt.Fprintf(tw, "   %s\t%s\t%d\t%s\t%s\n", d.Name, parties, d.ExposedByOneWarrant, yesNo(d.ForgedFieldDetected), yesNo(d.UsesLogged))
	}
	tw.Flush()
	pf("")
	pp("Sessions exposed when k parties are compromised (attacker code given what they store), of %d:", r.Sessions)
	perK(out, r, "k", func(d demo.Design) []int { return d.ExposedWhenCompromised })
	pf("")
	pp("In-scope sessions the warrant still recovers with f trustees down, of %d:", r.InScope)
	perK(out, r, "f", func(d demo.Design) []int { return d.RecoverableWithDown })
	pf("")
	pp("What the split buys: no single trustee can read anything; one warrant opens only the %d "+
		"sessions it names, not all %d; every warranted use is in %d signed audit logs; with retention, "+
		"old epochs are gone for everyone (kept: epochs %s).", r.InScope, r.Sessions, r.Trustees, joinU32(r.RetainedEpochs))
	if r.Mode == "processes" && r.KeyGeneration == "dkg" {
		pp("(threshold-epochs is the same trustees, restarted with a retention policy: each destroyed " +
			"its older shares itself and logged it.)")
	}
	pp("What it cannot buy: any %d colluding trustees read every session they hold keys for, with no "+
		"warrant and no log entry. And two users who both run modified clients can always encrypt "+
		"inside the channel: escrow only reaches people who do not try to avoid it.", r.Threshold)
}

// perK prints one row per design and one column per value of k (0..n), or
// a selection of them around the threshold if n is too large to fit.
func perK(out io.Writer, r *demo.Report, letter string, col func(demo.Design) []int) {
	name := 0
	for _, d := range r.Designs {
		name = max(name, len(d.Name))
	}
	cell := 0
	for _, d := range r.Designs {
		for _, v := range col(d) {
			cell = max(cell, len(fmt.Sprint(v)))
		}
	}
	cell = max(cell, len(letter)+1+len(fmt.Sprint(r.Trustees))) + 2
	ks := columnsFor(r.Trustees, r.Threshold, (demoWidth-3-name)/cell)
	var b strings.Builder
	fmt.Fprintf(&b, "   %-*s", name, "design")
	for _, k := range ks {
		fmt.Fprintf(&b, "%*s", cell, fmt.Sprintf("%s=%d", letter, k))
	}
	fmt.Fprintln(out, b.String())
	for _, d := range r.Designs {
		b.Reset()
		fmt.Fprintf(&b, "   %-*s", name, d.Name)
		vals := col(d)
		for _, k := range ks {
			v := "-"
			if k < len(vals) {
				v = fmt.Sprint(vals[k])
			}
			fmt.Fprintf(&b, "%*s", cell, v)
		}
		fmt.Fprintln(out, b.String())
	}
}

// columnsFor returns the values 0..n, or, if more than fit columns do not
// fit, those that tell the story, most telling first: the ends and those
// around the threshold t.
func columnsFor(n, t, fit int) []int {
	if n+1 <= fit {
		ks := make([]int, n+1)
		for i := range ks {
			ks[i] = i
		}
		return ks
	}
	var ks []int
	for _, k := range []int{0, t - 1, t, n, 1, t + 1, n - t + 1, n - t, t - 2, 2, n - 1} {
		if len(ks) < max(fit, 4) && k >= 0 && k <= n && !slices.Contains(ks, k) {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

// printAudit explains the audit logs the auditor read back.
func printAudit(out io.Writer, r *demo.Report) {
	pf := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	pf("")
	pf("6. AUDIT")
	para(out, "   ", "An auditor read back every trustee's audit log and checked each record "+
		"against the trustee's signed head. Each record is one decision on a decryption request, "+
		"granted or refused (with its reason), or another event the trustee must account for:")
	name := len("trustee")
	for _, a := range r.Audit {
		name = max(name, len(a.Trustee))
	}
	pf("   %-*s  records  granted  refused  other  verified  witnesses", name, "trustee")
	var kinds []string
	differ := false
	for _, a := range r.Audit {
		pf("   %-*s  %7d  %7d  %7d  %5d  %-8s  %9d", name, a.Trustee, a.Records, a.Granted, a.Refused, a.Other, yesNo(a.Verified), len(a.Cosignatures))
		differ = differ || a.Records != r.Audit[0].Records
		for _, k := range a.OtherKinds {
			if !slices.Contains(kinds, k) {
				kinds = append(kinds, k)
			}
		}
	}
	if len(kinds) > 0 {
		para(out, "   ", "Other records are of kind "+strings.Join(kinds, ", ")+".")
	}
	para(out, "   ", "Witnesses counts the other trustees whose latest cosigned checkpoint of the log "+
		"verified and is extended by the log as it stands: a trustee releases shares only under a "+
		"checkpoint that enough of them cosigned, so a record erased afterwards would show.")
	if differ {
		para(out, "   ", "The logs differ in length because the runs with f trustees down took trustees 1 to f "+
			"offline: a trustee that was down was never asked, so it logged nothing.")
	}
}

// para prints text wrapped to demoWidth, each line after indent.
func para(out io.Writer, indent, text string) {
	hanging(out, indent, indent, text)
}

// hanging prints text wrapped to demoWidth, the first line after first
// and the others after rest.
func hanging(out io.Writer, first, rest, text string) {
	line, n := first, utf8.RuneCountInString(first)
	empty := true
	for _, w := range strings.Fields(text) {
		wn := utf8.RuneCountInString(w)
		if !empty && n+1+wn > demoWidth {
			fmt.Fprintln(out, line)
			line, n, empty = rest, utf8.RuneCountInString(rest), true
		}
		if !empty {
			line += " "
			n++
		}
		line += w
		n += wn
		empty = false
	}
	fmt.Fprintln(out, line)
}

// clip shortens s to at most width runes, ending it with "…" if cut.
func clip(s string, width int) string {
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	return string(r[:width-1]) + "…"
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

// selfPath is the path to run this program again: argv[0] as the shell
// found it (so a link named keyquorum stays one), else the executable.
func selfPath() (string, error) {
	if p, err := exec.LookPath(os.Args[0]); err == nil {
		return filepath.Abs(p)
	}
	return os.Executable()
}

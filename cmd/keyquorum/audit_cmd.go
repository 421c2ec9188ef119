package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
)

func auditCommand() *cli.Command {
	groupFlag := &cli.StringFlag{Name: "group", Required: true, Usage: "group `FILE` naming the trustees, their addresses, TLS pins and log keys, signed by every trustee (keyquorum trustee sign-group)", EnvVars: envVar("group")}
	timeoutFlag := &cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "time allowed to audit each trustee", EnvVars: envVar("timeout")}
	return &cli.Command{
		Name:  "audit",
		Usage: "check the trustees' audit logs and publish what they decided",
		Subcommands: []*cli.Command{
			{
				Name:      "verify",
				Usage:     "verify every trustee's log: signed head, consistency with the heads seen last time, every record",
				ArgsUsage: " ",
				Description: "Fetches each trustee's signed tree head and checks it with the trustee's log key from the group file;\n" +
					"with --state, checks that it extends the head saved there last time (a consistency proof), then saves the\n" +
					"new heads; with --import, checks that it also extends every checkpoint a requester kept (decrypt --state);\n" +
					"fetches every record and checks they are exactly what the head commits to.\n\n" +
					"Exit status: 0 every log verified; 1 a log is forked, rolled back or rewritten (the trustee is named, and\n" +
					"the state file keeps the earlier head as evidence); 2 bad input; 4 a trustee could not be reached.",
				Flags: []cli.Flag{
					groupFlag,
					&cli.StringFlag{Name: "state", Usage: "`FILE` of the heads seen last time (created on the first run, updated after each)", EnvVars: envVar("state")},
					&cli.StringSliceFlag{Name: "import", Usage: "a requester's state `FILE` (decrypt --state): every trustee's log must also extend the checkpoints it holds (repeatable)", EnvVars: envVar("import")},
					timeoutFlag,
					jsonFlag(),
				},
				Action: jsonOnError(schemaAuditVerify, auditVerify),
			},
			{
				Name:      "report",
				Usage:     "print a public transparency report from the verified logs: decisions per judge and month, granted and refused, sessions released",
				ArgsUsage: " ",
				Flags: []cli.Flag{
					groupFlag,
					jsonFlag(),
					timeoutFlag,
				},
				Action: jsonOnError(schemaAuditReport, auditReport),
			},
		},
	}
}

func auditBadInput(format string, args ...any) error {
	return cli.Exit("audit: "+fmt.Sprintf(format, args...), exitBadInput)
}

// runAudit loads the group and runs the audit against state.
func runAudit(c *cli.Context, state trustee.AuditState) (*trustee.AuditResult, error) {
	g, err := loadSignedGroup(c.String("group"))
	if err != nil {
		return nil, auditBadInput("%v", err)
	}
	clients, err := clientsForGroup(g, c.String("group"))
	if err != nil {
		return nil, auditBadInput("%v", err)
	}
	if c.Duration("timeout") <= 0 {
		return nil, auditBadInput("--timeout must be positive")
	}
	opts := trustee.AuditOptions{Timeout: c.Duration("timeout")}
	for _, path := range c.StringSlice("import") {
		st, found, err := readStateFile(path)
		if err == nil && !found {
			err = fmt.Errorf("%s does not exist", path)
		}
		if err != nil {
			return nil, auditBadInput("--import: %v", err)
		}
		opts.Imported = append(opts.Imported, st)
	}
	res, err := trustee.Audit(c.Context, g, clients, state, opts)
	if err != nil {
		return nil, auditBadInput("%v", err)
	}
	return res, nil
}

func auditVerify(c *cli.Context) error {
	if c.Args().Present() {
		return auditBadInput("unexpected argument %q", c.Args().First())
	}
	statePath := c.String("state")
	state := trustee.AuditState{}
	firstRun := true
	if statePath != "" {
		var found bool
		var err error
		if state, found, err = readStateFile(statePath); err != nil {
			return auditBadInput("%v", err)
		}
		firstRun = !found
	}
	res, err := runAudit(c, state)
	if err != nil {
		return err
	}
	w := c.App.Writer
	if c.Bool("json") {
		w = io.Discard // the JSON object below says it all
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range res.Trustees {
		switch t.Status {
		case trustee.AuditOK:
			fmt.Fprintf(tw, "%s\tok\t%d records, every one included in its signed head%s\n", t.Name, t.Size, witnessedSummary(t.Witnessed))
		default:
			fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, strings.ToUpper(t.Status), t.Detail)
		}
	}
	tw.Flush()
	for _, t := range res.Failed() {
		if t.Status == trustee.AuditForked && t.SavedHead != "" {
			fmt.Fprintf(w, "\nevidence against %s: the head kept earlier (by this auditor, a requester or a witness)\n%s\nand the head it signs now\n%s", t.Name, indentNote(t.SavedHead), indentNote(t.Head))
		}
	}
	if statePath != "" {
		b, err := res.State.Marshal()
		if err != nil {
			return err
		}
		if err := replaceStateFile(statePath, b, 0o644); err != nil {
			return err
		}
		if firstRun {
			fmt.Fprintf(w, "first audit with %s: the heads seen now are saved; later runs check the logs only grew from them\n", statePath)
		}
	} else {
		fmt.Fprintln(w, "no --state file: each log was checked against its own head and the checkpoints its witnesses cosigned only")
	}

	if c.Bool("json") {
		if err := writeJSON(c, newAuditVerifyJSON(res, statePath, firstRun)); err != nil {
			return err
		}
	}
	var bad, unreachable []string
	for _, t := range res.Trustees {
		switch t.Status {
		case trustee.AuditOK:
		case trustee.AuditUnreachable:
			unreachable = append(unreachable, t.Name)
		default:
			bad = append(bad, fmt.Sprintf("%s (%s)", t.Name, t.Status))
		}
	}
	switch {
	case len(bad) > 0:
		return cli.Exit("audit: the log of "+strings.Join(bad, ", ")+" failed verification; keep the heads above as evidence and report it", 1)
	case len(unreachable) > 0:
		return cli.Exit("audit: could not reach "+strings.Join(unreachable, ", ")+"; their logs were not checked", exitNoQuorum)
	}
	return nil
}

func indentNote(n string) string {
	return "    " + strings.ReplaceAll(strings.TrimSuffix(n, "\n"), "\n", "\n    ") + "\n"
}

// replaceStateFile writes data to path through a temporary file in the same
// directory, synced and renamed over path, so a crash leaves the old or the
// new file, never half of one (audit state, signed group files).
func replaceStateFile(path string, data []byte, perm fs.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

func auditReport(c *cli.Context) error {
	if c.Args().Present() {
		return auditBadInput("unexpected argument %q", c.Args().First())
	}
	res, err := runAudit(c, nil)
	if err != nil {
		return err
	}
	rep := trustee.Report(res.Logs)
	if c.Bool("json") {
		if err := writeJSON(c, newAuditReportJSON(res, rep)); err != nil {
			return err
		}
	} else {
		printTransparencyReport(c.App.Writer, rep)
	}
	var skipped []string
	for _, t := range res.Trustees {
		if t.Status != trustee.AuditOK {
			skipped = append(skipped, fmt.Sprintf("%s (%s: %s)", t.Name, t.Status, t.Detail))
		}
	}
	if len(skipped) > 0 {
		return cli.Exit("audit: left out of the report, their logs did not verify: "+strings.Join(skipped, "; "), 1)
	}
	return nil
}

func printTransparencyReport(w io.Writer, rep *trustee.TransparencyReport) {
	for i, t := range rep.Trustees {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s: %d log records, verified\n", t.Name, t.Records)
		fmt.Fprintf(w, "  decisions: %s\n", formatDecisionCounts(&t.Totals))
		fmt.Fprintf(w, "  distinct sessions released: %d\n", t.DistinctSessions)
		if len(t.EpochsDestroyed) > 0 {
			var es []string
			for _, e := range t.EpochsDestroyed {
				es = append(es, fmt.Sprint(e))
			}
			fmt.Fprintf(w, "  epoch shares destroyed: %s\n", strings.Join(es, ", "))
		}
		if len(t.Ceremonies) > 0 {
			fmt.Fprintf(w, "  key ceremonies:\n")
			for _, e := range t.Ceremonies {
				line := fmt.Sprintf("    %s %s ceremony %s", e.Time.Format(time.RFC3339), e.Kind, e.Ceremony)
				if len(e.Epochs) > 0 {
					line += fmt.Sprintf(" epochs %v", e.Epochs)
				}
				if e.Code != "" {
					line += " (" + e.Code + ")"
				}
				fmt.Fprintln(w, line)
			}
		}
		for _, table := range []struct {
			title string
			rows  map[string]*trustee.DecisionCounts
		}{{"by judge", t.ByJudge}, {"by month", t.ByMonth}} {
			if len(table.rows) == 0 {
				continue
			}
			fmt.Fprintf(w, "  %s:\n", table.title)
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			keys := make([]string, 0, len(table.rows))
			for k := range table.rows {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(tw, "    %s\t%s\n", k, formatDecisionCounts(table.rows[k]))
			}
			tw.Flush()
		}
	}
	if len(rep.Trustees) == 0 {
		fmt.Fprintln(w, "no trustee log verified; nothing to report")
	}
}

func formatDecisionCounts(d *trustee.DecisionCounts) string {
	s := fmt.Sprintf("%d granted, %d refused", d.Granted, d.Refused)
	if len(d.RefusedByCode) > 0 {
		codes := make([]string, 0, len(d.RefusedByCode))
		for code, n := range d.RefusedByCode {
			codes = append(codes, fmt.Sprintf("%s %d", code, n))
		}
		sort.Strings(codes)
		s += " (" + strings.Join(codes, ", ") + ")"
	}
	return s + fmt.Sprintf(", %d sessions released", d.SessionsReleased)
}

// witnessedSummary says which witnesses' cosigned checkpoints a log's
// head was found to extend.
func witnessedSummary(ws []trustee.WitnessedCheckpoint) string {
	if len(ws) == 0 {
		return ""
	}
	var names []string
	for _, w := range ws {
		names = append(names, fmt.Sprintf("%s at %d", w.Witness, w.Size))
	}
	return "; extends what its witnesses cosigned (" + strings.Join(names, ", ") + ")"
}

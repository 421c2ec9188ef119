package main

// What decrypt checks on the requester's machine before it contacts any
// trustee, and how it reports what the trustees answered.
//
// A warrant that has expired or is not yet valid, one whose judge
// signatures do not verify (when the requester names the judges), a capture
// escrowed to another trustee group, or a warrant that covers none of the
// captured sessions would be refused by every trustee, each in its own
// words and each with an audit record; the requester can see all of it
// locally, so it is told once, with what to do, and nothing is sent.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/sim"
	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
	"golang.org/x/mod/sumdb/note"
)

// judgeFlags are the flags naming the judges a warrant must be signed by:
// warrant verify requires them, decrypt uses them to check the warrant
// before sending it.
func judgeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "judge", Usage: "trust the judge with verifier key `VKEY` (name+hash+key) or the file holding it; repeatable", EnvVars: envVar("judge")},
		&cli.StringSliceFlag{Name: "judges", Usage: "trust the judges listed in `FILE`, one verifier key per line, # for comments (repeatable)", EnvVars: envVar("judges")},
		&cli.IntFlag{Name: "required", Usage: "require signatures from `N` distinct trusted judges", Value: 1, EnvVars: envVar("required")},
	}
}

// judgesFromFlags reads --judge and --judges.
func judgesFromFlags(c *cli.Context) ([]note.Verifier, error) {
	var judges []note.Verifier
	for _, arg := range c.StringSlice("judge") {
		_, v, err := judgeKeyArg(arg)
		if err != nil {
			return nil, err
		}
		judges = append(judges, v)
	}
	for _, file := range c.StringSlice("judges") {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--judges: %w", err)
		}
		list, err := escrow.ParseJudgeList(b)
		if err != nil {
			return nil, fmt.Errorf("--judges %s: %w", file, err)
		}
		judges = append(judges, list...)
	}
	return judges, nil
}

// notSent ends every refusal made before any trustee was contacted.
const notSent = "; no trustee was contacted"

// checkDecryptLocally runs the checks that need no trustee: the warrant's
// validity dates (and its judges' signatures when --judge or --judges names
// them) at now, and that the capture was escrowed to this group.
func checkDecryptLocally(c *cli.Context, g *escrow.GroupFile, signed []byte, w *escrow.Warrant, capture *sim.Capture, now time.Time) error {
	judges, err := judgesFromFlags(c)
	if err != nil {
		return decryptBadInput("%v", err)
	}
	if len(judges) > 0 {
		if _, err := escrow.VerifyWarrant(signed, escrow.JudgePolicy{Judges: judges, Required: c.Int("required")}, now); err != nil {
			return decryptBadInput("warrant %s: %v%s", c.String("warrant"), err, notSent)
		}
	} else {
		switch {
		case now.Before(w.ValidFrom):
			return decryptBadInput("warrant %s is not valid yet: it is valid from %s; wait until then%s", w.ID, w.ValidFrom.Format(time.RFC3339), notSent)
		case !now.Before(w.ValidUntil):
			return decryptBadInput("warrant %s expired at %s; ask the issuing judge for a new one%s", w.ID, w.ValidUntil.Format(time.RFC3339), notSent)
		}
	}
	return checkCaptureGroup(g, capture, c.String("group"), c.String("capture"))
}

// checkCaptureGroup refuses a capture none of whose sessions was escrowed
// under a key of g: it comes from another federation.
func checkCaptureGroup(g *escrow.GroupFile, capture *sim.Capture, groupPath, capturePath string) error {
	ours := map[escrow.KeyID]bool{}
	var ourIDs []string
	for _, e := range g.Epochs {
		eg, err := g.EscrowGroup(e.Epoch)
		if err != nil {
			return decryptBadInput("%s: %v", groupPath, err)
		}
		id := escrow.KeyIDOf(eg.Key)
		ours[id] = true
		ourIDs = append(ourIDs, id.String())
	}
	theirs := map[string]bool{}
	for _, s := range capture.Sessions {
		ctx, err := escrow.ParseContext(s.Context)
		if err != nil {
			continue
		}
		if ours[ctx.GroupKeyID] {
			return nil
		}
		theirs[ctx.GroupKeyID.String()] = true
	}
	if len(theirs) == 0 {
		return nil // nothing to compare; the scope check speaks
	}
	var ids []string
	for id := range theirs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return decryptBadInput("capture %s was escrowed to another trustee group: its sessions name group key %s, and %s has %s; use the group file of the federation that captured it%s",
		capturePath, strings.Join(ids, ", "), groupPath, strings.Join(ourIDs, ", "), notSent)
}

// noSessionsError explains why nothing can be requested: the warrant covers
// no captured session, or every covered one lacks an intact escrow field.
func noSessionsError(capturePath string, capture *sim.Capture, w *escrow.Warrant, sel *decryptSelection) error {
	if sel.covered == 0 {
		return decryptBadInput("warrant %s covers none of the %d sessions in %s: it covers sessions of %s starting from %s until %s%s",
			w.ID, len(capture.Sessions), capturePath, strings.Join(w.Targets, ", "), w.WindowStart.Format(time.RFC3339), w.WindowEnd.Format(time.RFC3339), notSent)
	}
	return decryptBadInput("warrant %s covers %d sessions in %s, but none has an intact escrow field (%d without one, %d whose field does not verify under this group's keys)%s",
		w.ID, sel.covered, capturePath, sel.stripped, sel.invalid, notSent)
}

// movePreviousDecryption renames out, when it holds exactly what an earlier
// decrypt wrote there (summary.json and sessions/), to out.1 (or the first
// free out.N), so that running the same command again works and loses
// nothing. It returns the new name, or "" when it moved nothing.
func movePreviousDecryption(out string) (string, error) {
	entries, err := os.ReadDir(out)
	if err != nil || len(entries) == 0 {
		return "", nil
	}
	for _, e := range entries {
		if e.Name() != "summary.json" && e.Name() != "sessions" {
			return "", nil // not only ours: prepareDecryptDir refuses it
		}
	}
	if _, err := os.Stat(out + "/summary.json"); err != nil {
		return "", nil
	}
	for n := 1; n < 1000; n++ {
		prev := fmt.Sprintf("%s.%d", strings.TrimRight(out, "/"), n)
		if _, err := os.Lstat(prev); err == nil {
			continue
		}
		if err := os.Rename(out, prev); err != nil {
			return "", err
		}
		return prev, nil
	}
	return "", errors.New(out + " and " + out + ".1 to .999 all exist; choose a new directory for this decryption")
}

// outcomeGroup is the trustees (by name) that gave one answer other than a
// grant.
type outcomeGroup struct {
	status, code, reason string
	names                []string
}

// groupOutcomes groups the trustees that were not granted by what they
// answered, in roster order of each group's first trustee, so that a
// refusal several trustees share is said once, naming them all.
func groupOutcomes(ts []trustee.TrusteeResult) []*outcomeGroup {
	var out []*outcomeGroup
	byAnswer := map[[3]string]*outcomeGroup{}
	for _, t := range ts {
		if t.Status == trustee.StatusGranted {
			continue
		}
		k := [3]string{t.Status, t.Code, t.Reason}
		g := byAnswer[k]
		if g == nil {
			g = &outcomeGroup{status: t.Status, code: t.Code, reason: cleanError(t.Reason)}
			byAnswer[k] = g
			out = append(out, g)
		}
		g.names = append(g.names, t.Name)
	}
	return out
}

// decryptFailure is the message of a decryption that did not reach a
// quorum, each distinct trustee answer said once.
func decryptFailure(err error) string {
	var qe *trustee.QuorumError
	if !errors.As(err, &qe) {
		return err.Error()
	}
	return fmt.Sprintf("insufficient quorum: %d of %d sessions not decrypted; %d of %d trustees answered validly, %d needed: %s",
		qe.Unrecovered, qe.Sessions, qe.Usable, len(qe.Trustees), qe.Threshold, describeOutcomes(qe.Trustees))
}

// describeOutcomes is every distinct answer other than a grant, on one line.
func describeOutcomes(ts []trustee.TrusteeResult) string {
	var s []string
	for _, g := range groupOutcomes(ts) {
		who := strings.Join(g.names, ", ")
		if g.status == trustee.StatusRefused {
			s = append(s, fmt.Sprintf("%s refused (%s): %s", who, g.code, g.reason))
		} else {
			s = append(s, fmt.Sprintf("%s %s: %s", who, g.status, g.reason))
		}
	}
	return strings.Join(s, "; ")
}

// printTrusteeOutcomes prints one line per granting trustee (with its audit
// record) and one per distinct other answer, naming every trustee that gave
// it.
func printTrusteeOutcomes(w io.Writer, ts []trustee.TrusteeResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range ts {
		if t.Status == trustee.StatusGranted {
			note := ""
			if len(t.CosignedBy) > 0 {
				note = ", checkpoint cosigned by " + strings.Join(t.CosignedBy, ", ")
			}
			if !t.Used {
				note += "; answer not needed, so its proofs were not checked"
			}
			fmt.Fprintf(tw, "  %s\tgranted\t(decision logged as record %d%s)\n", t.Name, t.RecordIndex, note)
		}
	}
	for _, g := range groupOutcomes(ts) {
		what := g.reason
		if g.status == trustee.StatusRefused {
			what = g.code + ": " + g.reason
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", strings.Join(g.names, ", "), g.status, what)
	}
	tw.Flush()
}

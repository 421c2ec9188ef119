package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/urfave/cli/v2"
	"go.dedis.ch/kyber/v3"
)

func warrantCommand() *cli.Command {
	return &cli.Command{
		Name:  "warrant",
		Usage: "draft, sign and verify warrants (signed notes naming a requester, targets and a session window)",
		Description: "A warrant is drafted, then signed by one or more judges in turn, then verified by each trustee:\n" +
			"  keyquorum warrant draft --id W-1 ... > w.txt\n" +
			"  keyquorum warrant sign --key judge-a.key w.txt > w1.note\n" +
			"  keyquorum warrant sign --key judge-b.key w1.note > w2.note\n" +
			"  keyquorum warrant verify --judges judges.txt --required 2 w2.note",
		Subcommands: []*cli.Command{
			warrantDraftCommand(),
			warrantSignCommand(),
			warrantVerifyCommand(),
		},
	}
}

func warrantDraftCommand() *cli.Command {
	str := func(name, usage string) cli.Flag {
		return &cli.StringFlag{Name: name, Usage: usage, Required: true, EnvVars: envVar(name)}
	}
	const dates = " (RFC 3339, YYYY-MM-DD, today, or days from today like -7d)"
	return &cli.Command{
		Name:      "draft",
		Usage:     "print an unsigned warrant body for judges to sign",
		ArgsUsage: " ",
		Flags: []cli.Flag{
			str("id", "warrant `ID`: letters, digits or . _ -"),
			str("case", "case reference, one line of `TEXT`"),
			str("requester", "the requester's public key `Q` in base64, or a file holding it or the requester key"),
			&cli.StringSliceFlag{Name: "target", Usage: "a user whose sessions the warrant covers, by `NAME` (repeat for several)", Required: true, EnvVars: envVar("target")},
			str("window-start", "covered sessions started at or after `TIME`"+dates),
			str("window-end", "covered sessions started before `TIME`"+dates),
			str("valid-from", "the warrant may be used from `TIME`"+dates),
			str("valid-until", "the warrant may be used before `TIME`"+dates),
			&cli.IntFlag{Name: "max-sessions", Usage: "at most `N` sessions may be decrypted under the warrant", Required: true, EnvVars: envVar("max-sessions")},
			str("purpose", "why the sessions are needed, one line of `TEXT`"),
		},
		Action: warrantDraft,
	}
}

func warrantDraft(c *cli.Context) error {
	if c.Args().Present() {
		return fmt.Errorf("warrant draft: unexpected argument %q (every field is a flag)", c.Args().First())
	}
	q, err := requesterPublicArg(c.String("requester"))
	if err != nil {
		return err
	}
	w := &escrow.Warrant{
		ID:          c.String("id"),
		Case:        c.String("case"),
		Requester:   q,
		Targets:     c.StringSlice("target"),
		MaxSessions: c.Int("max-sessions"),
		Purpose:     c.String("purpose"),
	}
	for _, f := range []struct {
		flag string
		t    *time.Time
	}{{"window-start", &w.WindowStart}, {"window-end", &w.WindowEnd}, {"valid-from", &w.ValidFrom}, {"valid-until", &w.ValidUntil}} {
		if *f.t, err = parseTimeFlag(f.flag, c.String(f.flag)); err != nil {
			return err
		}
	}
	body, err := w.MarshalText()
	if err != nil {
		return err
	}
	_, err = c.App.Writer.Write(body)
	return err
}

// requesterPublicArg reads Q from a base64 string or from a file holding
// either that string or a requester key.
func requesterPublicArg(v string) (kyber.Point, error) {
	q, perr := escrow.ParseRequesterPublic(v)
	if perr == nil {
		return q, nil
	}
	if _, err := os.Stat(v); err != nil {
		return nil, fmt.Errorf("--requester %q is neither a base64 public key (%v) nor a readable file", v, perr)
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return nil, fmt.Errorf("--requester: %w", err)
	}
	q, err = escrow.ParseRequesterPublicFile(b)
	if err != nil {
		return nil, fmt.Errorf("--requester %s: %w", v, err)
	}
	return q, nil
}

// parseTimeFlag accepts RFC 3339, a bare date (midnight UTC), "today"
// (midnight UTC today), or a number of days from today such as "-7d" or
// "+30d" (midnight UTC), so scripts need no date arithmetic.
func parseTimeFlag(flag, v string) (time.Time, error) {
	return parseTimeAt(flag, v, time.Now())
}

func parseTimeAt(flag, v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	today := now.UTC().Truncate(24 * time.Hour)
	if v == "today" {
		return today, nil
	}
	if len(v) >= 3 && (v[0] == '+' || v[0] == '-') && v[len(v)-1] == 'd' {
		if n, err := strconv.Atoi(v[1 : len(v)-1]); err == nil && n <= 36600 {
			if v[0] == '-' {
				n = -n
			}
			return today.AddDate(0, 0, n), nil
		}
	}
	return time.Time{}, fmt.Errorf("--%s %q: give a time as RFC 3339 (2026-03-01T09:30:00Z), a date (2026-03-01, meaning midnight UTC), today, or days from today (-7d, +30d)", flag, v)
}

func warrantSignCommand() *cli.Command {
	return &cli.Command{
		Name:      "sign",
		Usage:     "add a judge's signature to a warrant body or signed warrant; prints the signed note",
		ArgsUsage: "[FILE|-]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "the judge's secret key `FILE` (from keygen judge)", Required: true, EnvVars: envVar("key")},
			keyPassphraseFileFlag(),
		},
		Action: warrantSign,
	}
}

func warrantSign(c *cli.Context) error {
	in, err := warrantInput(c)
	if err != nil {
		return err
	}
	kb, err := readKeyFile(c, c.String("key"), "judge")
	if err != nil {
		return fmt.Errorf("reading judge key: %w", err)
	}
	k, err := escrow.ParseJudgeKey(kb)
	if err != nil {
		return fmt.Errorf("%s: %w", c.String("key"), err)
	}
	signer, err := k.Signer()
	if err != nil {
		return err
	}
	out, err := escrow.SignWarrant(in, signer)
	if err != nil {
		return err
	}
	_, err = c.App.Writer.Write(out)
	return err
}

func warrantVerifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check a signed warrant's judge signatures and validity dates; prints its fields and signers",
		ArgsUsage: "[FILE|-]",
		Flags: append(judgeFlags(),
			&cli.StringFlag{Name: "at", Usage: "check validity at `TIME` instead of now (RFC 3339 or YYYY-MM-DD)", EnvVars: envVar("at")},
			jsonFlag(),
		),
		Action: jsonOnError(schemaWarrantVerify, warrantVerify),
	}
}

func warrantVerify(c *cli.Context) error {
	in, err := warrantInput(c)
	if err != nil {
		return err
	}
	judges, err := judgesFromFlags(c)
	if err != nil {
		return err
	}
	if len(judges) == 0 {
		return errors.New("warrant verify: no trusted judges; give --judge VKEY or --judges FILE")
	}
	at := time.Now().UTC().Truncate(time.Second)
	if s := c.String("at"); s != "" {
		if at, err = parseTimeFlag("at", s); err != nil {
			return err
		}
	}
	vw, err := escrow.VerifyWarrant(in, escrow.JudgePolicy{Judges: judges, Required: c.Int("required")}, at)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return writeJSON(c, newWarrantVerifyJSON(vw, hex.EncodeToString(vw.Hash[:]), at, c.Int("required")))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "OK: warrant %s verified at %s\n", vw.Warrant.ID, at.Format(time.RFC3339))
	fmt.Fprintf(&b, "signed by: %s (%d trusted, %d required)\n", strings.Join(vw.Judges, ", "), len(vw.Judges), c.Int("required"))
	fmt.Fprintf(&b, "sha256: %s\n", hex.EncodeToString(vw.Hash[:]))
	body, err := vw.Warrant.MarshalText()
	if err != nil {
		return err
	}
	_, fields, _ := bytes.Cut(body, []byte("\n")) // drop the format line
	b.Write(fields)
	_, err = io.WriteString(c.App.Writer, b.String())
	return err
}

// warrantInput reads the one optional argument, a file name or "-", or
// stdin when there is none.
func warrantInput(c *cli.Context) ([]byte, error) {
	if c.NArg() > 1 {
		return nil, fmt.Errorf("%s: one input file at most, got %d arguments (flags go before the file)", c.Command.FullName(), c.NArg())
	}
	name := c.Args().First()
	if name == "" || name == "-" {
		return io.ReadAll(c.App.Reader)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return b, nil
}

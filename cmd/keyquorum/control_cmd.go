package main

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/ceremony"
	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// proposeCommand is `keyquorum ceremony propose dkg|rotate|reshare`.
func proposeCommand() *cli.Command {
	common := func(extra ...cli.Flag) []cli.Flag {
		return append(extra,
			&cli.StringFlag{Name: "dir", Required: true, Usage: "the proposing trustee's node `DIR`: the running node signs the proposal with its log key", EnvVars: envVar("dir")},
			&cli.StringFlag{Name: "out", Required: true, Usage: "write the signed proposal to `FILE` (must not exist)", EnvVars: envVar("out")},
			&cli.DurationFlag{Name: "deadline", Value: 30 * time.Minute, Usage: "how long the ceremony may take from now (nodes refuse more than their limit, 1h by default)", EnvVars: envVar("deadline")},
		)
	}
	return &cli.Command{
		Name:  "propose",
		Usage: "write a ceremony proposal that every trustee's operator then approves (keyquorum trustee approve)",
		Description: "A node takes part only in a ceremony whose exact proposal its own operator approved over its\n" +
			"local control socket. The proposal fixes the kind, the current group, the roster, the threshold,\n" +
			"the epoch window and a deadline; approving it authorises nothing else.",
		Subcommands: []*cli.Command{
			{
				Name: "dkg", Usage: "propose a group's first key among a roster", ArgsUsage: " ",
				Flags: common(
					&cli.StringFlag{Name: "roster", Required: true, Usage: "roster `FILE` (keyquorum ceremony roster)", EnvVars: envVar("roster")},
					&cli.IntFlag{Name: "threshold", Aliases: []string{"t"}, Required: true, Usage: "trustees needed to decrypt (at least 2)", EnvVars: envVar("threshold")},
					&cli.StringFlag{Name: "start", Usage: "the epoch's start (YYYY-MM-DD, today, or days from today like -30d; default today, UTC)", EnvVars: envVar("start")},
					&cli.IntFlag{Name: "epoch-days", Value: 30, Usage: "length of the epoch in days", EnvVars: envVar("epoch-days")},
					&cli.IntFlag{Name: "witness-quorum", Aliases: []string{"w"}, Usage: "other trustees that must cosign the checkpoint a share leaves under (0 turns witnessing off; default threshold - 1)", EnvVars: envVar("witness-quorum")},
				),
				Action: proposeDKG,
			},
			{
				Name: "rotate", Usage: "propose the next epoch's key for the group", ArgsUsage: " ",
				Flags: common(
					&cli.StringFlag{Name: "group", Required: true, Usage: "the current signed group `FILE`", EnvVars: envVar("group")},
					&cli.IntFlag{Name: "epoch-days", Usage: "length of the new epoch in days (default: as long as the last one)", EnvVars: envVar("epoch-days")},
				),
				Action: proposeRotate,
			},
			{
				Name: "reshare", Usage: "propose moving every epoch's key to a new roster and threshold", ArgsUsage: " ",
				Flags: common(
					&cli.StringFlag{Name: "group", Required: true, Usage: "the current signed group `FILE`", EnvVars: envVar("group")},
					&cli.StringFlag{Name: "roster", Required: true, Usage: "the new roster `FILE` (keyquorum ceremony roster)", EnvVars: envVar("roster")},
					&cli.IntFlag{Name: "threshold", Aliases: []string{"t"}, Required: true, Usage: "the new threshold (at least 2)", EnvVars: envVar("threshold")},
					&cli.IntFlag{Name: "witness-quorum", Aliases: []string{"w"}, Usage: "other trustees that must cosign the checkpoint a share leaves under (0 turns witnessing off; default threshold - 1)", EnvVars: envVar("witness-quorum")},
				),
				Action: proposeReshare,
			},
		},
	}
}

func noArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit("unexpected arguments "+strings.Join(c.Args().Slice(), " ")+"; flags go before arguments", 2)
	}
	return nil
}

func deadline(c *cli.Context) (time.Time, error) {
	d := c.Duration("deadline")
	if d <= 0 {
		return time.Time{}, cli.Exit("--deadline must be positive", 2)
	}
	return time.Now().Add(d), nil
}

func proposeDKG(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	roster, t, err := rosterAndThreshold(c)
	if err != nil {
		return err
	}
	if c.Int("epoch-days") < 1 {
		return cli.Exit("--epoch-days must be at least 1", 2)
	}
	start := time.Now().UTC().Truncate(24 * time.Hour)
	if s := c.String("start"); s != "" {
		if start, err = parseTimeFlag("start", s); err != nil {
			return cli.Exit(err.Error(), 2)
		}
	}
	dl, err := deadline(c)
	if err != nil {
		return err
	}
	p, err := ceremony.DKGProposal(roster, t, escrow.GroupEpoch{Epoch: 1, ValidFrom: start, ValidUntil: start.AddDate(0, 0, c.Int("epoch-days"))}, dl, rand.Reader)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	return writeProposal(c, p, nil)
}

func proposeRotate(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	gb, err := os.ReadFile(c.String("group"))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	if c.IsSet("epoch-days") && c.Int("epoch-days") < 1 {
		return cli.Exit("--epoch-days must be at least 1", 2)
	}
	dl, err := deadline(c)
	if err != nil {
		return err
	}
	p, err := ceremony.RotationProposal(gb, time.Now(), time.Duration(c.Int("epoch-days"))*24*time.Hour, dl, rand.Reader)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", c.String("group"), err), 2)
	}
	return writeProposal(c, p, gb)
}

func proposeReshare(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	gb, err := os.ReadFile(c.String("group"))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	roster, t, err := rosterAndThreshold(c)
	if err != nil {
		return err
	}
	dl, err := deadline(c)
	if err != nil {
		return err
	}
	p, err := ceremony.ReshareProposal(gb, roster, t, dl, rand.Reader)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", c.String("group"), err), 2)
	}
	return writeProposal(c, p, gb)
}

// writeProposal has the proposing node sign p and writes it.
func writeProposal(c *cli.Context, p *ceremony.Proposal, group []byte) error {
	out := c.String("out")
	if _, err := os.Lstat(out); err == nil {
		return cli.Exit(fmt.Sprintf("%s exists; choose another --out", out), 2)
	}
	if c.IsSet("witness-quorum") {
		w := c.Int("witness-quorum")
		p.WitnessQuorum = &w
		if err := p.Validate(); err != nil {
			return cli.Exit(err.Error(), 2)
		}
	}
	signed, err := trustee.NewControlClient(c.String("dir")).SignProposal(p)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	_, who, err := ceremony.OpenProposal(signed, group)
	if err != nil {
		return cli.Exit(fmt.Sprintf("the node at %s signed the proposal with a key it does not name: %v", c.String("dir"), err), 1)
	}
	if err := writePublicFile(out, signed); err != nil {
		return cli.Exit(err.Error(), 2)
	}
	fmt.Fprintf(c.App.Writer, "wrote %s: %s proposal %s, signed by %s, deadline %s\n", out, p.Kind, p.ID, strings.Join(who, ", "), p.Deadline.Format(time.RFC3339))
	fmt.Fprintf(c.App.Writer, "each trustee's operator approves it with: keyquorum trustee approve --dir DIR %s\n", out)
	return nil
}

// trusteeApproveCommand is `keyquorum trustee approve`.
func trusteeApproveCommand() *cli.Command {
	return &cli.Command{
		Name:      "approve",
		Usage:     "approve a ceremony proposal on this node, over its local control socket",
		ArgsUsage: "PROPOSAL",
		Description: "Shows what the proposal would do and, on a terminal, asks for confirmation (--yes skips it).\n" +
			"The node then takes part in exactly that ceremony, before its deadline, and in nothing else.\n" +
			"The approval is written to the node's audit log first.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Required: true, Usage: "the node's `DIR` (its control socket is DIR/" + trustee.ControlSocketName + ")", EnvVars: envVar("dir")},
			&cli.StringFlag{Name: "group", Usage: "the current signed group `FILE`, for a node that joins the group by a reshare and has none yet", EnvVars: envVar("group")},
			&cli.BoolFlag{Name: "yes", Usage: "approve without asking (for scripts)"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON", EnvVars: envVar("json")},
		},
		Action: trusteeApprove,
	}
}

func trusteeApprove(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit("give one proposal file: keyquorum trustee approve --dir DIR PROPOSAL (flags before the file)", 2)
	}
	pb, err := os.ReadFile(c.Args().First())
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	var gb []byte
	if g := c.String("group"); g != "" {
		if gb, err = os.ReadFile(g); err != nil {
			return cli.Exit(err.Error(), 2)
		}
	}
	cc := trustee.NewControlClient(c.String("dir"))
	rev, err := cc.Review(pb, gb)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", c.Args().First(), err), 1)
	}
	if !c.Bool("json") {
		fmt.Fprint(c.App.Writer, rev.Summary)
	}
	if !c.Bool("yes") {
		f, ok := c.App.Reader.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return cli.Exit("not approved: no terminal to confirm on; read the summary above and run again with --yes", 2)
		}
		fmt.Fprint(c.App.ErrWriter, "approve this ceremony? type yes: ")
		line, _ := bufio.NewReader(f).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return cli.Exit("not approved", 1)
		}
	}
	ans, err := cc.Approve(pb, gb)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", c.Args().First(), err), 1)
	}
	if c.Bool("json") {
		return printJSON(c, ans)
	}
	fmt.Fprintf(c.App.Writer, "approved %s (logged); this node takes part in ceremony %s until its deadline\n", ans.Hash, ans.Ceremony)
	return nil
}

// trusteeStatusCommand is `keyquorum trustee status`.
func trusteeStatusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show a running node's epochs, approvals, ceremonies, audit log and policy (over its control socket)",
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Required: true, Usage: "the node's `DIR`", EnvVars: envVar("dir")},
			&cli.BoolFlag{Name: "json", Usage: "print the status as JSON", EnvVars: envVar("json")},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			raw, err := trustee.NewControlClient(c.String("dir")).Status()
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if c.Bool("json") {
				fmt.Fprintln(c.App.Writer, string(raw))
				return nil
			}
			var st trustee.NodeStatus
			if err := json.Unmarshal(raw, &st); err != nil {
				return cli.Exit("the node's status does not decode: "+err.Error(), 1)
			}
			st.Print(c.App.Writer)
			return nil
		},
	}
}

func printJSON(c *cli.Context, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, string(b))
	return nil
}

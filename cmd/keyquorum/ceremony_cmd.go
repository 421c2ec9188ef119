package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/keyquorum/keyquorum/ceremony"
	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
)

func ceremonyCommand() *cli.Command {
	timeout := func() cli.Flag {
		return &cli.DurationFlag{Name: "phase-timeout", Value: 20 * time.Second, Usage: "how long to keep trying a trustee in one phase before counting it out", EnvVars: envVar("phase-timeout")}
	}
	return &cli.Command{
		Name:  "ceremony",
		Usage: "run key ceremonies among running trustees (dealerless: no machine ever holds the group key)",
		Description: "The command relays the trustees' messages; it never sees anything that lets it compute the\n" +
			"key. Every trustee checks every other trustee's signed key announcement, so a relay that\n" +
			"swaps keys is caught. The result is a group file signed by every trustee holding a share.",
		Subcommands: []*cli.Command{
			{
				Name:      "roster",
				Usage:     "make a roster file from the trustees' descriptors, in share-index order",
				ArgsUsage: "DESCRIPTOR...",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "out", Required: true, Usage: "write the roster to `FILE` (must not exist)", EnvVars: envVar("out")},
				},
				Action: ceremonyRoster,
			},
			proposeCommand(),
			{
				Name:      "dkg",
				Usage:     "run an approved first-DKG proposal: make a group's first epoch key among its trustees",
				ArgsUsage: " ",
				Flags: []cli.Flag{
					proposalFlag(),
					&cli.StringFlag{Name: "out", Required: true, Usage: "write the signed group file to `FILE` (must not exist)", EnvVars: envVar("out")},
					timeout(),
				},
				Action: func(c *cli.Context) error { return ceremonyRun(c, ceremony.ProposeDKG) },
			},
			{
				Name:      "rotate",
				Usage:     "run an approved rotation proposal: make the next epoch's key among the group's trustees",
				ArgsUsage: " ",
				Flags: []cli.Flag{
					proposalFlag(),
					&cli.StringFlag{Name: "group", Required: true, Usage: "the current signed group `FILE` (the one the proposal names)", EnvVars: envVar("group")},
					&cli.StringFlag{Name: "out", Required: true, Usage: "write the new signed group file to `FILE` (may be the --group file)", EnvVars: envVar("out")},
					timeout(),
				},
				Action: func(c *cli.Context) error { return ceremonyRun(c, ceremony.ProposeRotate) },
			},
			{
				Name:      "reshare",
				Usage:     "run an approved reshare proposal: move every epoch's key to a new roster and threshold",
				ArgsUsage: " ",
				Flags: []cli.Flag{
					proposalFlag(),
					&cli.StringFlag{Name: "group", Required: true, Usage: "the current signed group `FILE` (the one the proposal names)", EnvVars: envVar("group")},
					&cli.StringFlag{Name: "out", Required: true, Usage: "write the new signed group file to `FILE` (may be the --group file)", EnvVars: envVar("out")},
					timeout(),
				},
				Action: func(c *cli.Context) error { return ceremonyRun(c, ceremony.ProposeReshare) },
			},
		},
	}
}

func ceremonyRoster(c *cli.Context) error {
	if c.NArg() < 2 {
		return cli.Exit("give at least two descriptor files (DIR/descriptor.json from keyquorum trustee init), in share-index order", 2)
	}
	var ds []trustee.Descriptor
	for _, p := range c.Args().Slice() {
		b, err := os.ReadFile(p)
		if err != nil {
			return cli.Exit(err.Error(), 2)
		}
		d, err := trustee.ParseDescriptor(b)
		if err != nil {
			return cli.Exit(fmt.Sprintf("%s: %v", p, err), 2)
		}
		ds = append(ds, d)
	}
	b, err := trustee.MarshalRoster(ds)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	if err := writePublicFile(c.String("out"), b); err != nil {
		return cli.Exit(err.Error(), 2)
	}
	fmt.Fprintf(c.App.Writer, "wrote %s (%d trustees)\n", c.String("out"), len(ds))
	return nil
}

func ceremonyContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

func runCeremony(c *cli.Context, opts ceremony.DKGOptions, p *ceremony.Proposal, out string, replace bool) error {
	opts.PhaseTimeout = c.Duration("phase-timeout")
	opts.Dial = trustee.CeremonyDialer()
	opts.Progress = func(line string) { fmt.Fprintln(c.App.ErrWriter, line) }
	if !replace {
		if _, err := os.Lstat(out); err == nil {
			return cli.Exit(fmt.Sprintf("%s exists; choose another --out", out), 2)
		}
	}
	ctx, cancel := ceremonyContext()
	defer cancel()
	rep, err := ceremony.RunDKG(ctx, opts)
	if err != nil {
		if errors.Is(err, ceremony.ErrCeremonyFailed) {
			return cli.Exit(err.Error()+"\nno key was made; every trustee was told to forget the ceremony", 1)
		}
		return err
	}
	write := writePublicFile
	if replace {
		write = func(p string, b []byte) error { return replaceStateFile(p, b, 0o644) }
	}
	if err := write(out, rep.Signed); err != nil {
		return err
	}
	w := c.App.Writer
	if p.Kind == ceremony.ProposeReshare {
		fmt.Fprintf(w, "ceremony %s: %d epoch key(s) moved unchanged to a %d-of-%d roster\n", rep.CeremonyID, len(rep.Group.Epochs), rep.Group.Threshold, len(rep.Group.Trustees))
		fmt.Fprintf(w, "old shares no longer combine with new ones; trustees that left erased theirs (they could have kept a copy: old shares stay valid among themselves)\n")
	} else {
		e := rep.Group.Epochs[len(rep.Group.Epochs)-1]
		fmt.Fprintf(w, "ceremony %s: epoch %d key %s, %d-of-%d, valid %s to %s\n", rep.CeremonyID, e.Epoch, e.Key,
			rep.Group.Threshold, len(rep.Group.Trustees), e.ValidFrom.Format(time.RFC3339), e.ValidUntil.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "no machine held the key: each of %d trustees holds a share, and all of them signed %s\n", len(rep.Holders), out)
	for _, name := range rep.Excluded {
		fmt.Fprintf(w, "took no part (down, or its operator did not approve), holds no share: %s\n", name)
	}
	for _, d := range rep.Disqualified {
		fmt.Fprintf(w, "disqualified: trustee %d (%s): %s\n", d.Participant, d.Name, d.Reason)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "reported: %s\n", p)
	}
	fmt.Fprintf(w, "took %s\n", rep.Took.Round(time.Millisecond))
	return nil
}

func proposalFlag() cli.Flag {
	return &cli.StringFlag{Name: "proposal", Required: true, Usage: "the signed proposal `FILE` (keyquorum ceremony propose), approved by each trustee's operator", EnvVars: envVar("proposal")}
}

// ceremonyRun runs an approved proposal of the given kind.
func ceremonyRun(c *cli.Context, kind string) error {
	if c.NArg() > 0 {
		return cli.Exit("unexpected arguments "+strings.Join(c.Args().Slice(), " ")+"; flags go before arguments", 2)
	}
	pb, err := os.ReadFile(c.String("proposal"))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	var gb []byte
	if kind != ceremony.ProposeDKG {
		if gb, err = os.ReadFile(c.String("group")); err != nil {
			return cli.Exit(err.Error(), 2)
		}
	}
	p, _, err := ceremony.OpenProposal(pb, gb)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", c.String("proposal"), err), 2)
	}
	if p.Kind != kind {
		return cli.Exit(fmt.Sprintf("%s is a %s proposal; run it with keyquorum ceremony %s", c.String("proposal"), p.Kind, p.Kind), 2)
	}
	opts := ceremony.DKGOptions{Proposal: pb, Group: gb}
	return runCeremony(c, opts, p, c.String("out"), gb != nil && c.String("out") == c.String("group"))
}

// rosterAndThreshold reads --roster and checks -t against it.
func rosterAndThreshold(c *cli.Context) ([]escrow.GroupMember, int, error) {
	rb, err := os.ReadFile(c.String("roster"))
	if err != nil {
		return nil, 0, cli.Exit(err.Error(), 2)
	}
	roster, err := trustee.ParseRoster(rb)
	if err != nil {
		return nil, 0, cli.Exit(fmt.Sprintf("%s: %v", c.String("roster"), err), 2)
	}
	t := c.Int("threshold")
	if t < 2 || t > len(roster) {
		return nil, 0, cli.Exit(fmt.Sprintf("-t %d with %d trustees: use 2..%d (a key ceremony needs a threshold of at least 2)", t, len(roster), len(roster)), 2)
	}
	return roster, t, nil
}

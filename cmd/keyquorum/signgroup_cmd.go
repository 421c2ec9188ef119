package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
)

func trusteeSignGroupCommand() *cli.Command {
	return &cli.Command{
		Name:      "sign-group",
		Usage:     "check a group file against this node's identity and stored shares, then add the node's signature to it",
		ArgsUsage: " ",
		Description: "Clients (simulate, decrypt, audit) accept a group file only once every trustee has signed it.\n" +
			"The node checks that the file lists it with its own identity key, log key, TLS pin and address,\n" +
			"and that every epoch it holds a share of has the commitment that share was dealt under; then it\n" +
			"adds its signature with its log key, keeping the others, and writes OUT (which may be IN, so the\n" +
			"trustees can sign one after another). Run it after keyquorum trustee import-share, before serve;\n" +
			"while the node serves, it signs over the node's control socket (no passphrase needed).\n" +
			"The group file is one JSON object with the signatures inside (\"signatures\"); a version 1 file\n" +
			"(JSON followed by signature lines) is rewritten as version 2 and signed afresh by each trustee.",
		Flags: []cli.Flag{
			trusteeDirFlag(),
			passphraseFileFlag(),
			&cli.StringFlag{Name: "group", Required: true, Usage: "the group `FILE` to sign: the dealer's group.json, or one other trustees have signed", EnvVars: envVar("group")},
			&cli.StringFlag{Name: "out", Required: true, Usage: "`FILE` to write the signed group file to (mode 0644, replaced atomically; may be the --group file)", EnvVars: envVar("out")},
		},
		Action: trusteeSignGroup,
	}
}

func trusteeSignGroup(c *cli.Context) error {
	if err := trusteeNoArgs(c); err != nil {
		return err
	}
	dir, in, out := c.String("dir"), c.String("group"), c.String("out")
	b, err := os.ReadFile(in)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	_, err = escrow.ReadGroupFile(b) // refused before the passphrase is asked for
	converted := false
	if errors.Is(err, escrow.ErrGroupFileV1) {
		// A version 1 file's signatures sign its version 1 text: this
		// trustee checks the group and signs its version 2 file afresh.
		if b, err = escrow.ConvertGroupFileV1(b); err == nil {
			_, err = escrow.ReadGroupFile(b)
			converted = true
		}
	}
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", in, err), 2)
	}
	var signed []byte
	var who string
	node, err := unlockNode(c, dir)
	switch {
	case errors.Is(err, trustee.ErrStoreLocked):
		// The node is running: it checks and signs over its control
		// socket, with the same checks.
		if signed, who, err = trustee.NewControlClient(dir).SignGroup(b); err != nil {
			return cli.Exit(fmt.Sprintf("%s: %v", in, err), 2)
		}
	case err != nil:
		return err
	default:
		defer node.close()
		stored, err := node.vault.EpochShares()
		if err != nil {
			return err
		}
		if signed, err = trustee.SignGroupAsNode(b, node.id, stored); err != nil {
			return cli.Exit(fmt.Sprintf("%s: %v", in, err), 2)
		}
		who = node.id.Name
	}
	if err := replaceStateFile(out, signed, 0o644); err != nil {
		return err
	}
	w := c.App.Writer
	if converted {
		fmt.Fprintf(w, "%s is a version 1 group file: rewrote it as version 2, without its old signatures (each trustee signs again)\n", in)
	}
	fmt.Fprintf(w, "%s signed %s; wrote %s\n", who, in, out)
	_, _, err = escrow.VerifyGroupFile(signed, true)
	switch {
	case err == nil:
		fmt.Fprintf(w, "every trustee has signed: clients (simulate, decrypt, audit) accept %s now\n", out)
	case errors.Is(err, escrow.ErrGroupUnsigned):
		fmt.Fprintf(w, "clients refuse %s until the others sign it: %v\n", out, err)
		fmt.Fprintf(w, "pass it on: each of them runs keyquorum trustee sign-group --dir DIR --group %s --out %s\n", out, out)
	default:
		return err
	}
	return nil
}

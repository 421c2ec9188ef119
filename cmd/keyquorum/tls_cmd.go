package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
)

func trusteeTLSCommand() *cli.Command {
	return &cli.Command{
		Name:  "tls",
		Usage: "manage the node's TLS key, which clients pin in the group file",
		Subcommands: []*cli.Command{{
			Name:      "rotate",
			Usage:     "replace the node's TLS key and certificate, and write the signed pin update (stop the node first)",
			ArgsUsage: " ",
			Description: "Makes a new TLS key and self-signed certificate for the node's address, stores them in\n" +
				"DIR/node.db in place of the old ones, rewrites DIR/descriptor.json with the new pin, and writes\n" +
				"OUT: a pin update (old pin -> new pin) signed with the node's log key, the key the group file\n" +
				"already lists for it. The node serves the new certificate from its next start; clients\n" +
				"holding the old group file refuse it until they have the next one. To make that:\n" +
				"  keyquorum group apply-pin-update --group group.json --update OUT --out group.next\n" +
				"then every trustee signs group.next (keyquorum trustee sign-group, which a running node does over\n" +
				"its control socket), as after a ceremony.",
			Flags: []cli.Flag{
				trusteeDirFlag(),
				passphraseFileFlag(),
				&cli.StringFlag{Name: "out", Required: true, Usage: "`FILE` to write the signed pin update to (must not exist)", EnvVars: envVar("out")},
			},
			Action: trusteeTLSRotate,
		}},
	}
}

func trusteeTLSRotate(c *cli.Context) error {
	if err := trusteeNoArgs(c); err != nil {
		return err
	}
	dir, out := c.String("dir"), c.String("out")
	if _, err := os.Stat(out); err == nil {
		return cli.Exit(fmt.Sprintf("%s exists; give a new file to write the pin update to", out), 2)
	}
	node, err := unlockNode(c, dir)
	if err != nil {
		return err
	}
	defer node.close()
	id, u, err := node.vault.RotateTLS(time.Now(), rand.Reader)
	if err != nil {
		return err
	}
	signed, err := trustee.SignPinUpdate(u, id.LogSigner)
	if err != nil {
		return err
	}
	desc, err := id.Descriptor().Marshal()
	if err != nil {
		return err
	}
	if err := replaceStateFile(filepath.Join(dir, descriptorFile), desc, 0o644); err != nil {
		return err
	}
	if err := writePublicFile(out, signed); err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "%s's TLS key is new: pin %s (was %s)\n", id.Name, u.NewPin, u.OldPin)
	fmt.Fprintf(w, "wrote %s (signed by %s) and %s\n", out, id.LogSigner.Name(), filepath.Join(dir, descriptorFile))
	fmt.Fprintf(w, "next: keyquorum group apply-pin-update --group GROUP --update %s --out NEXT; every trustee signs NEXT (keyquorum trustee sign-group)\n", out)
	return nil
}

func groupApplyPinUpdateCommand() *cli.Command {
	return &cli.Command{
		Name:      "apply-pin-update",
		Usage:     "check a trustee's signed TLS pin update against the group file and write the next group file, unsigned",
		ArgsUsage: " ",
		Description: "Checks that the update (from keyquorum trustee tls rotate) is signed by the log key the signed\n" +
			"group file lists for its trustee, and replaces the pin the file holds for it; then writes the\n" +
			"group file with the new pin and no signatures. Every trustee signs it in turn with\n" +
			"keyquorum trustee sign-group; clients accept it once all have.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "group", Required: true, Usage: "the current signed group `FILE`", EnvVars: envVar("group")},
			&cli.StringFlag{Name: "update", Required: true, Usage: "the signed pin update `FILE`", EnvVars: envVar("update")},
			&cli.StringFlag{Name: "out", Required: true, Usage: "`FILE` to write the next group file to (must not exist)", EnvVars: envVar("out")},
		},
		Action: groupApplyPinUpdate,
	}
}

func groupApplyPinUpdate(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit("apply-pin-update takes no arguments: give --group, --update and --out", 2)
	}
	g, err := loadSignedGroup(c.String("group"))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	ub, err := os.ReadFile(c.String("update"))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	u, err := trustee.OpenPinUpdate(ub, g)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", c.String("update"), userError(err)), 2)
	}
	next, err := trustee.ApplyPinUpdate(g, u)
	if err != nil {
		return cli.Exit(userError(err).Error(), 2)
	}
	if err := writePublicFile(c.String("out"), next); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s moves from pin %s to %s (signed by %s, rotated %s)\n", u.Trustee, u.OldPin, u.NewPin, u.Trustee, u.Time.Format(time.RFC3339))
	fmt.Fprintf(c.App.Writer, "wrote %s, unsigned: each trustee signs it in turn (keyquorum trustee sign-group --dir DIR --group %s --out %s)\n", c.String("out"), c.String("out"), c.String("out"))
	return nil
}

package main

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/urfave/cli/v2"
)

func keygenCommand() *cli.Command {
	outFlag := func() cli.Flag {
		return &cli.StringFlag{
			Name:     "out",
			Usage:    "write the secret key to `FILE` (mode 0600; refused if FILE exists)",
			Required: true,
			EnvVars:  envVar("out"),
		}
	}
	nameFlag := func(what, chars string) cli.Flag {
		return &cli.StringFlag{
			Name:    "name",
			Usage:   "the " + what + "'s `NAME`: 1-64 letters, digits or " + chars + " (default: the --out file's name without its extension)",
			EnvVars: envVar("name"),
		}
	}
	return &cli.Command{
		Name:  "keygen",
		Usage: "generate a judge, requester or user key: the secret goes to a new file, the public key to stdout",
		Description: "The secret key file has mode 0600. With --protect (judge and requester keys) it is also\n" +
			"encrypted under a passphrase (age, scrypt), which warrant sign and decrypt then ask for.\n" +
			"Redirect stdout to keep the public key, e.g. keyquorum keygen judge --name judge-a --out judge-a.key > judge-a.pub",
		Subcommands: []*cli.Command{
			{
				Name:      "judge",
				Usage:     "generate a judge's warrant-signing key; prints the verifier key (name+hash+key) for trustees",
				ArgsUsage: " ",
				Flags:     append([]cli.Flag{outFlag(), nameFlag("judge", ". _ @ -")}, protectFlags()...),
				Action:    keygenJudge,
			},
			{
				Name:      "requester",
				Usage:     "generate an investigator's key q; prints Q, the public key a warrant names",
				ArgsUsage: " ",
				Flags:     append([]cli.Flag{outFlag()}, protectFlags()...),
				Action:    keygenRequester,
			},
			{
				Name:      "user",
				Usage:     "generate a messaging user's X25519 and Ed25519 keys; prints the user's public keys",
				ArgsUsage: " ",
				Flags:     []cli.Flag{outFlag(), nameFlag("user", ". _ @ + -")},
				Action:    keygenUser,
			},
		},
	}
}

func keygenNoArgs(c *cli.Context) error {
	if c.Args().Present() {
		return fmt.Errorf("%s: unexpected argument %q (flags go before arguments)", c.Command.FullName(), c.Args().First())
	}
	return nil
}

// keyName is --name, or else the base name of --out without its extension
// (alice.key names alice), so that `keygen user --out alice.key` works.
func keyName(c *cli.Context) string {
	if c.IsSet("name") {
		return c.String("name")
	}
	base := filepath.Base(c.String("out"))
	return strings.TrimSuffix(base, filepath.Ext(base))
}

func keygenJudge(c *cli.Context) error {
	if err := keygenNoArgs(c); err != nil {
		return err
	}
	skey, vkey, err := escrow.NewJudgeKey(keyName(c), rand.Reader)
	if err != nil {
		return err
	}
	data, err := escrow.MarshalJudgeKey(&escrow.JudgeKey{SignerKey: skey, VerifierKey: vkey})
	if err != nil {
		return err
	}
	if data, err = protectIfAsked(c, data, "judge"); err != nil {
		return err
	}
	if err := writeSecretFile(c.String("out"), data); err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, vkey)
	return nil
}

func keygenRequester(c *cli.Context) error {
	if err := keygenNoArgs(c); err != nil {
		return err
	}
	k, err := escrow.GenerateRequesterKey(rand.Reader)
	if err != nil {
		return err
	}
	data, err := escrow.MarshalRequesterKey(k)
	if err != nil {
		return err
	}
	if data, err = protectIfAsked(c, data, "requester"); err != nil {
		return err
	}
	if err := writeSecretFile(c.String("out"), data); err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, escrow.FormatRequesterPublic(k.Public))
	return nil
}

func keygenUser(c *cli.Context) error {
	if err := keygenNoArgs(c); err != nil {
		return err
	}
	u, err := escrow.GenerateUserKey(keyName(c), rand.Reader)
	if err != nil {
		return err
	}
	data, err := escrow.MarshalUserKey(u)
	if err != nil {
		return err
	}
	pub, err := escrow.MarshalUserPublic(u.Public())
	if err != nil {
		return err
	}
	if err := writeSecretFile(c.String("out"), data); err != nil {
		return err
	}
	_, err = c.App.Writer.Write(pub)
	return err
}

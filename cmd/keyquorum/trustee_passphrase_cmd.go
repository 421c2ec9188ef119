package main

import (
	"crypto/rand"
	"fmt"
	"path/filepath"

	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
)

// newPassphraseEnv may hold the new passphrase for trustee passphrase
// change.
const newPassphraseEnv = "KEYQUORUM_NEW_PASSPHRASE"

func trusteePassphraseCommand() *cli.Command {
	return &cli.Command{
		Name:  "passphrase",
		Usage: "manage the passphrase that encrypts the node's store",
		Subcommands: []*cli.Command{{
			Name:      "change",
			Usage:     "encrypt the node's secrets under a new passphrase (stop the node first)",
			ArgsUsage: " ",
			Description: "Unlocks DIR/node.db with the current passphrase, then seals every secret again under a key\n" +
				"derived from the new one, in one transaction: the store opens with the old passphrase or the\n" +
				"new one, never neither. Copies of the store made before (backups) still open with the old one.\n" +
				"The new passphrase comes from --new-passphrase-file, else $" + newPassphraseEnv + ", else a prompt (twice).",
			Flags: []cli.Flag{
				trusteeDirFlag(),
				passphraseFileFlag(),
				&cli.StringFlag{Name: "new-passphrase-file", Usage: "read the new passphrase from `FILE` (its first line)", EnvVars: envVar("new-passphrase-file")},
			},
			Action: trusteePassphraseChange,
		}},
	}
}

func trusteePassphraseChange(c *cli.Context) error {
	old, err := readPassphrase(c)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	path := filepath.Join(c.String("dir"), nodeStoreFile)
	store, err := trustee.OpenStore(path)
	if err != nil {
		clear(old)
		return cli.Exit(err.Error(), 2)
	}
	defer store.Close()
	vault, err := store.Unlock(old)
	clear(old)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	defer vault.Close()
	next, err := passphraseFrom(c, passphraseSource{
		fileFlag:   "new-passphrase-file",
		env:        newPassphraseEnv,
		prompt:     "New passphrase for the trustee node: ",
		noTerminal: "no new passphrase: give --new-passphrase-file FILE or set $" + newPassphraseEnv + " (there is no terminal to prompt on)",
		empty:      "empty passphrase; the node's secrets need one",
	}, true)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	defer clear(next)
	if err := vault.ChangePassphrase(next, trustee.DefaultKDFParams(), rand.Reader); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "the secrets in %s are now encrypted under the new passphrase; update the node's passphrase file or credential\n", path)
	return nil
}

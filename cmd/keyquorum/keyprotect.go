package main

// Passphrase-protected judge and requester keys.
//
// A judge key is the root of authority over every warrant, and a requester
// key reads what the trustees release, so `keygen judge|requester
// --protect` encrypts the key file the way age does, with age itself
// (filippo.io/age): the plaintext key file is encrypted to an scrypt
// recipient (work factor 2^18, about a second) and ASCII-armored. A few
// "#" comment lines go before the armor, saying what the file is; without
// them the file is a standard armored age file, so
//
//	grep -v '^#' judge.key | age -d > judge-plain.key
//
// opens it with the age tool. Every command that reads such a key (warrant
// sign, decrypt) takes the passphrase from --passphrase-file, else from
// $KEYQUORUM_KEY_PASSPHRASE, else from a prompt on the terminal.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/urfave/cli/v2"
)

// keyPassphraseEnv holds the passphrase of a protected judge or requester
// key (a trustee node's is $KEYQUORUM_PASSPHRASE).
const keyPassphraseEnv = "KEYQUORUM_KEY_PASSPHRASE"

// scryptWorkFactor is log2 of scrypt's N for new protected key files.
const scryptWorkFactor = 18

// maxKeyFile bounds what a key file read may hold.
const maxKeyFile = 1 << 20

const armorHeader = "-----BEGIN AGE ENCRYPTED FILE-----"

// keyPassphraseFileFlag is --passphrase-file on a command that reads a
// judge or requester key.
func keyPassphraseFileFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    "passphrase-file",
		Usage:   "if the key file is passphrase-protected, read the passphrase from `FILE` (its first line); without it, $" + keyPassphraseEnv + ", else a prompt on the terminal",
		EnvVars: envVar("passphrase-file"),
	}
}

// protectFlags are keygen's flags for a passphrase-protected key file.
func protectFlags() []cli.Flag {
	return []cli.Flag{
		// Not --passphrase: its variable would be $KEYQUORUM_PASSPHRASE, which
		// holds a node's passphrase itself.
		&cli.BoolFlag{Name: "protect", Aliases: []string{"p"}, Usage: "encrypt the key file under a passphrase (age, scrypt): prompted twice, or from --passphrase-file or $" + keyPassphraseEnv, EnvVars: envVar("protect")},
		&cli.StringFlag{Name: "passphrase-file", Usage: "encrypt the key file under the passphrase in `FILE` (its first line); implies --protect", EnvVars: envVar("passphrase-file")},
	}
}

// isProtectedKey reports whether b is a passphrase-protected key file.
func isProtectedKey(b []byte) bool {
	return bytes.Contains(b, []byte(armorHeader))
}

// protectKeyFile encrypts the key file plain under passphrase, with a
// comment header naming what it is.
func protectKeyFile(plain, passphrase []byte, what string) ([]byte, error) {
	r, err := age.NewScryptRecipient(string(passphrase))
	if err != nil {
		return nil, err
	}
	r.SetWorkFactor(scryptWorkFactor)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# keyquorum %s private key, encrypted under a passphrase (age, scrypt). SECRET.\n", what)
	fmt.Fprintf(&buf, "# keyquorum asks for the passphrase; grep -v '^#' FILE | age -d also opens it.\n")
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plain); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// openProtectedKey decrypts a protected key file with passphrase.
func openProtectedKey(b, passphrase []byte) ([]byte, error) {
	i := bytes.Index(b, []byte(armorHeader))
	if i < 0 {
		return nil, errors.New("not a passphrase-protected key file")
	}
	id, err := age.NewScryptIdentity(string(passphrase))
	if err != nil {
		return nil, err
	}
	r, err := age.Decrypt(armor.NewReader(bytes.NewReader(b[i:])), id)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) || errors.Is(err, age.ErrIncorrectIdentity) {
			return nil, errors.New("wrong passphrase (or the file was altered)")
		}
		return nil, fmt.Errorf("damaged protected key file: %v", err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, maxKeyFile))
	if err != nil {
		return nil, fmt.Errorf("damaged protected key file: %v", err)
	}
	return plain, nil
}

// readKeyFile reads a judge or requester key file, opening it with the
// passphrase (--passphrase-file, $KEYQUORUM_KEY_PASSPHRASE or a prompt)
// when it is protected.
func readKeyFile(c *cli.Context, path, what string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !isProtectedKey(b) {
		return b, nil
	}
	p, err := keyPassphrase(c, path, false)
	if err != nil {
		return nil, err
	}
	defer clear(p)
	plain, err := openProtectedKey(b, p)
	if err != nil {
		return nil, fmt.Errorf("%s key %s: %w", what, path, err)
	}
	return plain, nil
}

// keyPassphrase returns the passphrase of the key file at path, from the
// first of --passphrase-file, $KEYQUORUM_KEY_PASSPHRASE and a prompt on
// the terminal (asked twice when confirm).
func keyPassphrase(c *cli.Context, path string, confirm bool) ([]byte, error) {
	return passphraseFrom(c, passphraseSource{
		fileFlag:   "passphrase-file",
		env:        keyPassphraseEnv,
		prompt:     "Passphrase for " + path + ": ",
		noTerminal: fmt.Sprintf("%s is passphrase-protected: give --passphrase-file FILE or set $%s (there is no terminal to prompt on)", path, keyPassphraseEnv),
		empty:      "empty passphrase; a protected key needs one",
	}, confirm)
}

// protectIfAsked encrypts a new key file's bytes when keygen was given
// --protect or --passphrase-file.
func protectIfAsked(c *cli.Context, data []byte, what string) ([]byte, error) {
	if !c.Bool("protect") && c.String("passphrase-file") == "" {
		return data, nil
	}
	p, err := keyPassphrase(c, c.String("out"), true)
	if err != nil {
		return nil, err
	}
	defer clear(p)
	fmt.Fprintf(c.App.ErrWriter, "%s: encrypted under a passphrase (age, scrypt); keep the passphrase apart from the file\n", c.String("out"))
	return protectKeyFile(data, p, what)
}

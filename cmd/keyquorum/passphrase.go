package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

// passphraseEnv is the environment variable that may hold a trustee node's
// passphrase itself (as opposed to KEYQUORUM_PASSPHRASE_FILE, which names a
// file holding it).
const passphraseEnv = "KEYQUORUM_PASSPHRASE"

// maxPassphraseFile bounds what --passphrase-file reads.
const maxPassphraseFile = 64 << 10

// passphraseFileFlag is the --passphrase-file flag of every command that
// opens a trustee node's store.
func passphraseFileFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name:    "passphrase-file",
		Usage:   "read the node's passphrase from `FILE` (its first line); without it, $" + passphraseEnv + ", else a prompt on the terminal",
		EnvVars: envVar("passphrase-file"),
	}
}

// readPassphrase returns the passphrase of an existing trustee node, from
// the first of: --passphrase-file, $KEYQUORUM_PASSPHRASE (if not empty), a
// prompt on the terminal (without echo). It refuses an empty passphrase.
func readPassphrase(c *cli.Context) ([]byte, error) {
	return getPassphrase(c, false)
}

// readNewPassphrase is readPassphrase for a new node: a prompt asks twice.
func readNewPassphrase(c *cli.Context) ([]byte, error) {
	return getPassphrase(c, true)
}

func getPassphrase(c *cli.Context, confirm bool) ([]byte, error) {
	return passphraseFrom(c, passphraseSource{
		fileFlag:   "passphrase-file",
		env:        passphraseEnv,
		prompt:     "Passphrase for the trustee node: ",
		noTerminal: "no passphrase: give --passphrase-file FILE or set $" + passphraseEnv + " (there is no terminal to prompt on)",
		empty:      "empty passphrase; the node's secrets need one",
	}, confirm)
}

// passphraseSource says where a passphrase comes from besides
// --passphrase-file, and what to say when there is none.
type passphraseSource struct {
	fileFlag   string // the flag naming a file that holds it
	env        string // environment variable holding the passphrase itself
	prompt     string // the terminal prompt
	noTerminal string // the error when there is no terminal to prompt on
	empty      string // the error for an empty passphrase
}

// passphraseFrom returns the passphrase from the first of --$src.fileFlag,
// $src.env (if not empty) and a prompt on the terminal (without echo, twice
// when confirm). It refuses an empty passphrase.
func passphraseFrom(c *cli.Context, src passphraseSource, confirm bool) ([]byte, error) {
	if path := c.String(src.fileFlag); path != "" {
		return readPassphraseFile(c, path)
	}
	if v := os.Getenv(src.env); v != "" {
		return []byte(v), nil
	}
	in, ok := c.App.Reader.(*os.File)
	if !ok || !isTerminal(in) {
		return nil, errors.New(src.noTerminal)
	}
	p, err := promptPassphrase(in, c.App.ErrWriter, src.prompt)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, errors.New(src.empty)
	}
	if confirm {
		again, err := promptPassphrase(in, c.App.ErrWriter, "Same passphrase again: ")
		if err != nil {
			clear(p)
			return nil, err
		}
		same := bytes.Equal(p, again)
		clear(again)
		if !same {
			clear(p)
			return nil, errors.New("the two passphrases differ; nothing was created, run the command again")
		}
	}
	return p, nil
}

// readPassphraseFile returns the first line of path, without its line
// ending. It warns when others may read the file.
func readPassphraseFile(c *cli.Context, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPassphraseFile+1))
	if err != nil {
		return nil, fmt.Errorf("passphrase file %s: %w", path, err)
	}
	if len(b) > maxPassphraseFile {
		clear(b)
		return nil, fmt.Errorf("passphrase file %s is larger than %d bytes; is it the right file?", path, maxPassphraseFile)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	p := bytes.Clone(line)
	clear(b)
	if len(p) == 0 {
		return nil, fmt.Errorf("passphrase file %s: the first line is empty; a node's secrets need a passphrase", path)
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(c.App.ErrWriter, "warning: passphrase file %s can be read by other users (mode %04o); chmod 600 it\n", path, fi.Mode().Perm())
	}
	return p, nil
}

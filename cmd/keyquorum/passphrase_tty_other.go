//go:build !linux

package main

import (
	"errors"
	"io"
	"os"
)

// Prompting without echo is implemented for Linux terminals only; elsewhere
// the passphrase comes from --passphrase-file or $KEYQUORUM_PASSPHRASE.

func isTerminal(*os.File) bool { return false }

func promptPassphrase(*os.File, io.Writer, string) ([]byte, error) {
	return nil, errors.New("cannot prompt for a passphrase on this system; use --passphrase-file")
}

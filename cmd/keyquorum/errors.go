package main

import (
	"errors"
	"strings"

	"github.com/urfave/cli/v2"
)

// userError returns err as the user sees it: without the package prefixes
// of library errors (see [cleanError]), with its exit status kept.
func userError(err error) error {
	if err == nil {
		return nil
	}
	msg := cleanError(err.Error())
	if msg == err.Error() {
		return err
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return cli.Exit(msg, ec.ExitCode())
	}
	return errors.New(msg)
}

// cleanError removes the package prefixes ("sim: ", "escrow: ", ...) that
// library errors carry by convention from a message shown to a user, who
// has no use for the names of internal packages.
func cleanError(msg string) string {
	for _, p := range []string{"sim: ", "escrow: ", "trustee: ", "shares: ", "group: ", "fedrun: ", "demo: ", "bench: ", "ceremony: "} {
		msg = strings.TrimPrefix(msg, p)
		msg = strings.ReplaceAll(msg, ": "+p, ": ")
		msg = strings.ReplaceAll(msg, "; "+p, "; ")
		msg = strings.ReplaceAll(msg, "("+p, "(")
		msg = strings.ReplaceAll(msg, "\n"+p, "\n")
	}
	return msg
}

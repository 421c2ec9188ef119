// Command keyquorum is the one binary of the keyquorum threshold key-escrow
// demonstrator: key and warrant tooling, secret splitting, dealer-mode group
// set-up, traffic simulation and the demo that measures the trade-off.
//
// The command holds no protocol logic; it parses flags, reads and writes
// files, and calls the shares, escrow and trustee packages.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "v0.1.0-dev"

func main() {
	if err := run(os.Args, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "keyquorum:", err)
		var ec cli.ExitCoder
		if errors.As(err, &ec) && ec.ExitCode() != 0 {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

// run builds the application and runs it on args; it never exits the
// process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	app := newApp()
	app.Reader = stdin
	app.Writer = stdout
	app.ErrWriter = stderr
	args, err := normalizeArgs(app.Commands, args)
	if err != nil {
		return err
	}
	return userError(app.Run(args))
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "keyquorum",
		Usage: "threshold key escrow you can measure: quorum-gated warranted decryption and its limits",
		Description: "Start with `keyquorum demo`: it runs trustees, users, a judge and an investigator,\n" +
			"then prints what threshold escrow buys over a single master key and what it cannot buy.\n\n" +
			"`keyquorum help COMMAND` (or `keyquorum COMMAND --help`) shows a command's flags; flags may\n" +
			"come before or after a command's arguments. `keyquorum --version` prints the version.",
		HideVersion:     true,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {}, // main decides how to exit
		Commands: []*cli.Command{
			demoCommand(),
			keygenCommand(),
			warrantCommand(),
			groupCommand(),
			ceremonyCommand(),
			trusteeCommand(),
			decryptCommand(),
			auditCommand(),
			transcriptCommand(),
			simulateCommand(),
			sharesCommand(),
			benchCommand(),
			versionCommand(),
			completionCommand(),
			manCommand(),
		},
	}
}

// envVar names the environment variable that sets a flag: every flag has
// one, KEYQUORUM_ followed by the flag name in upper case.
func envVar(flag string) []string {
	b := []byte("KEYQUORUM_")
	for _, c := range []byte(flag) {
		switch {
		case c == '-':
			b = append(b, '_')
		case c >= 'a' && c <= 'z':
			b = append(b, c-'a'+'A')
		default:
			b = append(b, c)
		}
	}
	return []string{string(b)}
}

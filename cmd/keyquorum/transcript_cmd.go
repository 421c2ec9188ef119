package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
)

func transcriptCommand() *cli.Command {
	return &cli.Command{
		Name:  "transcript",
		Usage: "re-check a decryption offline from its transcript (decrypt --transcript)",
		Subcommands: []*cli.Command{{
			Name:      "verify",
			Usage:     "check every answer in a decryption transcript against the group file",
			ArgsUsage: "TRANSCRIPT",
			Description: "Checks, with the group file alone and no network: the request's signature by the requester key its\n" +
				"warrant names; for each answer, the trustee's signed checkpoint (its log key from the group file), the\n" +
				"inclusion proof of its decision record, that the record grants exactly this request, and the DLEQ proof of\n" +
				"every partial decryption; and that at least t answers verify.\n\n" +
				"Exit status: 0 the transcript verifies; 1 it does not; 2 bad input.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "group", Required: true, Usage: "signed group `FILE` the decryption was made under", EnvVars: envVar("group")},
			},
			Action: transcriptVerifyAction,
		}},
	}
}

func transcriptVerifyAction(c *cli.Context) error {
	bad := func(format string, args ...any) error {
		return cli.Exit("transcript: "+fmt.Sprintf(format, args...), exitBadInput)
	}
	if c.Args().Len() != 1 {
		return bad("give one transcript file")
	}
	g, err := loadSignedGroup(c.String("group"))
	if err != nil {
		return bad("%v", err)
	}
	b, err := os.ReadFile(c.Args().First())
	if err != nil {
		return bad("%v", err)
	}
	t, err := trustee.ParseTranscript(b)
	if err != nil {
		return bad("%s: %v", c.Args().First(), err)
	}
	check, err := trustee.VerifyTranscript(g, t)
	if err != nil {
		return cli.Exit("transcript: "+err.Error(), 1)
	}
	fmt.Fprintf(c.App.Writer, "transcript verifies: warrant %s, %d sessions, answers of %s verified (threshold %d)\n",
		check.Warrant, check.Sessions, strings.Join(check.Valid, ", "), g.Threshold)
	return nil
}

package main

import "github.com/urfave/cli/v2"

func sharesCommand() *cli.Command {
	return &cli.Command{Name: "shares", Usage: "(being built)", Action: func(*cli.Context) error { return cli.Exit("shares: not built yet", 2) }}
}

package main

import "github.com/urfave/cli/v2"

func warrantCommand() *cli.Command {
	return &cli.Command{Name: "warrant", Usage: "(being built)", Action: func(*cli.Context) error { return cli.Exit("warrant: not built yet", 2) }}
}

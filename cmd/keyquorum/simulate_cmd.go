package main

import "github.com/urfave/cli/v2"

func simulateCommand() *cli.Command {
	return &cli.Command{Name: "simulate", Usage: "(being built)", Action: func(*cli.Context) error { return cli.Exit("simulate: not built yet", 2) }}
}

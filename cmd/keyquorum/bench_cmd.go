package main

import "github.com/urfave/cli/v2"

func benchCommand() *cli.Command {
	return &cli.Command{Name: "bench", Usage: "(being built)", Action: func(*cli.Context) error { return cli.Exit("bench: not built yet", 2) }}
}

package main

import "github.com/urfave/cli/v2"

func keygenCommand() *cli.Command {
	return &cli.Command{Name: "keygen", Usage: "(being built)", Action: func(*cli.Context) error { return cli.Exit("keygen: not built yet", 2) }}
}

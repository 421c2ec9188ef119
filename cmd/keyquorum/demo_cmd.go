package main

import "github.com/urfave/cli/v2"

func demoCommand() *cli.Command {
	return &cli.Command{Name: "demo", Usage: "(being built)", Action: func(*cli.Context) error { return cli.Exit("demo: not built yet", 2) }}
}

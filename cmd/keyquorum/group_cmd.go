package main

import "github.com/urfave/cli/v2"

func groupCommand() *cli.Command {
	return &cli.Command{Name: "group", Usage: "(being built)", Action: func(*cli.Context) error { return cli.Exit("group: not built yet", 2) }}
}

package main

import "github.com/urfave/cli/v2"

// trusteeServeCommand is a placeholder until the node's API server lands;
// it keeps `keyquorum trustee serve` in the command tree.
func trusteeServeCommand() *cli.Command {
	return &cli.Command{
		Name:   "serve",
		Usage:  "run the trustee node's API",
		Action: func(*cli.Context) error { return cli.Exit("not built yet", 2) },
	}
}

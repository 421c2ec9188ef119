package main

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"
)

// versionJSON is what `keyquorum version --json` prints (schema
// keyquorum/version/v1; see doc/json.md).
type versionJSON struct {
	Schema  string   `json:"schema"`
	Version string   `json:"version"`
	Formats []string `json:"formats"`
	Go      string   `json:"go"`
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the keyquorum version and the wire-format versions it speaks",
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if c.Bool("json") {
				return writeJSON(c, versionJSON{Schema: "keyquorum/version/v1", Version: version, Formats: []string{"keyquorum/v1"}, Go: runtime.Version()})
			}
			fmt.Fprintf(c.App.Writer, "keyquorum %s (formats: keyquorum/v1)\n", version)
			return nil
		},
	}
}

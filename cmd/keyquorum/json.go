package main

import (
	"encoding/json"

	"github.com/urfave/cli/v2"
)

// jsonFlag is the --json flag of a command that reports a result or a state.
// Each such command prints one JSON object whose "schema" field names its
// versioned schema, documented in doc/json.md.
func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print the result as one JSON object (schema in doc/json.md)", EnvVars: envVar("json")}
}

// writeJSON prints v as indented JSON on the command's output.
func writeJSON(c *cli.Context, v any) error {
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

//go:build !unix

package main

import "github.com/rogpeppe/go-internal/testscript"

// sighupServe: there is no SIGHUP outside Unix (the script skips there
// before it gets here).
func sighupServe(ts *testscript.TestScript, neg bool, args []string) {
	ts.Fatalf("sighup: no SIGHUP on this system")
}

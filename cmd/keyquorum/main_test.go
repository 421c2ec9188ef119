package main

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/urfave/cli/v2"
)

func TestMain(m *testing.M) {
	os.Exit(testscript.RunMain(m, map[string]func() int{
		"keyquorum": func() int {
			if err := run(os.Args, os.Stdin, os.Stdout, os.Stderr); err != nil {
				os.Stderr.WriteString("keyquorum: " + err.Error() + "\n")
				if ec, ok := err.(cli.ExitCoder); ok && ec.ExitCode() != 0 {
					return ec.ExitCode()
				}
				return 1
			}
			return 0
		},
	}))
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata", Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
		// benchjson SESSIONS TRUSTEES checks stdout as bench decrypt --json.
		"benchjson": benchDecryptSane,
		// sighup DIR sends SIGHUP to the trustee serve process of DIR
		// (relative to the script's work directory) and gives it two
		// seconds to act on it.
		"sighup": sighupServe,
		// waitfor HOST:PORT... waits until each address accepts TCP
		// connections (trustees started in the background), at most 30 s.
		"waitfor": func(ts *testscript.TestScript, neg bool, args []string) {
			for _, a := range args {
				deadline := time.Now().Add(30 * time.Second)
				for {
					c, err := net.DialTimeout("tcp", a, time.Second)
					if err == nil {
						c.Close()
						break
					}
					if time.Now().After(deadline) {
						ts.Fatalf("%s did not accept connections within 30s: %v", a, err)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		},
	}})
}

// TestEveryFlagHasEnvVar walks the whole command tree and checks that every
// flag can also be set from a KEYQUORUM_* environment variable, and that
// every command has a one-line description.
func TestEveryFlagHasEnvVar(t *testing.T) {
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			p := path + " " + c.Name
			if c.Usage == "" {
				t.Errorf("%s: command has no usage line", p)
			}
			for _, f := range c.Flags {
				if p == "keyquorum trustee approve" && f.Names()[0] == "yes" {
					continue // an approval is never given by the environment
				}
				if p == "keyquorum trustee serve" && f.Names()[0] == "override-witness-check" {
					continue // nor is an override of the witness check
				}
				ev, ok := f.(interface{ GetEnvVars() []string })
				if !ok || len(ev.GetEnvVars()) == 0 {
					t.Errorf("%s: flag %v has no environment variable", p, f.Names())
					continue
				}
				for _, e := range ev.GetEnvVars() {
					if !strings.HasPrefix(e, "KEYQUORUM_") {
						t.Errorf("%s: flag %v env var %q lacks KEYQUORUM_ prefix", p, f.Names(), e)
					}
				}
			}
			walk(p, c.Subcommands)
		}
	}
	walk("keyquorum", newApp().Commands)
}

//go:build unix

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// sighupServe is the testscript command "sighup DIR": it finds the
// "keyquorum trustee serve --dir DIR" process started by the script (its
// working directory is the script's) and sends it SIGHUP.
func sighupServe(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sighup DIR")
	}
	work := ts.Getenv("WORK")
	procs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil || len(procs) == 0 {
		ts.Fatalf("no /proc to find the serving process in: %v", err)
	}
	var found []int
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil {
			continue
		}
		argv := bytes.Split(bytes.TrimSuffix(cmdline, []byte{0}), []byte{0})
		if !serves(argv, args[0]) {
			continue
		}
		if cwd, err := os.Readlink(filepath.Join(p, "cwd")); err != nil || cwd != work {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(p))
		found = append(found, pid)
	}
	if len(found) != 1 {
		ts.Fatalf("want one keyquorum trustee serve --dir %s running in %s, found %v", args[0], work, found)
	}
	ts.Check(syscall.Kill(found[0], syscall.SIGHUP))
	time.Sleep(2 * time.Second)
}

// serves reports whether argv is "... trustee serve ... --dir dir ...".
func serves(argv [][]byte, dir string) bool {
	var trustee, serve, d bool
	for i, a := range argv {
		switch string(a) {
		case "trustee":
			trustee = true
		case "serve":
			serve = trustee
		case "--dir":
			d = i+1 < len(argv) && string(argv[i+1]) == dir
		}
	}
	return serve && d
}

package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestWestminster runs the example and checks its claims: the warrant
// opens exactly its sessions, the rest are refused and both decisions are
// logged, the master key opens everything, and the story is the same on
// every run.
func TestWestminster(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	t.Log("\n" + got)
	total := find(t, got, `: (\d+) sessions, each session key escrowed`)[0]
	scope := find(t, got, `, (\d+) sessions\.\n`)[0]
	read := find(t, got, `granted by (\d+) of (\d+) trustees; the investigator read (\d+) of (\d+)`)
	if read[0] != read[1] || read[2] != scope || read[3] != scope || scope == 0 {
		t.Errorf("the warrant's %d sessions: %v", scope, read)
	}
	other := find(t, got, `the other (\d+) sessions: read (\d+); refused by (\d+) of (\d+) trustees \(out-of-scope\)`)
	if other[0] != total-scope || other[1] != 0 || other[2] != other[3] {
		t.Errorf("outside the warrant: %v", other)
	}
	if logged := find(t, got, `(\d+) of (\d+) trustees' signed audit logs hold both decisions`); logged[0] != logged[1] {
		t.Errorf("logged by %v", logged)
	}
	if master := find(t, got, `it opens (\d+) of (\d+) sessions`); master[0] != total || master[1] != total {
		t.Errorf("the master key opens %v of %d", master, total)
	}
	var again strings.Builder
	if err := run(&again); err != nil {
		t.Fatal(err)
	}
	if again.String() != got {
		t.Errorf("a second run told another story:\n%s", again.String())
	}
}

// find returns the integers the first match of pattern captures.
func find(t *testing.T, s, pattern string) []int {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("output lacks %q", pattern)
	}
	var out []int
	for _, x := range m[1:] {
		n, err := strconv.Atoi(x)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

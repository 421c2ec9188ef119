package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestClipper runs the example and checks its claims: Clipper's LEAF falls
// to brute force in about 2^16 tries, no forged keyquorum envelope is
// accepted, and the story is the same on every run.
func TestClipper(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	t.Log("\n" + got)
	m := regexp.MustCompile(`forged a LEAF for (\d+) of (\d+) calls, in (\d+) random tries per call on average`).FindStringSubmatch(got)
	if m == nil {
		t.Fatal("no LEAF forgery line")
	}
	forged, _ := strconv.Atoi(m[1])
	avg, _ := strconv.Atoi(m[3])
	if m[1] != m[2] || forged == 0 || avg < 1<<13 || avg > 1<<19 {
		t.Errorf("LEAF forgery: %s", m[0])
	}
	for _, want := range []string{
		"random envelopes with the right context accepted: 0 of 262144",
		"envelope stripped: rejected (no escrow envelope)",
		"one byte of the envelope changed: rejected (does not match the session key)",
		"a well-formed envelope escrowing another key: rejected (does not match the session key)",
		"the honest envelope: accepted",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	var again strings.Builder
	if err := run(&again); err != nil {
		t.Fatal(err)
	}
	if again.String() != got {
		t.Errorf("a second run told another story:\n%s", again.String())
	}
}

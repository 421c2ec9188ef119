package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestCollusion runs the example and checks its claims: t−1 trustees read
// nothing, t read everything and leave no log record, retention takes the
// older weeks away from everyone (and is logged), and copies made before
// the erasure still read them. The story is the same on every run.
func TestCollusion(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	t.Log("\n" + got)
	total := 3 * 7 * weeks
	recent := total * retention / weeks
	for _, want := range []string{
		fmt.Sprintf("one key per week: %d sessions", total),
		fmt.Sprintf("%d trustees (trustee-1, trustee-2) read 0 of %d sessions", threshold-1, total),
		fmt.Sprintf("%d trustees (trustee-1, trustee-2, trustee-3) read %d of %d sessions", threshold, total, total),
		"records their audit logs gained: 0",
		fmt.Sprintf("each erased its shares of epochs [1 2] and logged it: %d records in all", trustees*(weeks-retention)),
		fmt.Sprintf("%d trustees now read %d of %d sessions", threshold, recent, total),
		fmt.Sprintf("all %d together read %d", trustees, recent),
		fmt.Sprintf("still read %d of %d sessions with the copies", total, total),
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

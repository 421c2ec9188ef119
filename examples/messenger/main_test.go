package main

import (
	"strings"
	"testing"
)

// TestMessenger runs the example and checks its claims: the client takes
// the key only from a group file every trustee signed, the recipient
// accepts the honest session and rejects each rogue one for its reason,
// and the story is the same on every run.
func TestMessenger(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	t.Log("\n" + got)
	want := []string{
		"client: group file signed by every trustee; escrowing under epoch 1",
		"client: a group file with its key's validity stretched a year: rejected (a signature does not verify)",
		"client: the group file without one trustee's signature: rejected (not signed by every trustee)",
		`bob: alice's session: accepted ["lunch at one?"]`,
		"bob: a session with its escrow field stripped: rejected (no escrow field)",
		"bob: a session with a forged escrow field: rejected (escrow field does not match the session key)",
		"bob: the first session again (a replay): rejected (replayed session)",
		"bob: a session backdated by two days: rejected (start time or epoch not current)",
	}
	if lines := strings.Split(strings.TrimSpace(got), "\n"); strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	var again strings.Builder
	if err := run(&again); err != nil {
		t.Fatal(err)
	}
	if again.String() != got {
		t.Errorf("a second run told another story:\n%s", again.String())
	}
}

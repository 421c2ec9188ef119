package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keyquorum/keyquorum/trustee"
)

// TestDecryptStateAndTranscript: a requester keeps its state file across
// two decryptions; between them trustee-3's operator erases its log and
// regrows it (a node over a fresh store with the same log key and share).
// The second decryption names trustee-3 as forked and keeps the earlier
// checkpoint; the first decryption's transcript re-verifies offline, and
// a tampered one does not.
func TestDecryptStateAndTranscript(t *testing.T) {
	f := newCLIFed(t)
	state := filepath.Join(f.dir, "requester-state.json")
	tr := filepath.Join(f.dir, "transcript.json")
	args := append(f.decryptArgs(filepath.Join(f.dir, "out1")), "--state", state, "--transcript", tr)
	if _, stderr, code := runCLI(t, args...); code != 0 {
		t.Fatalf("first decrypt: exit %d: %s", code, stderr)
	}
	first, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	seen, err := trustee.ParseAuditState(first)
	if err != nil || len(seen) != 5 {
		t.Fatalf("state after the first decryption: %d entries, %v", len(seen), err)
	}

	stdout, stderr, code := runCLI(t, "transcript", "verify", "--group", f.paths["group"], tr)
	if code != 0 || !strings.Contains(stdout, "transcript verifies: warrant W-CLI-1") {
		t.Fatalf("transcript verify: exit %d\n%s%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(tr)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`"record_index": (\d+)`)
	m := re.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no record index in the transcript:\n%s", b)
	}
	n, _ := strconv.Atoi(string(m[1]))
	tampered := re.ReplaceAll(b, []byte(`"record_index": `+strconv.Itoa(n+1)))
	bad := f.write(t, "tampered.json", tampered)
	if _, stderr, code := runCLI(t, "transcript", "verify", "--group", f.paths["group"], bad); code != 1 || !strings.Contains(stderr, "transcript does not verify") || !strings.Contains(stderr, "not included") {
		t.Fatalf("tampered transcript: exit %d: %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, "transcript", "verify", "--group", f.paths["group"], f.paths["key"]); code != exitBadInput {
		t.Fatalf("not a transcript: exit %d: %s", code, stderr)
	}

	// trustee-3 comes back with a regrown log.
	fork := f.node(t, "trustee-3", 3, f.signers[2])
	eg, _ := f.group.EscrowGroup(1)
	if err := fork.AddEpochShare(f.nodes[2].Share(1), eg.PublicShares[3]); err != nil {
		t.Fatal(err)
	}
	g := *f.group
	g.Trustees = slices.Clone(f.group.Trustees)
	g.Trustees[2].Address = cliServe(t, fork, f.certs[2], g.Trustees[2].LogKey).Listener.Addr().String()
	f.paths["group"] = f.write(t, "group2.signed", f.signedGroup(t, &g))
	// Its log holds as many records as before, all different.
	if _, stderr, code := runCLI(t, f.decryptArgs(filepath.Join(f.dir, "out-regrow"))...); code != 0 {
		t.Fatalf("regrowing: exit %d: %s", code, stderr)
	}
	stdout, stderr, code = runCLI(t, append(f.decryptArgs(filepath.Join(f.dir, "out2")), "--state", state)...)
	if code != 0 || !strings.Contains(stderr, "trustee-3's log FORKED") || !strings.Contains(stdout, "trustee-3  forked") {
		t.Fatalf("second decrypt: exit %d\n%s%s", code, stdout, stderr)
	}
	after, err := trustee.ParseAuditState(mustRead(t, state))
	if err != nil {
		t.Fatal(err)
	}
	if after["trustee-3"] != seen["trustee-3"] {
		t.Error("the checkpoint kept as evidence against trustee-3 was replaced")
	}
	if after["trustee-1"].Size <= seen["trustee-1"].Size {
		t.Errorf("trustee-1's checkpoint did not advance: %d then %d", seen["trustee-1"].Size, after["trustee-1"].Size)
	}

	// An auditor with no state of its own (its last run predates the
	// grant) catches the erase-and-regrow fork from the requester's file.
	stdout, stderr, code = runCLI(t, "audit", "verify", "--group", f.paths["group"], "--import", state)
	if code != 1 || !strings.Contains(stdout, "trustee-3  FORKED") || !strings.Contains(stdout, "evidence against trustee-3") {
		t.Fatalf("audit with the requester's state: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, stderr, code = runCLI(t, "audit", "verify", "--group", f.paths["group"], "--import", filepath.Join(f.dir, "nothing.json")); code != exitBadInput || !strings.Contains(stderr, "does not exist") {
		t.Fatalf("missing import: exit %d: %s", code, stderr)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

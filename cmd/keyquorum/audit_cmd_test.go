package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyquorum/keyquorum/trustee"
)

func TestAuditCommand(t *testing.T) {
	f := newCLIFed(t)
	if _, stderr, code := runCLI(t, f.decryptArgs(filepath.Join(f.dir, "out"))...); code != 0 {
		t.Fatalf("decrypt: %s", stderr)
	}
	state := filepath.Join(f.dir, "audit-state.json")
	stdout, stderr, code := runCLI(t, "audit", "verify", "--group", f.paths["group"], "--state", state)
	if code != 0 || !strings.Contains(stdout, "first audit") || strings.Count(stdout, "  ok  ") != 5 {
		t.Fatalf("first audit: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(state); err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, code = runCLI(t, "audit", "verify", "--group", f.paths["group"], "--state", state); code != 0 || strings.Contains(stdout, "first audit") {
		t.Fatalf("second audit: exit %d\n%s%s", code, stdout, stderr)
	}

	stdout, stderr, code = runCLI(t, "audit", "report", "--group", f.paths["group"])
	if code != 0 || !strings.Contains(stdout, "trustee-3: 1 log records, verified") || !strings.Contains(stdout, "judge-cli") || !strings.Contains(stdout, f.now.Format("2006-01")) {
		t.Fatalf("report: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, _, code = runCLI(t, "audit", "report", "--group", f.paths["group"], "--json")
	var rep trustee.TransparencyReport
	if err := json.Unmarshal([]byte(stdout), &rep); code != 0 || err != nil || len(rep.Trustees) != 5 || rep.Trustees[0].Totals.Granted != 1 {
		t.Fatalf("report --json: exit %d, %v\n%s", code, err, stdout)
	}

	// trustee-3 comes back with an empty log signed by the same key: a
	// rollback, reported by name with both heads.
	g := *f.group
	g.Trustees = slices.Clone(f.group.Trustees)
	g.Trustees[2].Address = cliServe(t, f.node(t, "trustee-3", 3, f.signers[2]), f.certs[2], g.Trustees[2].LogKey).Listener.Addr().String()
	group2 := f.write(t, "group2.signed", f.signedGroup(t, &g))
	before, _ := os.ReadFile(state)
	stdout, stderr, code = runCLI(t, "audit", "verify", "--group", group2, "--state", state)
	if code != 1 || !strings.Contains(stdout, "trustee-3  FORKED") || !strings.Contains(stderr, "trustee-3 (forked)") || !strings.Contains(stdout, "evidence against trustee-3") {
		t.Fatalf("rolled back: exit %d\n%s%s", code, stdout, stderr)
	}
	after, _ := os.ReadFile(state)
	st, err := trustee.ParseAuditState(after)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := trustee.ParseAuditState(before)
	if st["trustee-3"] != old["trustee-3"] {
		t.Error("the saved head of the forked trustee was replaced")
	}

	// An unreachable trustee: exit 4.
	f.servers[1].Close()
	if _, stderr, code = runCLI(t, "audit", "verify", "--group", f.paths["group"]); code != exitNoQuorum || !strings.Contains(stderr, "could not reach trustee-2") {
		t.Fatalf("unreachable: exit %d\n%s", code, stderr)
	}
}

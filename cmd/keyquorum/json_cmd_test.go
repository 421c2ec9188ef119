package main

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

// TestJSONOutputs runs decrypt, audit verify and audit report with --json
// against a federation on loopback and reads each object back with its
// schema's field names.
func TestJSONOutputs(t *testing.T) {
	f := newCLIFed(t)
	out := filepath.Join(f.dir, "out")
	stdout, stderr, code := runCLI(t, append(f.decryptArgs(out), "--json")...)
	var d struct {
		Schema    string `json:"schema"`
		Out       string `json:"out"`
		Outcome   string `json:"outcome"`
		Warrant   string `json:"warrant"`
		Recovered int    `json:"sessions_recovered"`
		Requested int    `json:"sessions_requested"`
		Trustees  []struct {
			Name   string `json:"name"`
			Status string `json:"status"`
		} `json:"trustees"`
		Refusals []any `json:"refusals"`
	}
	if err := json.Unmarshal([]byte(stdout), &d); code != 0 || err != nil {
		t.Fatalf("decrypt --json: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	if d.Schema != schemaDecrypt || d.Out != out || d.Outcome != "ok" || d.Recovered == 0 || d.Recovered != d.Requested || len(d.Trustees) != 5 || d.Trustees[0].Status != "granted" || d.Refusals == nil {
		t.Fatalf("decrypt --json: %+v", d)
	}

	state := filepath.Join(f.dir, "state")
	stdout, stderr, code = runCLI(t, "audit", "verify", "--group", f.paths["group"], "--state", state, "--json")
	var v auditVerifyJSON
	if err := json.Unmarshal([]byte(stdout), &v); code != 0 || err != nil {
		t.Fatalf("audit verify --json: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	if v.Schema != schemaAuditVerify || !v.OK || !v.FirstRun || v.StateFile != state || len(v.Trustees) != 5 || v.Trustees[2].Name != "trustee-3" || v.Trustees[2].Status != "ok" || v.Trustees[2].Records != 1 || v.Trustees[2].Head == "" {
		t.Fatalf("audit verify --json: %+v", v)
	}

	stdout, stderr, code = runCLI(t, "audit", "report", "--group", f.paths["group"], "--json")
	var r struct {
		Schema   string `json:"schema"`
		Trustees []struct {
			Name   string `json:"name"`
			Totals struct {
				Granted int `json:"granted"`
			} `json:"totals"`
		} `json:"trustees"`
		Skipped []any `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); code != 0 || err != nil {
		t.Fatalf("audit report --json: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	if r.Schema != schemaAuditReport || len(r.Trustees) != 5 || r.Trustees[0].Totals.Granted != 1 || r.Skipped == nil || len(r.Skipped) != 0 {
		t.Fatalf("audit report --json: %+v", r)
	}

	// A trustee down: audit verify --json still prints one object, naming it.
	f.servers[1].Close()
	stdout, _, code = runCLI(t, "audit", "verify", "--group", f.paths["group"], "--json")
	v = auditVerifyJSON{}
	if err := json.Unmarshal([]byte(stdout), &v); code != exitNoQuorum || err != nil || v.OK || v.Trustees[1].Status != "unreachable" {
		t.Fatalf("audit verify --json, trustee-2 down: exit %d, %v\n%s", code, err, stdout)
	}

	// Bad input: the error as JSON, exit status 2.
	stdout, _, code = runCLI(t, "decrypt", "--group", "nope.json", "--warrant", "w", "--key", "k", "--capture", "c", "--out", filepath.Join(f.dir, "o2"), "--json")
	var e errorJSON
	if err := json.Unmarshal([]byte(stdout), &e); code != exitBadInput || err != nil || e.Schema != schemaDecrypt || e.OK || e.ExitCode != exitBadInput || e.Error == "" {
		t.Fatalf("decrypt --json, bad input: exit %d, %v\n%s", code, err, stdout)
	}
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnit checks deploy/keyquorum-trustee.service: the hardening the
// README promises is there, and systemd-analyze verify accepts the unit
// (with ExecStart pointed at this build, since verify checks the binary).
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("../../deploy/keyquorum-trustee.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nUser=keyquorum\n", "\nProtectSystem=strict\n", "\nNoNewPrivileges=yes\n", "\nRestart=always\n",
		"\nLoadCredential=passphrase:", "--passphrase-file %d/passphrase", "\nExecReload=/bin/kill -HUP $MAINPID\n",
		"\nEnvironmentFile=/etc/keyquorum/trustee.env\n", "\nCapabilityBoundingSet=\n",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", strings.TrimSpace(want))
		}
	}
	env, err := os.ReadFile("../../deploy/trustee.env")
	if err != nil {
		t.Fatal(err)
	}
	// Every setting in the example environment file names a flag of
	// trustee serve.
	serve := trusteeServeCommand()
	for _, l := range strings.Split(string(env), "\n") {
		l = strings.TrimPrefix(l, "#")
		name, _, ok := strings.Cut(l, "=")
		if !ok || !strings.HasPrefix(name, "KEYQUORUM_") || strings.Contains(name, " ") {
			continue
		}
		found := false
		for _, f := range serve.Flags {
			if ev, ok := f.(interface{ GetEnvVars() []string }); ok && len(ev.GetEnvVars()) > 0 && ev.GetEnvVars()[0] == name {
				found = true
			}
		}
		if !found {
			t.Errorf("trustee.env sets %s, which is no flag of trustee serve", name)
		}
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd); the unit was not verified")
	}
	bin, err := exec.LookPath("keyquorum")
	if err != nil {
		t.Skip("no keyquorum command on PATH")
	}
	path := filepath.Join(t.TempDir(), "keyquorum-trustee.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/keyquorum", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

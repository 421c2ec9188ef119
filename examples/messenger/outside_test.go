package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildsOutsideTheModule copies this program into a module of its own
// that requires keyquorum through a replace directive, as a messenger's
// developers would, and builds it there: it uses public packages only,
// and what it pulls in is free of the trustee node and its dependencies.
func TestBuildsOutsideTheModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module outside the repository; skipped in -short mode")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	gomod := "module example.com/messenger\n\ngo 1.26.0\n\nrequire github.com/keyquorum/keyquorum v0.0.0\n\nreplace github.com/keyquorum/keyquorum => " + root + "\n"
	for name, b := range map[string][]byte{"main.go": src, "go.mod": []byte(gomod)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("mod", "tidy")
	run("build", "-o", filepath.Join(dir, "messenger"), ".")
	deps := run("list", "-deps", ".")
	for _, bad := range []string{"go.etcd.io/bbolt", "github.com/prometheus/", "github.com/BurntSushi/toml", "github.com/urfave/cli", "keyquorum/keyquorum/trustee"} {
		if strings.Contains(deps, bad) {
			t.Errorf("the messenger pulls in %s", bad)
		}
	}
}

package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeReloadAndMetrics runs a real trustee process: metrics are on
// their own listener and off the API; SIGHUP reloads policy.toml, refusing
// a bad file and keeping the policy in force; SIGTERM stops it cleanly.
func TestServeReloadAndMetrics(t *testing.T) {
	bin, err := exec.LookPath("keyquorum") // the test binary, set up by TestMain
	if err != nil {
		t.Skip("no keyquorum command on PATH")
	}
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("keyquorum %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if err := os.WriteFile(filepath.Join(dir, "pass"), []byte("serve test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "a.pub"), []byte(run("keygen", "judge", "--out", "a.key")), 0o644)
	b := run("keygen", "judge", "--out", "b.key")
	run("trustee", "init", "--dir", "t1", "--name", "trustee-1", "--addr", "127.0.0.1:7999", "--passphrase-file", "pass", "--judge", "a.pub")
	policy := filepath.Join(dir, "t1", "policy.toml")
	good, err := os.ReadFile(policy)
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "trustee", "serve", "--dir", "t1", "--passphrase-file", "pass", "--listen", "127.0.0.1:0", "--insecure-plain-http", "--metrics-listen", "0")
	cmd.Dir = dir
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		done <- cmd.Wait()
	}()
	var metricsURL, apiAddr string
	for apiAddr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("serve stopped:\n%s", stderr.String())
			}
			if u, ok := strings.CutPrefix(l, "metrics on "); ok {
				metricsURL = u
			}
			if _, a, ok := strings.Cut(l, " serving on "); ok {
				apiAddr = a
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("serve did not start:\n%s", stderr.String())
		}
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if !strings.HasPrefix(metricsURL, "http://127.0.0.1:") {
		t.Fatalf("metrics URL %q: want loopback for a bare port", metricsURL)
	}
	if code, body := get(metricsURL); code != http.StatusOK || !strings.Contains(body, "# TYPE") {
		t.Fatalf("metrics listener: %d\n%s", code, body)
	}
	if code, _ := get("http://" + apiAddr + "/metrics"); code != http.StatusNotFound {
		t.Fatalf("API /metrics with --metrics-listen: %d, want 404", code)
	}

	waitLog := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(stderr.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log:\n%s", what, stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// A bad file is refused; the node keeps serving.
	if err := os.WriteFile(policy, []byte("judges = [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog("policy file refused; the policy in force is unchanged")
	if code, _ := get("http://" + apiAddr + "/healthz"); code != http.StatusOK {
		t.Fatalf("after a refused reload: /healthz %d", code)
	}
	// A good one, trusting a second judge, is put in force.
	more := strings.Replace(string(good), "\njudges = [\"", "\njudges = [\""+strings.TrimSpace(b)+`", "`, 1)
	if more == string(good) {
		t.Fatalf("policy file format changed:\n%s", good)
	}
	if err := os.WriteFile(policy, []byte(more), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog("SIGHUP: policy reloaded")
	if !strings.Contains(stderr.String(), "judges=b,a ") {
		t.Fatalf("reloaded policy does not trust both judges:\n%s", stderr.String())
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		done <- err
		if err != nil || !strings.Contains(stderr.String(), "store closed cleanly") {
			t.Fatalf("SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}

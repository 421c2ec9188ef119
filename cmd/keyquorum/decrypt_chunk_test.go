package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDecryptInChunks: with --chunk 2 the warrant's sessions are asked for
// two at a time, and the session files are the same as in one request. A
// transcript, which holds one request, is refused when the sessions take
// several, before any trustee is asked; so is a --chunk out of range.
func TestDecryptInChunks(t *testing.T) {
	f := newCLIFed(t)
	one := filepath.Join(f.dir, "one")
	if stdout, stderr, code := runCLI(t, f.decryptArgs(one)...); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	chunked := filepath.Join(f.dir, "chunked")
	stdout, stderr, code := runCLI(t, append(f.decryptArgs(chunked), "--chunk", "2")...)
	if code != 0 {
		t.Fatalf("--chunk 2: exit %d\n%s%s", code, stdout, stderr)
	}
	a, b := readSummary(t, one), readSummary(t, chunked)
	if b.Outcome != "ok" || b.SessionsRecovered != a.SessionsRecovered || b.SessionsRequested < 3 {
		t.Fatalf("in one request %+v; in chunks of 2 %+v", a, b)
	}
	for _, tr := range b.Trustees {
		if want := (b.SessionsRequested + 1) / 2; tr.Status != "granted" || tr.Attempts != want {
			t.Errorf("%s: %s after %d attempts, want granted after %d", tr.Name, tr.Status, tr.Attempts, want)
		}
	}
	files, _ := filepath.Glob(filepath.Join(one, "sessions", "*.txt"))
	for _, p := range files {
		x, _ := os.ReadFile(p)
		y, err := os.ReadFile(filepath.Join(chunked, "sessions", filepath.Base(p)))
		if err != nil || string(x) != string(y) {
			t.Errorf("%s differs in chunks: %v", filepath.Base(p), err)
		}
	}

	for _, tc := range []struct {
		name  string
		extra []string
		want  string
	}{
		{"transcript", []string{"--chunk", "2", "--transcript", filepath.Join(f.dir, "t.json")}, "a transcript holds one request"},
		{"zero", []string{"--chunk", "0"}, "--chunk 0: give 1 to 100000 sessions per request"},
	} {
		out := filepath.Join(f.dir, "out-"+tc.name)
		_, stderr, code := runCLI(t, append(f.decryptArgs(out), tc.extra...)...)
		if code != exitBadInput || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, %s", tc.name, code, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(f.dir, "t.json")); err == nil {
		t.Error("a refused transcript was written")
	}
}

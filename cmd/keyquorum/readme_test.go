package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeFederationMatchesScript checks that every keyquorum command of
// the README's "Run a federation by hand" section is run, as written, by
// testdata/readme_federation.txtar, so the section cannot drift from what
// the tests prove works.
func TestReadmeFederationMatchesScript(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("testdata/readme_federation.txtar")
	if err != nil {
		t.Fatal(err)
	}
	sec := string(readme)
	start := strings.Index(sec, "## Run a federation by hand")
	if start < 0 {
		t.Fatal("README has no federation section")
	}
	sec = sec[start:]
	if end := strings.Index(sec[3:], "\n## "); end >= 0 {
		sec = sec[:end+3]
	}
	execs := map[string]bool{}
	for _, l := range strings.Split(string(script), "\n") {
		l = strings.TrimPrefix(l, "! ")
		if c, ok := strings.CutPrefix(l, "exec "); ok {
			c = regexp.MustCompile(` &\w+&$`).ReplaceAllString(c, "")
			execs[c] = true
		}
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(sec, -1)
	n := 0
	for _, b := range blocks {
		for _, l := range strings.Split(b[1], "\n") {
			if !strings.HasPrefix(l, "keyquorum ") {
				continue
			}
			c := strings.TrimSuffix(l, " &")
			c = regexp.MustCompile(` > \S+$`).ReplaceAllString(c, "")
			if !execs[c] {
				t.Errorf("README command not run by readme_federation.txtar:\n%s", c)
			}
			n++
		}
	}
	if n < 20 {
		t.Fatalf("only %d commands found in the README section", n)
	}
}

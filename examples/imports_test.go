// Package examples holds keyquorum's runnable teaching scenarios, one
// program per directory; this test keeps them on the public packages.
package examples

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestExamplesUsePublicPackagesOnly fails if an example imports one of
// keyquorum's internal packages: an example is what someone outside the
// module can copy.
func TestExamplesUsePublicPackagesOnly(t *testing.T) {
	files, err := filepath.Glob("*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Fatalf("only %d example files found", len(files))
	}
	for _, f := range files {
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/keyquorum/keyquorum/") && strings.Contains(p, "/internal") {
				t.Errorf("%s imports %s; examples use the public packages only", f, p)
			}
		}
	}
}

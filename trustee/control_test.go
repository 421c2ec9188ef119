package trustee

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestControlSocketLongDir: a node directory whose socket path is longer
// than sun_path still gets its control socket, reachable by the client,
// owner-only.
func TestControlSocketLongDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := ListenControl(dir)
	if err != nil {
		t.Skipf("this platform cannot bind a socket that deep: %v", err)
	}
	defer l.Close()
	fi, err := os.Stat(filepath.Join(dir, ControlSocketName))
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v mode %v", err, fi.Mode())
	}
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) }))
	if _, err := NewControlClient(dir).Status(); err != nil {
		t.Fatalf("status over a deep socket: %v", err)
	}
	// A second node on the same directory is refused.
	if _, err := ListenControl(dir); err == nil || !strings.Contains(err.Error(), "another node is serving") {
		t.Fatalf("second listener: %v", err)
	}
}

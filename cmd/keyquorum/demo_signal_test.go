//go:build unix

package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoInterruptLeavesNothing starts `keyquorum demo` (trustees as
// processes), interrupts it, and checks that it leaves nothing behind: no
// temporary directory (with its passphrase file and trustee stores) and no
// process of its process group (every trustee, every `trustee init`).
// Ctrl-C on a terminal sends SIGINT to the whole foreground group; here
// the signal goes to the demo alone, the harder case: it must stop its
// children itself.
func TestDemoInterruptLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts trustee processes")
	}
	bin := filepath.Join(t.TempDir(), "keyquorum")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building keyquorum: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		// ready reports when to send the signal, from the demo's output
		// so far and its temporary directory.
		ready func(out string, tmp string) bool
	}{
		{"SIGINT with the trustees serving", syscall.SIGINT, func(out, _ string) bool {
			return strings.Contains(out, "1. TRAFFIC")
		}},
		{"SIGTERM while trustees are set up", syscall.SIGTERM, func(_, tmp string) bool {
			m, _ := filepath.Glob(filepath.Join(tmp, "keyquorum-demo-*", "federation", "trustee-*"))
			return len(m) > 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			cmd := exec.Command(bin, "demo")
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pgid := cmd.Process.Pid
			defer syscall.Kill(-pgid, syscall.SIGKILL) // whatever happens, nothing outlives the test

			lines := make(chan string)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			var out strings.Builder
			deadline := time.After(3 * time.Minute)
			for !tc.ready(out.String(), tmp) {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("the demo ended before the signal was due:\n%s\nstderr: %s", out.String(), stderr.String())
					}
					out.WriteString(l + "\n")
				case <-time.After(10 * time.Millisecond):
				case <-deadline:
					t.Fatalf("not ready to signal after 3 minutes:\n%s", out.String())
				}
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			go func() {
				for range lines {
				}
			}()
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			var werr error
			select {
			case werr = <-waited:
			case <-time.After(time.Minute):
				t.Fatal("the demo did not exit within a minute of the signal")
			}
			var ee *exec.ExitError
			if !errors.As(werr, &ee) || ee.ExitCode() != 130 {
				t.Errorf("exit: %v, want status 130; stderr: %s", werr, stderr.String())
			}
			if !strings.Contains(stderr.String(), "interrupted") {
				t.Errorf("stderr does not say the demo was interrupted: %q", stderr.String())
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				var names []string
				for _, e := range left {
					names = append(names, e.Name())
				}
				t.Errorf("left behind in TMPDIR: %v", names)
			}
			// The demo has exited; no process of its group may remain.
			if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("processes of the demo's group still run after it exited (kill -0: %v)", err)
			}
		})
	}
}

package netlab_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/netlab"
)

// The test binary doubles as a small TCP echo server, run inside a
// namespace by `ip netns exec`: NETLAB_ECHO=ADDR listens there, prints
// "ready" and echoes lines; NETLAB_DIAL=ADDR connects from inside a
// namespace, times one exchange and prints it.
func TestMain(m *testing.M) {
	if a := os.Getenv("NETLAB_ECHO"); a != "" {
		os.Exit(echo(a))
	}
	if a := os.Getenv("NETLAB_DIAL"); a != "" {
		d, err := exchange(a)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(d.Nanoseconds())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func echo(addr string) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				c.Write([]byte(line))
			}
		}()
	}
}

// exchange connects to addr and times the connection and one echoed
// line: two round trips.
func exchange(addr string) (time.Duration, error) {
	t0 := time.Now()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello\n")); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "hello\n" {
		return 0, fmt.Errorf("echo %q: %v", line, err)
	}
	return time.Since(t0), nil
}

func namespaces(t *testing.T) string {
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	return string(out)
}

// TestLabDelays: with 20 ms on each host's link, a TCP connection and
// one echoed line (two round trips) take at least 80 ms between this
// process and a host (one link each way) and at least 160 ms between
// two hosts (two links each way), and well under a second: the packets
// really travel through the lab. Close leaves no namespace behind.
func TestLabDelays(t *testing.T) {
	if err := netlab.Available(); err != nil {
		t.Skipf("network namespaces: %v (run the tests as root on Linux to include this one)", err)
	}
	const delay = 20 * time.Millisecond
	lab, err := netlab.New(netlab.Config{Hosts: 2, Delay: delay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	if len(lab.Hosts) != 2 || !lab.Self.IsValid() || lab.Hosts[0].Addr == lab.Hosts[1].Addr {
		t.Fatalf("lab %+v", lab)
	}
	for _, h := range lab.Hosts {
		if !strings.Contains(namespaces(t), h.Namespace) {
			t.Fatalf("namespace %s missing", h.Namespace)
		}
	}

	server := netip.AddrPortFrom(lab.Hosts[0].Addr, 7700).String()
	argv := lab.Hosts[0].Command(os.Args[0])
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "NETLAB_ECHO="+server)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("echo server: %q %v", line, err)
	}

	d, err := exchange(server)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("this process to a host: connect and one echo in %v", d)
	if d < 4*delay || d > time.Second {
		t.Errorf("this process to a host: two round trips took %v, want at least %v", d, 4*delay)
	}

	argv = lab.Hosts[1].Command(os.Args[0])
	dial := exec.Command(argv[0], argv[1:]...)
	dial.Env = append(os.Environ(), "NETLAB_DIAL="+server)
	b, err := dial.CombinedOutput()
	if err != nil {
		t.Fatalf("dialling from %s: %v: %s", lab.Hosts[1].Namespace, err, b)
	}
	var ns int64
	if _, err := fmt.Sscan(string(b), &ns); err != nil {
		t.Fatalf("dialler said %q", b)
	}
	t.Logf("host to host: connect and one echo in %v", time.Duration(ns))
	if d := time.Duration(ns); d < 8*delay || d > 2*time.Second {
		t.Errorf("host to host: two round trips took %v, want at least %v", d, 8*delay)
	}

	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	if err := lab.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, h := range lab.Hosts {
		if strings.Contains(namespaces(t), h.Namespace) {
			t.Errorf("namespace %s left behind", h.Namespace)
		}
	}
	if _, err := exchange(server); err == nil {
		t.Error("the host is still reachable after Close")
	}
}

// TestConfigRefused: a lab that cannot be made is refused before anything
// is made, with the reason.
func TestConfigRefused(t *testing.T) {
	for _, c := range []netlab.Config{{Hosts: 0}, {Hosts: 251}, {Hosts: 2, Loss: 1}, {Hosts: 2, Delay: -time.Second}} {
		_, err := netlab.New(c)
		if err == nil || errors.Is(err, netlab.ErrUnavailable) || !strings.HasPrefix(err.Error(), "netlab: ") {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

//go:build linux

package netlab

import (
	"bytes"
	"container/heap"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Available reports why this process cannot make a lab, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: making network namespaces and TUN devices needs root (running as uid %d)", ErrUnavailable, os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: the ip command of iproute2 is not installed: %v", ErrUnavailable, err)
	}
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	f.Close()
	return nil
}

// Lab is a running set of namespaces and the links between them. Close
// it.
type Lab struct {
	Hosts []Host
	// Self is this process's address on the lab, which the hosts reach
	// it at (through its own namespace's routes).
	Self netip.Addr

	cfg    Config
	prefix [3]byte // the lab's /24
	links  []*link // 0: this process's namespace; i+1: Hosts[i]
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

// link is one TUN device and the packets waiting to be written into it.
type link struct {
	name  string // interface name in this namespace (links[0]) or before it moved
	f     *os.File
	delay time.Duration
	loss  float64

	mu   sync.Mutex
	q    pending
	seq  uint64
	wake chan struct{}
}

// New makes a lab of cfg.Hosts namespaces and starts moving packets
// between them. On error nothing is left behind.
func New(cfg Config) (lab *Lab, err error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := Available(); err != nil {
		return nil, err
	}
	sweepStale()
	var tag [2]byte
	if _, err := rand.Read(tag[:]); err != nil {
		return nil, err
	}
	l := &Lab{cfg: cfg, done: make(chan struct{})}
	defer func() {
		if err != nil {
			l.Close()
			lab = nil
		}
	}()
	self, err := openTUN()
	if err != nil {
		return nil, err
	}
	l.links = append(l.links, self)
	if err := l.pickPrefix(self.name); err != nil {
		return nil, err
	}
	if err := ip("link", "set", self.name, "up"); err != nil {
		return nil, err
	}
	for i := range cfg.Hosts {
		h := Host{
			Namespace: fmt.Sprintf("keyquorum-%d-%s-%d", os.Getpid(), hex.EncodeToString(tag[:]), i+1),
			Addr:      l.addr(i + 2),
		}
		if err := ip("netns", "add", h.Namespace); err != nil {
			return nil, err
		}
		l.Hosts = append(l.Hosts, h)
		t, err := openTUN()
		if err != nil {
			return nil, err
		}
		t.delay, t.loss = cfg.Delay, cfg.Loss
		l.links = append(l.links, t)
		cidr := h.Addr.String() + "/24"
		for _, args := range [][]string{
			{"link", "set", t.name, "netns", h.Namespace},
			{"-n", h.Namespace, "link", "set", t.name, "name", "wan0"},
			{"-n", h.Namespace, "addr", "add", cidr, "dev", "wan0"},
			{"-n", h.Namespace, "link", "set", "wan0", "up"},
			{"-n", h.Namespace, "link", "set", "lo", "up"},
		} {
			if err := ip(args...); err != nil {
				return nil, err
			}
		}
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = 0x6b71_6e65_746c_6162
	}
	for i, k := range l.links {
		l.wg.Add(2)
		r := mrand.New(mrand.NewPCG(seed, uint64(i)))
		go func() { defer l.wg.Done(); l.read(k, r) }()
		go func() { defer l.wg.Done(); k.write(l.done) }()
	}
	return l, nil
}

// addr is the lab address whose last byte is b.
func (l *Lab) addr(b int) netip.Addr {
	return netip.AddrFrom4([4]byte{l.prefix[0], l.prefix[1], l.prefix[2], byte(b)})
}

// pickPrefix chooses a 10.x.y.0/24 that no interface of this namespace
// uses (another lab's, say) and gives this process .1 of it on dev.
func (l *Lab) pickPrefix(dev string) error {
	used := map[[3]byte]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if v4 := n.IP.To4(); v4 != nil {
					used[[3]byte{v4[0], v4[1], v4[2]}] = true
				}
			}
		}
	}
	var last error
	for range 20 {
		var b [2]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		p := [3]byte{10, 100 + b[0]%100, b[1]}
		if used[p] {
			continue
		}
		l.prefix = p
		l.Self = l.addr(1)
		if last = ip("addr", "add", l.Self.String()+"/24", "dev", dev); last == nil {
			return nil
		}
	}
	return fmt.Errorf("netlab: no free 10.x.y.0/24 for the lab: %v", last)
}

// Close stops moving packets and removes the namespaces and TUN devices.
// It is safe to call more than once.
func (l *Lab) Close() error {
	var errs []error
	l.once.Do(func() {
		close(l.done)
		for _, k := range l.links {
			k.f.Close() // the kernel removes a TUN device once nobody holds it
		}
		l.wg.Wait()
		for _, h := range l.Hosts {
			if err := ip("netns", "del", h.Namespace); err != nil {
				errs = append(errs, err)
			}
		}
	})
	return errors.Join(errs...)
}

// read moves every IPv4 packet from k to the link of its destination,
// dropping it with each crossed link's loss and holding it for their
// delays. Anything else (IPv6, other networks) is dropped.
func (l *Lab) read(k *link, r *mrand.Rand) {
	buf := make([]byte, 1<<16)
	for {
		n, err := k.f.Read(buf)
		if err != nil {
			return // closed
		}
		p := buf[:n]
		if n < 20 || p[0]>>4 != 4 || !bytes.Equal(p[16:19], l.prefix[:]) {
			continue
		}
		d := int(p[19]) - 1
		if d < 0 || d >= len(l.links) || l.links[d] == k {
			continue
		}
		to := l.links[d]
		if (k.loss > 0 && r.Float64() < k.loss) || (to.loss > 0 && r.Float64() < to.loss) {
			continue
		}
		to.push(bytes.Clone(p), time.Now().Add(k.delay+to.delay))
	}
}

func (k *link) push(p []byte, at time.Time) {
	k.mu.Lock()
	k.seq++
	heap.Push(&k.q, packet{b: p, at: at, seq: k.seq})
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// write writes each packet into the TUN device once its time comes.
func (k *link) write(done <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		k.mu.Lock()
		for len(k.q) > 0 && !k.q[0].at.After(time.Now()) {
			p := heap.Pop(&k.q).(packet)
			k.mu.Unlock()
			_, _ = k.f.Write(p.b) // a full queue drops it, as a wire would
			k.mu.Lock()
		}
		wait := time.Hour
		if len(k.q) > 0 {
			wait = time.Until(k.q[0].at)
		}
		k.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-k.wake:
		case <-timer.C:
		case <-done:
			return
		}
	}
}

// packet is a packet in flight; pending orders them by release time,
// then by arrival.
type packet struct {
	b   []byte
	at  time.Time
	seq uint64
}

type pending []packet

func (q pending) Len() int { return len(q) }
func (q pending) Less(i, j int) bool {
	if q[i].at.Equal(q[j].at) {
		return q[i].seq < q[j].seq
	}
	return q[i].at.Before(q[j].at)
}
func (q pending) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *pending) Push(x any)   { *q = append(*q, x.(packet)) }
func (q *pending) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}

// openTUN makes a TUN device (raw IP packets, no header) named by the
// kernel, in this namespace, non-blocking so that Close ends a Read.
func openTUN() (*link, error) {
	fd, err := syscall.Open("/dev/net/tun", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("netlab: /dev/net/tun: %w", err)
	}
	const (
		tunSetIff = 0x400454ca
		iffTUN    = 0x0001
		iffNoPI   = 0x1000
	)
	var req struct {
		name  [16]byte
		flags uint16
		_     [22]byte
	}
	copy(req.name[:], "kqlab%d")
	req.flags = iffTUN | iffNoPI
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), tunSetIff, uintptr(unsafe.Pointer(&req))); e != 0 {
		syscall.Close(fd)
		return nil, fmt.Errorf("netlab: making a TUN device: %w", e)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	name := string(bytes.TrimRight(req.name[:], "\x00"))
	return &link{name: name, f: os.NewFile(uintptr(fd), "/dev/net/tun:"+name), wake: make(chan struct{}, 1)}, nil
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netlab: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

var staleName = regexp.MustCompile(`^keyquorum-([0-9]+)-[0-9a-f]+-[0-9]+$`)

// sweepStale deletes the namespaces of labs whose process is gone.
func sweepStale() {
	ents, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range ents {
		m := staleName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		_ = ip("netns", "del", e.Name())
	}
}

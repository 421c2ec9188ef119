package fedrun

import (
	"net"
	"net/netip"
	"strconv"

	"github.com/keyquorum/keyquorum/internal/netlab"
)

// labPort is the port every trustee serves on in its own namespace: each
// has its network stack to itself, so none can collide.
const labPort = 7443

// addresses returns the n trustees' API addresses: free loopback ports,
// or with Options.Lab, one address per namespace of a new lab.
func (f *Federation) addresses(n int) ([]string, error) {
	var out []string
	if f.opts.Lab == nil {
		ports, err := freePorts(n)
		if err != nil {
			return nil, err
		}
		for _, p := range ports {
			out = append(out, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		}
		return out, nil
	}
	cfg := *f.opts.Lab
	cfg.Hosts = n
	lab, err := netlab.New(cfg)
	if err != nil {
		return nil, err
	}
	f.lab = lab
	for _, h := range lab.Hosts {
		out = append(out, netip.AddrPortFrom(h.Addr, labPort).String())
	}
	return out, nil
}

// closeLab removes the federation's namespaces, if it has any.
func (f *Federation) closeLab() {
	if f.lab != nil {
		f.lab.Close()
	}
}

// Namespace returns the network namespace the trustee runs in with
// Options.Lab, or "".
func (t *Trustee) Namespace() string {
	if t.host == nil {
		return ""
	}
	return t.host.Namespace
}

//go:build !linux

package netlab

import "net/netip"

// Available reports why this process cannot make a lab: network
// namespaces are Linux's.
func Available() error { return ErrUnavailable }

// Lab is a running set of namespaces; only Linux has them.
type Lab struct {
	Hosts []Host
	Self  netip.Addr
}

// New fails: network namespaces are Linux's.
func New(cfg Config) (*Lab, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return nil, ErrUnavailable
}

// Close does nothing.
func (l *Lab) Close() error { return nil }

// Package netlab puts processes on separate network stacks joined by
// links that delay and drop packets, so that a federation of trustees
// on one machine behaves like organisations on different machines far
// apart.
//
// # How
//
// Each host of a [Lab] is a Linux network namespace (`ip netns add`)
// whose only interface, wan0, is a TUN device held open by this
// process. A host's kernel routes the lab's /24 into wan0; this process
// reads each IPv4 packet there, drops it with probability Loss on each
// link it crosses, holds it for Delay per link crossed, and writes it
// into the TUN device of the host that owns its destination address.
// The process that made the lab is itself on the lab, through a TUN
// device of its own in its namespace with the address .1 and no added
// delay: a packet from it to a host crosses one link (Delay), one
// between two hosts crosses two.
//
// This is the effect of `tc qdisc add dev ... netem delay D loss L` on
// both ends of one veth pair per host, done in user space because
// kernels built without sch_netem (this project's CI runs on one:
// "Specified qdisc kind is unknown") cannot do it in the kernel. The
// kernels' TCP stacks see real delayed and lost packets: handshakes,
// retransmission timeouts and congestion windows all behave as they
// would across a continent.
//
// # Clean-up
//
// [Lab.Close] ends the trustees' network: it closes the TUN devices
// (the kernel removes them) and deletes the namespaces. A process
// killed before it closes its lab leaves only empty namespaces, named
// keyquorum-PID-N-I; the next [New] in any process deletes those whose
// PID is gone.
//
// Making a lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), the ip
// command of iproute2 and /dev/net/tun: see [Available].
package netlab

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Config describes a lab.
type Config struct {
	Hosts int           // namespaces to make, 1 to 250
	Delay time.Duration // one-way delay of each host's link, each way
	// Loss is the probability (0 to 1) that a packet is dropped on each
	// link it crosses, each way: 0.005 is 0.5%.
	Loss float64
	// Seed makes the losses reproducible (0: a fixed default).
	Seed uint64
}

// ErrUnavailable is wrapped by the errors of [Available] and [New] when
// this machine or user cannot make a lab at all.
var ErrUnavailable = errors.New("netlab: network namespaces unavailable")

func (c Config) check() error {
	switch {
	case c.Hosts < 1 || c.Hosts > 250:
		return fmt.Errorf("netlab: %d hosts; a lab has 1 to 250", c.Hosts)
	case c.Delay < 0 || c.Delay > 10*time.Second:
		return fmt.Errorf("netlab: delay %v; give 0 to 10s", c.Delay)
	case c.Loss < 0 || c.Loss >= 1:
		return fmt.Errorf("netlab: loss %v; give a probability from 0 up to (not including) 1, such as 0.005 for 0.5%%", c.Loss)
	}
	return nil
}

// Host is one namespace of a lab.
type Host struct {
	Namespace string     // its name for `ip netns exec`
	Addr      netip.Addr // its address on the lab
}

// Command returns the argv that runs argv inside the host's namespace:
// `ip netns exec NAME argv...`. ip execs the program, so the process
// started is the program itself (its PID, its signals).
func (h Host) Command(argv ...string) []string {
	return append([]string{"ip", "netns", "exec", h.Namespace}, argv...)
}

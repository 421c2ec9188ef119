// Package fedrun runs a federation of keyquorum trustees as real operating
// system processes on loopback, for the demo, the benchmarks and the
// integration tests. Each trustee is set up and served by the keyquorum
// binary itself (`trustee init`, `trustee serve`, and in dealer mode
// `trustee import-share` and `trustee sign-group`), exactly as a person
// would; this package plays the operator who starts, kills and restarts
// them.
//
// # Key generation
//
// By default ([KeyGenerationDKG]) the group's keys are made dealerlessly:
// [Setup] only initialises the trustees, [Federation.StartAll] starts them
// without a group, and [Federation.RunDKG] (the first epoch) and
// [Federation.Rotate] (each next one) run [ceremony.RunDKG] in this process
// as the ceremony's coordinator. The coordinator only relays; the
// trustees are the real processes, reached over TLS, and each installs its
// share and the signed group file itself. No process ever holds a key.
//
// [KeyGenerationDealer] keeps the old way, for comparison: this package
// deals the key (and so saw it), seals each share to its trustee, and has
// each import it and sign the group file.
//
// [LocalDKG] runs the same ceremony with every participant in this one
// process and no network: the baseline of the DKG benchmark, and the
// demo's in-process mode.
//
// # At a distance
//
// With [Options.Lab] each trustee runs on a network stack of its own (a
// Linux network namespace made by package netlab, the process started
// under `ip netns exec`), reached over a link that delays and drops
// packets: the trustees of five organisations on five machines far
// apart, on one machine. This process, the requester or coordinator,
// stays in its own namespace and reaches them over the lab.
package fedrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/netlab"
	"github.com/keyquorum/keyquorum/trustee"
	"go.dedis.ch/kyber/v3"
)

// Key generation modes of [Options].
const (
	// KeyGenerationDKG: Setup only initialises the trustees; the keys are
	// made by ceremonies among the running processes ([Federation.RunDKG],
	// [Federation.Rotate]). The threshold must be at least 2.
	KeyGenerationDKG = "dkg"
	// KeyGenerationDealer: Setup deals Epochs (or hands over Dealt), and
	// every trustee imports its share and signs the group file.
	KeyGenerationDealer = "dealer"
)

// Options describes a federation to set up.
type Options struct {
	Binary     string   // the keyquorum executable
	Dir        string   // working directory, created; the caller removes it
	Names      []string // trustee names, in roster order
	Threshold  int      // t
	Judges     []string // judge verifier keys every trustee trusts
	Retention  int      // retention_epochs in every policy (0: keep all)
	RateLimit  int      // rate_limit in every policy: grants per judge per day (0: none)
	Passphrase string   // every trustee's passphrase (a demo shortcut)
	// KDFMemoryMiB and KDFPasses, if set, are the argon2id cost of every
	// trustee's passphrase (`trustee init --kdf-memory --kdf-passes`):
	// the demo, whose passphrase sits in a file next to the stores, lowers
	// them; 0 keeps the node's default.
	KDFMemoryMiB int
	KDFPasses    int

	// KeyGeneration is [KeyGenerationDKG] (the default) or
	// [KeyGenerationDealer]. The fields below are for dealer mode only.
	KeyGeneration string

	Epochs []escrow.GroupEpoch // epochs to deal
	Dealer io.Reader           // the dealer's randomness

	// Dealt, if set, is a group already dealt (by [escrow.Deal] with
	// these Names), whose epochs and shares are handed to this federation
	// instead of dealing a new key: two federations can then hold the same
	// group key under different policies.
	Dealt       *escrow.GroupFile
	DealtShares []escrow.DealtShare

	// Lab, if set, puts each trustee on a network stack of its own, far
	// from the others: Setup makes a [netlab.Lab] of one namespace per
	// trustee with this delay and loss on each trustee's link (Hosts is
	// filled in), every trustee serves there, and Close removes it. Linux
	// and root only; see [netlab.Available].
	Lab *netlab.Config
}

// Federation is a set-up federation.
type Federation struct {
	Dir string
	// GroupPath is the group file clients use, signed by every trustee
	// that holds a share: in dealer mode the dealer's group.json, in DKG
	// mode the result of the last ceremony. Group is what it holds, as
	// clients verify it ([escrow.VerifyGroupFile]); nil in DKG mode until
	// the first ceremony.
	GroupPath string
	Group     *escrow.GroupFile
	// Trustees are every trustee process, in the order of Options.Names.
	// A trustee left out of the group's roster (down during the first
	// ceremony) has Index 0; see [Federation.Members].
	Trustees []*Trustee

	opts   Options
	signed []byte      // the contents of GroupPath
	lab    *netlab.Lab // with Options.Lab
}

// Trustee is one trustee process and its data directory.
type Trustee struct {
	Name  string
	Index int // 1-based share index in the group; 0 if the group leaves it out
	Dir   string
	Addr  string
	// Member is the trustee's entry in the group file (before the first
	// ceremony, the one its descriptor gives), and Client talks to it.
	Member     escrow.GroupMember
	Client     *trustee.Client
	Descriptor trustee.Descriptor
	// ServeArgs are extra arguments to `keyquorum trustee serve` at the
	// next Start (an operator's flags, such as --override-witness-check).
	ServeArgs []string

	bin      string
	passFile string
	host     *netlab.Host // its namespace, with Options.Lab

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	logs *os.File
}

// Setup initialises every trustee with `keyquorum trustee init` and
// writes its policy. In DKG mode that is all: start the trustees and run
// [Federation.RunDKG]. In dealer mode it then deals the group to their
// descriptors, has each import its sealed share with `keyquorum trustee
// import-share` and then sign the group file with `keyquorum trustee
// sign-group`, one after another. Nothing is served yet.
func Setup(ctx context.Context, o Options) (fed *Federation, err error) {
	if o.KeyGeneration == "" {
		o.KeyGeneration = KeyGenerationDKG
	}
	switch o.KeyGeneration {
	case KeyGenerationDKG:
		if len(o.Names) < 2 || o.Threshold < 2 || o.Threshold > len(o.Names) {
			return nil, fmt.Errorf("fedrun: a DKG needs 2 <= threshold <= trustees, got %d of %d; use dealer mode for smaller groups", o.Threshold, len(o.Names))
		}
		if o.Epochs != nil || o.Dealer != nil || o.Dealt != nil || o.DealtShares != nil {
			return nil, errors.New("fedrun: Epochs, Dealer and Dealt are for dealer mode; in DKG mode the ceremonies make the epochs")
		}
	case KeyGenerationDealer:
		if len(o.Names) == 0 || o.Threshold < 1 || o.Threshold > len(o.Names) {
			return nil, fmt.Errorf("fedrun: need 1 <= threshold <= %d trustees", len(o.Names))
		}
	default:
		return nil, fmt.Errorf("fedrun: key generation %q; use %q or %q", o.KeyGeneration, KeyGenerationDKG, KeyGenerationDealer)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	f := &Federation{Dir: o.Dir, GroupPath: filepath.Join(o.Dir, "group.signed"), opts: o}
	dealtPath := filepath.Join(o.Dir, "group.json")
	passFile := filepath.Join(o.Dir, "passphrase")
	if err := os.WriteFile(passFile, []byte(o.Passphrase+"\n"), 0o600); err != nil {
		return nil, err
	}
	addrs, err := f.addresses(len(o.Names))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.closeLab()
		}
	}()
	for i, name := range o.Names {
		t := &Trustee{
			Name: name, Index: i + 1, Dir: filepath.Join(o.Dir, name),
			Addr: addrs[i], bin: o.Binary, passFile: passFile,
		}
		if f.lab != nil {
			t.host = &f.lab.Hosts[i]
		}
		f.Trustees = append(f.Trustees, t)
	}
	// trustee init, two at a time (argon2id is the cost).
	kdf := []string{}
	if o.KDFMemoryMiB > 0 {
		kdf = append(kdf, "--kdf-memory", strconv.Itoa(o.KDFMemoryMiB))
	}
	if o.KDFPasses > 0 {
		kdf = append(kdf, "--kdf-passes", strconv.Itoa(o.KDFPasses))
	}
	if err := f.eachParallel(f.Trustees, func(t *Trustee) error {
		args := append([]string{"trustee", "init", "--dir", t.Dir, "--name", t.Name, "--addr", t.Addr, "--passphrase-file", passFile}, kdf...)
		_, err := run(ctx, o.Binary, args...)
		return err
	}); err != nil {
		return nil, err
	}
	var descs []trustee.Descriptor
	for _, t := range f.Trustees {
		b, err := os.ReadFile(filepath.Join(t.Dir, "descriptor.json"))
		if err != nil {
			return nil, err
		}
		d, err := trustee.ParseDescriptor(b)
		if err != nil {
			return nil, fmt.Errorf("fedrun: %s: %w", t.Name, err)
		}
		descs = append(descs, d)
		t.Descriptor = d
		if err := os.WriteFile(filepath.Join(t.Dir, "policy.toml"), policyText(o), 0o600); err != nil {
			return nil, err
		}
	}
	if o.KeyGeneration == KeyGenerationDKG {
		for i, t := range f.Trustees {
			t.Member = descs[i].Member(i + 1)
			if t.Client, err = trustee.NewClient(t.Member); err != nil {
				return nil, err
			}
		}
		return f, nil
	}
	var groupJSON []byte
	var sealed []*trustee.SealedShare
	if o.Dealt == nil {
		groupJSON, sealed, err = trustee.DealSealed(descs, o.Threshold, o.Epochs, o.Dealer)
	} else {
		groupJSON, sealed, err = reseal(descs, o.Dealt, o.DealtShares)
	}
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(dealtPath, groupJSON, 0o644); err != nil {
		return nil, err
	}
	dealt, err := escrow.ParseGroupFile(groupJSON)
	if err != nil {
		return nil, err
	}
	for i, t := range f.Trustees {
		b, err := sealed[i].Marshal()
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(o.Dir, t.Name+".sealed-share"), b, 0o600); err != nil {
			return nil, err
		}
		t.Member = dealt.Trustees[i]
		if t.Client, err = trustee.NewClient(t.Member); err != nil {
			return nil, err
		}
	}
	if err := f.eachParallel(f.Trustees, func(t *Trustee) error {
		_, err := run(ctx, o.Binary, "trustee", "import-share", "--dir", t.Dir, "--group", dealtPath,
			"--passphrase-file", passFile, filepath.Join(o.Dir, t.Name+".sealed-share"))
		return err
	}); err != nil {
		return nil, err
	}
	// Each trustee checks the file against its share and adds its
	// signature, in turn, to the one file clients get.
	in := dealtPath
	for _, t := range f.Trustees {
		if _, err := run(ctx, o.Binary, "trustee", "sign-group", "--dir", t.Dir, "--passphrase-file", passFile,
			"--group", in, "--out", f.GroupPath); err != nil {
			return nil, err
		}
		in = f.GroupPath
	}
	signed, err := os.ReadFile(f.GroupPath)
	if err != nil {
		return nil, err
	}
	if f.Group, _, err = escrow.VerifyGroupFile(signed, true); err != nil {
		return nil, fmt.Errorf("fedrun: %s: %w", f.GroupPath, err)
	}
	f.signed = signed
	return f, nil
}

func policyText(o Options) []byte {
	var quoted []string
	for _, j := range o.Judges {
		quoted = append(quoted, strconv.Quote(j))
	}
	return fmt.Appendf(nil, `# written by keyquorum's federation runner
judges = [%s]
judges_required = 1
max_window = "744h"
max_validity = "744h"
max_sessions_per_warrant = 1000000
rate_limit = %d
rate_period = "24h"
retention_epochs = %d
prospective_only = false
`, strings.Join(quoted, ", "), o.RateLimit, o.Retention)
}

// StartAll starts every trustee and waits until each answers.
func (f *Federation) StartAll(ctx context.Context) error {
	return f.eachParallel(f.Trustees, func(t *Trustee) error { return t.Start(ctx) })
}

// Close stops every running trustee (SIGTERM, then SIGKILL after a grace
// period), and removes their namespaces with Options.Lab.
func (f *Federation) Close() {
	for _, t := range f.Trustees {
		t.Stop(5 * time.Second)
	}
	f.closeLab()
}

// Members returns the trustees the group file lists, in its roster
// order (every trustee before the first ceremony).
func (f *Federation) Members() []*Trustee {
	if f.Group == nil {
		return f.Trustees
	}
	var out []*Trustee
	for _, m := range f.Group.Trustees {
		for _, t := range f.Trustees {
			if t.Name == m.Name {
				out = append(out, t)
			}
		}
	}
	return out
}

// Clients returns the client of every trustee the group file lists, in
// its roster order, as [trustee.Decrypt] and [trustee.Audit] take them.
func (f *Federation) Clients() []*trustee.Client {
	var cs []*trustee.Client
	for _, t := range f.Members() {
		cs = append(cs, t.Client)
	}
	return cs
}

// SetRetention writes retention_epochs = epochs into every trustee's
// policy and restarts the running trustees (SIGTERM, then start), which
// apply it as they start: shares of epochs past retention are destroyed
// and the destruction is logged.
func (f *Federation) SetRetention(ctx context.Context, epochs int) error {
	f.opts.Retention = epochs
	for _, t := range f.Trustees {
		if err := os.WriteFile(filepath.Join(t.Dir, "policy.toml"), policyText(f.opts), 0o600); err != nil {
			return err
		}
	}
	var running []*Trustee
	for _, t := range f.Trustees {
		if t.Running() {
			running = append(running, t)
		}
	}
	return f.eachParallel(running, func(t *Trustee) error {
		if err := t.Stop(5 * time.Second); err != nil {
			return fmt.Errorf("fedrun: stopping %s: %w", t.Name, err)
		}
		return t.Start(ctx)
	})
}

// Start runs `keyquorum trustee serve` for t and waits until it answers,
// or fails with the end of its log if it exits first.
func (t *Trustee) Start(ctx context.Context) error {
	t.mu.Lock()
	if t.cmd != nil {
		t.mu.Unlock()
		return fmt.Errorf("fedrun: %s is already running", t.Name)
	}
	logs, err := os.OpenFile(filepath.Join(t.Dir, "serve.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.mu.Unlock()
		return err
	}
	argv := append([]string{t.bin, "trustee", "serve", "--dir", t.Dir, "--passphrase-file", t.passFile}, t.ServeArgs...)
	if t.host != nil {
		argv = t.host.Command(argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		logs.Close()
		t.mu.Unlock()
		return fmt.Errorf("fedrun: starting %s: %w", t.Name, err)
	}
	done := make(chan struct{})
	t.cmd, t.done, t.logs = cmd, done, logs
	go func() {
		err := cmd.Wait()
		t.mu.Lock()
		t.err = err
		t.mu.Unlock()
		logs.Close()
		close(done)
	}()
	t.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := t.Client.Info(cctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			t.reset()
			return fmt.Errorf("fedrun: %s exited while starting: %s", t.Name, t.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fedrun: %s did not answer within 30s: %v; log: %s", t.Name, err, t.logTail())
		}
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (t *Trustee) Kill() error {
	t.mu.Lock()
	cmd, done := t.cmd, t.done
	t.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Kill()
	<-done
	t.reset()
	return nil
}

// Stop sends SIGTERM, waits up to grace for a clean exit, then kills. It
// returns the process's exit error, if any.
func (t *Trustee) Stop(grace time.Duration) error {
	t.mu.Lock()
	cmd, done := t.cmd, t.done
	t.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		// Where there is no SIGTERM to send (Windows), kill at once.
		_ = cmd.Process.Kill()
	}
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
	t.mu.Lock()
	err := t.err
	t.mu.Unlock()
	t.reset()
	return err
}

// PID returns the process id of the running trustee, or 0.
func (t *Trustee) PID() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cmd == nil {
		return 0
	}
	return t.cmd.Process.Pid
}

// Running reports whether the process is running.
func (t *Trustee) Running() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cmd != nil
}

func (t *Trustee) reset() {
	t.mu.Lock()
	t.cmd, t.done = nil, nil
	t.mu.Unlock()
	t.Client.CloseIdleConnections()
}

func (t *Trustee) logTail() string {
	b, _ := os.ReadFile(filepath.Join(t.Dir, "serve.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// StoredShares is what an attacker who copies this trustee's disk and
// learns its passphrase gets: it copies node.db (the running process keeps
// its lock on the original), unlocks the copy and reads the epoch shares.
func (t *Trustee) StoredShares(passphrase string) ([]escrow.EpochShare, error) {
	b, err := os.ReadFile(filepath.Join(t.Dir, "node.db"))
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "stolen-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "node.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	s, err := trustee.OpenStore(path)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	v, err := s.Unlock([]byte(passphrase))
	if err != nil {
		return nil, err
	}
	defer v.Close()
	return v.EpochShares()
}

// run runs one keyquorum command to completion and returns its output, or
// an error carrying its stderr.
func run(ctx context.Context, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("fedrun: keyquorum %s: %w: %s", strings.Join(args[:2], " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// freePorts asks the OS for n free loopback ports. They are released
// before the trustees bind them; another program could take one in
// between, in which case a trustee fails to start with a clear error.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("fedrun: finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// eachParallel runs fn for every trustee, two at a time (an argon2id key
// derivation at the default cost is the usual expense: 64 MiB each), or
// all at once when the trustees' key derivation is cheap
// (Options.KDFMemoryMiB of 16 or less), and returns the errors joined.
func (f *Federation) eachParallel(ts []*Trustee, fn func(*Trustee) error) error {
	limit := 2
	if m := f.opts.KDFMemoryMiB; m > 0 && m <= 16 {
		limit = max(len(ts), 1)
	}
	return limited(len(ts), limit, func(i int) error { return fn(ts[i]) })
}

// limited runs fn(0..n-1), at most limit at a time (in order when limit
// is 1), and returns the errors joined.
func limited(n, limit int, fn func(i int) error) error {
	sem := make(chan struct{}, limit)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// reseal puts the descriptors in the roster of an already dealt group and
// seals each trustee's shares to its identity key.
func reseal(descs []trustee.Descriptor, dealt *escrow.GroupFile, shares []escrow.DealtShare) ([]byte, []*trustee.SealedShare, error) {
	if len(descs) != len(dealt.Trustees) {
		return nil, nil, fmt.Errorf("fedrun: %d descriptors for a group of %d", len(descs), len(dealt.Trustees))
	}
	g := *dealt
	g.Trustees = nil
	for i, d := range descs {
		if d.Name != dealt.Trustees[i].Name {
			return nil, nil, fmt.Errorf("fedrun: descriptor %d is %s, the dealt group has %s", i+1, d.Name, dealt.Trustees[i].Name)
		}
		g.Trustees = append(g.Trustees, d.Member(i+1))
	}
	groupJSON, err := g.Marshal()
	if err != nil {
		return nil, nil, err
	}
	var out []*trustee.SealedShare
	for _, m := range g.Trustees {
		sf := &trustee.ShareFile{Index: m.Index, Name: m.Name, Threshold: g.Threshold, Shares: map[uint32]kyber.Scalar{}}
		for _, d := range shares {
			if d.Trustee.Index == m.Index {
				sf.Shares[d.Epoch] = d.Share.Value
			}
		}
		s, err := trustee.SealShare(sf, groupJSON)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, s)
	}
	return groupJSON, out, nil
}

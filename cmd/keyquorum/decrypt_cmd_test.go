package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/auditlog"
	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/sim"
	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
	"go.dedis.ch/kyber/v3"
	"golang.org/x/mod/sumdb/note"
)

// cliFed is a 3-of-5 federation on loopback TLS with the files a requester
// and an auditor use: group file, signed warrant, requester key, capture.
type cliFed struct {
	dir      string
	group    *escrow.GroupFile
	servers  []*httptest.Server
	certs    []tls.Certificate
	signers  []note.Signer
	nodes    []*trustee.Node
	judgeV   note.Verifier
	traffic  *sim.Traffic
	now      time.Time
	paths    map[string]string
	judge    note.Signer
	reqKey   *escrow.RequesterKey
	windowT0 time.Time
}

func newCLIFed(t *testing.T) *cliFed {
	t.Helper()
	// The decrypt command dates its requests with the real clock, and
	// trustees accept requests only within MaxRequestAge of theirs, so the
	// test world is set in the last week.
	now := time.Now().UTC().Truncate(time.Second)
	t0 := now.Truncate(24*time.Hour).AddDate(0, 0, -6)
	f := &cliFed{dir: t.TempDir(), now: now, paths: map[string]string{}, windowT0: t0}
	names := []string{"trustee-1", "trustee-2", "trustee-3", "trustee-4", "trustee-5"}
	g, dealt, err := escrow.Deal(names, 3, []escrow.GroupEpoch{{Epoch: 1, ValidFrom: t0, ValidUntil: t0.Add(30 * 24 * time.Hour)}}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f.group = g
	skey, vkey, err := escrow.NewJudgeKey("judge-cli", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f.judge, _ = note.NewSigner(skey)
	f.judgeV, _ = note.NewVerifier(vkey)
	eg, _ := g.EscrowGroup(1)
	var lskeys []string
	for i := range g.Trustees {
		m := &g.Trustees[i]
		lskey, lvkey, err := note.GenerateKey(rand.Reader, m.Name+".keyquorum")
		lskeys = append(lskeys, lskey)
		if err != nil {
			t.Fatal(err)
		}
		signer, _ := note.NewSigner(lskey)
		node := f.node(t, m.Name, m.Index, signer)
		for _, d := range dealt {
			if d.Trustee.Index == m.Index {
				if err := node.AddEpochShare(&escrow.EpochShare{Epoch: 1, Index: m.Index, Share: d.Share.Value, GroupKey: eg.Key}, eg.PublicShares[m.Index]); err != nil {
					t.Fatal(err)
				}
			}
		}
		cert := cliCert(t)
		ts := cliServe(t, node, cert, lvkey)
		m.Address, m.TLSPin, m.LogKey = ts.Listener.Addr().String(), cliPin(cert), lvkey
		f.servers = append(f.servers, ts)
		f.certs = append(f.certs, cert)
		f.signers = append(f.signers, signer)
		f.nodes = append(f.nodes, node)
	}
	f.paths["group"] = f.write(t, "group.signed", f.signedGroup(t, g))
	f.witness(t, lskeys)

	// Traffic among five users over five days, one of them rogue.
	users, err := sim.GenerateUsers(5, 7)
	if err != nil {
		t.Fatal(err)
	}
	keyAt := func(at time.Time) (uint32, kyber.Point, error) { return 1, eg.Key, nil }
	f.traffic, err = sim.Generate(sim.Config{Users: 5, Days: 5, Seed: 7, Start: t0, SessionsPerUserDay: 2}, users, keyAt)
	if err != nil {
		t.Fatal(err)
	}
	var capture bytes.Buffer
	if err := sim.WriteCapture(&capture, 7, f.traffic); err != nil {
		t.Fatal(err)
	}
	f.paths["capture"] = f.write(t, "capture.jsonl", capture.Bytes())

	if f.reqKey, err = escrow.GenerateRequesterKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	kb, err := escrow.MarshalRequesterKey(f.reqKey)
	if err != nil {
		t.Fatal(err)
	}
	f.paths["key"] = f.write(t, "requester.key", kb)
	f.paths["warrant"] = f.write(t, "warrant.note", f.warrant(t, nil))
	return f
}

// witness makes every trustee a witness of the others' logs and has each
// release shares only under checkpoints w others cosigned, as trustee
// serve does.
func (f *cliFed) witness(t *testing.T, logSKeys []string) {
	t.Helper()
	clients := make([]*trustee.Client, len(f.group.Trustees))
	for i, m := range f.group.Trustees {
		c, err := trustee.NewClient(m)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	for i, m := range f.group.Trustees {
		cosigner, err := trustee.CosignatureSigner(logSKeys[i])
		if err != nil {
			t.Fatal(err)
		}
		w, err := trustee.NewGroupWitness(f.group, m.Name, cosigner, auditlog.NewMemWitnessStore())
		if err != nil {
			t.Fatal(err)
		}
		f.servers[i].Config.Handler.(*trustee.Server).SetWitness(w)
		ws, err := trustee.NewWitnesses(f.group, m.Name, clients)
		if err != nil {
			t.Fatal(err)
		}
		f.nodes[i].SetWitnesses(ws)
	}
}

func (f *cliFed) node(t *testing.T, name string, index int, signer note.Signer) *trustee.Node {
	t.Helper()
	n, err := trustee.New(name, index, trustee.DefaultPolicy(f.judgeV), trustee.NewMemAuditStore(), signer, trustee.WithClock(func() time.Time { return f.now }))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *cliFed) write(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *cliFed) warrant(t *testing.T, edit func(*escrow.Warrant)) []byte {
	t.Helper()
	w := &escrow.Warrant{ID: "W-CLI-1", Case: "case cli/1", Requester: f.reqKey.Public, Targets: []string{"alice"},
		WindowStart: f.windowT0, WindowEnd: f.windowT0.Add(3 * 24 * time.Hour),
		ValidFrom: f.now.Add(-time.Hour), ValidUntil: f.now.Add(24 * time.Hour), MaxSessions: 500, Purpose: "CLI test"}
	if edit != nil {
		edit(w)
	}
	text, err := w.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := escrow.SignWarrant(text, f.judge)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func mustMarshalGroup(t *testing.T, g *escrow.GroupFile) []byte {
	t.Helper()
	b, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signedGroup is g signed by every trustee's log key, as clients need it.
func (f *cliFed) signedGroup(t *testing.T, g *escrow.GroupFile) []byte {
	t.Helper()
	b := mustMarshalGroup(t, g)
	for _, s := range f.signers {
		var err error
		if b, err = escrow.SignGroupFile(b, s); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func cliCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func cliPin(c tls.Certificate) string {
	sum := sha256.Sum256(c.Leaf.RawSubjectPublicKeyInfo)
	return "sha256/" + base64.StdEncoding.EncodeToString(sum[:])
}

func cliServe(t *testing.T, node *trustee.Node, cert tls.Certificate, logKey string) *httptest.Server {
	t.Helper()
	api := trustee.NewServer(node, trustee.WithLogKey(logKey))
	ts := httptest.NewUnstartedServer(api)
	ts.Config = trustee.NewHTTPServer(api, slog.New(slog.DiscardHandler))
	ts.TLS = trustee.ServerTLSConfig(cert)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

// runCLI runs the decrypt, audit and simulate commands as the binary would and
// returns stdout, stderr and the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	app := &cli.App{
		Name:           "keyquorum",
		Writer:         &stdout,
		ErrWriter:      &stderr,
		ExitErrHandler: func(*cli.Context, error) {},
		Commands:       []*cli.Command{decryptCommand(), auditCommand(), transcriptCommand(), simulateCommand()},
	}
	err := app.Run(append([]string{"keyquorum"}, args...))
	code := 0
	if err != nil {
		code = 1
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			code = ec.ExitCode()
		}
		stderr.WriteString("keyquorum: " + err.Error() + "\n")
	}
	return stdout.String(), stderr.String(), code
}

func (f *cliFed) decryptArgs(out string) []string {
	return []string{"decrypt", "--group", f.paths["group"], "--warrant", f.paths["warrant"], "--key", f.paths["key"],
		"--capture", f.paths["capture"], "--out", out, "--timeout", "5s"}
}

func readSummary(t *testing.T, out string) decryptSummary {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s decryptSummary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDecryptCommand(t *testing.T) {
	f := newCLIFed(t)
	w, err := warrantBodyOf(f.warrant(t, nil))
	if err != nil {
		t.Fatal(err)
	}

	// What the requester should read: every covered session with an
	// intact escrow field, messages as the simulation wrote them.
	want := map[string]string{}
	for _, c := range f.traffic.Sessions {
		if w.Covers(c.Context) != nil || c.Tampering == sim.Stripped || c.Tampering == sim.Forged {
			continue
		}
		var b strings.Builder
		for i, m := range c.Session.Messages {
			fmt.Fprintf(&b, "%s: %s\n", m.From, c.Plain[i])
		}
		want[c.Context.SessionID.String()] = b.String()
	}
	if len(want) < 3 {
		t.Fatalf("only %d sessions covered; the simulation changed?", len(want))
	}

	out := filepath.Join(f.dir, "out1")
	stdout, stderr, code := runCLI(t, f.decryptArgs(out)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	files, _ := filepath.Glob(filepath.Join(out, "sessions", "*.txt"))
	if len(files) != len(want) {
		t.Fatalf("%d session files, want %d\n%s", len(files), len(want), stdout)
	}
	for id, text := range want {
		b, err := os.ReadFile(filepath.Join(out, "sessions", id+".txt"))
		if err != nil || string(b) != text {
			t.Fatalf("session %s: %q, %v; want %q", id, b, err, text)
		}
	}
	s := readSummary(t, out)
	if s.Outcome != "ok" || s.SessionsRequested != len(want) || s.SessionsRecovered != len(want) || len(s.Trustees) != 5 || s.MessagesBad != 0 {
		t.Fatalf("summary %+v", s)
	}
	if !strings.Contains(stdout, fmt.Sprintf("%d decrypted", len(want))) || strings.Contains(stderr, "decrypting [") {
		t.Errorf("stdout %q stderr %q", stdout, stderr)
	}

	// The same command again works: the earlier results move to out1.1.
	if _, stderr, code := runCLI(t, f.decryptArgs(out)...); code != 0 || !strings.Contains(stderr, out+" held an earlier decryption; it is now "+out+".1") {
		t.Errorf("same command again: exit %d, %s", code, stderr)
	}
	if a, b := readSummary(t, out), readSummary(t, out+".1"); a.SessionsRecovered != b.SessionsRecovered {
		t.Errorf("second run recovered %d sessions, first %d", a.SessionsRecovered, b.SessionsRecovered)
	}
	// A directory holding anything else is still refused.
	if err := os.WriteFile(filepath.Join(out, "notes.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runCLI(t, f.decryptArgs(out)...); code != exitBadInput || !strings.Contains(stderr, "not empty") {
		t.Errorf("reused out dir: exit %d, %s", code, stderr)
	}

	// A key that is not the warrant's.
	other, _ := escrow.GenerateRequesterKey(rand.Reader)
	kb, _ := escrow.MarshalRequesterKey(other)
	args := f.decryptArgs(filepath.Join(f.dir, "out-badkey"))
	args[6] = f.write(t, "other.key", kb)
	if _, stderr, code := runCLI(t, args...); code != exitBadInput || !strings.Contains(stderr, "not the requester key warrant W-CLI-1 names") {
		t.Errorf("wrong key: exit %d, %s", code, stderr)
	}

	// An unsigned warrant.
	args = f.decryptArgs(filepath.Join(f.dir, "out-unsigned"))
	args[4] = f.write(t, "unsigned.txt", []byte(escrow.WarrantHeader+"\nid: W-1\n"))
	if _, stderr, code := runCLI(t, args...); code != exitBadInput || !strings.Contains(stderr, "not a signed warrant") {
		t.Errorf("unsigned warrant: exit %d, %s", code, stderr)
	}

	// An expired warrant: refused here, before any trustee is asked.
	args = f.decryptArgs(filepath.Join(f.dir, "out-expired"))
	args[4] = f.write(t, "expired.note", f.warrant(t, func(w *escrow.Warrant) { w.ValidUntil = f.now.Add(-time.Minute) }))
	stdout, stderr, code = runCLI(t, args...)
	if code != exitBadInput || !strings.Contains(stderr, "warrant W-CLI-1 expired at") || !strings.Contains(stderr, "no trustee was contacted") {
		t.Errorf("expired warrant: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "out-expired")); err == nil {
		t.Error("expired warrant: decrypt made its output directory")
	}

	// A judge the trustees do not trust: every trustee refuses, exit 3, and
	// the refusal they share is said once, naming them all.
	skey, _, err := escrow.NewJudgeKey("judge-rogue", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rogue, _ := note.NewSigner(skey)
	text, _ := w.MarshalText()
	rogueSigned, err := escrow.SignWarrant(text, rogue)
	if err != nil {
		t.Fatal(err)
	}
	args = f.decryptArgs(filepath.Join(f.dir, "out-rogue"))
	args[4] = f.write(t, "rogue.note", rogueSigned)
	stdout, stderr, code = runCLI(t, args...)
	if code != exitRefused || !strings.Contains(stdout, "trustee-1, trustee-2, trustee-3, trustee-4, trustee-5  refused  ") || strings.Count(stdout, "refused") != 1 {
		t.Errorf("untrusted judge: exit %d\n%s", code, stdout)
	}
	if strings.Count(stderr, "refused") != 1 || !strings.Contains(stderr, "trustee-1, trustee-2, trustee-3, trustee-4, trustee-5 refused (") || strings.Contains(stderr, "trustee: ") {
		t.Errorf("untrusted judge: stderr %s", stderr)
	}
	if s := readSummary(t, filepath.Join(f.dir, "out-rogue")); s.Outcome != "refused" || len(s.Refusals) != 5 {
		t.Errorf("untrusted judge summary %+v", s)
	}

	// A capture from another federation: refused here, named as such.
	otherFed := newCLIFed(t)
	args = f.decryptArgs(filepath.Join(f.dir, "out-otherfed"))
	args[8] = otherFed.paths["capture"]
	if _, stderr, code = runCLI(t, args...); code != exitBadInput || !strings.Contains(stderr, "was escrowed to another trustee group") || !strings.Contains(stderr, "no trustee was contacted") {
		t.Errorf("other federation's capture: exit %d\n%s", code, stderr)
	}

	// Two trustees down: still decrypted, and they are named.
	f.servers[0].Close()
	f.servers[3].Close()
	out = filepath.Join(f.dir, "out2")
	stdout, stderr, code = runCLI(t, f.decryptArgs(out)...)
	if code != 0 || !strings.Contains(stdout, "trustee-1  unreachable") || !strings.Contains(stdout, "trustee-4  unreachable") {
		t.Fatalf("two down: exit %d\n%s%s", code, stdout, stderr)
	}

	// Three down: exit 4, the unreachable trustees named.
	f.servers[4].Close()
	out = filepath.Join(f.dir, "out3")
	stdout, stderr, code = runCLI(t, f.decryptArgs(out)...)
	if code != exitNoQuorum || !strings.Contains(stderr, "insufficient quorum") || !strings.Contains(stderr, "trustee-5 unreachable") {
		t.Fatalf("three down: exit %d\n%s%s", code, stdout, stderr)
	}
	if s := readSummary(t, out); s.Outcome != "insufficient-quorum" || s.SessionsRecovered != 0 || len(s.Unrecovered) != len(want) {
		t.Errorf("summary %+v", s)
	}
}

// TestDecryptAndAuditFlags checks the decrypt and audit commands the way
// TestEveryFlagHasEnvVar checks the registered ones: a usage line per
// command and a KEYQUORUM_* variable per flag.
func TestDecryptAndAuditFlags(t *testing.T) {
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			p := path + " " + c.Name
			if c.Usage == "" {
				t.Errorf("%s: no usage line", p)
			}
			for _, f := range c.Flags {
				ev, ok := f.(interface{ GetEnvVars() []string })
				if !ok || len(ev.GetEnvVars()) != 1 || !strings.HasPrefix(ev.GetEnvVars()[0], "KEYQUORUM_") {
					t.Errorf("%s: flag %v has no KEYQUORUM_ variable", p, f.Names())
				}
			}
			walk(p, c.Subcommands)
		}
	}
	walk("keyquorum", []*cli.Command{decryptCommand(), auditCommand()})
}

// TestClientsRefuseUnsignedGroup runs every client of a group file on an
// unsigned one, one with a trustee's signature stripped, one with a
// signature altered and one changed after signing: each is refused as bad
// input (exit 2) before anything is sent, naming the problem and the fix.
func TestClientsRefuseUnsignedGroup(t *testing.T) {
	f := newCLIFed(t)
	signed, err := os.ReadFile(f.paths["group"])
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(s *escrow.SignedGroupFile)) []byte {
		s, err := escrow.ParseSignedGroupFile(signed)
		if err != nil {
			t.Fatal(err)
		}
		f(s)
		b, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	stripped := edit(func(s *escrow.SignedGroupFile) { s.Signatures = slices.Delete(s.Signatures, 3, 4) })
	forged := edit(func(s *escrow.SignedGroupFile) { s.Signatures[3].Signature[20] ^= 1 })
	altered := bytes.Replace(signed, []byte(`"address": "127.0.0.1:`), []byte(`"address": "127.0.0.2:`), 1)
	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"unsigned", string(mustMarshalGroup(t, f.group)), []string{"carries no signatures", "keyquorum trustee sign-group"}},
		{"stripped", string(stripped), []string{"missing the signature of trustee 4 (trustee-4)", "keyquorum trustee sign-group"}},
		{"forged", string(forged), []string{"signature by trustee-4.keyquorum does not verify", "forged"}},
		{"altered", string(altered), []string{"signature by trustee-1.keyquorum does not verify", "changed after signing"}},
	} {
		path := f.write(t, tc.name+".group", []byte(tc.file))
		for _, args := range [][]string{
			{"decrypt", "--group", path, "--warrant", f.paths["warrant"], "--key", f.paths["key"], "--capture", f.paths["capture"], "--out", filepath.Join(f.dir, "out-"+tc.name)},
			{"audit", "verify", "--group", path},
			{"audit", "report", "--group", path},
			{"simulate", "--group", path, "--out", filepath.Join(f.dir, tc.name+".jsonl")},
		} {
			_, stderr, code := runCLI(t, args...)
			if code != exitBadInput || !strings.Contains(stderr, "group file "+path) {
				t.Errorf("%s: %s: exit %d, %s", tc.name, args[0], code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("%s: %s: %q lacks %q", tc.name, args[0], stderr, w)
				}
			}
		}
		if _, err := os.Stat(filepath.Join(f.dir, "out-"+tc.name)); err == nil {
			t.Errorf("%s: decrypt made its output directory", tc.name)
		}
	}
}

// TestDecryptProtectedRequesterKey: a passphrase-protected requester key
// is opened with the passphrase from the environment or a file, and a
// wrong one is bad input, before anything is sent.
func TestDecryptProtectedRequesterKey(t *testing.T) {
	f := newCLIFed(t)
	plain, err := os.ReadFile(f.paths["key"])
	if err != nil {
		t.Fatal(err)
	}
	prot, err := protectKeyFile(plain, []byte("open sesame"), "requester")
	if err != nil {
		t.Fatal(err)
	}
	args := f.decryptArgs(filepath.Join(f.dir, "out-wrong"))
	args[6] = f.write(t, "protected.key", prot)
	wrong := f.write(t, "wrong.pass", []byte("open barley\n"))
	if _, stderr, code := runCLI(t, append(args, "--passphrase-file", wrong)...); code != exitBadInput || !strings.Contains(stderr, "wrong passphrase") {
		t.Fatalf("wrong passphrase: exit %d, %s", code, stderr)
	}
	t.Setenv(keyPassphraseEnv, "open sesame")
	args = f.decryptArgs(filepath.Join(f.dir, "out-env"))
	args[6] = filepath.Join(f.dir, "protected.key")
	if stdout, stderr, code := runCLI(t, args...); code != 0 {
		t.Fatalf("passphrase from the environment: exit %d\n%s%s", code, stdout, stderr)
	}
}

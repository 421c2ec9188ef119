package trustee_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/auditlog"
	"github.com/keyquorum/keyquorum/ceremony"
	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
	"golang.org/x/mod/sumdb/note"
)

// The network tests run a real federation: trustee nodes with dealt
// shares behind the HTTP API, each on its own loopback TLS listener with a
// self-signed certificate made here, and clients that pin those
// certificates through the group file.

var (
	netT0  = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	netNow = netT0.Add(10 * 24 * time.Hour)
)

func netRand(seed string) io.Reader { return mrand.NewChaCha8(sha256.Sum256([]byte(seed))) }

// netFed is a federation served over loopback.
type netFed struct {
	t         testing.TB
	group     *escrow.GroupFile
	nodes     []*trustee.Node
	stores    []trustee.AuditStore
	signers   []note.Signer
	servers   []*httptest.Server
	apis      []*trustee.Server
	certs     []tls.Certificate
	judge     note.Signer
	judgeV    note.Verifier
	requester *escrow.RequesterKey
	users     map[string]*escrow.UserKey
	pubs      map[string]*escrow.UserPublic
	logSKeys  []string                    // each trustee's log key, private
	wstores   []*auditlog.MemWitnessStore // each trustee's witness state
}

// netOptions shapes a federation.
type netOptions struct {
	n, t   int
	policy func(index int, p *trustee.Policy)           // per-trustee policy edits
	wrap   func(index int, h http.Handler) http.Handler // per-trustee handler wrappers
	store  func(index int) trustee.AuditStore
	plain  bool // plain HTTP on loopback, no TLS pin
	server []trustee.ServerOption
	// headerTimeout, if set, replaces the HTTP server's header timeout.
	headerTimeout time.Duration
	// noWitnesses leaves the trustees without witnesses: each releases
	// under its own signature only.
	noWitnesses bool
}

func newNetFed(t testing.TB, o netOptions) *netFed {
	t.Helper()
	if o.n == 0 {
		o.n, o.t = 5, 3
	}
	var names []string
	for i := 1; i <= o.n; i++ {
		names = append(names, fmt.Sprintf("trustee-%d", i))
	}
	epochs := []escrow.GroupEpoch{{Epoch: 1, ValidFrom: netT0, ValidUntil: netT0.Add(60 * 24 * time.Hour)}}
	g, dealt, err := escrow.Deal(names, o.t, epochs, netRand(fmt.Sprintf("deal %d of %d", o.t, o.n)))
	if err != nil {
		t.Fatal(err)
	}
	f := &netFed{t: t, group: g, users: map[string]*escrow.UserKey{}, pubs: map[string]*escrow.UserPublic{}}
	skey, vkey, err := escrow.NewJudgeKey("judge-net", netRand("judge"))
	if err != nil {
		t.Fatal(err)
	}
	f.judge, _ = note.NewSigner(skey)
	f.judgeV, _ = note.NewVerifier(vkey)
	if f.requester, err = escrow.GenerateRequesterKey(netRand("requester")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice", "bob", "carol"} {
		u, err := escrow.GenerateUserKey(name, netRand("user "+name))
		if err != nil {
			t.Fatal(err)
		}
		f.users[name], f.pubs[name] = u, u.Public()
	}
	eg, err := g.EscrowGroup(1)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	for i := range g.Trustees {
		m := &g.Trustees[i]
		lskey, lvkey, err := note.GenerateKey(netRand("log "+m.Name), m.Name+".keyquorum")
		if err != nil {
			t.Fatal(err)
		}
		signer, _ := note.NewSigner(lskey)
		policy := trustee.DefaultPolicy(f.judgeV)
		policy.MaxSessionsPerWarrant = 100000
		if o.policy != nil {
			o.policy(m.Index, &policy)
		}
		var store trustee.AuditStore = trustee.NewMemAuditStore()
		if o.store != nil {
			if s := o.store(m.Index); s != nil {
				store = s
			}
		}
		node, err := trustee.New(m.Name, m.Index, policy, store, signer, trustee.WithClock(func() time.Time { return netNow }))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dealt {
			if d.Trustee.Index == m.Index {
				es := &escrow.EpochShare{Epoch: d.Epoch, Index: m.Index, Share: d.Share.Value.Clone(), GroupKey: eg.Key}
				if err := node.AddEpochShare(es, eg.PublicShares[m.Index]); err != nil {
					t.Fatal(err)
				}
			}
		}
		api := trustee.NewServer(node, append([]trustee.ServerOption{trustee.WithLogKey(lvkey), trustee.WithServerLogger(logger)}, o.server...)...)
		var h http.Handler = api
		if o.wrap != nil {
			h = o.wrap(m.Index, h)
		}
		ts := httptest.NewUnstartedServer(h)
		ts.Config = trustee.NewHTTPServer(h, logger)
		if o.headerTimeout > 0 {
			ts.Config.ReadHeaderTimeout = o.headerTimeout
		}
		m.Address = ts.Listener.Addr().String()
		m.LogKey = lvkey
		if o.plain {
			ts.Start()
		} else {
			cert := selfSignedCert(t, m.Name)
			ts.TLS = trustee.ServerTLSConfig(cert)
			ts.StartTLS()
			m.TLSPin = pinOf(cert)
			f.certs = append(f.certs, cert)
		}
		t.Cleanup(ts.Close)
		f.nodes = append(f.nodes, node)
		f.stores = append(f.stores, store)
		f.signers = append(f.signers, signer)
		f.servers = append(f.servers, ts)
		f.apis = append(f.apis, api)
		f.logSKeys = append(f.logSKeys, lskey)
	}
	if !o.noWitnesses {
		f.witness(t)
	}
	return f
}

// witness makes every trustee a witness of the others' logs (state in
// memory) and has each release only under checkpoints w others cosigned.
func (f *netFed) witness(t testing.TB) {
	t.Helper()
	clients := f.clients()
	f.wstores = nil
	for i, m := range f.group.Trustees {
		cosigner, err := trustee.CosignatureSigner(f.logSKeys[i])
		if err != nil {
			t.Fatal(err)
		}
		ws := auditlog.NewMemWitnessStore()
		w, err := trustee.NewGroupWitness(f.group, m.Name, cosigner, ws)
		if err != nil {
			t.Fatal(err)
		}
		f.apis[i].SetWitness(w)
		f.wstores = append(f.wstores, ws)
		cs, err := trustee.NewWitnesses(f.group, m.Name, clients)
		if err != nil {
			t.Fatal(err)
		}
		f.nodes[i].SetWitnesses(cs)
	}
}

// testWriter sends server logs to the test log, shown only on failure or
// with -v.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

func selfSignedCert(t testing.TB, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// pinOf computes a certificate's pin independently of the package.
func pinOf(cert tls.Certificate) string {
	sum := sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)
	return "sha256/" + base64.StdEncoding.EncodeToString(sum[:])
}

func (f *netFed) clients() []*trustee.Client {
	f.t.Helper()
	var cs []*trustee.Client
	for _, m := range f.group.Trustees {
		c, err := trustee.NewClient(m)
		if err != nil {
			f.t.Fatal(err)
		}
		f.t.Cleanup(c.CloseIdleConnections)
		cs = append(cs, c)
	}
	return cs
}

// netSession is one escrowed session with its plaintexts.
type netSession struct {
	keys    *escrow.SessionKeys
	session *escrow.Session
	texts   []string
}

func (s *netSession) id() escrow.SessionID { return s.keys.Context.SessionID }

// sessions makes n sessions from alice to bob on day 2 of the epoch, with
// two messages each.
func (f *netFed) sessions(n int, seed string) []*netSession {
	f.t.Helper()
	eg, err := f.group.EscrowGroup(1)
	if err != nil {
		f.t.Fatal(err)
	}
	r := netRand("sessions " + seed)
	var out []*netSession
	for i := range n {
		start := netT0.Add(48*time.Hour + time.Duration(i)*time.Second)
		keys, s, err := escrow.StartSession(f.users["alice"], f.pubs["bob"], 1, eg.EpochKey(), start, r)
		if err != nil {
			f.t.Fatal(err)
		}
		ns := &netSession{keys: keys, session: s}
		for seq, who := range []string{"alice", "bob"} {
			text := fmt.Sprintf("message %d of session %d from %s", seq, i, who)
			m, err := keys.Seal(f.users[who], uint32(seq), text)
			if err != nil {
				f.t.Fatal(err)
			}
			s.Messages = append(s.Messages, m)
			ns.texts = append(ns.texts, text)
		}
		out = append(out, ns)
	}
	return out
}

func envelopesOf(ss []*netSession) [][]byte {
	var out [][]byte
	for _, s := range ss {
		out = append(out, s.session.Envelope)
	}
	return out
}

// warrant signs a warrant for alice's sessions in the first week of the
// epoch, valid now.
func (f *netFed) warrant(edit func(*escrow.Warrant)) []byte {
	f.t.Helper()
	w := &escrow.Warrant{
		ID: "W-NET-1", Case: "case net/1", Requester: f.requester.Public, Targets: []string{"alice"},
		WindowStart: netT0, WindowEnd: netT0.Add(7 * 24 * time.Hour),
		ValidFrom: netNow.Add(-24 * time.Hour), ValidUntil: netNow.Add(7 * 24 * time.Hour),
		MaxSessions: 100000, Purpose: "network tests",
	}
	if edit != nil {
		edit(w)
	}
	text, err := w.MarshalText()
	if err != nil {
		f.t.Fatal(err)
	}
	signed, err := escrow.SignWarrant(text, f.judge)
	if err != nil {
		f.t.Fatal(err)
	}
	return signed
}

// request encodes a signed decryption request.
func (f *netFed) request(warrant []byte, envs [][]byte) []byte {
	f.t.Helper()
	r, err := escrow.NewDecryptionRequest(warrant, envs, f.requester, netNow, rand.Reader)
	if err != nil {
		f.t.Fatal(err)
	}
	return r.Marshal()
}

// checkRead opens every session with its recovered key and compares the
// plaintexts.
func (f *netFed) checkRead(ss []*netSession, keys map[escrow.SessionID][]byte) {
	f.t.Helper()
	for _, s := range ss {
		K, ok := keys[s.id()]
		if !ok {
			f.t.Fatalf("session %s not recovered", s.id())
		}
		env, err := escrow.ParseEnvelope(s.session.Envelope)
		if err != nil {
			f.t.Fatal(err)
		}
		sk, err := escrow.KeysFromRecovered(env, K)
		if err != nil {
			f.t.Fatal(err)
		}
		for i, m := range s.session.Messages {
			pt, err := sk.Open(m, f.pubs)
			if err != nil || pt.Text != s.texts[i] {
				f.t.Fatalf("session %s message %d: %q, %v", s.id(), i, pt.Text, err)
			}
		}
	}
}

// httpsClient trusts trustee i's certificate the ordinary way, for tests
// that speak raw HTTP to the API.
func (f *netFed) httpsClient(i int) *http.Client {
	c := f.servers[i].Client()
	c.Timeout = 10 * time.Second
	return c
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// expectError checks an HTTP answer is a JSON error with status and code.
func expectError(t *testing.T, resp *http.Response, status int, code string) apiError {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body is not JSON: %s", body)
	}
	if e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("error %+v, want code %q and a message", e.Error, code)
	}
	return e
}

func TestServerErrors(t *testing.T) {
	f := newNetFed(t, netOptions{server: []trustee.ServerOption{trustee.WithMaxRequestBytes(64 << 10)}})
	base := f.servers[0].URL
	hc := f.httpsClient(0)
	post := func(path string, body []byte) *http.Response {
		t.Helper()
		resp, err := hc.Post(base+path, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := hc.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	t.Run("malformed body", func(t *testing.T) {
		e := expectError(t, post(trustee.PathDecrypt, []byte("this is not a request")), http.StatusBadRequest, trustee.CodeBadRequest)
		if !strings.Contains(e.Error.Message, "malformed decryption request") {
			t.Errorf("message %q does not say the request is malformed", e.Error.Message)
		}
	})
	t.Run("empty body", func(t *testing.T) {
		expectError(t, post(trustee.PathDecrypt, nil), http.StatusBadRequest, trustee.CodeBadRequest)
	})
	t.Run("oversized body", func(t *testing.T) {
		e := expectError(t, post(trustee.PathDecrypt, make([]byte, 65<<10)), http.StatusRequestEntityTooLarge, trustee.CodeTooLarge)
		if !strings.Contains(e.Error.Message, "65536 bytes") {
			t.Errorf("message %q does not give the limit", e.Error.Message)
		}
	})
	t.Run("wrong method", func(t *testing.T) {
		resp := get(trustee.PathDecrypt)
		if allow := resp.Header.Get("Allow"); allow != http.MethodPost {
			t.Errorf("Allow %q, want POST", allow)
		}
		expectError(t, resp, http.StatusMethodNotAllowed, trustee.CodeMethodNotAllowed)
		expectError(t, post(trustee.PathHead, []byte("x")), http.StatusMethodNotAllowed, trustee.CodeMethodNotAllowed)
	})
	t.Run("unknown path", func(t *testing.T) {
		expectError(t, get("/v1/nothing-here"), http.StatusNotFound, trustee.CodeNotFound)
	})
	t.Run("bad query", func(t *testing.T) {
		expectError(t, get(trustee.PathRecords+"?start=x&end=1"), http.StatusBadRequest, trustee.CodeBadRequest)
		expectError(t, get(trustee.PathRecords+"?start=0&end=5000"), http.StatusBadRequest, trustee.CodeOutOfRange)
		expectError(t, get(trustee.PathInclusion+"?index=3&size=9"), http.StatusBadRequest, trustee.CodeOutOfRange)
		expectError(t, get(trustee.PathConsistency+"?old=9&new=2"), http.StatusBadRequest, trustee.CodeOutOfRange)
	})
	t.Run("refusal", func(t *testing.T) {
		ss := f.sessions(1, "refusal")
		expired := f.warrant(func(w *escrow.Warrant) {
			w.ValidFrom, w.ValidUntil = netNow.Add(-72*time.Hour), netNow.Add(-time.Hour)
		})
		e := expectError(t, post(trustee.PathDecrypt, f.request(expired, envelopesOf(ss))), http.StatusForbidden, trustee.CodeWarrantExpired)
		if !strings.Contains(e.Error.Message, "ask the issuing judge for a new one") {
			t.Errorf("refusal message %q does not say what to do", e.Error.Message)
		}
	})
	t.Run("still serving", func(t *testing.T) {
		resp := get(trustee.PathHealth)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("health: %d", resp.StatusCode)
		}
	})
}

func TestServerInfoAndLog(t *testing.T) {
	f := newNetFed(t, netOptions{})
	ctx := context.Background()
	cs := f.clients()
	ss := f.sessions(2, "info")
	if _, err := cs[1].Decrypt(ctx, f.request(f.warrant(nil), envelopesOf(ss))); err != nil {
		t.Fatal(err)
	}
	info, err := cs[1].Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eg, _ := f.group.EscrowGroup(1)
	want := base64.StdEncoding.EncodeToString(mustPointBytes(t, eg, 2))
	if info.Name != "trustee-2" || info.Index != 2 || len(info.Epochs) != 1 || info.Epochs[0] != 1 ||
		info.LogKey != f.group.Trustees[1].LogKey || len(info.PublicShares) != 1 || info.PublicShares[0].Share != want {
		t.Fatalf("info %+v", info)
	}
	head, err := cs[1].Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := note.NewVerifier(info.LogKey)
	tree, err := trustee.VerifyHead(head, v)
	if err != nil || tree.N != 1 {
		t.Fatalf("head: size %d, %v", tree.N, err)
	}
	recs, err := cs[1].Records(ctx, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := cs[1].Inclusion(ctx, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := trustee.VerifyInclusion(tree, 0, recs[0], proof); err != nil {
		t.Fatal(err)
	}
	if _, err := cs[1].Consistency(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	_, err = cs[1].Records(ctx, 0, 2)
	var api *trustee.APIError
	if !errors.As(err, &api) || api.Status != http.StatusBadRequest || api.Code != trustee.CodeOutOfRange {
		t.Fatalf("records beyond the log: %v", err)
	}
}

func mustPointBytes(t *testing.T, eg *escrow.Group, i int) []byte {
	t.Helper()
	b, err := eg.PublicShares[i].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSlowClientCutOff sends request headers a byte at a time, slower than
// the server's header timeout allows, and checks that the server drops
// that connection while it answers another client normally.
func TestSlowClientCutOff(t *testing.T) {
	const headerTimeout = 300 * time.Millisecond
	f := newNetFed(t, netOptions{n: 1, t: 1, headerTimeout: headerTimeout})
	ts := f.servers[0]

	conn, err := tls.Dial("tcp", f.group.Trustees[0].Address, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, b := range []byte("GET /healthz HTTP/1.1\r\nHost: trustee\r\nX-Slow: " + strings.Repeat("a", 100)) {
			if _, err := conn.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()

	// Meanwhile another client is served.
	time.Sleep(headerTimeout / 2)
	resp, err := f.httpsClient(0).Get(ts.URL + trustee.PathHealth)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("other client: status %d", resp.StatusCode)
	}

	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	n, err := conn.Read(buf)
	took := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("slow client still connected after %v", took)
	}
	if err == nil {
		// The server may say why before it hangs up (a 4xx), then EOF.
		if got := string(buf[:n]); !strings.HasPrefix(got, "HTTP/1.1 4") {
			t.Fatalf("slow client got an answer: %q", got)
		}
		if _, err = io.ReadAll(conn); err != nil {
			t.Fatalf("after the error answer: %v", err)
		}
	}
	if took > 3*time.Second {
		t.Fatalf("slow client cut off only after %v", took)
	}
	conn.Close()
	wg.Wait()

	// And the node still serves.
	resp, err = f.httpsClient(0).Get(ts.URL + trustee.PathHealth)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestMetricsExposeDecisions(t *testing.T) {
	f := newNetFed(t, netOptions{n: 1, t: 1})
	ctx := context.Background()
	c := f.clients()[0]
	ss := f.sessions(3, "metrics")
	if _, err := c.Decrypt(ctx, f.request(f.warrant(nil), envelopesOf(ss))); err != nil {
		t.Fatal(err)
	}
	expired := f.warrant(func(w *escrow.Warrant) { w.ValidUntil = netNow.Add(-time.Hour) })
	if _, err := c.Decrypt(ctx, f.request(expired, envelopesOf(ss))); err == nil {
		t.Fatal("expired warrant granted")
	}
	resp, err := f.httpsClient(0).Get(f.servers[0].URL + trustee.PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`keyquorum_trustee_decisions_total{code="",decision="granted"} 1`,
		`keyquorum_trustee_decisions_total{code="warrant-expired",decision="refused"} 1`,
		`keyquorum_trustee_sessions_released_total 3`,
		`keyquorum_trustee_http_requests_total{code="200",endpoint="decrypt"} 1`,
		`keyquorum_trustee_http_requests_total{code="403",endpoint="decrypt"} 1`,
		`keyquorum_trustee_decrypt_duration_seconds_count 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}
}

// TestServerRouting: every endpoint answers its method (GET ones HEAD
// too); any other method gets a JSON 405 naming it with an Allow header,
// an unknown or unclean path a JSON 404 (never a redirect); metrics label
// 405s by the endpoint and 404s as "other".
func TestServerRouting(t *testing.T) {
	f := newNetFed(t, netOptions{n: 1, t: 1})
	base := f.servers[0].URL
	hc := f.httpsClient(0)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	do := func(method, path string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodPost, trustee.PathInfo, "GET"},
		{http.MethodDelete, trustee.PathHead, "GET"},
		{http.MethodPut, trustee.PathHealth, "GET"},
		{http.MethodGet, trustee.PathDecrypt, "POST"},
		{http.MethodGet, trustee.PathAddCheckpoint, "POST"},
		{http.MethodGet, ceremony.PathCeremonyStart, "POST"},
		{http.MethodPatch, ceremony.PathCeremonyAbort, "POST"},
	} {
		resp := do(tc.method, tc.path)
		if got := resp.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
		e := expectError(t, resp, http.StatusMethodNotAllowed, trustee.CodeMethodNotAllowed)
		if want := tc.path + " takes " + tc.allow + ", not " + tc.method; e.Error.Message != want {
			t.Errorf("message %q, want %q", e.Error.Message, want)
		}
	}
	for _, p := range []string{"/v1/nothing-here", "/v1/info/", "/v1//info", "/v1/log/../info", "/", "/v1/ceremony/"} {
		expectError(t, do(http.MethodGet, p), http.StatusNotFound, trustee.CodeNotFound)
	}
	resp := do(http.MethodHead, trustee.PathHealth)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD %s: %d", trustee.PathHealth, resp.StatusCode)
	}
	resp = do(http.MethodGet, trustee.PathMetrics)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`keyquorum_trustee_http_requests_total{code="405",endpoint="info"} 1`,
		`keyquorum_trustee_http_requests_total{code="405",endpoint="ceremony-start"} 1`,
		`keyquorum_trustee_http_requests_total{code="404",endpoint="other"} 6`,
		`keyquorum_trustee_http_requests_total{code="200",endpoint="health"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

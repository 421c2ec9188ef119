package trustee_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// tamperStore is a memory audit store whose operator can rewrite a stored
// record after the fact, together with its leaf hash (so the node's own
// check of record against leaf passes), leaving the tree above untouched.
type tamperStore struct {
	*trustee.MemAuditStore
	mu      sync.Mutex
	rewrite map[int64][]byte
}

func newTamperStore() *tamperStore {
	return &tamperStore{MemAuditStore: trustee.NewMemAuditStore(), rewrite: map[int64][]byte{}}
}

func (s *tamperStore) set(i int64, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rewrite[i] = b
}

func (s *tamperStore) ReadRecord(i int64) ([]byte, error) {
	s.mu.Lock()
	b, ok := s.rewrite[i]
	s.mu.Unlock()
	if ok {
		return append([]byte(nil), b...), nil
	}
	return s.MemAuditStore.ReadRecord(i)
}

func (s *tamperStore) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	hs, err := s.MemAuditStore.ReadHashes(indexes)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range indexes {
		for r, b := range s.rewrite {
			if x == tlog.StoredHashIndex(0, r) {
				hs[i] = tlog.RecordHash(b)
			}
		}
	}
	return hs, nil
}

// decide runs one request through the whole federation.
func (f *netFed) decide(t *testing.T, warrant []byte, n int, seed string) {
	t.Helper()
	_, err := trustee.Decrypt(context.Background(), f.group, f.clients(), warrant, f.requester, envelopesOf(f.sessions(n, seed)), fastOptions())
	if err != nil && !errors.Is(err, trustee.ErrQuorumRefused) {
		t.Fatal(err)
	}
}

func audit(t *testing.T, g *escrow.GroupFile, state trustee.AuditState) *trustee.AuditResult {
	t.Helper()
	var cs []*trustee.Client
	for _, m := range g.Trustees {
		c, err := trustee.NewClient(m)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		cs = append(cs, c)
	}
	res, err := trustee.Audit(context.Background(), g, cs, state, trustee.AuditOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func auditStatuses(res *trustee.AuditResult) map[string]string {
	out := map[string]string{}
	for _, t := range res.Trustees {
		out[t.Name] = t.Status
	}
	return out
}

func expectAudit(t *testing.T, res *trustee.AuditResult, want map[string]string) {
	t.Helper()
	for _, tr := range res.Trustees {
		w, ok := want[tr.Name]
		if !ok {
			w = trustee.AuditOK
		}
		if tr.Status != w {
			t.Errorf("%s: audit %q (%s), want %q", tr.Name, tr.Status, tr.Detail, w)
		}
	}
}

// serveNode serves node over TLS with cert, as the trustee's API.
func serveNode(t *testing.T, node *trustee.Node, cert tls.Certificate, logKey string) *httptest.Server {
	t.Helper()
	api := trustee.NewServer(node, trustee.WithLogKey(logKey))
	ts := httptest.NewUnstartedServer(api)
	ts.Config = trustee.NewHTTPServer(api, slog.New(slog.DiscardHandler))
	ts.TLS = trustee.ServerTLSConfig(cert)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

func TestAuditDetectsRewriteAndFork(t *testing.T) {
	tamper := newTamperStore()
	f := newNetFed(t, netOptions{store: func(index int) trustee.AuditStore {
		if index == 2 {
			return tamper
		}
		return nil
	}})
	warrant := f.warrant(nil)
	f.decide(t, warrant, 2, "audit 1")
	f.decide(t, warrant, 3, "audit 2")
	f.decide(t, warrant, 1, "audit 3")

	// First run: every log verifies, and the heads are saved.
	res := audit(t, f.group, nil)
	expectAudit(t, res, nil)
	if len(res.State) != 5 || len(res.Logs) != 5 || res.State["trustee-2"].Size != 3 {
		t.Fatalf("state %+v, %d logs", res.State, len(res.Logs))
	}
	b, err := res.State.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	state, err := trustee.ParseAuditState(b)
	if err != nil {
		t.Fatal(err)
	}

	// The logs grow; the saved heads are still consistent with them.
	f.decide(t, warrant, 2, "audit 4")
	res = audit(t, f.group, state)
	expectAudit(t, res, nil)
	state = res.State
	if state["trustee-1"].Size != 4 {
		t.Fatalf("state not advanced: %+v", state["trustee-1"])
	}

	// trustee-2's operator rewrites record 1 in its store.
	rec, _, err := f.nodes[1].AuditLog().Record(1)
	if err != nil {
		t.Fatal(err)
	}
	rec.Sessions = rec.Sessions[:1]
	forged, err := rec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tamper.set(1, forged)

	// trustee-3 is replaced by a node signing with the same log key over a
	// different history: a fork.
	forkStore := trustee.NewMemAuditStore()
	forkNode, err := trustee.New("trustee-3", 3, trustee.DefaultPolicy(f.judgeV), forkStore, f.signers[2], trustee.WithClock(func() time.Time { return netNow }))
	if err != nil {
		t.Fatal(err)
	}
	for range 6 {
		if _, _, _, err := forkNode.AuditLog().Append(trustee.AuditRecord{Kind: "decision", Decision: trustee.AuditRefused, Refusal: &trustee.AuditRefusal{Code: "bad-request"}}); err != nil {
			t.Fatal(err)
		}
	}
	forked := serveNode(t, forkNode, f.certs[2], f.group.Trustees[2].LogKey)
	g := *f.group
	g.Trustees = slices.Clone(f.group.Trustees)
	g.Trustees[2].Address = forked.Listener.Addr().String()

	// And trustee-5 is down.
	f.servers[4].Close()

	res = audit(t, &g, state)
	expectAudit(t, res, map[string]string{
		"trustee-2": trustee.AuditRewritten,
		"trustee-3": trustee.AuditForked,
		"trustee-5": trustee.AuditUnreachable,
	})
	var failed []string
	for _, tr := range res.Failed() {
		failed = append(failed, tr.Name)
	}
	if !slices.Equal(failed, []string{"trustee-2", "trustee-3"}) {
		t.Errorf("failed: %v", failed)
	}

	rw := res.Trustees[1]
	if !slices.Contains(rw.Rewritten, 1) || !errors.Is(rw.Err, trustee.ErrBadInclusion) || !strings.Contains(rw.Detail, "trustee-2") {
		t.Errorf("rewrite: %+v", rw)
	}

	// The fork's evidence: two heads, both validly signed by trustee-3's
	// log key, that no proof connects.
	fk := res.Trustees[2]
	if !errors.Is(fk.Err, trustee.ErrLogForked) || fk.Head == "" || fk.SavedHead != state["trustee-3"].Note {
		t.Fatalf("fork: %+v", fk)
	}
	v, err := note.NewVerifier(f.group.Trustees[2].LogKey)
	if err != nil {
		t.Fatal(err)
	}
	oldTree, err1 := trustee.VerifyHead([]byte(fk.SavedHead), v)
	newTree, err2 := trustee.VerifyHead([]byte(fk.Head), v)
	if err1 != nil || err2 != nil || oldTree.N != 4 || newTree.N != 6 {
		t.Fatalf("fork evidence: %v %v sizes %d %d", err1, err2, oldTree.N, newTree.N)
	}

	// The evidence stays in the state; the good trustees advance.
	for _, name := range []string{"trustee-2", "trustee-3", "trustee-5"} {
		if res.State[name] != state[name] {
			t.Errorf("%s: saved head replaced", name)
		}
	}

	// A log rolled back to fewer records than saved is a fork too.
	g.Trustees[2].Address = serveNode(t, mustNode(t, "trustee-3", 3, f.signers[2], f.judgeV), f.certs[2], f.group.Trustees[2].LogKey).Listener.Addr().String()
	res = audit(t, &g, state)
	if tr := res.Trustees[2]; tr.Status != trustee.AuditForked || !errors.Is(tr.Err, trustee.ErrLogShrank) {
		t.Errorf("rolled back: %+v", tr)
	}
}

func mustNode(t *testing.T, name string, index int, signer note.Signer, judge note.Verifier) *trustee.Node {
	t.Helper()
	n, err := trustee.New(name, index, trustee.DefaultPolicy(judge), trustee.NewMemAuditStore(), signer)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAuditBadHeadAndState(t *testing.T) {
	f := newNetFed(t, netOptions{n: 2, t: 1})
	f.decide(t, f.warrant(nil), 1, "bad head")
	// The group file names another key for trustee-2's log.
	g := *f.group
	g.Trustees = slices.Clone(f.group.Trustees)
	g.Trustees[1].LogKey = g.Trustees[0].LogKey
	res := audit(t, &g, nil)
	expectAudit(t, res, map[string]string{"trustee-2": trustee.AuditBadHead})
	if !errors.Is(res.Trustees[1].Err, trustee.ErrHeadWrongKey) {
		t.Errorf("trustee-2: %v", res.Trustees[1].Err)
	}
	if _, ok := res.State["trustee-2"]; ok {
		t.Error("a head that does not verify was saved")
	}

	good := audit(t, f.group, nil)
	b, _ := good.State.Marshal()
	for name, edit := range map[string]string{
		"size edited":  strings.Replace(string(b), `"size": 1`, `"size": 2`, 1),
		"unknown key":  strings.Replace(string(b), `"size"`, `"sizes"`, 1),
		"not JSON":     "heads",
		"trailing":     string(b) + "{}",
		"note garbled": strings.Replace(string(b), `keyquorum\n1\n`, `keyquorum\nx\n`, 1),
	} {
		if _, err := trustee.ParseAuditState([]byte(edit)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestTransparencyReport(t *testing.T) {
	f := newNetFed(t, netOptions{n: 3, t: 2})
	warrant := f.warrant(nil)
	f.decide(t, warrant, 2, "report 1")
	f.decide(t, warrant, 3, "report 2")
	expired := f.warrant(func(w *escrow.Warrant) { w.ValidUntil = netNow.Add(-time.Minute) })
	f.decide(t, expired, 1, "report 3")

	res := audit(t, f.group, nil)
	expectAudit(t, res, nil)
	rep := trustee.Report(res.Logs)
	if len(rep.Trustees) != 3 {
		t.Fatalf("%d trustees", len(rep.Trustees))
	}
	for _, tr := range rep.Trustees {
		if tr.Records != 3 || tr.Totals.Granted != 2 || tr.Totals.Refused != 1 ||
			tr.Totals.RefusedByCode[trustee.CodeWarrantExpired] != 1 || tr.Totals.SessionsReleased != 5 || tr.DistinctSessions != 5 {
			t.Errorf("%s totals: %+v", tr.Name, tr)
		}
		if j := tr.ByJudge["judge-net"]; j == nil || j.Granted != 2 || j.Refused != 0 {
			t.Errorf("%s by judge: %+v", tr.Name, tr.ByJudge)
		}
		if j := tr.ByJudge[trustee.NoJudge]; j == nil || j.Refused != 1 {
			t.Errorf("%s: the refusal is not filed under %q: %+v", tr.Name, trustee.NoJudge, tr.ByJudge)
		}
		if m := tr.ByMonth["2026-05"]; m == nil || m.Granted != 2 || m.Refused != 1 || len(tr.ByMonth) != 1 {
			t.Errorf("%s by month: %+v", tr.Name, tr.ByMonth)
		}
	}
}

package trustee_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/auditlog"
	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
	fmtnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// copyAuditStore copies a store as it stands: what a backup of it holds.
func copyAuditStore(t *testing.T, s trustee.AuditStore) *trustee.MemAuditStore {
	t.Helper()
	n, _ := s.Size()
	var recs [][]byte
	for i := range n {
		r, err := s.ReadRecord(i)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	idx := make([]int64, tlog.StoredHashCount(n))
	for i := range idx {
		idx[i] = int64(i)
	}
	hs, err := s.ReadHashes(idx)
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := s.Checkpoint()
	c := trustee.NewMemAuditStore()
	if err := c.Append(0, recs, hs, cp); err != nil {
		t.Fatal(err)
	}
	return c
}

// witnessServer serves a witness of the log v on loopback and returns a
// client of it.
func witnessServer(t *testing.T, f *netFed, name string, v note.Verifier) (*trustee.Client, *auditlog.Witness) {
	t.Helper()
	skey, _, err := note.GenerateKey(netRand("witness "+name), name)
	if err != nil {
		t.Fatal(err)
	}
	cosigner, err := fmtnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	w, err := auditlog.NewWitness(cosigner, []note.Verifier{v}, auditlog.NewMemWitnessStore())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(trustee.NewServer(f.nodes[1], trustee.WithWitness(w)))
	t.Cleanup(srv.Close)
	c, err := trustee.NewClient(escrow.GroupMember{Name: name, Address: strings.TrimPrefix(srv.URL, "http://")})
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

// TestCheckWitnesses: a copy of trustee-1's store taken at size k (an old
// backup) is refused with ErrBehindWitnesses naming the missing sizes
// once a witness cosigned a larger checkpoint; the store as it stands
// passes; a rewritten store of the same key is refused as forked; a
// witness that does not answer counts against the number needed, and a
// trustee that runs no witness is told apart from one that saw nothing.
func TestCheckWitnesses(t *testing.T) {
	f := newNetFed(t, netOptions{n: 2, t: 1, plain: true, noWitnesses: true})
	ctx := context.Background()
	v, err := note.NewVerifier(f.group.Trustees[0].LogKey)
	if err != nil {
		t.Fatal(err)
	}
	wa, witA := witnessServer(t, f, "witness-a", v)
	wb, _ := witnessServer(t, f, "witness-b", v)

	// Both witnesses have seen nothing: any store passes.
	rep, err := trustee.CheckWitnesses(ctx, f.stores[0], v, []*trustee.Client{wa, wb}, 2)
	if err != nil || len(rep.Answered) != 2 || rep.Latest != 0 {
		t.Fatalf("nothing witnessed: %+v, %v", rep, err)
	}

	f.decide(t, f.warrant(nil), 1, "check 1")
	old := copyAuditStore(t, f.stores[0])
	oldSize, _ := old.Size()
	f.decide(t, f.warrant(nil), 1, "check 2")
	f.decide(t, f.warrant(nil), 1, "check 3")
	h, err := f.nodes[0].AuditLog().Head()
	if err != nil {
		t.Fatal(err)
	}
	// witness-a cosigns the latest checkpoint; witness-b never heard of it.
	if _, err := witA.AddCheckpoint(auditlog.FormatAddCheckpoint(0, nil, h.Note)); err != nil {
		t.Fatal(err)
	}
	got, err := wa.WitnessLatest(ctx, v.Name())
	// The checkpoint as trustee-1 signed it, then witness-a's cosignature.
	if err != nil || !bytes.HasPrefix(got, h.Note) || !bytes.HasPrefix(got[len(h.Note):], []byte("— witness-a ")) {
		t.Fatalf("witness-a's latest: %q, %v", got, err)
	}

	rep, err = trustee.CheckWitnesses(ctx, old, v, []*trustee.Client{wa, wb}, 1)
	var behind *trustee.BehindWitnessesError
	if !errors.As(err, &behind) || !errors.Is(err, trustee.ErrBehindWitnesses) {
		t.Fatalf("old copy: %v, want ErrBehindWitnesses", err)
	}
	if behind.Have != oldSize || behind.Want != h.Tree.N || behind.Forked || behind.Witness != "witness-a" {
		t.Fatalf("old copy: %+v; want have %d, want %d", behind, oldSize, h.Tree.N)
	}
	for _, want := range []string{"sizes " + itoa(oldSize) + ".." + itoa(h.Tree.N), "keyquorum trustee restore", "fork"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	if n, _ := old.Size(); n != oldSize {
		t.Fatal("the check changed the store")
	}
	if cp, _ := old.Checkpoint(); bytes.Equal(cp, h.Note) {
		t.Fatal("the check signed for the old store")
	}

	// The store as it stands extends the witnessed checkpoint.
	if rep, err = trustee.CheckWitnesses(ctx, f.stores[0], v, []*trustee.Client{wa, wb}, 2); err != nil || rep.Latest != h.Tree.N {
		t.Fatalf("current store: %+v, %v", rep, err)
	}

	// A log rewritten under the same key to the same size: forked.
	forkedStore := trustee.NewMemAuditStore()
	forked, err := trustee.New("trustee-1", 1, trustee.DefaultPolicy(f.judgeV), forkedStore, f.signers[0], trustee.WithClock(func() time.Time { return netNow }))
	if err != nil {
		t.Fatal(err)
	}
	for range h.Tree.N {
		if _, _, _, err := forked.AuditLog().Append(trustee.AuditRecord{Kind: trustee.AuditKindDecision, Decision: trustee.AuditRefused, Refusal: &trustee.AuditRefusal{Code: trustee.CodeBadRequest}}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = trustee.CheckWitnesses(ctx, forkedStore, v, []*trustee.Client{wa}, 1)
	if !errors.As(err, &behind) || !behind.Forked || !strings.Contains(err.Error(), "does not extend") {
		t.Fatalf("rewritten log: %v, want a forked ErrBehindWitnesses", err)
	}

	// One witness down: a check needing two fails and names it; one
	// needing one passes.
	down, _ := trustee.NewClient(escrow.GroupMember{Name: "witness-down", Address: "127.0.0.1:1"})
	_, err = trustee.CheckWitnesses(ctx, f.stores[0], v, []*trustee.Client{wa, down}, 2)
	if !errors.Is(err, trustee.ErrWitnessesUnreachable) || !strings.Contains(err.Error(), "witness-down") || !strings.Contains(err.Error(), "--override-witness-check") {
		t.Fatalf("witness down: %v", err)
	}
	if _, err := trustee.CheckWitnesses(ctx, f.stores[0], v, []*trustee.Client{wa, down}, 1); err != nil {
		t.Fatalf("one of one needed: %v", err)
	}
	// An old copy is refused even when a witness is down.
	if _, err := trustee.CheckWitnesses(ctx, old, v, []*trustee.Client{wa, down}, 2); !errors.Is(err, trustee.ErrBehindWitnesses) {
		t.Fatalf("old copy with a witness down: %v", err)
	}

	// A trustee without a witness is not counted as having seen nothing.
	plainTrustee := f.clients()[1]
	if _, err := plainTrustee.WitnessLatest(ctx, v.Name()); !errors.Is(err, trustee.ErrNoWitness) {
		t.Fatalf("trustee without a witness: %v, want ErrNoWitness", err)
	}
	// A witness of other logs has seen nothing of this one.
	if got, err := wa.WitnessLatest(ctx, "trustee-9.keyquorum"); got != nil || err != nil {
		t.Fatalf("unknown log: %q, %v", got, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

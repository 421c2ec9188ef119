package trustee_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/auditlog"
	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
	"golang.org/x/mod/sumdb/note"
)

// TestTrusteeWitnessOverHTTP: trustee-2 witnesses trustee-1's log at
// /add-checkpoint. It cosigns trustee-1's checkpoints as they grow, answers
// 409 with the size it knows to a stale request, and refuses (422) the
// checkpoint of a rewritten log signed with trustee-1's key, keeping both.
func TestTrusteeWitnessOverHTTP(t *testing.T) {
	_, logV, cosigner, cosigV := witnessKeys(t, "")
	wstore := auditlog.NewMemWitnessStore()
	w, err := auditlog.NewWitness(cosigner, []note.Verifier{logV}, wstore)
	if err != nil {
		t.Fatal(err)
	}
	f := newNetFed(t, netOptions{n: 2, t: 1, noWitnesses: true, server: []trustee.ServerOption{trustee.WithWitness(w)}})
	ctx := context.Background()
	witness := f.clients()[1]
	f.decide(t, f.warrant(nil), 1, "witness 1")

	h, err := f.nodes[0].AuditLog().Head()
	if err != nil {
		t.Fatal(err)
	}
	cosig, err := witness.AddCheckpoint(ctx, auditlog.FormatAddCheckpoint(0, nil, h.Note))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(append(h.Note, cosig...), note.VerifierList(logV, cosigV)); err != nil {
		t.Fatalf("cosigned checkpoint does not verify: %v", err)
	}
	var conflict *auditlog.WitnessConflictError
	if _, err := witness.AddCheckpoint(ctx, auditlog.FormatAddCheckpoint(0, nil, h.Note)); !errors.As(err, &conflict) || conflict.Known != h.Tree.N {
		t.Fatalf("stale request: %v, want a conflict at %d", err, h.Tree.N)
	}

	// trustee-1's operator rewrites its log (same key, other records).
	forked, err := trustee.New("trustee-1", 1, trustee.DefaultPolicy(f.judgeV), trustee.NewMemAuditStore(), f.signers[0], trustee.WithClock(func() time.Time { return netNow }))
	if err != nil {
		t.Fatal(err)
	}
	for range h.Tree.N + 2 {
		if _, _, _, err := forked.AuditLog().Append(trustee.AuditRecord{Kind: trustee.AuditKindDecision, Decision: trustee.AuditRefused, Refusal: &trustee.AuditRefusal{Code: trustee.CodeBadRequest}}); err != nil {
			t.Fatal(err)
		}
	}
	fh, _ := forked.AuditLog().Head()
	proof, err := forked.AuditLog().ConsistencyProof(h.Tree.N, fh.Tree.N)
	if err != nil {
		t.Fatal(err)
	}
	_, err = witness.AddCheckpoint(ctx, auditlog.FormatAddCheckpoint(h.Tree.N, proof, fh.Note))
	if !errors.Is(err, trustee.ErrWitnessRefused) || !strings.Contains(err.Error(), "422") {
		t.Fatalf("forked checkpoint: %v, want a 422 refusal", err)
	}
	ev := wstore.Evidence["trustee-1.keyquorum"]
	if len(ev) != 1 || string(ev[0][0]) != string(h.Note) || string(ev[0][1]) != string(fh.Note) {
		t.Fatalf("evidence: %q", ev)
	}
}

// witnessKeys are trustee-1's log key and trustee-2's witness key, drawn
// from seed.
func witnessKeys(t *testing.T, seed string) (logS note.Signer, logV note.Verifier, cosigner note.Signer, cosigV note.Verifier) {
	t.Helper()
	lskey, lvkey, err := note.GenerateKey(netRand(seed+"log trustee-1"), "trustee-1.keyquorum")
	if err != nil {
		t.Fatal(err)
	}
	logS, _ = note.NewSigner(lskey)
	logV, _ = note.NewVerifier(lvkey)
	wskey, wvkey, err := note.GenerateKey(netRand(seed+"witness trustee-2"), "trustee-2.keyquorum")
	if err != nil {
		t.Fatal(err)
	}
	if cosigner, err = trustee.CosignatureSigner(wskey); err != nil {
		t.Fatal(err)
	}
	if cosigV, err = trustee.CosignatureVerifier(escrow.GroupMember{Name: "trustee-2", LogKey: wvkey}); err != nil {
		t.Fatal(err)
	}
	return logS, logV, cosigner, cosigV
}

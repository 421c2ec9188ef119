package trustee_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keyquorum/keyquorum/trustee"
	"golang.org/x/mod/sumdb/note"
)

// TestNodeWithoutWitnessQuorumReleasesNothing: trustee-1 of a 2-of-3
// group (w = 1) whose witnesses both refuse to answer (their
// /add-checkpoint fails) logs the grant but answers 503 witness-quorum,
// naming both witnesses and saying what to do, with no partial
// decryption. Once one witness answers again, the same request is granted
// under the same record, not logged twice, with a checkpoint cosigned by
// that witness that includes the record.
func TestNodeWithoutWitnessQuorumReleasesNothing(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	f := newNetFed(t, netOptions{n: 3, t: 2, wrap: func(index int, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if index != 1 && r.URL.Path == trustee.PathAddCheckpoint && down.Load() {
				http.Error(w, "witness down for the test", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	}})
	ctx := context.Background()
	ss := f.sessions(1, "unwitnessed")
	req := f.request(f.warrant(nil), envelopesOf(ss))
	c := f.clients()[0]
	before := f.nodes[0].AuditLog()
	sizeBefore, _ := before.Size()

	ans, err := c.Decrypt(ctx, req)
	var refusal *trustee.RefusalError
	if !errors.As(err, &refusal) || refusal.Code != trustee.CodeWitnessQuorum || !errors.Is(err, trustee.ErrWitnessQuorum) {
		t.Fatalf("witnesses down: %v, %v; want a witness-quorum refusal", ans, err)
	}
	if ans != nil {
		t.Fatal("an answer came with the refusal")
	}
	for _, want := range []string{"0 of the 1 cosignatures", "trustee-2:", "trustee-3:", "Nothing was released", "retry the same request", "operator of trustee-1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal does not say %q: %v", want, err)
		}
	}
	// Directly on the node: the typed error names the failed witnesses.
	_, err = f.nodes[0].Decide(req)
	var qe *trustee.WitnessQuorumError
	if !errors.As(err, &qe) || qe.Need != 1 || len(qe.Got) != 0 || len(qe.Failed) != 2 || qe.Failed["trustee-2"] == "" || qe.Failed["trustee-3"] == "" {
		t.Fatalf("Decide: %v, want a WitnessQuorumError naming trustee-2 and trustee-3", err)
	}
	sizeAfter, _ := before.Size()
	if sizeAfter != sizeBefore+1 {
		t.Fatalf("log grew from %d to %d; the grant is logged once, before witnessing", sizeBefore, sizeAfter)
	}

	down.Store(false)
	ans, err = c.Decrypt(ctx, req)
	if err != nil {
		t.Fatalf("witnesses back: %v", err)
	}
	if ans.RecordIndex != sizeBefore || ans.Sessions() != 1 {
		t.Fatalf("answer under record %d with %d sessions answered, want record %d", ans.RecordIndex, ans.Sessions(), sizeBefore)
	}
	if n, _ := before.Size(); n != sizeAfter {
		t.Fatalf("the retried request was logged again (%d records, want %d)", n, sizeAfter)
	}
	got, err := trustee.CheckCosigned(f.group, "trustee-1", ans.Head)
	if err != nil || len(got) < 1 || (got[0] != "trustee-2" && got[0] != "trustee-3") {
		t.Fatalf("answer's checkpoint: cosigned by %v, %v", got, err)
	}
	lv, _ := note.NewVerifier(f.group.Trustees[0].LogKey)
	tree, err := trustee.VerifyHead(ans.Head, lv)
	if err != nil {
		t.Fatal(err)
	}
	if err := trustee.VerifyInclusion(tree, ans.RecordIndex, ans.Record, ans.Proof); err != nil {
		t.Fatalf("the record is not in the cosigned checkpoint: %v", err)
	}
}

// TestRequesterRefusesUnwitnessedAnswer: trustees that release under
// their own signature only (no witnesses) are not used by a requester of
// a group with w = 1: each is bad-audit-evidence with a CosignatureError
// naming it, and nothing is decrypted. A group file asking for w = 2 of
// trustees that gather only what w = 1 needs is refused the same way.
func TestRequesterRefusesUnwitnessedAnswer(t *testing.T) {
	f := newNetFed(t, netOptions{n: 3, t: 2, noWitnesses: true})
	ss := f.sessions(1, "unwitnessed requester")
	res, err := trustee.Decrypt(context.Background(), f.group, f.clients(), f.warrant(nil), f.requester, envelopesOf(ss), fastOptions())
	if !errors.Is(err, trustee.ErrInsufficientQuorum) || len(res.Keys) != 0 {
		t.Fatalf("unwitnessed answers: %v, %d keys", err, len(res.Keys))
	}
	for _, tr := range res.Trustees {
		var ce *trustee.CosignatureError
		if tr.Status != trustee.StatusBadEvidence || !errors.Is(tr.Err, trustee.ErrTooFewCosignatures) || !errors.As(tr.Err, &ce) || ce.Trustee != tr.Name || ce.Need != 1 || len(ce.Valid) != 0 {
			t.Errorf("%s: %s %v; want bad-audit-evidence with a CosignatureError naming it", tr.Name, tr.Status, tr.Err)
		}
		if !strings.Contains(tr.Reason, tr.Name+"'s checkpoint carries 0 valid cosignatures") {
			t.Errorf("%s: reason %q", tr.Name, tr.Reason)
		}
	}

	f = newNetFed(t, netOptions{n: 3, t: 2})
	g := *f.group
	two := 2
	g.WitnessQuorum = &two // what the requester's group file says
	_, err = trustee.Decrypt(context.Background(), &g, f.clients(), f.warrant(nil), f.requester, envelopesOf(f.sessions(1, "w2")), fastOptions())
	var qe *trustee.QuorumError
	if !errors.As(err, &qe) || qe.Usable != 0 {
		t.Fatalf("w = 2 against trustees that gather 1: %v", err)
	}
	for _, tr := range qe.Trustees {
		var ce *trustee.CosignatureError
		if !errors.As(tr.Err, &ce) || ce.Need != 2 || len(ce.Valid) != 1 {
			t.Errorf("%s: %v; want a CosignatureError with 1 of 2", tr.Name, tr.Err)
		}
	}
}

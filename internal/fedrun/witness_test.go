package fedrun_test

import (
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/auditlog"
	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// TestEraseAndRegrowCaughtByWitnesses: issue 9, finding 2, with witnesses.
// A dishonest operator of trustee-3 (holding its passphrase, and so its
// log key) stops the node after a warranted decryption, erases the grant
// record, regrows the log to the same size with a record of its choosing
// and signs a checkpoint of the rewritten log, so that the store is
// consistent in itself. The node refuses to start on it while its
// witnesses are up; started while they are down, it serves it. An auditor with
// no state of its own and nothing imported runs `keyquorum audit verify`:
// the checkpoint trustee-1's and trustee-2's witnesses cosigned when the
// share was released is not extended by the log trustee-3 serves now, so
// trustee-3 is FORKED (exit 1), with the witnesses' checkpoint as the
// evidence. And the regrown node can release nothing more: its witnesses
// refuse its checkpoints (422), so it answers witness-quorum.
func TestEraseAndRegrowCaughtByWitnesses(t *testing.T) {
	fx := newFixture(t, fixtureConfig{trustees: 3, threshold: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g := fx.fed.Group
	res, err := fx.decrypt(ctx, g, fx.fed.Clients(), fx.inScope[:1])
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Trustees[2].Status; s != trustee.StatusGranted {
		t.Fatalf("trustee-3: %s", s)
	}
	got, err := trustee.CheckCosigned(g, "trustee-3", []byte(res.Trustees[2].Head))
	if err != nil || len(got) < g.Witnesses() {
		t.Fatalf("trustee-3's answer was cosigned by %v (%v), want %d witnesses", got, err, g.Witnesses())
	}
	if code, stdout, stderr := runKeyquorum(t, "audit", "verify", "--group", fx.fed.GroupPath); code != 0 || !strings.Contains(stdout, "extends what its witnesses cosigned (trustee-1 at") {
		t.Fatalf("audit before the rewrite: exit %d\n%s%s", code, stdout, stderr)
	}

	tr := fx.fed.Trustees[2]
	path := filepath.Join(tr.Dir, "node.db")
	if err := tr.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	logSigner := operatorLogSigner(t, path)
	forged, err := auditlog.Record{Time: fx.now, Kind: auditlog.KindDecision, Decision: auditlog.Refused, Refusal: &auditlog.Refusal{Code: trustee.CodeBadRequest}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var grants int
	rewriteLog(t, path, func(recs [][]byte) [][]byte {
		out := make([][]byte, len(recs))
		for i, r := range recs {
			out[i] = r
			if rec, err := auditlog.ParseRecord(r); err == nil && rec.Decision == auditlog.Granted {
				out[i] = forged // the grant erased, the log as long as before
				grants++
			}
		}
		return out
	})
	if grants != 1 {
		t.Fatalf("erased %d grants, want 1", grants)
	}
	resignCheckpoint(t, path, logSigner)
	// While its witnesses are up, the node itself refuses to serve the
	// rewritten log: it asks them first.
	err = tr.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "does not extend the checkpoint of size") {
		t.Fatalf("the rewritten store with its witnesses up: %v, want a refusal to serve", err)
	}
	// So the operator starts it while the others are down (an outage, or
	// a firewall), and it serves the rewritten log once they are back.
	for _, w := range fx.fed.Trustees[:2] {
		if err := w.Stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Start(ctx); err != nil {
		t.Fatalf("the operator's rewritten store does not start with its witnesses down: %v", err)
	}
	for _, w := range fx.fed.Trustees[:2] {
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}

	code, stdout, stderr := runKeyquorum(t, "audit", "verify", "--group", fx.fed.GroupPath)
	if code != 1 {
		t.Fatalf("audit after the rewrite: exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"trustee-3  FORKED", "witness cosigned", "two different heads of size", "evidence against trustee-3", "trustee-1  ok", "trustee-2  ok"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("audit output does not say %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "trustee-3 (forked)") {
		t.Errorf("audit error: %s", stderr)
	}

	// The regrown node asks its witnesses to cosign its rewritten log,
	// and they refuse: it releases nothing.
	_, err = tr.Client.Decrypt(ctx, fx.request(t, fx.inScope[1:2]))
	var refusal *trustee.RefusalError
	if !errors.As(err, &refusal) || refusal.Code != trustee.CodeWitnessQuorum || !strings.Contains(err.Error(), "422") {
		t.Fatalf("the regrown trustee answered %v; want a witness-quorum refusal with its witnesses' 422", err)
	}
	// trustee-1's operator sees the refused fork, and its evidence.
	st := nodeStatus(t, fx.fed.Trustees[0].Dir)
	if st.Witness == nil || st.Witness.Quorum != 1 {
		t.Fatalf("trustee-1's witness status: %+v", st.Witness)
	}
	for _, l := range st.Witness.Logs {
		if l.Trustee != "trustee-3" {
			continue
		}
		if len(l.Forks) == 0 || !strings.HasPrefix(l.Forks[0].Kept, "trustee-3.keyquorum\n") || l.Forks[0].Kept == l.Forks[0].Refused {
			t.Fatalf("trustee-1 keeps no evidence of trustee-3's fork: %+v", l)
		}
	}
	if _, stdout, _ := runKeyquorum(t, "trustee", "status", "--dir", fx.fed.Trustees[0].Dir); !strings.Contains(stdout, "trustee-3 cosigned to") || !strings.Contains(stdout, "FORK refused") {
		t.Errorf("trustee status does not show the refused fork:\n%s", stdout)
	}
}

// TestNoWitnessQuorumReleasesNothing: against real processes of a 2-of-3
// group (w = 1), an attacker who can cut trustee-1 off from its witnesses
// (here: both other trustees killed) does not get trustee-1 to release a
// share it could later deny: trustee-1 logs the grant, then answers 503
// witness-quorum naming both witnesses, with no partial decryption, and
// its witnesses hold nothing of its log. Once trustee-2 is back, the same
// request is answered under the same record (not logged again), with a
// checkpoint trustee-2 cosigned, and trustee-2's witness now holds it.
func TestNoWitnessQuorumReleasesNothing(t *testing.T) {
	fx := newFixture(t, fixtureConfig{trustees: 3, threshold: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t1, t2, t3 := fx.fed.Trustees[0], fx.fed.Trustees[1], fx.fed.Trustees[2]
	if err := t2.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := t3.Kill(); err != nil {
		t.Fatal(err)
	}
	before, err := logSize(ctx, t1)
	if err != nil {
		t.Fatal(err)
	}
	req := fx.request(t, fx.inScope[:1])
	ans, err := t1.Client.Decrypt(ctx, req)
	var refusal *trustee.RefusalError
	if !errors.As(err, &refusal) || refusal.Code != trustee.CodeWitnessQuorum || !errors.Is(err, trustee.ErrWitnessQuorum) || ans != nil {
		t.Fatalf("witnesses down: %v, %v; want a witness-quorum refusal and no answer", ans, err)
	}
	for _, want := range []string{"0 of the 1 cosignatures", "trustee-2:", "trustee-3:", "Nothing was released"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal does not say %q: %v", want, err)
		}
	}
	after, err := logSize(ctx, t1)
	if err != nil || after != before+1 {
		t.Fatalf("trustee-1's log: %d records (%v), want %d: the grant is logged once before witnessing", after, err, before+1)
	}

	if err := t2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	origin := escrow.LogKeyName("trustee-1")
	if _, err := t2.Client.WitnessCheckpoint(ctx, origin); !errors.Is(err, trustee.ErrNotWitnessed) {
		t.Fatalf("trustee-2's witness before the retry: %v, want ErrNotWitnessed", err)
	}
	ans, err = t1.Client.Decrypt(ctx, req)
	if err != nil {
		t.Fatalf("the same request with trustee-2 back: %v", err)
	}
	if ans.RecordIndex != before || ans.Sessions() != 1 {
		t.Fatalf("answer under record %d with %d sessions answered, want record %d", ans.RecordIndex, ans.Sessions(), before)
	}
	if n, _ := logSize(ctx, t1); n != after {
		t.Fatalf("the retried request was logged again: %d records, want %d", n, after)
	}
	got, err := trustee.CheckCosigned(fx.fed.Group, "trustee-1", ans.Head)
	if err != nil || len(got) != 1 || got[0] != "trustee-2" {
		t.Fatalf("cosigned by %v (%v), want trustee-2", got, err)
	}
	held, err := t2.Client.WitnessCheckpoint(ctx, origin)
	if err != nil {
		t.Fatal(err)
	}
	lv, _ := note.NewVerifier(t1.Member.LogKey)
	tree, err := trustee.VerifyHead(held, lv)
	if err != nil || tree.N != after {
		t.Fatalf("trustee-2's witness holds size %d of trustee-1's log (%v), want %d", tree.N, err, after)
	}
}

// operatorLogSigner is what the operator of a stopped node holds: its log
// key, from the vault its passphrase opens.
func operatorLogSigner(t *testing.T, path string) note.Signer {
	t.Helper()
	s, err := trustee.OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, err := s.Unlock([]byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	id, err := v.LoadIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id.LogSigner
}

// resignCheckpoint signs the checkpoint of the records now in the stopped
// node's store with its log key and stores it, as the node would have.
func resignCheckpoint(t *testing.T, path string, signer note.Signer) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		meta, hashes := tx.Bucket([]byte("meta")), tx.Bucket([]byte("audit-hashes"))
		n := int64(binary.BigEndian.Uint64(meta.Get([]byte("audit-size"))))
		var all memHashes
		hashes.ForEach(func(_, v []byte) error {
			all = append(all, tlog.Hash(v))
			return nil
		})
		h, err := tlog.TreeHash(n, all)
		if err != nil {
			return err
		}
		cp, err := note.Sign(&note.Note{Text: auditlog.FormatCheckpoint(escrow.LogKeyName("trustee-3"), tlog.Tree{N: n, Hash: h})}, signer)
		if err != nil {
			return err
		}
		return meta.Put([]byte("audit-checkpoint"), cp)
	})
	if err != nil {
		t.Fatal(err)
	}
}

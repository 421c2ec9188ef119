package trustee_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/auditlog"
	"github.com/keyquorum/keyquorum/trustee"
	"golang.org/x/mod/sumdb/note"
)

// TestWitnessStoreDurable: trustee-2's witness keeps its state in its
// bbolt node store. It cosigns trustee-1's checkpoint, refuses the
// checkpoint of a rewritten log (same key) with ErrInconsistent and keeps
// both; after the store is closed and opened again (a restart) it still
// holds the checkpoint it cosigned and the evidence, still refuses the
// rewritten log, and still cosigns the honest log as it grows.
func TestWitnessStoreDurable(t *testing.T) {
	logS, logV, cosigner, _ := witnessKeys(t, "durable ")
	now := func() time.Time { return netNow }
	newLog := func() *auditlog.Log {
		l, err := auditlog.New(auditlog.NewMemStore(), logS, now)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	grow := func(l *auditlog.Log, n int, code string) {
		for range n {
			if _, _, _, err := l.Append(auditlog.Record{Kind: auditlog.KindDecision, Decision: auditlog.Refused, Refusal: &auditlog.Refusal{Code: code}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	add := func(w *auditlog.Witness, l *auditlog.Log, old int64) (auditlog.SignedCheckpoint, error) {
		h, err := l.Head()
		if err != nil {
			t.Fatal(err)
		}
		proof, err := l.ConsistencyProof(old, h.Tree.N)
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.AddCheckpoint(auditlog.FormatAddCheckpoint(old, proof, h.Note))
		return h, err
	}
	path := filepath.Join(t.TempDir(), "node.db")
	store, err := trustee.CreateStore(path)
	if err != nil {
		t.Fatal(err)
	}
	open := func(s *trustee.Store) *auditlog.Witness {
		w, err := auditlog.NewWitness(cosigner, []note.Verifier{logV}, s.WitnessStore())
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := open(store)
	honest := newLog()
	grow(honest, 3, "bad-request")
	kept, err := add(w, honest, 0)
	if err != nil {
		t.Fatal(err)
	}
	forked := newLog()
	grow(forked, 4, "bad-warrant")
	refused, err := add(w, forked, 3)
	if !errors.Is(err, auditlog.ErrInconsistent) {
		t.Fatalf("rewritten log: %v, want ErrInconsistent", err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	store, err = trustee.OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	w = open(store)
	if latest, err := store.WitnessStore().Latest("trustee-1.keyquorum"); err != nil || !bytes.Equal(latest, kept.Note) {
		t.Fatalf("after a restart the witness keeps %q (%v), want the checkpoint it cosigned %q", latest, err, kept.Note)
	}
	ev, err := store.WitnessEvidence("trustee-1.keyquorum")
	if err != nil || len(ev) != 1 || !bytes.Equal(ev[0][0], kept.Note) || !bytes.Equal(ev[0][1], refused.Note) {
		t.Fatalf("evidence after a restart: %q, %v", ev, err)
	}
	if _, err := add(w, forked, 3); !errors.Is(err, auditlog.ErrInconsistent) {
		t.Fatalf("rewritten log after a restart: %v, want ErrInconsistent", err)
	}
	var conflict *auditlog.WitnessConflictError
	if _, err := add(w, forked, 0); !errors.As(err, &conflict) || conflict.Known != 3 {
		t.Fatalf("rewritten log from size 0 after a restart: %v, want a conflict at 3", err)
	}
	grow(honest, 2, "bad-request")
	if _, err := add(w, honest, 3); err != nil {
		t.Fatalf("the honest log after a restart: %v", err)
	}
	cp, err := w.Checkpoint("trustee-1.keyquorum")
	if err != nil || !bytes.HasPrefix(cp, []byte("trustee-1.keyquorum\n5\n")) {
		t.Fatalf("latest cosigned checkpoint: %q, %v", cp, err)
	}
	if ev, _ := store.WitnessEvidence("trustee-1.keyquorum"); len(ev) != 2 {
		t.Fatalf("%d pairs of evidence, want 2 (one per refusal)", len(ev))
	}
}

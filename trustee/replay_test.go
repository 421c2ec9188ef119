package trustee

import (
	"crypto/rand"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	"golang.org/x/mod/sumdb/note"
)

// TestReplayRestoresCountsAcrossRestart restarts a node over the same audit
// store and checks that the session cap, the rate limit and destroyed epochs
// survive: they are rebuilt from the log.
func TestReplayRestoresCountsAcrossRestart(t *testing.T) {
	store := NewMemAuditStore()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	skey, _, err := note.GenerateKey(nil, "replay.log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	judge, judgeV, err := note.GenerateKey(nil, "judge-replay")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := note.NewSigner(judge)
	jv, _ := note.NewVerifier(judgeV)
	policy := DefaultPolicy(jv)

	n1, err := New("t1", 1, policy, store, signer, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	sid := escrow.SessionID{1, 2, 3}
	rec := AuditRecord{Kind: AuditKindDecision, Decision: AuditGranted, WarrantID: "W-1", Judges: []string{js.Name()}, Sessions: []string{sid.String()}}
	if _, _, _, err := n1.log.Append(rec); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := n1.log.Append(AuditRecord{Kind: AuditKindShareDestroyed, Epoch: 7}); err != nil {
		t.Fatal(err)
	}

	n2, err := New("t1", 1, policy, store, signer, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	if !n2.released["W-1"][sid] {
		t.Error("released session not restored")
	}
	if got := n2.recentUses(js.Name(), now); got != 1 {
		t.Errorf("judge uses restored as %d, want 1", got)
	}
	if !n2.destroyed[7] {
		t.Error("destroyed epoch not restored")
	}
}

// TestDestroyWithFailingEraseStopsUsingTheShare: once a destruction is
// logged the share is gone from memory, even if erasing the stored copy
// fails; the erase is retried later without logging the destruction again.
func TestDestroyWithFailingEraseStopsUsingTheShare(t *testing.T) {
	skey, _, err := note.GenerateKey(nil, "erase.log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	_, jv, _ := note.GenerateKey(nil, "judge-erase")
	judge, _ := note.NewVerifier(jv)
	policy := DefaultPolicy(judge)
	policy.RetentionEpochs = 1
	failing := true
	var erased []uint32
	eraser := func(e uint32) error {
		if failing {
			return errors.New("disk full")
		}
		erased = append(erased, e)
		return nil
	}
	store := NewMemAuditStore()
	n, err := New("t1", 1, policy, store, signer, WithShareEraser(eraser))
	if err != nil {
		t.Fatal(err)
	}
	for e := uint32(1); e <= 2; e++ {
		x := group.Scalar().SetInt64(int64(10 + e))
		if err := n.AddEpochShare(&escrow.EpochShare{Epoch: e, Index: 1, Share: x, GroupKey: group.Base()}, group.Point().Mul(x, nil)); err != nil {
			t.Fatal(err)
		}
	}
	gone, err := n.DestroyEpochsBefore(2)
	if err == nil || !slices.Equal(gone, []uint32{1}) {
		t.Fatalf("first pass: gone %v, err %v; want [1] and the erase error", gone, err)
	}
	if !slices.Equal(n.Epochs(), []uint32{2}) || !n.destroyed[1] {
		t.Fatalf("after a failed erase the node still holds epochs %v", n.Epochs())
	}
	pub := n.PublicShares()
	if len(pub) != 1 || pub[0].Epoch != 2 || !pub[0].Key.Equal(group.Point().Mul(group.Scalar().SetInt64(12), nil)) {
		t.Fatalf("public shares after destroying epoch 1: %v", pub)
	}
	failing = false
	if _, err := n.DestroyEpochsBefore(2); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if !slices.Equal(erased, []uint32{1}) {
		t.Fatalf("erased %v, want [1]", erased)
	}
	if size, _ := store.Size(); size != 1 {
		t.Fatalf("log has %d records, want exactly one share-destroyed record", size)
	}
}

// TestStaleRequestRefused: a request dated outside MaxRequestAge of the
// node's clock, either way, is refused before anything else is looked at.
func TestStaleRequestRefused(t *testing.T) {
	skey, _, _ := note.GenerateKey(nil, "stale.log")
	signer, _ := note.NewSigner(skey)
	_, jv, _ := note.GenerateKey(nil, "judge-stale")
	judge, _ := note.NewVerifier(jv)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	n, err := New("t1", 1, DefaultPolicy(judge), NewMemAuditStore(), signer, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	q, _ := escrow.GenerateRequesterKey(rand.Reader)
	for _, at := range []time.Time{now.Add(-MaxRequestAge - time.Second), now.Add(MaxRequestAge + time.Second)} {
		req, err := escrow.NewDecryptionRequest([]byte("warrant"), [][]byte{{1}}, q, at, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		_, err = n.Decide(req.Marshal())
		var r *RefusalError
		if !errors.As(err, &r) || r.Code != CodeBadRequest || !errors.Is(err, ErrStaleRequest) {
			t.Errorf("request dated %s: got %v, want a bad-request refusal wrapping ErrStaleRequest", at, err)
		}
	}
	// Just inside the window it gets past the date check (and fails later,
	// on the warrant).
	req, _ := escrow.NewDecryptionRequest([]byte("warrant"), [][]byte{{1}}, q, now.Add(-MaxRequestAge), rand.Reader)
	if _, err := n.Decide(req.Marshal()); errors.Is(err, ErrStaleRequest) {
		t.Errorf("request at the edge of the window refused as stale: %v", err)
	}
}

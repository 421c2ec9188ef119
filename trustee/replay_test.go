package trustee

import (
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
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

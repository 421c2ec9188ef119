package trustee

import (
	"crypto/rand"
	"testing"

	"github.com/keyquorum/keyquorum/escrow"
	"golang.org/x/mod/sumdb/note"
)

func TestSetPolicy(t *testing.T) {
	judge := func(name string) note.Verifier {
		_, vkey, err := escrow.NewJudgeKey(name, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	skey, _, err := note.GenerateKey(rand.Reader, "t1.keyquorum")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	n, err := New("t1", 1, DefaultPolicy(judge("judge-a")), NewMemAuditStore(), signer)
	if err != nil {
		t.Fatal(err)
	}
	// A policy that trusts no judge is refused; the old one stays.
	bad := DefaultPolicy(judge("judge-b"))
	bad.Judges = nil
	if err := n.SetPolicy(bad); err == nil {
		t.Fatal("a policy trusting no judge was accepted")
	}
	if p := n.currentPolicy(); len(p.Judges) != 1 || p.Judges[0].Name() != "judge-a" {
		t.Fatalf("policy after a refused reload: %v", p.Judges)
	}
	if err := n.SetPolicy(DefaultPolicy(judge("judge-b"))); err != nil {
		t.Fatal(err)
	}
	if p := n.currentPolicy(); p.Judges[0].Name() != "judge-b" {
		t.Fatalf("policy after a reload: %v", p.Judges)
	}
}

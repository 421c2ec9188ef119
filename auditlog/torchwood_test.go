package auditlog

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
)

// TestIndependentC2SPImplementation checks keyquorum's checkpoints and
// cosignatures against filippo.io/torchwood, the library litewitness is
// built on, an implementation of C2SP tlog-checkpoint and
// tlog-cosignature independent of the one keyquorum uses:
//
//   - torchwood parses a trustee's checkpoint to the same origin and tree;
//   - a witness cosignature made by this package verifies with torchwood's
//     cosignature verifier for the same key;
//   - a cosignature made by torchwood's signer (what litewitness sends
//     back) verifies with the verifier keyquorum's requesters use.
func TestIndependentC2SPImplementation(t *testing.T) {
	f := newWitnessFixture(t)
	appendN(t, f.log, f.logV, 3, "tw")
	h, cosig, err := f.add(t, f.log, 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(h.Note, note.VerifierList(f.logV))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil || cp.Origin != f.log.Origin() || cp.Tree != h.Tree || cp.Extension != "" {
		t.Fatalf("torchwood parses %+v, %v; want origin %s, tree %+v", cp, err, f.log.Origin(), h.Tree)
	}

	// The witness key of newWitnessFixture, as torchwood sees it.
	seed := bytes.Repeat([]byte{9}, 64)
	_, priv, err := ed25519.GenerateKey(bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	tw, err := torchwood.NewCosignatureSigner("trustee-2.keyquorum", priv)
	if err != nil {
		t.Fatal(err)
	}
	if tw.KeyHash() != f.cosigner.KeyHash() {
		t.Fatalf("key hash %08x in torchwood, %08x here: not the same key", tw.KeyHash(), f.cosigner.KeyHash())
	}
	if _, err := note.Open(append(bytes.Clone(h.Note), cosig...), note.VerifierList(f.logV, tw.Verifier())); err != nil {
		t.Fatalf("torchwood does not verify keyquorum's cosignature: %v", err)
	}
	theirs, err := note.Sign(&note.Note{Text: n.Text}, tw)
	if err != nil {
		t.Fatal(err)
	}
	_, line, _ := bytes.Cut(theirs, []byte("\n\n"))
	if _, err := note.Open(append(bytes.Clone(h.Note), line...), note.VerifierList(f.logV, f.cosigner)); err != nil {
		t.Fatalf("keyquorum does not verify torchwood's cosignature: %v", err)
	}
}

package trustee

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Helpers for the tests of the node's store under the audit log (the log's
// own tests live in package auditlog).

// testLogKey returns a deterministic note key pair for name, different for
// each seed byte.
func testLogKey(t testing.TB, name string, seed byte) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 64)), name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

var testEpoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testClock() time.Time { return testEpoch }

func hexOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// testRecord returns a valid record that differs for every i and tag.
func testRecord(i int, tag string) AuditRecord {
	base := AuditRecord{
		Time:        testEpoch.Add(time.Duration(i) * time.Second),
		Epoch:       uint64(i/5) + 1,
		WarrantID:   fmt.Sprintf("W-%s-%d", tag, i),
		WarrantHash: hexOf("warrant " + tag + fmt.Sprint(i)),
		Judges:      []string{"judge-a.example"},
		Requester:   hexOf("requester"),
		CaseRefHash: hexOf("case reference " + tag),
	}
	switch i % 3 {
	case 0:
		base.Kind, base.Decision = AuditKindDecision, AuditGranted
		base.Sessions = []string{fmt.Sprintf("session-%d", i), fmt.Sprintf("session-%d", i+1)}
		base.Epochs = []uint64{1, uint64(i) + 2}
	case 1:
		base.Kind, base.Decision = AuditKindDecision, AuditRefused
		base.Refusal = &AuditRefusal{Code: "out-of-scope"}
	default:
		return AuditRecord{Time: base.Time, Kind: AuditKindShareDestroyed, Epoch: uint64(i)}
	}
	return base
}

// errAny in a table of refusals accepts any error.
var errAny = errors.New("any error")

// appendN appends n records tagged tag and returns the verified head after
// each size, heads[0] being the empty log's.
func appendN(t testing.TB, l *AuditLog, v note.Verifier, n int, tag string) []tlog.Tree {
	t.Helper()
	h, err := l.Head()
	if err != nil {
		t.Fatal(err)
	}
	tree, err := VerifyHead(h.Note, v)
	if err != nil {
		t.Fatal(err)
	}
	heads := []tlog.Tree{tree}
	for i := range n {
		rec := testRecord(i, tag)
		idx, head, proof, err := l.Append(rec)
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		tree, err := VerifyHead(head.Note, v)
		if err != nil || tree != head.Tree || tree.N != idx+1 {
			t.Fatalf("append %d: index %d, head %+v, signed tree %+v, %v", i, idx, head.Tree, tree, err)
		}
		_, data, err := l.Record(idx)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(tree, idx, data, proof); err != nil {
			t.Fatalf("append %d: proof returned by Append: %v", i, err)
		}
		heads = append(heads, tree)
	}
	return heads
}

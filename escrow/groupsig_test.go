package escrow

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/group"
	"golang.org/x/mod/sumdb/note"
)

// signedGroupFixture deals a 3-of-5 group whose roster carries each
// trustee's log key, and returns its canonical JSON and the signers.
func signedGroupFixture(t *testing.T) ([]byte, []note.Signer) {
	t.Helper()
	r := dkgRand("groupsig")
	var names []string
	var signers []note.Signer
	var vkeys []string
	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("trustee-%d", i)
		skey, vkey, err := note.GenerateKey(r, LogKeyName(name))
		if err != nil {
			t.Fatal(err)
		}
		s, err := note.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		names, signers, vkeys = append(names, name), append(signers, s), append(vkeys, vkey)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g, _, err := Deal(names, 3, []GroupEpoch{{Epoch: 1, ValidFrom: t0, ValidUntil: t0.Add(24 * time.Hour)}}, r)
	if err != nil {
		t.Fatal(err)
	}
	g.KeyGeneration = "dkg"
	for i := range g.Trustees {
		g.Trustees[i].LogKey = vkeys[i]
	}
	b, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b, signers
}

func signAll(t *testing.T, b []byte, signers ...note.Signer) []byte {
	t.Helper()
	for _, s := range signers {
		var err error
		if b, err = SignGroupFile(b, s); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func TestGroupFileSignedByAll(t *testing.T) {
	body, signers := signedGroupFixture(t)
	signed := signAll(t, body, signers...)
	g, text, err := VerifyGroupFile(signed, true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(text, body) {
		t.Fatal("verified text differs from the group.json signed")
	}
	again, err := g.Marshal()
	if err != nil || !bytes.Equal(again, body) {
		t.Fatalf("round trip: %v", err)
	}
	// Signing again with a key that already signed changes nothing.
	if b, err := SignGroupFile(signed, signers[0]); err != nil || strings.Count(string(b), "\u2014 ") != 5 {
		t.Fatalf("re-signing: %v\n%s", err, b)
	}
}

func TestGroupFileMissingSignature(t *testing.T) {
	body, signers := signedGroupFixture(t)
	signed := signAll(t, body, signers[0], signers[1], signers[3], signers[4])
	_, _, err := VerifyGroupFile(signed, true)
	if !errors.Is(err, ErrGroupUnsigned) || !strings.Contains(err.Error(), "trustee-3") {
		t.Fatalf("missing trustee-3: %v", err)
	}
	// Four of five is above the threshold.
	if _, _, err := VerifyGroupFile(signed, false); err != nil {
		t.Fatalf("threshold of signatures: %v", err)
	}
	two := signAll(t, body, signers[0], signers[1])
	if _, _, err := VerifyGroupFile(two, false); !errors.Is(err, ErrGroupUnsigned) {
		t.Fatalf("two of five with t = 3: %v", err)
	}
	if _, _, err := VerifyGroupFile(body, false); !errors.Is(err, ErrGroupUnsigned) {
		t.Fatalf("unsigned body: %v", err)
	}
}

func TestGroupFileTampered(t *testing.T) {
	body, signers := signedGroupFixture(t)
	signed := signAll(t, body, signers...)
	// Change one byte of the body: the day of valid_until (still a valid
	// group file, so only the signatures can tell).
	i := bytes.Index(signed, []byte(`"valid_until": "2026-01-02`))
	if i < 0 {
		t.Fatal("fixture has no such valid_until")
	}
	tampered := bytes.Clone(signed)
	tampered[i+len(`"valid_until": "2026-01-0`)] = '3'
	if _, _, err := VerifyGroupFile(tampered, false); !errors.Is(err, ErrGroupSignature) {
		t.Fatalf("tampered body: %v", err)
	}
	// A tampered threshold no longer even validates.
	i = bytes.Index(signed, []byte(`"threshold": 3`))
	tampered = bytes.Clone(signed)
	tampered[i+len(`"threshold": `)] = '2'
	if _, _, err := VerifyGroupFile(tampered, false); err == nil {
		t.Fatal("tampered threshold accepted")
	}
	// A signature byte changed.
	j := bytes.LastIndex(signed, []byte("\u2014 trustee-5.keyquorum "))
	forged := bytes.Clone(signed)
	k := len(forged) - 10
	if forged[k] == 'A' {
		forged[k] = 'B'
	} else {
		forged[k] = 'A'
	}
	if j < 0 {
		t.Fatal("no signature by trustee-5")
	}
	if _, _, err := VerifyGroupFile(forged, false); !errors.Is(err, ErrGroupSignature) {
		t.Fatalf("forged signature: %v", err)
	}
}

func TestGroupFileOutsiderSignature(t *testing.T) {
	body, signers := signedGroupFixture(t)
	// An outsider makes a key under trustee-2's name.
	skey, _, err := note.GenerateKey(dkgRand("outsider"), LogKeyName("trustee-2"))
	if err != nil {
		t.Fatal(err)
	}
	outsider, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SignGroupFile(body, outsider); err == nil {
		t.Fatal("SignGroupFile accepted a key not in the roster")
	}
	n := &note.Note{Text: string(body)}
	forged, err := note.Sign(n, signers[0], outsider, signers[2], signers[3], signers[4])
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := VerifyGroupFile(forged, false); !errors.Is(err, ErrGroupSignature) {
		t.Fatalf("outsider signature: %v", err)
	}
	only, _ := note.Sign(n, outsider)
	if _, _, err := VerifyGroupFile(only, false); !errors.Is(err, ErrGroupSignature) {
		t.Fatalf("outsider-only signature: %v", err)
	}
	// Adding a signature to a file carrying an outsider's is refused too.
	if _, err := SignGroupFile(forged, signers[1]); !errors.Is(err, ErrGroupSignature) {
		t.Fatalf("signing over an outsider's signature: %v", err)
	}
}

// dkgRand is a deterministic randomness source for tests.
func dkgRand(label string) io.Reader { return group.Suite().XOF([]byte("test/" + label)) }

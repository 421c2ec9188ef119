package escrow

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/group"
	"golang.org/x/mod/sumdb/note"
)

// signedGroupFixture deals a 3-of-5 group whose roster carries each
// trustee's log key, and returns its canonical JSON and the signers.
func signedGroupFixture(t testing.TB) ([]byte, []note.Signer) {
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

func signAll(t testing.TB, b []byte, signers ...note.Signer) []byte {
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
	// marshal(parse(b)) == b for the signed form too.
	s, err := ParseSignedGroupFile(signed)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := s.Marshal(); err != nil || !bytes.Equal(b, signed) {
		t.Fatalf("signed round trip: %v", err)
	}
	if len(s.Signatures) != 5 {
		t.Fatalf("%d signatures, want 5", len(s.Signatures))
	}
	for i, sig := range s.Signatures {
		if want := LogKeyName(fmt.Sprintf("trustee-%d", i+1)); sig.Name != want {
			t.Errorf("signature %d by %s, want %s (roster order)", i, sig.Name, want)
		}
	}
	// Signing again with a key that already signed replaces its
	// signature, whatever order the trustees signed in.
	if b, err := SignGroupFile(signed, signers[0]); err != nil || !bytes.Equal(b, signed) {
		t.Fatalf("re-signing changed the file: %v\n%s", err, b)
	}
	reversed := signAll(t, body, signers[4], signers[3], signers[2], signers[1], signers[0])
	if !bytes.Equal(reversed, signed) {
		t.Fatal("signing in another order gives another file")
	}
}

// TestGroupFileIsJSON reads a signed group file the way jq, Python and any
// JSON library would: as one JSON object whose threshold is a number.
func TestGroupFileIsJSON(t *testing.T) {
	body, signers := signedGroupFixture(t)
	signed := signAll(t, body, signers...)
	var doc map[string]any
	if err := json.Unmarshal(signed, &doc); err != nil {
		t.Fatalf("the signed group file is not JSON: %v", err)
	}
	if doc["threshold"] != float64(3) || doc["version"] != GroupFileVersion {
		t.Fatalf("threshold %v, version %v", doc["threshold"], doc["version"])
	}
	if sigs, _ := doc["signatures"].([]any); len(sigs) != 5 {
		t.Fatalf("signatures: %v", doc["signatures"])
	}
	path := filepath.Join(t.TempDir(), "group.json")
	if err := os.WriteFile(path, signed, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []struct {
		name string
		args []string
	}{
		{"python3", []string{"-c", "import json, sys; g = json.load(open(sys.argv[1])); print(g['threshold'], len(g['signatures']), g['signatures'][1]['name'])", path}},
		{"jq", []string{"-r", `"\(.threshold) \(.signatures | length) \(.signatures[1].name)"`, path}},
	} {
		t.Run(tool.name, func(t *testing.T) {
			if _, err := exec.LookPath(tool.name); err != nil {
				t.Skipf("%s is not installed", tool.name)
			}
			out, err := exec.Command(tool.name, tool.args...).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", tool.name, err, out)
			}
			if got := strings.TrimSpace(string(out)); got != "3 5 trustee-2.keyquorum" {
				t.Fatalf("%s read %q", tool.name, got)
			}
		})
	}
}

func TestGroupFileMissingSignature(t *testing.T) {
	body, signers := signedGroupFixture(t)
	signed := signAll(t, body, signers[0], signers[1], signers[3], signers[4])
	_, _, err := VerifyGroupFile(signed, true)
	if !errors.Is(err, ErrGroupUnsigned) || !strings.Contains(err.Error(), "missing the signature of trustee 3 (trustee-3)") {
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
	if _, _, err := VerifyGroupFile(body, false); !errors.Is(err, ErrGroupUnsigned) || !strings.Contains(err.Error(), "carries no signatures") {
		t.Fatalf("unsigned body: %v", err)
	}
	// Removing a signature from a signed file is the same as never
	// having it.
	s, err := ParseSignedGroupFile(signAll(t, body, signers...))
	if err != nil {
		t.Fatal(err)
	}
	s.Signatures = slices.Delete(s.Signatures, 2, 3)
	stripped, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stripped, signed) {
		t.Fatal("stripping trustee-3's signature does not give the file trustee-3 never signed")
	}
}

// TestGroupFileRefusals edits a file signed by all five in every way an
// attacker or a careless editor might; each is refused with its own error.
func TestGroupFileRefusals(t *testing.T) {
	body, signers := signedGroupFixture(t)
	signed := signAll(t, body, signers...)
	edit := func(f func(s *SignedGroupFile)) func() []byte {
		return func() []byte {
			s, err := ParseSignedGroupFile(signed)
			if err != nil {
				t.Fatal(err)
			}
			f(s)
			b, err := json.MarshalIndent(s, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			return append(b, '\n')
		}
	}
	replace := func(old, new string) func() []byte {
		return func() []byte {
			if !bytes.Contains(signed, []byte(old)) {
				t.Fatalf("fixture has no %q", old)
			}
			return bytes.Replace(signed, []byte(old), []byte(new), 1)
		}
	}
	outsider := func() note.Signer {
		skey, _, err := note.GenerateKey(dkgRand("outsider"), LogKeyName("trustee-2"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := note.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	tests := []struct {
		name string
		file func() []byte
		is   error
		says string
	}{
		{"edited field", replace(`"valid_until": "2026-01-02`, `"valid_until": "2026-01-03`), ErrGroupSignature,
			"signature by trustee-1.keyquorum does not verify: the file was changed after signing"},
		{"edited threshold", replace(`"threshold": 3`, `"threshold": 2`), ErrBadGroupFile, "commitment has 3 points, threshold is 2"},
		{"forged signature", edit(func(s *SignedGroupFile) { s.Signatures[4].Signature[10] ^= 1 }), ErrGroupSignature,
			"signature by trustee-5.keyquorum does not verify"},
		{"signature moved to another trustee", edit(func(s *SignedGroupFile) { s.Signatures[1].Signature = s.Signatures[0].Signature }), ErrGroupSignature,
			"signature by trustee-2.keyquorum does not verify"},
		{"outsider's key under a trustee's name", edit(func(s *SignedGroupFile) {
			sig, _ := outsider.Sign(body)
			s.Signatures[1] = GroupSignature{Name: outsider.Name(), KeyHash: fmt.Sprintf("%08x", outsider.KeyHash()), Signature: sig}
		}), ErrGroupSignature, "is by another key than the roster's"},
		{"outsider's name", edit(func(s *SignedGroupFile) { s.Signatures[1].Name = "mallory.keyquorum" }), ErrGroupSignature,
			"signed by mallory.keyquorum, which is not a trustee's log key in the roster"},
		{"extra top-level field", replace(`"threshold": 3,`, `"threshold": 3, "witnesses": 0,`), ErrBadGroupFile, `unknown field "witnesses"`},
		{"extra signature field", replace(`"key_hash": `, `"comment": "hi", "key_hash": `), ErrBadGroupFile, `unknown field "comment"`},
		{"reformatted", func() []byte {
			var v any
			_ = json.Unmarshal(signed, &v)
			b, _ := json.Marshal(v)
			return b
		}, ErrBadGroupFile, "not in canonical form"},
		{"signature twice", edit(func(s *SignedGroupFile) { s.Signatures = append(s.Signatures, s.Signatures[4]) }), ErrBadGroupFile,
			"signatures must be listed once each, in roster order (trustee-5.keyquorum is out of place)"},
		{"signatures out of order", edit(func(s *SignedGroupFile) { s.Signatures[0], s.Signatures[1] = s.Signatures[1], s.Signatures[0] }), ErrBadGroupFile,
			"in roster order (trustee-1.keyquorum is out of place)"},
		{"empty signature list", func() []byte {
			return append(bytes.Clone(body[:len(body)-3]), ",\n  \"signatures\": []\n}\n"...)
		}, ErrBadGroupFile, "not in canonical form"},
		{"key hash in capitals", edit(func(s *SignedGroupFile) { s.Signatures[0].KeyHash = strings.ToUpper(s.Signatures[0].KeyHash) }), ErrBadGroupFile,
			"is not 8 lowercase hex digits"},
		{"non-canonical base64", func() []byte {
			s, _ := ParseSignedGroupFile(signed)
			good := base64.StdEncoding.EncodeToString(s.Signatures[0].Signature)
			// The last digit before "==" carries 4 unused bits.
			k := len(good) - 3
			bad := good[:k] + string(base64Alphabet[strings.IndexByte(base64Alphabet, good[k])^1]) + good[k+1:]
			return bytes.Replace(signed, []byte(good), []byte(bad), 1)
		}, ErrBadGroupFile, "not in canonical form"},
		{"trailing data", func() []byte { return append(bytes.Clone(signed), "{}\n"...) }, ErrBadGroupFile, "trailing data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.file()
			g, text, err := VerifyGroupFile(b, false)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("VerifyGroupFile: %v\nwant %v saying %q", err, tc.is, tc.says)
			}
			if g != nil || text != nil {
				t.Fatal("VerifyGroupFile returned a file with its error")
			}
			if _, err := ReadGroupFile(b); !errors.Is(err, tc.is) {
				t.Fatalf("ReadGroupFile: %v", err)
			}
			if _, err := SignGroupFile(b, signers[0]); !errors.Is(err, tc.is) {
				t.Fatalf("SignGroupFile: %v", err)
			}
		})
	}
	// ParseGroupFile reads unsigned files only.
	if _, err := ParseGroupFile(signed); !errors.Is(err, ErrBadGroupFile) || !strings.Contains(err.Error(), "carries signatures") {
		t.Fatalf("ParseGroupFile of a signed file: %v", err)
	}
}

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func TestGroupFileOutsiderCannotSign(t *testing.T) {
	body, _ := signedGroupFixture(t)
	// An outsider makes a key under trustee-2's name.
	skey, _, err := note.GenerateKey(dkgRand("outsider"), LogKeyName("trustee-2"))
	if err != nil {
		t.Fatal(err)
	}
	outsider, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SignGroupFile(body, outsider); err == nil || !strings.Contains(err.Error(), "is not a trustee's log key in this group file") {
		t.Fatalf("SignGroupFile with a key not in the roster: %v", err)
	}
}

// TestGroupFileV1 checks that a version 1 file (JSON, then note signature
// lines) is refused with how to convert it, and that the conversion gives
// the version 2 file of the same group, unsigned.
func TestGroupFileV1(t *testing.T) {
	body, signers := signedGroupFixture(t)
	v1text := bytes.Replace(body, []byte(`"keyquorum group v2"`), []byte(`"keyquorum group v1"`), 1)
	v1, err := note.Sign(&note.Note{Text: string(v1text)}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{v1, v1text} {
		for name, read := range map[string]func([]byte) error{
			"VerifyGroupFile": func(b []byte) error { _, _, err := VerifyGroupFile(b, true); return err },
			"ReadGroupFile":   func(b []byte) error { _, err := ReadGroupFile(b); return err },
			"ParseGroupFile":  func(b []byte) error { _, err := ParseGroupFile(b); return err },
		} {
			err := read(b)
			if !errors.Is(err, ErrGroupFileV1) || !errors.Is(err, ErrBadGroupFile) || !strings.Contains(err.Error(), "keyquorum trustee sign-group") {
				t.Errorf("%s of a version 1 file: %v", name, err)
			}
		}
		conv, err := ConvertGroupFileV1(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(conv, body) {
			t.Fatalf("converted file differs from the version 2 file:\n%s", conv)
		}
	}
	if _, err := ConvertGroupFileV1(body); !errors.Is(err, ErrBadGroupFile) {
		t.Fatalf("converting a version 2 file: %v", err)
	}
	edited := bytes.Replace(v1, []byte(`"threshold": 3,`), []byte(`"threshold":3,`), 1)
	if _, err := ConvertGroupFileV1(edited); !errors.Is(err, ErrBadGroupFile) || !strings.Contains(err.Error(), "canonical") {
		t.Fatalf("converting an edited version 1 file: %v", err)
	}
}

// FuzzParseSignedGroupFile: whatever parses is canonical
// (marshal(parse(b)) == b), and whatever verifies re-verifies.
func FuzzParseSignedGroupFile(f *testing.F) {
	body, signers := signedGroupFixture(f)
	f.Add(body)
	f.Add(signAll(f, body, signers[0]))
	f.Add(signAll(f, body, signers...))
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSignedGroupFile(b)
		if err != nil {
			if s != nil {
				t.Fatal("a file returned with an error")
			}
			if !errors.Is(err, ErrBadGroupFile) && !errors.Is(err, ErrGroupSignature) {
				t.Fatalf("error wraps neither ErrBadGroupFile nor ErrGroupSignature: %v", err)
			}
			return
		}
		again, err := s.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("marshal(parse(b)) != b: %v", err)
		}
		if g, text, err := VerifyGroupFile(b, false); err == nil {
			if canon, err := g.Marshal(); err != nil || !bytes.Equal(canon, text) {
				t.Fatalf("verified text is not the canonical unsigned file: %v", err)
			}
		}
	})
}

// dkgRand is a deterministic randomness source for tests.
func dkgRand(label string) io.Reader { return group.Suite().XOF([]byte("test/" + label)) }

func TestMergeGroupSignatures(t *testing.T) {
	body, signers := signedGroupFixture(t)
	all := signAll(t, body, signers...)
	merged := body
	for _, s := range []note.Signer{signers[3], signers[0], signers[4], signers[2], signers[1]} {
		var err error
		if merged, err = MergeGroupSignatures(merged, signAll(t, body, s)); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(merged, all) {
		t.Fatal("merging one copy per trustee differs from signing in turn")
	}
	// A copy of another group file is refused, and so is a forged one.
	other := bytes.Replace(body, []byte(`"valid_until": "2026-01-02`), []byte(`"valid_until": "2026-01-03`), 1)
	if _, err := MergeGroupSignatures(body, signAll(t, other, signers[0])); !errors.Is(err, ErrGroupSignature) || !strings.Contains(err.Error(), "another group file") {
		t.Fatalf("merging a copy of another group file: %v", err)
	}
	s, _ := ParseSignedGroupFile(signAll(t, body, signers[1]))
	s.Signatures[0].Signature[0] ^= 1
	forged, _ := s.Marshal()
	if _, err := MergeGroupSignatures(body, forged); !errors.Is(err, ErrGroupSignature) || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("merging a forged signature: %v", err)
	}
}

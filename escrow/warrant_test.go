package escrow

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/group"
	"github.com/rogpeppe/go-internal/txtar"
	"golang.org/x/mod/sumdb/note"
)

// testRand returns a deterministic randomness source.
func testRand(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	copy(s[1:], "keyquorum warrant tests")
	return rand.NewChaCha8(s)
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

type testJudge struct {
	name     string
	signer   note.Signer
	verifier note.Verifier
	vkey     string
}

func newTestJudge(t testing.TB, name string, seed byte) testJudge {
	t.Helper()
	skey, vkey, err := NewJudgeKey(name, testRand(seed))
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
	return testJudge{name, s, v, vkey}
}

func testWarrant(t testing.TB) *Warrant {
	t.Helper()
	rk, err := GenerateRequesterKey(testRand(1))
	if err != nil {
		t.Fatal(err)
	}
	return &Warrant{
		ID:          "W-2026-0001",
		Case:        "Crown v. Example, ref 26/1234",
		Requester:   rk.Public,
		Targets:     []string{"alice", "bob"},
		WindowStart: mustTime("2026-03-01T00:00:00Z"),
		WindowEnd:   mustTime("2026-03-08T00:00:00Z"),
		ValidFrom:   mustTime("2026-03-01T00:00:00Z"),
		ValidUntil:  mustTime("2026-03-15T00:00:00Z"),
		MaxSessions: 40,
		Purpose:     "sessions of the two named suspects during the week of the offence",
	}
}

func testBody(t testing.TB) []byte {
	t.Helper()
	b, err := testWarrant(t).MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signBy(t testing.TB, text []byte, judges ...testJudge) []byte {
	t.Helper()
	for _, j := range judges {
		var err error
		text, err = SignWarrant(text, j.signer)
		if err != nil {
			t.Fatalf("signing by %s: %v", j.name, err)
		}
	}
	return text
}

func TestWarrantRoundTrip(t *testing.T) {
	w := testWarrant(t)
	body, err := w.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	wantPrefix := "keyquorum warrant v1\nid: W-2026-0001\ncase: Crown v. Example, ref 26/1234\nrequester: " + FormatRequesterPublic(w.Requester) +
		"\ntarget: alice\ntarget: bob\nwindow-start: 2026-03-01T00:00:00Z\nwindow-end: 2026-03-08T00:00:00Z\n" +
		"valid-from: 2026-03-01T00:00:00Z\nvalid-until: 2026-03-15T00:00:00Z\nmax-sessions: 40\npurpose: "
	if !strings.HasPrefix(string(body), wantPrefix) || !strings.HasSuffix(string(body), "offence\n") {
		t.Fatalf("body:\n%s", body)
	}
	got, err := ParseWarrant(body)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Requester.Equal(w.Requester) || got.ID != w.ID || got.Case != w.Case || got.Purpose != w.Purpose ||
		strings.Join(got.Targets, ",") != "alice,bob" || got.MaxSessions != 40 ||
		!got.WindowStart.Equal(w.WindowStart) || !got.WindowEnd.Equal(w.WindowEnd) ||
		!got.ValidFrom.Equal(w.ValidFrom) || !got.ValidUntil.Equal(w.ValidUntil) {
		t.Fatalf("parse(marshal(w)) = %+v, want %+v", got, w)
	}
	again, err := got.MarshalText()
	if err != nil || !bytes.Equal(again, body) {
		t.Fatalf("marshal(parse(b)) != b: %v\n%s", err, again)
	}

	// A time in another zone is written in UTC.
	w.ValidFrom = w.ValidFrom.In(time.FixedZone("CET", 3600))
	b2, err := w.MarshalText()
	if err != nil || !bytes.Equal(b2, body) {
		t.Fatalf("non-UTC time: %v\n%s", err, b2)
	}
}

func TestParseWarrantRefusals(t *testing.T) {
	body := string(testBody(t))
	q := FormatRequesterPublic(testWarrant(t).Requester)
	replace := func(old, new string) string {
		if !strings.Contains(body, old) {
			t.Fatalf("test body has no %q", old)
		}
		return strings.Replace(body, old, new, 1)
	}
	identity := base64.StdEncoding.EncodeToString(group.PointBytes(group.Point()))
	// y = -1 (little-endian p-1): the point of order 2.
	orderTwo := base64.StdEncoding.EncodeToString(append([]byte{0xec}, append(bytes.Repeat([]byte{0xff}, 30), 0x7f)...))

	tests := []struct {
		name, text, want string
	}{
		{"empty", "", "newline"},
		{"no final newline", strings.TrimSuffix(body, "\n"), "newline"},
		{"crlf", strings.ReplaceAll(body, "\n", "\r\n"), "first line"},
		{"other header", replace("keyquorum warrant v1", "keyquorum warrant v2"), "reads only"},
		{"not a warrant", "hello\n", "not a keyquorum warrant"},
		{"invalid utf-8", replace("Crown", "Cr\xffwn"), "UTF-8"},
		{"unknown field", replace("purpose:", "note: hi\npurpose:"), `unknown field "note"`},
		{"duplicate field", replace("case:", "id: W-2\ncase:"), `duplicate field "id"`},
		{"duplicate later field", replace("purpose:", "max-sessions: 4\npurpose:"), `duplicate field "max-sessions"`},
		{"out of order", replace("window-start: 2026-03-01T00:00:00Z\nwindow-end: 2026-03-08T00:00:00Z", "window-end: 2026-03-08T00:00:00Z\nwindow-start: 2026-03-01T00:00:00Z"), `found field "window-end" where "window-start" belongs`},
		{"missing field", replace("max-sessions: 40\n", ""), `found field "purpose" where "max-sessions" belongs`},
		{"missing last field", body[:strings.Index(body, "purpose:")], `missing field "purpose"`},
		{"no targets", replace("target: alice\ntarget: bob\n", ""), `found field "window-start" where "target" belongs`},
		{"target after others", replace("max-sessions: 40\n", "max-sessions: 40\ntarget: carol\n"), `duplicate field "target"`},
		{"no field separator", replace("case: ", "case:"), "not a \"field: value\" line"},
		{"blank line", replace("case:", "\ncase:"), "not a \"field: value\" line"},
		{"bad target", replace("target: bob", "target: bob smith"), `target "bob smith"`},
		{"duplicate target", replace("target: bob", "target: alice"), `target "alice" named twice`},
		{"bad id", replace("id: W-2026-0001", "id: W 2026"), `id "W 2026"`},
		{"empty case", replace("case: Crown v. Example, ref 26/1234", "case: "), "case is empty"},
		{"case trailing space", replace("ref 26/1234", "ref 26/1234 "), "leading or trailing spaces"},
		{"purpose control char", replace("offence", "off\u0085ence"), "non-printing"},
		{"purpose line separator", replace("offence", "off\u2028ence"), "non-printing"},
		{"requester not base64", replace(q, "not base64!"), "not standard base64"},
		{"requester short", replace(q, q[:40]), "not standard base64"},
		{"requester identity", replace(q, identity), "requester public key"},
		{"requester low order", replace(q, orderTwo), "requester public key"},
		{"date only", replace("window-start: 2026-03-01T00:00:00Z", "window-start: 2026-03-01"), "RFC 3339"},
		{"time with offset", replace("window-start: 2026-03-01T00:00:00Z", "window-start: 2026-03-01T01:00:00+01:00"), "RFC 3339"},
		{"fractional seconds", replace("window-start: 2026-03-01T00:00:00Z", "window-start: 2026-03-01T00:00:00.5Z"), "RFC 3339"},
		{"lower-case z", replace("window-start: 2026-03-01T00:00:00Z", "window-start: 2026-03-01T00:00:00z"), "RFC 3339"},
		{"empty window", replace("window-end: 2026-03-08T00:00:00Z", "window-end: 2026-03-01T00:00:00Z"), "window-end 2026-03-01T00:00:00Z is not after window-start"},
		{"reversed validity", replace("valid-until: 2026-03-15T00:00:00Z", "valid-until: 2026-02-15T00:00:00Z"), "valid-until 2026-02-15T00:00:00Z is not after valid-from"},
		{"zero sessions", replace("max-sessions: 40", "max-sessions: 0"), "at least 1"},
		{"negative sessions", replace("max-sessions: 40", "max-sessions: -3"), "at least 1"},
		{"leading zero", replace("max-sessions: 40", "max-sessions: 040"), "plain decimal"},
		{"plus sign", replace("max-sessions: 40", "max-sessions: +40"), "plain decimal"},
		{"huge", replace("max-sessions: 40", "max-sessions: 99999999999999999999999"), "plain decimal"},
		{"extra space after colon", replace("case: ", "case:  "), "leading or trailing spaces"},
		{"signed note", string(signBy(t, []byte(body), newTestJudge(t, "judge-a", 10))), "not a \"field: value\" line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := ParseWarrant([]byte(tc.text))
			if !errors.Is(err, ErrBadWarrant) {
				t.Fatalf("ParseWarrant = %v, %v; want ErrBadWarrant", w, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestMarshalTextRefusals(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(w *Warrant)
		want   string
	}{
		{"nil requester", func(w *Warrant) { w.Requester = nil }, "no requester"},
		{"identity requester", func(w *Warrant) { w.Requester = group.Point() }, "requester public key"},
		{"no targets", func(w *Warrant) { w.Targets = nil }, "no targets"},
		{"bad target", func(w *Warrant) { w.Targets = []string{"a\nb"} }, "target"},
		{"zero time", func(w *Warrant) { w.ValidFrom = time.Time{} }, "valid-from is not set"},
		{"sub-second", func(w *Warrant) { w.WindowEnd = w.WindowEnd.Add(time.Millisecond) }, "whole seconds"},
		{"year 10000", func(w *Warrant) { w.ValidUntil = mustTime("9999-12-31T23:59:59Z").Add(time.Second) }, "out of range"},
		{"before 1970", func(w *Warrant) { w.WindowStart = mustTime("1969-12-31T23:59:59Z") }, "out of range"},
		{"equal window", func(w *Warrant) { w.WindowEnd = w.WindowStart }, "not after window-start"},
		{"equal validity", func(w *Warrant) { w.ValidUntil = w.ValidFrom }, "not after valid-from"},
		{"zero sessions", func(w *Warrant) { w.MaxSessions = 0 }, "at least 1"},
		{"newline in case", func(w *Warrant) { w.Case = "a\nid: other" }, "non-printing"},
		{"long purpose", func(w *Warrant) { w.Purpose = strings.Repeat("x", 513) }, "limit is 512"},
		{"empty purpose", func(w *Warrant) { w.Purpose = "" }, "purpose is empty"},
		{"empty id", func(w *Warrant) { w.ID = "" }, "id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := testWarrant(t)
			tc.mutate(w)
			_, err := w.MarshalText()
			if !errors.Is(err, ErrBadWarrant) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("MarshalText = %v; want ErrBadWarrant mentioning %q", err, tc.want)
			}
		})
	}
}

func TestVerifyWarrant(t *testing.T) {
	a := newTestJudge(t, "judge-a", 10)
	b := newTestJudge(t, "judge-b", 11)
	c := newTestJudge(t, "judge-c", 12)
	body := testBody(t)
	signedAB := signBy(t, body, a, b)
	inside := mustTime("2026-03-02T12:00:00Z")
	trustAB := JudgePolicy{Judges: []note.Verifier{a.verifier, b.verifier}, Required: 2}

	t.Run("two judges", func(t *testing.T) {
		vw, err := VerifyWarrant(signedAB, trustAB, inside)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(vw.Judges, ",") != "judge-a,judge-b" {
			t.Errorf("Judges = %v", vw.Judges)
		}
		if vw.Hash != sha256.Sum256(signedAB) || !bytes.Equal(vw.Note, signedAB) {
			t.Errorf("Hash or Note wrong")
		}
		if vw.Warrant.ID != "W-2026-0001" {
			t.Errorf("Warrant = %+v", vw.Warrant)
		}
	})
	t.Run("untrusted extra signature is ignored", func(t *testing.T) {
		signed := signBy(t, body, c, a, b)
		vw, err := VerifyWarrant(signed, trustAB, inside)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(vw.Judges, ",") != "judge-a,judge-b" {
			t.Errorf("Judges = %v", vw.Judges)
		}
	})
	t.Run("order of signing does not matter", func(t *testing.T) {
		if _, err := VerifyWarrant(signBy(t, body, b, a), trustAB, inside); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("boundaries", func(t *testing.T) {
		w := testWarrant(t)
		if _, err := VerifyWarrant(signedAB, trustAB, w.ValidFrom); err != nil {
			t.Errorf("at valid-from: %v", err)
		}
		if _, err := VerifyWarrant(signedAB, trustAB, w.ValidUntil.Add(-time.Second)); err != nil {
			t.Errorf("a second before valid-until: %v", err)
		}
	})

	tamper := func(signed []byte, old, new string) []byte {
		if !bytes.Contains(signed, []byte(old)) {
			t.Fatalf("no %q in note", old)
		}
		return bytes.Replace(signed, []byte(old), []byte(new), 1)
	}
	// Corrupt the last byte of judge-b's signature, keeping the key hash.
	corruptSig := func(signed []byte) []byte {
		lines := strings.Split(string(signed), "\n")
		last := lines[len(lines)-2]
		i := strings.LastIndex(last, " ")
		sig := last[i+1:]
		flip := "A"
		if sig[len(sig)-3:len(sig)-2] == "A" {
			flip = "B"
		}
		lines[len(lines)-2] = last[:i+1] + sig[:len(sig)-3] + flip + sig[len(sig)-2:]
		return []byte(strings.Join(lines, "\n"))
	}
	sigLineA := func(signed []byte) string {
		for _, ln := range strings.Split(string(signed), "\n") {
			if strings.HasPrefix(ln, "— judge-a ") {
				return ln + "\n"
			}
		}
		t.Fatal("no judge-a signature")
		return ""
	}
	signedA := signBy(t, body, a)
	// A judge that signed a malformed body directly, bypassing SignWarrant.
	badBody := bytes.Replace(body, []byte("max-sessions: 40"), []byte("max-sessions: 0"), 1)
	signedBad, err := note.Sign(&note.Note{Text: string(badBody)}, a.signer, b.signer)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		signed []byte
		policy JudgePolicy
		now    time.Time
		want   error
		msg    string
	}{
		{"expired", signedAB, trustAB, mustTime("2026-03-20T00:00:00Z"), ErrWarrantExpired, "warrant expired at 2026-03-15T00:00:00Z; ask the issuing judge for a new one"},
		{"expired at valid-until", signedAB, trustAB, mustTime("2026-03-15T00:00:00Z"), ErrWarrantExpired, "expired at 2026-03-15T00:00:00Z"},
		{"not yet valid", signedAB, trustAB, mustTime("2026-02-28T23:59:59Z"), ErrWarrantNotYetValid, "valid from 2026-03-01T00:00:00Z"},
		{"tampered text", tamper(signedAB, "max-sessions: 40", "max-sessions: 400"), trustAB, inside, ErrWarrantSignature, "altered after signing"},
		{"tampered target", tamper(signedAB, "target: bob", "target: carol"), trustAB, inside, ErrWarrantSignature, "judge-a+"},
		{"corrupt signature", corruptSig(signedAB), trustAB, inside, ErrWarrantSignature, "judge-b+"},
		{"unknown judge", signBy(t, body, c), trustAB, inside, ErrUnknownJudge, "signed by judge-c+"},
		{"too few judges", signedA, trustAB, inside, ErrTooFewJudges, "1 verified (judge-a), 2 needed"},
		{"too few with an untrusted one", signBy(t, body, a, c), trustAB, inside, ErrTooFewJudges, "1 verified (judge-a), 2 needed"},
		{"duplicate signature line", append(bytes.Clone(signedA), sigLineA(signedA)...), trustAB, inside, ErrTooFewJudges, "1 verified"},
		{"unsigned body", body, trustAB, inside, ErrBadWarrant, "no judge signatures"},
		{"malformed note", tamper(signedAB, "— judge-a", "-- judge-a"), trustAB, inside, ErrBadWarrant, "not a well-formed signed note"},
		{"signed but malformed body", signedBad, trustAB, inside, ErrBadWarrant, "max-sessions is 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vw, err := VerifyWarrant(tc.signed, tc.policy, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyWarrant = %v, %v; want %v", vw, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}

	policyTests := []struct {
		name   string
		policy JudgePolicy
		msg    string
	}{
		{"no judges", JudgePolicy{Required: 1}, "trusts no judges"},
		{"required zero", JudgePolicy{Judges: []note.Verifier{a.verifier}}, "between 1 and 1"},
		{"required too many", JudgePolicy{Judges: []note.Verifier{a.verifier, b.verifier}, Required: 3}, "between 1 and 2"},
		{"same judge twice", JudgePolicy{Judges: []note.Verifier{a.verifier, a.verifier}, Required: 2}, "from 1 trusted judges"},
		{"nil judge", JudgePolicy{Judges: []note.Verifier{nil}, Required: 1}, "nil verifier"},
	}
	for _, tc := range policyTests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyWarrant(signedAB, tc.policy, inside)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("VerifyWarrant = %v; want an error saying %q", err, tc.msg)
			}
		})
	}
}

func TestSignWarrant(t *testing.T) {
	a := newTestJudge(t, "judge-a", 10)
	b := newTestJudge(t, "judge-b", 11)
	body := testBody(t)

	signedA := signBy(t, body, a)
	if !bytes.HasPrefix(signedA, append(bytes.Clone(body), "\n— judge-a "...)) {
		t.Fatalf("signed note:\n%s", signedA)
	}
	// Ed25519 is deterministic: signing the same body again gives the same note.
	if again := signBy(t, body, a); !bytes.Equal(again, signedA) {
		t.Errorf("signing is not deterministic")
	}
	signedAB := signBy(t, signedA, b)
	if !bytes.HasPrefix(signedAB, signedA) || bytes.Count(signedAB, []byte("\n— ")) != 2 {
		t.Errorf("second signature not appended:\n%s", signedAB)
	}

	refusals := []struct {
		name string
		in   []byte
		j    testJudge
		want error
	}{
		{"same judge twice", signedA, a, ErrAlreadySigned},
		{"same judge after another", signedAB, b, ErrAlreadySigned},
		{"malformed body", bytes.Replace(body, []byte("id:"), []byte("ID:"), 1), a, ErrBadWarrant},
		{"malformed note", append(bytes.Clone(signedA), "trailing junk\n"...), b, ErrBadWarrant},
		{"no final newline", bytes.TrimSuffix(body, []byte("\n")), a, ErrBadWarrant},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			out, err := SignWarrant(tc.in, tc.j.signer)
			if !errors.Is(err, tc.want) {
				t.Fatalf("SignWarrant = %q, %v; want %v", out, err, tc.want)
			}
		})
	}
	if _, err := SignWarrant(body, nil); err == nil {
		t.Error("nil signer accepted")
	}
}

func TestNewJudgeKey(t *testing.T) {
	skey, vkey, err := NewJudgeKey("judge.smith@court", testRand(3))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(skey, "PRIVATE+KEY+judge.smith@court+") || !strings.HasPrefix(vkey, "judge.smith@court+") {
		t.Fatalf("keys %q %q", skey, vkey)
	}
	for _, name := range []string{"", "a+b", "judge smith", strings.Repeat("j", MaxNameLen+1), "juge\u0301"} {
		if _, _, err := NewJudgeKey(name, testRand(3)); err == nil {
			t.Errorf("NewJudgeKey(%q) accepted", name)
		}
	}
}

func TestCovers(t *testing.T) {
	w := testWarrant(t) // targets alice, bob; window [2026-03-01, 2026-03-08)
	ctx := func(from, to, start string) *Context {
		return &Context{Epoch: 1, Sender: from, Recipient: to, Start: mustTime(start)}
	}
	tests := []struct {
		name string
		c    *Context
		msg  string // "" if in scope
	}{
		{"sender is a target", ctx("alice", "carol", "2026-03-02T10:00:00Z"), ""},
		{"recipient is a target", ctx("carol", "bob", "2026-03-02T10:00:00Z"), ""},
		{"both targets", ctx("alice", "bob", "2026-03-02T10:00:00Z"), ""},
		{"at window start", ctx("alice", "carol", "2026-03-01T00:00:00Z"), ""},
		{"last second of window", ctx("alice", "carol", "2026-03-07T23:59:59Z"), ""},
		{"target not named", ctx("carol", "dave", "2026-03-02T10:00:00Z"), `target not named: neither "carol" nor "dave" is a target of warrant W-2026-0001`},
		{"names are case-sensitive", ctx("Alice", "dave", "2026-03-02T10:00:00Z"), "target not named"},
		{"before window", ctx("alice", "carol", "2026-02-28T23:59:59Z"), "start outside window: the session started at 2026-02-28T23:59:59Z"},
		{"at window end", ctx("alice", "carol", "2026-03-08T00:00:00Z"), "start outside window"},
		{"both wrong", ctx("carol", "dave", "2026-04-01T00:00:00Z"), "target not named: neither"},
		{"nil context", nil, "no session context"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := w.Covers(tc.c)
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("Covers = %v; want in scope", err)
				}
				return
			}
			if !errors.Is(err, ErrOutOfScope) {
				t.Fatalf("Covers = %v; want ErrOutOfScope", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}
	if err := w.Covers(ctx("carol", "dave", "2026-04-01T00:00:00Z")); !strings.Contains(err.Error(), "start outside window") {
		t.Errorf("both failures should be named: %v", err)
	}
}

// TestWarrantVectors checks the signed warrants under testdata against
// their expect: lines. warrant_ok.txtar's signatures were also checked by
// an independent Ed25519 implementation (testdata/warrant_check.py).
func TestWarrantVectors(t *testing.T) {
	files, err := filepath.Glob("testdata/warrant_*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors: %v", err)
	}
	sentinels := map[string]error{
		"ErrBadWarrant": ErrBadWarrant, "ErrWarrantSignature": ErrWarrantSignature,
		"ErrUnknownJudge": ErrUnknownJudge, "ErrTooFewJudges": ErrTooFewJudges,
		"ErrWarrantNotYetValid": ErrWarrantNotYetValid, "ErrWarrantExpired": ErrWarrantExpired,
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			head := map[string]string{}
			for _, ln := range strings.Split(string(ar.Comment), "\n") {
				if k, v, ok := strings.Cut(ln, ": "); ok {
					head[k] = v
				}
			}
			files := map[string][]byte{}
			for _, f := range ar.Files {
				files[f.Name] = f.Data
			}
			judges, err := ParseJudgeList(files["judges"])
			if err != nil {
				t.Fatal(err)
			}
			required, err := strconv.Atoi(head["required"])
			if err != nil {
				t.Fatal(err)
			}
			vw, err := VerifyWarrant(files["warrant.note"], JudgePolicy{Judges: judges, Required: required}, mustTime(head["at"]))
			switch want := head["expect"]; want {
			case "ok":
				if err != nil {
					t.Fatal(err)
				}
				if got := hex.EncodeToString(vw.Hash[:]); got != head["sha256"] {
					t.Errorf("sha256 %s, want %s", got, head["sha256"])
				}
				if got := strings.Join(vw.Judges, " "); got != head["judges"] {
					t.Errorf("judges %q, want %q", got, head["judges"])
				}
				// Re-create the note from the body and the key files.
				if body, ok := files["warrant.body"]; ok {
					signed := body
					for _, f := range ar.Files {
						if !strings.HasSuffix(f.Name, ".key") {
							continue
						}
						k, err := ParseJudgeKey(f.Data)
						if err != nil {
							t.Fatalf("%s: %v", f.Name, err)
						}
						s, err := k.Signer()
						if err != nil {
							t.Fatal(err)
						}
						if signed, err = SignWarrant(signed, s); err != nil {
							t.Fatal(err)
						}
					}
					if !bytes.Equal(signed, files["warrant.note"]) {
						t.Errorf("re-signed note differs:\n%s", signed)
					}
				}
			default:
				sentinel, ok := sentinels[want]
				if !ok {
					t.Fatalf("unknown expect: %q", want)
				}
				if !errors.Is(err, sentinel) {
					t.Fatalf("VerifyWarrant = %v; want %s", err, want)
				}
			}
		})
	}
}

func ExampleVerifyWarrant() {
	// Deterministic randomness so the output is stable; use crypto/rand.Reader for real keys.
	seed := func(b byte) *rand.ChaCha8 { return rand.NewChaCha8([32]byte{b}) }
	requester, _ := GenerateRequesterKey(seed(1))
	skeyA, vkeyA, _ := NewJudgeKey("judge-a", seed(2))
	skeyB, vkeyB, _ := NewJudgeKey("judge-b", seed(3))

	w := &Warrant{
		ID:          "W-2026-0001",
		Case:        "case 26/1234",
		Requester:   requester.Public,
		Targets:     []string{"alice"},
		WindowStart: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		WindowEnd:   time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC),
		ValidFrom:   time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		ValidUntil:  time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC),
		MaxSessions: 40,
		Purpose:     "messages of the suspect during the week of the offence",
	}
	body, _ := w.MarshalText()

	// Two judges sign in turn.
	signerA, _ := note.NewSigner(skeyA)
	signerB, _ := note.NewSigner(skeyB)
	signed, _ := SignWarrant(body, signerA)
	signed, _ = SignWarrant(signed, signerB)

	// A trustee that trusts both judges and wants both signatures.
	verA, _ := note.NewVerifier(vkeyA)
	verB, _ := note.NewVerifier(vkeyB)
	policy := JudgePolicy{Judges: []note.Verifier{verA, verB}, Required: 2}

	vw, err := VerifyWarrant(signed, policy, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("verified", vw.Warrant.ID, "signed by", strings.Join(vw.Judges, " and "))

	session := &Context{Sender: "alice", Recipient: "bob", Start: time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)}
	fmt.Println("alice and bob on March 3 in scope:", vw.Warrant.Covers(session) == nil)
	session.Start = time.Date(2026, 3, 9, 14, 0, 0, 0, time.UTC)
	fmt.Println(vw.Warrant.Covers(session))

	_, err = VerifyWarrant(signed, policy, time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC))
	fmt.Println(err)
	// Output:
	// verified W-2026-0001 signed by judge-a and judge-b
	// alice and bob on March 3 in scope: true
	// escrow: session outside the warrant's scope: start outside window: the session started at 2026-03-09T14:00:00Z, outside the warrant's window [2026-03-01T00:00:00Z, 2026-03-08T00:00:00Z); a new warrant is needed to cover this session
	// escrow: warrant expired at 2026-03-15T00:00:00Z; ask the issuing judge for a new one
}

func FuzzParseWarrant(f *testing.F) {
	body := testBody(f)
	f.Add(body)
	f.Add(bytes.Replace(body, []byte("target: bob\n"), nil, 1))
	f.Add(bytes.Replace(body, []byte("max-sessions: 40"), []byte("max-sessions: 040"), 1))
	f.Add(signBy(f, body, newTestJudge(f, "judge-a", 10)))
	f.Add([]byte("keyquorum warrant v1\n"))
	f.Add([]byte(""))
	if b, err := os.ReadFile("testdata/warrant_ok.txtar"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := ParseWarrant(b)
		if err != nil {
			if !errors.Is(err, ErrBadWarrant) {
				t.Fatalf("error does not wrap ErrBadWarrant: %v", err)
			}
			return
		}
		out, err := w.MarshalText()
		if err != nil {
			t.Fatalf("parsed warrant does not marshal: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("marshal(parse(b)) != b:\n%q\n%q", b, out)
		}
	})
}

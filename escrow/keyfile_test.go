package escrow

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/keyquorum/keyquorum/internal/group"
)

func testRequesterKeyFile(t testing.TB) ([]byte, *RequesterKey) {
	t.Helper()
	k, err := GenerateRequesterKey(testRand(20))
	if err != nil {
		t.Fatal(err)
	}
	b, err := MarshalRequesterKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return b, k
}

func testUserKeyFile(t testing.TB) ([]byte, *UserKey) {
	t.Helper()
	u, err := GenerateUserKey("alice", testRand(21))
	if err != nil {
		t.Fatal(err)
	}
	b, err := MarshalUserKey(u)
	if err != nil {
		t.Fatal(err)
	}
	return b, u
}

func testUserPublicFile(t testing.TB) ([]byte, *UserPublic) {
	t.Helper()
	_, u := testUserKeyFile(t)
	b, err := MarshalUserPublic(u.Public())
	if err != nil {
		t.Fatal(err)
	}
	return b, u.Public()
}

func testJudgeKeyFile(t testing.TB) ([]byte, *JudgeKey) {
	t.Helper()
	skey, vkey, err := NewJudgeKey("judge-a", testRand(22))
	if err != nil {
		t.Fatal(err)
	}
	k := &JudgeKey{SignerKey: skey, VerifierKey: vkey}
	b, err := MarshalJudgeKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return b, k
}

func TestRequesterKeyFile(t *testing.T) {
	b, k := testRequesterKeyFile(t)
	if !bytes.HasPrefix(b, []byte(RequesterKeyHeader+"\n# ")) || !bytes.Contains(b, []byte("SECRET")) || !bytes.Contains(b, []byte("0600")) {
		t.Fatalf("file:\n%s", b)
	}
	if !bytes.Contains(b, []byte("\npublic: "+FormatRequesterPublic(k.Public)+"\nprivate: ")) {
		t.Fatalf("file:\n%s", b)
	}
	got, err := ParseRequesterKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Private.Equal(k.Private) || !got.Public.Equal(k.Public) {
		t.Fatal("parse(marshal(k)) != k")
	}
	again, _ := MarshalRequesterKey(got)
	if !bytes.Equal(again, b) {
		t.Fatal("marshal(parse(b)) != b")
	}

	// The public text form and the public-file reader.
	s := FormatRequesterPublic(k.Public)
	for _, in := range [][]byte{[]byte(s), []byte(s + "\n"), b} {
		p, err := ParseRequesterPublicFile(in)
		if err != nil || !p.Equal(k.Public) {
			t.Errorf("ParseRequesterPublicFile(%.30q) = %v", in, err)
		}
	}

	if _, err := MarshalRequesterKey(&RequesterKey{Private: k.Private, Public: group.Base()}); err == nil {
		t.Error("mismatched public key accepted")
	}
	if _, err := MarshalRequesterKey(&RequesterKey{Private: group.Scalar()}); err == nil {
		t.Error("zero private key accepted")
	}
}

func TestUserKeyFile(t *testing.T) {
	b, u := testUserKeyFile(t)
	got, err := ParseUserKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "alice" || !got.KEM.Equal(u.KEM) || !got.Sign.Equal(u.Sign) {
		t.Fatal("parse(marshal(u)) != u")
	}
	if again, _ := MarshalUserKey(got); !bytes.Equal(again, b) {
		t.Fatal("marshal(parse(b)) != b")
	}

	pb, pub := testUserPublicFile(t)
	if !bytes.HasPrefix(pb, []byte(UserPublicHeader+"\nname: alice\nx25519: ")) {
		t.Fatalf("public form:\n%s", pb)
	}
	gotPub, err := ParseUserPublic(pb)
	if err != nil {
		t.Fatal(err)
	}
	if gotPub.Name != pub.Name || !gotPub.KEM.Equal(pub.KEM) || !gotPub.Verify.Equal(pub.Verify) {
		t.Fatal("parse(marshal(p)) != p")
	}
	if again, _ := MarshalUserPublic(gotPub); !bytes.Equal(again, pb) {
		t.Fatal("marshal(parse(b)) != b")
	}
}

func TestJudgeKeyFile(t *testing.T) {
	b, k := testJudgeKeyFile(t)
	got, err := ParseJudgeKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *k || got.Name() != "judge-a" {
		t.Fatalf("parse(marshal(k)) = %+v", got)
	}
	if again, _ := MarshalJudgeKey(got); !bytes.Equal(again, b) {
		t.Fatal("marshal(parse(b)) != b")
	}
	s, err := got.Signer()
	if err != nil {
		t.Fatal(err)
	}
	v, err := got.Verifier()
	if err != nil || v.Name() != s.Name() || v.KeyHash() != s.KeyHash() {
		t.Fatalf("signer and verifier disagree: %v", err)
	}
	list, err := ParseJudgeList([]byte("# trusted judges\n\n  " + k.VerifierKey + "  \n"))
	if err != nil || len(list) != 1 || list[0].Name() != "judge-a" {
		t.Fatalf("ParseJudgeList = %v, %v", list, err)
	}
	if _, err := ParseJudgeList([]byte(k.VerifierKey + "\nnonsense\n")); !errors.Is(err, ErrBadKeyFile) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("ParseJudgeList with a bad line: %v", err)
	}
	if _, err := ParseJudgeVerifier(k.SignerKey); err == nil || !strings.Contains(err.Error(), "secret signer key") {
		t.Errorf("signer key accepted as verifier: %v", err)
	}
}

// swapLine replaces the line starting with prefix.
func swapLine(t *testing.T, b []byte, prefix, line string) string {
	t.Helper()
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			lines[i] = line
			return strings.Join(lines, "\n")
		}
	}
	t.Fatalf("no line starting with %q", prefix)
	return ""
}

func TestKeyFileRefusals(t *testing.T) {
	req, _ := testRequesterKeyFile(t)
	_, otherReq := func() ([]byte, *RequesterKey) {
		k, _ := GenerateRequesterKey(testRand(99))
		return nil, k
	}()
	user, _ := testUserKeyFile(t)
	userPub, _ := testUserPublicFile(t)
	judge, _ := testJudgeKeyFile(t)
	_, otherJudge := func() (string, string) {
		s, v, _ := NewJudgeKey("judge-a", testRand(98))
		return s, v
	}()
	b64z := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	notCanonicalB64 := func(s string) string { // flip unused low bits before the padding
		return s[:len(s)-2] + string(s[len(s)-2]+1) + "="
	}
	field := func(b []byte, name string) string {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, name+": "); ok {
				return v
			}
		}
		t.Fatalf("no field %s", name)
		return ""
	}
	orderTwo := append([]byte{0xec}, append(bytes.Repeat([]byte{0xff}, 30), 0x7f)...)
	x25519Zero := make([]byte, 32)
	x25519High := append(bytes.Repeat([]byte{0}, 31), 0x80)
	x25519P := append([]byte{0xed}, append(bytes.Repeat([]byte{0xff}, 30), 0x7f)...)
	scalarL := []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}

	type parser func([]byte) error
	parseReq := func(b []byte) error { _, err := ParseRequesterKey(b); return err }
	parseUser := func(b []byte) error { _, err := ParseUserKey(b); return err }
	parsePub := func(b []byte) error { _, err := ParseUserPublic(b); return err }
	parseJudge := func(b []byte) error { _, err := ParseJudgeKey(b); return err }
	parseQ := func(b []byte) error { _, err := ParseRequesterPublicFile(b); return err }

	tests := []struct {
		name  string
		parse parser
		in    string
		want  string
	}{
		{"empty", parseReq, "", "first line"},
		{"wrong kind", parseReq, string(judge), "this is a keyquorum judge private key, not a requester key"},
		{"warrant as key", parseJudge, string(testBody(t)), "this is a keyquorum warrant"},
		{"future version", parseReq, strings.Replace(string(req), "v1", "v2", 1), "this build reads only"},
		{"edited comment", parseReq, strings.Replace(string(req), "SECRET", "secret", 1), "comment lines"},
		{"no comment", parseReq, RequesterKeyHeader + "\n" + string(req[strings.Index(string(req), "public:"):]), "comment lines"},
		{"no final newline", parseReq, strings.TrimSuffix(string(req), "\n"), "newline"},
		{"crlf", parseReq, strings.ReplaceAll(string(req), "\n", "\r\n"), "carriage returns"},
		{"crlf after header", parseReq, strings.Replace(string(req), "\n# Warrants", "\r\n# Warrants", 1), "carriage returns"},
		{"fields swapped", parseReq, swapLine(t, req, "public:", "private: x"), `expected field "public"`},
		{"missing field", parseReq, swapLine(t, req, "private:", "") + "", `expected field "private"`},
		{"truncated", parseReq, string(req[:bytes.Index(req, []byte("private:"))]), `missing field "private"`},
		{"extra line", parseReq, string(req) + "comment: hi\n", "unexpected text after the last field"},
		{"private not base64", parseReq, swapLine(t, req, "private:", "private: !!"), "private: not standard base64"},
		{"private short", parseReq, swapLine(t, req, "private:", "private: AAAA"), "3 bytes, want 32"},
		{"private not canonical", parseReq, swapLine(t, req, "private:", "private: "+b64z(scalarL)), "non-canonical"},
		{"private zero", parseReq, swapLine(t, req, "private:", "private: "+b64z(make([]byte, 32))), "zero"},
		{"private base64 not canonical", parseReq, swapLine(t, req, "private:", "private: "+notCanonicalB64(field(req, "private"))), "not standard base64"},
		{"public of another key", parseReq, swapLine(t, req, "public:", "public: "+FormatRequesterPublic(otherReq.Public)), "does not match the private key"},
		{"public low order", parseReq, swapLine(t, req, "public:", "public: "+b64z(orderTwo)), "small order"},
		{"requester public bad", parseQ, "AAAA\n", "not standard base64 of 32 bytes"},
		{"requester public two newlines", parseQ, FormatRequesterPublic(otherReq.Public) + "\n\n", "not standard base64"},
		{"requester public identity", parseQ, b64z(group.PointBytes(group.Point())), "small order"},

		{"user bad name", parseUser, swapLine(t, user, "name:", "name: alice smith"), `name "alice smith"`},
		{"user kem mismatch", parseUser, swapLine(t, user, "x25519-public:", "x25519-public: "+b64z(orderTwo)), "x25519-public does not match"},
		{"user sign mismatch", parseUser, swapLine(t, user, "ed25519-public:", "ed25519-public: "+b64z(orderTwo)), "ed25519-public does not match"},
		{"user seed short", parseUser, swapLine(t, user, "ed25519-seed:", "ed25519-seed: AAAA"), "ed25519-seed: 3 bytes"},
		{"user public as private", parseUser, string(userPub), "this is a keyquorum user public key, not a user key"},

		{"public zero x25519", parsePub, swapLine(t, userPub, "x25519:", "x25519: "+b64z(x25519Zero)), "low order"},
		{"public x25519 top bit", parsePub, swapLine(t, userPub, "x25519:", "x25519: "+b64z(x25519High)), "top bit"},
		{"public x25519 = p", parsePub, swapLine(t, userPub, "x25519:", "x25519: "+b64z(x25519P)), "not reduced"},
		{"public ed25519 low order", parsePub, swapLine(t, userPub, "ed25519:", "ed25519: "+b64z(orderTwo)), "ed25519: point of small order"},
		{"public bad name", parsePub, swapLine(t, userPub, "name:", "name: "), `name ""`},
		{"public comment", parsePub, strings.Replace(string(userPub), "\n", "\n# hello\n", 1), `expected field "name"`},

		{"judge mismatched pair", parseJudge, swapLine(t, judge, "verifier:", "verifier: "+otherJudge), "not the public half"},
		{"judge bad signer", parseJudge, swapLine(t, judge, "signer:", "signer: PRIVATE+KEY+x"), "not a note signer key"},
		{"judge signer hash", parseJudge, swapLine(t, judge, "signer:", "signer: "+strings.Replace(field(judge, "signer"), "+judge-a+", "+judge-a+0", 1)), "not a note signer key"},
		{"judge signer base64 not canonical", parseJudge, swapLine(t, judge, "signer:", "signer: "+notCanonicalB64(field(judge, "signer"))), "signer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse([]byte(tc.in))
			if !errors.Is(err, ErrBadKeyFile) {
				t.Fatalf("got %v; want ErrBadKeyFile", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// fuzzRoundTrip is the property every key file parser must have: whatever
// parses marshals back to the same bytes.
func fuzzRoundTrip[T any](f *testing.F, seeds [][]byte, parse func([]byte) (T, error), marshal func(T) ([]byte, error)) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parse(b)
		if err != nil {
			if !errors.Is(err, ErrBadKeyFile) {
				t.Fatalf("error does not wrap ErrBadKeyFile: %v", err)
			}
			return
		}
		out, err := marshal(v)
		if err != nil {
			t.Fatalf("parsed value does not marshal: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("marshal(parse(b)) != b:\n%q\n%q", b, out)
		}
	})
}

func FuzzParseRequesterKey(f *testing.F) {
	b, _ := testRequesterKeyFile(f)
	judge, _ := testJudgeKeyFile(f)
	fuzzRoundTrip(f, [][]byte{b, b[:len(b)-1], judge, []byte(RequesterKeyHeader + "\n")}, ParseRequesterKey, MarshalRequesterKey)
}

func FuzzParseUserKey(f *testing.F) {
	b, _ := testUserKeyFile(f)
	pub, _ := testUserPublicFile(f)
	fuzzRoundTrip(f, [][]byte{b, pub, []byte(UserKeyHeader + "\n")}, ParseUserKey, MarshalUserKey)
}

func FuzzParseUserPublic(f *testing.F) {
	b, _ := testUserPublicFile(f)
	user, _ := testUserKeyFile(f)
	fuzzRoundTrip(f, [][]byte{b, user, []byte(UserPublicHeader + "\nname: a\n")}, ParseUserPublic, MarshalUserPublic)
}

func FuzzParseJudgeKey(f *testing.F) {
	b, _ := testJudgeKeyFile(f)
	req, _ := testRequesterKeyFile(f)
	fuzzRoundTrip(f, [][]byte{b, req, []byte(JudgeKeyHeader + "\n")}, ParseJudgeKey, MarshalJudgeKey)
}

func FuzzParseRequesterPublic(f *testing.F) {
	b, k := testRequesterKeyFile(f)
	s := FormatRequesterPublic(k.Public)
	for _, seed := range []string{s, s + "\n", string(b), "AAAA", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseRequesterPublic(s)
		if err != nil {
			if !errors.Is(err, ErrBadKeyFile) {
				t.Fatalf("error does not wrap ErrBadKeyFile: %v", err)
			}
		} else if FormatRequesterPublic(p) != s {
			t.Fatalf("format(parse(s)) != s: %q", s)
		}
		// The file reader must never panic, and agrees with the string parser on one line.
		if q, err := ParseRequesterPublicFile([]byte(s)); err == nil && !strings.HasPrefix(s, RequesterKeyHeader) {
			if FormatRequesterPublic(q) != strings.TrimSuffix(s, "\n") {
				t.Fatalf("file form %q read as %s", s, FormatRequesterPublic(q))
			}
		}
	})
}

func FuzzParseJudgeList(f *testing.F) {
	_, k := testJudgeKeyFile(f)
	f.Add([]byte("# judges\n" + k.VerifierKey + "\n"))
	f.Add([]byte(k.SignerKey))
	f.Add([]byte("\n\n#\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		list, err := ParseJudgeList(b)
		if err != nil {
			if !errors.Is(err, ErrBadKeyFile) {
				t.Fatalf("error does not wrap ErrBadKeyFile: %v", err)
			}
			return
		}
		for _, v := range list {
			if v == nil || v.Name() == "" {
				t.Fatal("empty verifier in list")
			}
		}
	})
}

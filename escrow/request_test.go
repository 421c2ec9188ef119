package escrow

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
)

// opaqueWarrant stands in for a signed warrant note; the request treats the
// warrant as opaque bytes.
var opaqueWarrant = []byte("keyquorum warrant v1\nid: test-1\n\n— judge.example abcd\n")

var requestTime = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

func TestDecryptionRequestRoundTrip(t *testing.T) {
	rand := detReader("request round trip")
	tg := dealTestGroup(t, 2, 3, 1, rand)
	envs := [][]byte{
		mustSeal(t, tg, randomSessionKey(t, rand), makeContext(tg, "alice", "bob", 1)).Marshal(),
		mustSeal(t, tg, randomSessionKey(t, rand), makeContext(tg, "bob", "alice", 2)).Marshal(),
	}
	req, err := GenerateRequesterKey(rand)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewDecryptionRequest(opaqueWarrant, envs, req, requestTime.Add(1500*time.Millisecond), rand)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.VerifySignature(req.Public); err != nil {
		t.Fatalf("fresh request: %v", err)
	}
	b := r.Marshal()
	got, err := ParseDecryptionRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Marshal(), b) {
		t.Fatal("Marshal(ParseDecryptionRequest(b)) != b")
	}
	if got.ID != r.ID || !got.Created.Equal(requestTime.Add(time.Second)) || !bytes.Equal(got.Warrant, opaqueWarrant) ||
		len(got.Envelopes) != 2 || !bytes.Equal(got.Envelopes[0], envs[0]) || !bytes.Equal(got.Envelopes[1], envs[1]) {
		t.Fatalf("round trip changed the request: %+v", got)
	}
	if err := got.VerifySignature(req.Public); err != nil {
		t.Fatalf("parsed request: %v", err)
	}
	// Signing is deterministic given the request.
	again := *r
	again.Sign(req)
	if !bytes.Equal(again.Marshal(), b) {
		t.Error("re-signing the same request gave other bytes")
	}
}

func TestDecryptionRequestTampered(t *testing.T) {
	rand := detReader("request tampered")
	tg := dealTestGroup(t, 2, 3, 1, rand)
	env := mustSeal(t, tg, randomSessionKey(t, rand), makeContext(tg, "alice", "bob", 1)).Marshal()
	req, _ := GenerateRequesterKey(rand)
	r, err := NewDecryptionRequest(opaqueWarrant, [][]byte{env}, req, requestTime, rand)
	if err != nil {
		t.Fatal(err)
	}
	b := r.Marshal()
	// version(1) id(16) created(8) warrantlen(4) warrant count(4) len(2) envelope signature(64)
	w := 1 + 16 + 8 + 4
	e := w + len(opaqueWarrant) + 4 + 2
	for _, c := range []struct {
		name string
		at   int
	}{
		{"request id", 5},
		{"creation time", 24},
		{"warrant text", w + 25},
		{"warrant signature line", w + len(opaqueWarrant) - 2},
		{"envelope context", e + 10},
		{"envelope U", e + len(env) - 144},
		{"envelope proof", e + len(env) - 1},
		{"signature challenge", len(b) - 64},
		{"signature response", len(b) - 1},
	} {
		p, err := ParseDecryptionRequest(flipBit(b, c.at))
		if err != nil {
			// A flip in the signature may make a scalar non-canonical;
			// that is a parse refusal, also fine.
			if errors.Is(err, ErrBadRequest) {
				continue
			}
			t.Fatalf("%s: %v", c.name, err)
		}
		if err := p.VerifySignature(req.Public); !errors.Is(err, ErrBadRequestSignature) {
			t.Errorf("%s altered after signing: got %v, want ErrBadRequestSignature", c.name, err)
		}
	}
	// Tampering in memory, after signing, is caught the same way.
	m := *r
	m.Envelopes = [][]byte{flipBit(env, 40)}
	if err := m.VerifySignature(req.Public); !errors.Is(err, ErrBadRequestSignature) {
		t.Errorf("envelope swapped after signing: got %v", err)
	}
	other, _ := GenerateRequesterKey(rand)
	if err := r.VerifySignature(other.Public); !errors.Is(err, ErrBadRequestSignature) {
		t.Errorf("checked against another requester key: got %v, want ErrBadRequestSignature", err)
	}
}

// TestRequesterKeySubstitution is the attack the request signature exists
// for. With a warrant for Alice's session, the investigator has the
// warrant name Q' = U_Bob − U_Alice + q'·G. The trustees' answers for
// Alice's envelope would then be x_i·(U_Alice + Q') = x_i·(U_Bob + q'·G),
// which combine to S_Bob + q'·X_e: Bob's session, opened with q'.
func TestRequesterKeySubstitution(t *testing.T) {
	rand := detReader("substitution")
	tg := dealTestGroup(t, 3, 5, 1, rand)
	KA, KB := randomSessionKey(t, rand), randomSessionKey(t, rand)
	envA := mustSeal(t, tg, KA, makeContext(tg, "alice", "bob", 0xa))
	envB := mustSeal(t, tg, KB, makeContext(tg, "bob", "carol", 0xb))

	qPrime, err := group.RandomScalar(rand)
	if err != nil {
		t.Fatal(err)
	}
	QPrime := group.Point().Sub(kU(envB), kU(envA))
	QPrime.Add(QPrime, group.Point().Mul(qPrime, nil))

	// The guard. The attacker knows only q'; nobody knows log_G Q'.
	honest := NewRequesterKey(qPrime) // signs as q'·G
	r, err := NewDecryptionRequest(opaqueWarrant, [][]byte{envA.Marshal()}, honest, requestTime, rand)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.VerifySignature(QPrime); !errors.Is(err, ErrBadRequestSignature) {
		t.Fatalf("request signed with q', checked against Q': got %v, want ErrBadRequestSignature", err)
	}
	claimed := &RequesterKey{Private: qPrime, Public: QPrime} // claims Q', signs with q'
	r.Sign(claimed)
	if err := r.VerifySignature(QPrime); !errors.Is(err, ErrBadRequestSignature) {
		t.Fatalf("request signed with q' claiming Q': got %v, want ErrBadRequestSignature", err)
	}
	b, _ := ParseDecryptionRequest(r.Marshal())
	if err := b.VerifySignature(QPrime); !errors.Is(err, ErrBadRequestSignature) {
		t.Fatalf("parsed request: got %v, want ErrBadRequestSignature", err)
	}

	// Why it matters: trustees that skipped the check and answered for
	// Alice's envelope, re-encrypted to Q', each with a valid proof...
	ps := partialsFor(t, tg, envA, QPrime, []int{1, 3, 5}, rand)
	for _, p := range ps {
		if err := p.Verify(tg.PublicShares[p.Trustee], envA, QPrime); err != nil {
			t.Fatalf("trustee %d: %v", p.Trustee, err)
		}
	}
	// ...hand Bob's session to the holder of q'.
	V := lagrangeAtZero(t, ps)
	S := group.Point().Sub(V, group.Point().Mul(qPrime, tg.Key))
	wantS := group.Point().Mul(group.HashToScalar(labelEnvelopeR, KB, envB.ContextBytes()), tg.Key)
	if !S.Equal(wantS) {
		t.Fatal("x·(U_Alice + Q') − q'·X_e is not S_Bob; the test no longer demonstrates the attack")
	}
	got, err := openWithS(envB, S, tg.Key)
	if err != nil || !bytes.Equal(got, KB) {
		t.Fatalf("the unguarded attack should open Bob's envelope: %v", err)
	}
	// Combine, asked for Alice's envelope, does not return Bob's key: the
	// combined value does not open Alice's envelope.
	res, err := Combine(tg.Group, envA, claimed, ps)
	if res != nil || !errors.Is(err, ErrCombineCheck) {
		t.Fatalf("Combine for Alice with Q': got %v, %v; want ErrCombineCheck", res, err)
	}
}

func TestParseDecryptionRequestRefusals(t *testing.T) {
	rand := detReader("request refusals")
	tg := dealTestGroup(t, 2, 3, 1, rand)
	env := mustSeal(t, tg, randomSessionKey(t, rand), makeContext(tg, "alice", "bob", 1)).Marshal()
	req, _ := GenerateRequesterKey(rand)
	r, err := NewDecryptionRequest(opaqueWarrant, [][]byte{env}, req, requestTime, rand)
	if err != nil {
		t.Fatal(err)
	}
	good := r.Marshal()
	w := 1 + 16 + 8                   // warrant length offset
	cnt := w + 4 + len(opaqueWarrant) // envelope count offset
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	l := []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	cases := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"version 0", mod(func(b []byte) []byte { b[0] = 0; return b })},
		{"version 2", mod(func(b []byte) []byte { b[0] = 2; return b })},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"creation time out of range", mod(func(b []byte) []byte { b[17] = 0x80; return b })},
		{"warrant length past the end", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[w:], uint32(len(b))); return b })},
		{"warrant length over the limit", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[w:], MaxWarrantLen+1); return b })},
		{"zero envelopes", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[cnt:], 0); return b })},
		{"envelope count past the end", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[cnt:], 2); return b })},
		{"envelope count over the limit", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[cnt:], MaxRequestSessions+1); return b })},
		{"envelope length 0", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[cnt+4:], 0); return b })},
		{"envelope length past the end", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[cnt+4:], uint16(len(b))); return b })},
		{"non-canonical signature scalar", mod(func(b []byte) []byte { copy(b[len(b)-32:], l); return b })},
	}
	for _, c := range cases {
		if _, err := ParseDecryptionRequest(c.in); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: got %v, want ErrBadRequest", c.name, err)
		}
	}
	for n := 0; n < len(good); n++ {
		if _, err := ParseDecryptionRequest(good[:n]); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("truncated to %d bytes: got %v, want ErrBadRequest", n, err)
		}
	}
}

func TestNewDecryptionRequestRefusals(t *testing.T) {
	rand := detReader("new request refusals")
	req, _ := GenerateRequesterKey(rand)
	one := [][]byte{bytes.Repeat([]byte{1}, 200)}
	if _, err := NewDecryptionRequest(opaqueWarrant, nil, req, requestTime, rand); err == nil {
		t.Error("request with no envelopes built")
	}
	if _, err := NewDecryptionRequest(opaqueWarrant, make([][]byte, MaxRequestSessions+1), req, requestTime, rand); err == nil {
		t.Error("request over the envelope limit built")
	}
	if _, err := NewDecryptionRequest(make([]byte, MaxWarrantLen+1), one, req, requestTime, rand); err == nil {
		t.Error("request with an oversized warrant built")
	}
}

// TestNewDecryptionRequestOutputParses: whatever NewDecryptionRequest
// builds, ParseDecryptionRequest must read back; a constructor must refuse
// what the trustees' parser will refuse, with an error naming the cause,
// rather than build a request that fails far away as "malformed".
func TestNewDecryptionRequestOutputParses(t *testing.T) {
	rand := detReader("new request parses")
	req, _ := GenerateRequesterKey(rand)
	for _, c := range []struct {
		name      string
		envelopes [][]byte
		now       time.Time
	}{
		{"empty envelope", [][]byte{{}}, requestTime},
		{"2000-byte envelope", [][]byte{make([]byte, 2000)}, requestTime},
		{"70000-byte envelope (length overflows uint16)", [][]byte{make([]byte, 70000)}, requestTime},
		{"created before 1970", [][]byte{make([]byte, 200)}, time.Unix(-10, 0)},
	} {
		r, err := NewDecryptionRequest(opaqueWarrant, c.envelopes, req, c.now, rand)
		if err != nil {
			continue // refused up front: fine
		}
		if _, err := ParseDecryptionRequest(r.Marshal()); err != nil {
			t.Errorf("%s: NewDecryptionRequest built a request ParseDecryptionRequest refuses: %v", c.name, err)
		}
	}
}

// TestRequesterKeyRefusesBadPoints: the requester key Q is read from
// outside (the warrant, key files) through group.ParsePoint, which must
// refuse small-order, torsioned and non-canonical encodings.
func TestRequesterKeyRefusesBadPoints(t *testing.T) {
	for _, bp := range badPoints(t) {
		if _, err := group.ParsePoint(bp.enc); !errors.Is(err, bp.want) {
			t.Errorf("Q = %s: got %v, want %v", bp.name, err, bp.want)
		}
	}

	// Why: a trustee answering for Q + T, T of order 8, returns
	// V = x_i·(U+Q) + x_i·T, and l·V = x_i·(l·T) depends only on x_i mod 8.
	// One answer leaks three bits of the share.
	rand := detReader("torsion in Q")
	tg := dealTestGroup(t, 2, 3, 1, rand)
	env := mustSeal(t, tg, randomSessionKey(t, rand), makeContext(tg, "alice", "bob", 1))
	req, err := GenerateRequesterKey(rand)
	if err != nil {
		t.Fatal(err)
	}
	o8, _ := hex.DecodeString(order8Hex)
	T := group.Point()
	if err := T.UnmarshalBinary(o8); err != nil {
		t.Fatal(err)
	}
	Qt := group.Point().Add(req.Public, T)
	if _, err := group.ParsePoint(group.PointBytes(Qt)); !errors.Is(err, group.ErrNotInSubgroup) {
		t.Fatalf("torsioned Q: got %v, want group.ErrNotInSubgroup", err)
	}
	if _, err := PartialDecrypt(1, tg.Shares[1], env, Qt, rand); !errors.Is(err, group.ErrNotInSubgroup) {
		t.Fatalf("PartialDecrypt with a torsioned Q: got %v, want group.ErrNotInSubgroup", err)
	}
	// What a trustee that skipped the check would have answered.
	p := &PartialDecryption{}
	p.setV(group.Point().Mul(tg.Shares[1], group.Point().Add(kU(env), Qt)))
	timesL := func(P kyber.Point) kyber.Point { // l·P = (l−1)·P + P
		lm1 := group.Scalar().Neg(group.Scalar().One())
		R := group.Point().Mul(lm1, P)
		return R.Add(R, P)
	}
	lV, lT := timesL(kV(p)), timesL(T)
	leaked := -1
	for m := int64(0); m < 8; m++ {
		if group.Point().Mul(group.Scalar().SetInt64(m), lT).Equal(lV) {
			leaked = int(m)
		}
	}
	if want := int(group.ScalarBytes(tg.Shares[1])[0] & 7); leaked != want {
		t.Fatalf("leaked %d, x_1 mod 8 = %d; the test no longer demonstrates the leak", leaked, want)
	}
}

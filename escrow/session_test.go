package escrow

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

type sessionFixture struct {
	tg                         *testGroup
	epoch                      uint32
	rand                       io.Reader
	alice, bob, carol          *UserKey
	alicePub, bobPub, carolPub *UserPublic
	authors                    map[string]*UserPublic
	keys                       *SessionKeys // Alice's side of sess
	sess                       *Session     // Alice to Bob
	other                      *Session     // a second Alice to Bob session
}

func newSessionFixture(t *testing.T, seed string) *sessionFixture {
	t.Helper()
	rand := detReader(seed)
	f := &sessionFixture{rand: rand, epoch: 4}
	f.tg = dealTestGroup(t, 3, 5, f.epoch, rand)
	var err error
	for _, u := range []struct {
		name string
		dst  **UserKey
	}{{"alice", &f.alice}, {"bob", &f.bob}, {"carol", &f.carol}} {
		if *u.dst, err = GenerateUserKey(u.name, rand); err != nil {
			t.Fatal(err)
		}
	}
	f.alicePub, f.bobPub, f.carolPub = f.alice.Public(), f.bob.Public(), f.carol.Public()
	f.authors = map[string]*UserPublic{"alice": f.alicePub, "bob": f.bobPub, "carol": f.carolPub}
	if f.keys, f.sess, err = StartSession(f.alice, f.bobPub, f.epoch, f.tg.EK, sessionStart, rand); err != nil {
		t.Fatal(err)
	}
	if _, f.other, err = StartSession(f.alice, f.bobPub, f.epoch, f.tg.EK, sessionStart, rand); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSessionRoundTrip(t *testing.T) {
	f := newSessionFixture(t, "session round trip")
	seen := SeenSessions{}
	bobKeys, err := AcceptSession(f.bob, f.alicePub, f.tg.EK, f.sess, seen)
	if err != nil {
		t.Fatalf("honest session refused: %v", err)
	}
	if !bytes.Equal(bobKeys.Key, f.keys.Key) {
		t.Fatal("Bob opened a different session key")
	}
	m1, err := f.keys.Seal(f.alice, 1, "hello bob")
	if err != nil {
		t.Fatal(err)
	}
	m2, err := bobKeys.Seal(f.bob, 1, "hello alice")
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := bobKeys.Open(m1, f.authors); err != nil || pt.Text != "hello bob" || pt.From != "alice" {
		t.Fatalf("Bob reads %+v, %v", pt, err)
	}
	if pt, err := f.keys.Open(m2, f.authors); err != nil || pt.Text != "hello alice" || pt.From != "bob" {
		t.Fatalf("Alice reads %+v, %v", pt, err)
	}
	// Same seq, two directions: distinct nonces, so distinct ciphertexts
	// even for equal texts.
	a, _ := f.keys.Seal(f.alice, 7, "same")
	b, _ := bobKeys.Seal(f.bob, 7, "same")
	if bytes.Equal(a.Sealed[:16], b.Sealed[:16]) {
		t.Error("both directions produced the same keystream")
	}
	if _, err := f.keys.Seal(f.carol, 1, "hi"); err == nil {
		t.Error("a non-party sealed a message into the session")
	}
}

func TestAcceptSessionRefusals(t *testing.T) {
	f := newSessionFixture(t, "accept refusals")
	ctx, err := ParseContext(f.sess.Context)
	if err != nil {
		t.Fatal(err)
	}
	with := func(env []byte) *Session {
		s := *f.sess
		s.Envelope = env
		return &s
	}
	otherK := randomSessionKey(t, f.rand)
	envOtherK := mustSeal(t, f.tg, otherK, ctx).Marshal()
	random := randomSessionKey(t, f.rand)
	random = append(random, randomSessionKey(t, f.rand)...)

	cases := []struct {
		name string
		s    *Session
		want error
	}{
		{"stripped (nil)", with(nil), ErrEnvelopeMissing},
		{"stripped (empty)", with([]byte{}), ErrEnvelopeMissing},
		{"random bytes", with(random), ErrEnvelopeMismatch},
		{"one bit flipped in U", with(flipBit(f.sess.Envelope, len(f.sess.Envelope)-144)), ErrEnvelopeMismatch},
		{"one bit flipped in C", with(flipBit(f.sess.Envelope, len(f.sess.Envelope)-100)), ErrEnvelopeMismatch},
		{"one bit flipped in the proof", with(flipBit(f.sess.Envelope, len(f.sess.Envelope)-1)), ErrEnvelopeMismatch},
		{"truncated", with(f.sess.Envelope[:len(f.sess.Envelope)-1]), ErrEnvelopeMismatch},
		{"sealed with another K", with(envOtherK), ErrEnvelopeMismatch},
		{"another session's envelope (replayed)", with(f.other.Envelope), ErrEnvelopeMismatch},
	}
	for _, c := range cases {
		_, err := AcceptSession(f.bob, f.alicePub, f.tg.EK, c.s, SeenSessions{})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}

	// Addressed to Bob, opened by Carol.
	if _, err := AcceptSession(f.carol, f.alicePub, f.tg.EK, f.sess, nil); !errors.Is(err, ErrNotForMe) {
		t.Errorf("Carol accepting Bob's session: got %v, want ErrNotForMe", err)
	}
	// Checked against the wrong sender.
	if _, err := AcceptSession(f.bob, f.carolPub, f.tg.EK, f.sess, nil); err == nil {
		t.Error("session from Alice accepted as a session from Carol")
	}
	// The provider rewrites the context (another start time): the HPKE
	// info no longer matches, so K does not open.
	moved := *f.sess
	moved.Context = flipBit(f.sess.Context, len(f.sess.Context)-1)
	if _, err := AcceptSession(f.bob, f.alicePub, f.tg.EK, &moved, nil); err == nil {
		t.Error("session with an altered context accepted")
	}

	// Replay: the same session accepted twice with one SeenSessions.
	seen := SeenSessions{}
	if _, err := AcceptSession(f.bob, f.alicePub, f.tg.EK, f.sess, seen); err != nil {
		t.Fatalf("first delivery refused: %v", err)
	}
	if _, err := AcceptSession(f.bob, f.alicePub, f.tg.EK, f.sess, seen); !errors.Is(err, ErrReplayedSession) {
		t.Errorf("second delivery: got %v, want ErrReplayedSession", err)
	}
	// A refused session is not remembered: a stripped copy first must not
	// poison the id for the genuine one.
	seen2 := SeenSessions{}
	if _, err := AcceptSession(f.bob, f.alicePub, f.tg.EK, with(nil), seen2); !errors.Is(err, ErrEnvelopeMissing) {
		t.Fatal(err)
	}
	if _, err := AcceptSession(f.bob, f.alicePub, f.tg.EK, f.sess, seen2); err != nil {
		t.Errorf("genuine session after a refused copy: %v", err)
	}
}

// TestAcceptSessionEnvelopeUnderOtherGroupKey: a sender's client that
// escrows to a key of its own choosing (the context names that key, and
// the envelope is honestly computed under it) has forged the escrow field
// just as surely as one that flips a bit. The recipient must refuse it and
// say so with ErrEnvelopeMismatch, the error a caller tests for.
func TestAcceptSessionEnvelopeUnderOtherGroupKey(t *testing.T) {
	f := newSessionFixture(t, "other group key")
	rogue := dealTestGroup(t, 1, 1, f.epoch, f.rand)
	_, s, err := StartSession(f.alice, f.bobPub, f.epoch, ek(rogue.Key), sessionStart, f.rand)
	if err != nil {
		t.Fatal(err)
	}
	_, err = AcceptSession(f.bob, f.alicePub, f.tg.EK, s, nil)
	if err == nil {
		t.Fatal("session escrowed to a rogue key accepted")
	}
	if !errors.Is(err, ErrEnvelopeMismatch) {
		t.Errorf("session escrowed to a rogue group key: got %q, want an error wrapping ErrEnvelopeMismatch", err)
	}
}

// TestRecoveredKeyCannotForge: the investigator who recovers K through the
// trustees reads the session but cannot write into it.
func TestRecoveredKeyCannotForge(t *testing.T) {
	f := newSessionFixture(t, "cannot forge")
	bobKeys, err := AcceptSession(f.bob, f.alicePub, f.tg.EK, f.sess, nil)
	if err != nil {
		t.Fatal(err)
	}
	m1, _ := f.keys.Seal(f.alice, 1, "meet at noon")
	m2, _ := bobKeys.Seal(f.bob, 2, "ok")

	env := mustParseEnvelope(t, f.sess.Envelope)
	req, err := GenerateRequesterKey(f.rand)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Combine(f.tg.Group, env, req, partialsFor(t, f.tg, env, req.Public, []int{2, 4, 5}, f.rand))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := KeysFromRecovered(env, res.Key)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []Message{m1, m2} {
		if _, err := rec.Open(m, f.authors); err != nil {
			t.Fatalf("investigator cannot read message %d: %v", m.Seq, err)
		}
	}

	// The investigator makes a key pair named "alice" and writes as her.
	fakeAlice, err := GenerateUserKey("alice", f.rand)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := rec.Seal(fakeAlice, 3, "I confess")
	if err != nil {
		t.Fatalf("sealing with the recovered key: %v", err)
	}
	for who, keys := range map[string]*SessionKeys{"investigator": rec, "bob": bobKeys, "alice": f.keys} {
		if _, err := keys.Open(forged, f.authors); !errors.Is(err, ErrForgedMessage) {
			t.Errorf("%s opening the forged message: got %v, want ErrForgedMessage", who, err)
		}
	}
	// Moving a genuine message to another seq or author is caught too.
	moved := m1
	moved.Seq = 9
	if _, err := bobKeys.Open(moved, f.authors); err == nil {
		t.Error("message moved to another seq opened")
	}
	relabelled := m1
	relabelled.From = "carol"
	if _, err := bobKeys.Open(relabelled, f.authors); !errors.Is(err, ErrForgedMessage) {
		t.Errorf("message relabelled to a non-party: got %v, want ErrForgedMessage", err)
	}
	if _, err := bobKeys.Open(m1, map[string]*UserPublic{}); err == nil {
		t.Error("message opened without its author's public key")
	}
}

func TestCheckSessionTiming(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	ctx := &Context{Epoch: 3, Sender: "alice", Recipient: "bob", Start: now.Add(-time.Minute)}
	if err := CheckSessionTiming(ctx, 3, now, 5*time.Minute); err != nil {
		t.Fatalf("current session refused: %v", err)
	}
	for name, c := range map[string]struct {
		start time.Time
		epoch uint32
	}{
		"backdated a week":    {now.AddDate(0, 0, -7), 3},
		"dated in the future": {now.Add(time.Hour), 3},
		"retired epoch":       {now, 2},
	} {
		ctx := &Context{Epoch: c.epoch, Sender: "alice", Recipient: "bob", Start: c.start}
		if err := CheckSessionTiming(ctx, 3, now, 5*time.Minute); !errors.Is(err, ErrSessionTiming) {
			t.Errorf("%s: got %v, want ErrSessionTiming", name, err)
		}
	}
}

func TestContextRefusesSelfSession(t *testing.T) {
	c := &Context{Epoch: 1, Sender: "alice", Recipient: "alice", Start: time.Unix(1e9, 0)}
	if _, err := c.Marshal(); !errors.Is(err, ErrBadContext) {
		t.Fatalf("sender == recipient: got %v, want ErrBadContext", err)
	}
}

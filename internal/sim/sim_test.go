package sim

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
)

func testKey(t *testing.T) KeyAt {
	t.Helper()
	x, err := group.RandomScalar(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	X := group.Point().Mul(x, nil)
	return func(time.Time) (uint32, kyber.Point, error) { return 1, X, nil }
}

func generate(t *testing.T, seed uint64, keyAt KeyAt) *Traffic {
	t.Helper()
	users, err := GenerateUsers(5, seed)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Generate(Config{Users: 5, Days: 6, Seed: seed, Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, users, keyAt)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestGenerateIsDeterministicForASeed(t *testing.T) {
	keyAt := testKey(t)
	a, b := generate(t, 7, keyAt), generate(t, 7, keyAt)
	c := generate(t, 8, keyAt)
	if len(a.Sessions) == 0 || len(a.Sessions) != len(b.Sessions) {
		t.Fatalf("session counts %d and %d", len(a.Sessions), len(b.Sessions))
	}
	for i := range a.Sessions {
		x, y := a.Sessions[i].Session, b.Sessions[i].Session
		// Everything but the HPKE encapsulation is reproducible.
		if !bytes.Equal(x.Context, y.Context) || !bytes.Equal(x.Envelope, y.Envelope) || len(x.Messages) != len(y.Messages) {
			t.Fatalf("session %d differs between runs with the same seed", i)
		}
		for j := range x.Messages {
			if !bytes.Equal(x.Messages[j].Sealed, y.Messages[j].Sealed) {
				t.Fatalf("session %d message %d differs", i, j)
			}
		}
	}
	if bytes.Equal(a.Sessions[0].Session.Context, c.Sessions[0].Session.Context) {
		t.Fatal("a different seed gave the same first session")
	}
}

func TestRogueSessionsAreRejectedAndHonestOnesAccepted(t *testing.T) {
	tr := generate(t, 3, testKey(t))
	var rogue, honest int
	for _, c := range tr.Sessions {
		switch {
		case c.Context.Sender == RogueName:
			rogue++
			if c.Accepted {
				t.Errorf("rogue session with %s field accepted", c.Tampering)
			}
			want := map[Tampering]error{Stripped: escrow.ErrEnvelopeMissing, Forged: escrow.ErrEnvelopeMismatch, Backdated: escrow.ErrSessionTiming}[c.Tampering]
			if want == nil {
				t.Fatalf("rogue session with tampering %q", c.Tampering)
			}
			if !errors.Is(c.Rejection, want) {
				t.Errorf("%s field rejected with %v, want %v", c.Tampering, c.Rejection, want)
			}
		default:
			honest++
			if !c.Accepted {
				t.Errorf("honest session rejected: %v", c.Rejection)
			}
		}
	}
	if rogue < 3 || honest == 0 {
		t.Fatalf("rogue %d honest %d", rogue, honest)
	}
}

func TestCaptureRoundTrip(t *testing.T) {
	tr := generate(t, 5, testKey(t))
	var buf bytes.Buffer
	if err := WriteCapture(&buf, 5, tr); err != nil {
		t.Fatal(err)
	}
	c, err := ReadCapture(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Seed != 5 || len(c.Sessions) != len(tr.Sessions) || len(c.Users) != len(tr.Users) {
		t.Fatalf("read back seed %d, %d sessions, %d users", c.Seed, len(c.Sessions), len(c.Users))
	}
	for i, s := range c.Sessions {
		if !bytes.Equal(s.Envelope, tr.Sessions[i].Session.Envelope) || s.Accepted != tr.Sessions[i].Accepted {
			t.Fatalf("session %d changed in the round trip", i)
		}
	}
	var again bytes.Buffer
	if err := WriteCapture(&again, 5, tr); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Fatal("writing the same traffic twice differs")
	}
}

func TestReadCaptureRefusals(t *testing.T) {
	cases := map[string]string{
		"empty":         "",
		"wrong format":  `{"format":"other v9","seed":1,"users":[]}`,
		"unknown field": `{"format":"keyquorum capture v1","seed":1,"users":[],"extra":1}`,
		"bad user key":  `{"format":"keyquorum capture v1","seed":1,"users":[{"name":"a","kem":"AAAA","verify":"AAAA"}]}`,
		"bad session":   `{"format":"keyquorum capture v1","seed":1,"users":[]}` + "\n" + `{"context":5}`,
	}
	for name, in := range cases {
		_, err := ReadCapture(strings.NewReader(in))
		if !errors.Is(err, ErrBadCapture) {
			t.Errorf("%s: got %v, want ErrBadCapture", name, err)
		}
	}
}

func TestGenerateRefusals(t *testing.T) {
	if _, err := GenerateUsers(2, 1); err == nil {
		t.Error("two users accepted")
	}
	users, _ := GenerateUsers(3, 1)
	if _, err := Generate(Config{Users: 3, Days: 0}, users, testKey(t)); err == nil {
		t.Error("zero days accepted")
	}
}

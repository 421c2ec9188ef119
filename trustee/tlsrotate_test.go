package trustee

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"golang.org/x/mod/sumdb/note"
)

// pinGroup returns a group file listing ids as its trustees.
func pinGroup(t testing.TB, ids ...*Identity) *escrow.GroupFile {
	t.Helper()
	var names []string
	for _, id := range ids {
		names = append(names, id.Name)
	}
	t0 := identityTime.Truncate(24 * time.Hour)
	g, _, err := escrow.Deal(names, 2, []escrow.GroupEpoch{{Epoch: 1, ValidFrom: t0, ValidUntil: t0.Add(48 * time.Hour)}}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		g.Trustees[i] = id.Descriptor().Member(i + 1)
	}
	return g
}

func TestRotateTLS(t *testing.T) {
	s, _ := newBoltStore(t)
	v := mustVault(t, s)
	old := testIdentity(t, "trustee-1", "127.0.0.1:7401")
	if err := v.SaveIdentity(old); err != nil {
		t.Fatal(err)
	}
	other := testIdentity(t, "trustee-2", "127.0.0.1:7402")
	g := pinGroup(t, old, other)
	now := identityTime.Add(400 * 24 * time.Hour)
	id, u, err := v.RotateTLS(now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if TLSPin(id.TLS.Leaf) == TLSPin(old.TLS.Leaf) || u.OldPin != TLSPin(old.TLS.Leaf) || u.NewPin != TLSPin(id.TLS.Leaf) {
		t.Fatalf("pins: update %+v", u)
	}
	if !id.TLS.Leaf.NotBefore.Before(now) || id.TLS.Leaf.VerifyHostname("127.0.0.1") != nil {
		t.Fatalf("new certificate: from %v, names %v", id.TLS.Leaf.NotBefore, id.TLS.Leaf.IPAddresses)
	}
	// Only the TLS key changed, and the store keeps the new one.
	loaded, err := v.LoadIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if TLSPin(loaded.TLS.Leaf) != u.NewPin || loaded.LogKey != old.LogKey || !loaded.Key.Equal(old.Key) || loaded.Address != old.Address {
		t.Fatal("the stored identity is not the old one with a new TLS key")
	}
	signed, err := SignPinUpdate(u, loaded.LogSigner)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenPinUpdate(signed, g)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *u {
		t.Fatalf("opened %+v, signed %+v", got, u)
	}
	next, err := ApplyPinUpdate(g, got)
	if err != nil {
		t.Fatal(err)
	}
	ng, err := escrow.ParseGroupFile(next)
	if err != nil {
		t.Fatal(err)
	}
	if ng.Trustees[0].TLSPin != u.NewPin || ng.Trustees[1] != g.Trustees[1] || g.Trustees[0].TLSPin != u.OldPin {
		t.Fatal("the next group file changes more than the pin, or g was changed")
	}
	// The rotated node finds itself as it is in the next group file (it
	// stores no share here, which is the next check), and not in g.
	if err := CheckGroupAgainstShares(ng, loaded.Descriptor(), nil); !errors.Is(err, ErrGroupShareMissing) {
		t.Fatalf("the rotated node checking the next group file: %v", err)
	}
	if err := CheckGroupAgainstShares(g, loaded.Descriptor(), nil); !errors.Is(err, ErrNotInGroup) || !strings.Contains(err.Error(), "TLS pin") {
		t.Fatalf("the rotated node checking the old group file: %v", err)
	}
	if _, err := OpenPinUpdate(signed, ng); !errors.Is(err, ErrBadPinUpdate) || !strings.Contains(err.Error(), "already pins") {
		t.Fatalf("an update applied twice: %v", err)
	}
}

// TestPinUpdateRefusals: an outsider with the group file, or another
// trustee, cannot move a trustee's pin to a key of their own.
func TestPinUpdateRefusals(t *testing.T) {
	a := testIdentity(t, "trustee-1", "127.0.0.1:7401")
	b := testIdentity(t, "trustee-2", "127.0.0.1:7402")
	g := pinGroup(t, a, b)
	mallory := testIdentity(t, "trustee-1", "127.0.0.1:7401") // same name, own keys
	u := &PinUpdate{Trustee: "trustee-1", Address: "127.0.0.1:7401", OldPin: TLSPin(a.TLS.Leaf), NewPin: TLSPin(mallory.TLS.Leaf), Time: identityTime}
	good, err := SignPinUpdate(u, a.LogSigner)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(u PinUpdate, signers ...note.Signer) []byte {
		b, err := note.Sign(&note.Note{Text: u.Text()}, signers...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	edited := func(f func(u *PinUpdate)) PinUpdate { c := *u; f(&c); return c }
	for _, tc := range []struct {
		name   string
		signed []byte
		want   string
	}{
		{"signed by an outsider's key of the same name", sign(*u, mallory.LogSigner), "not signed by trustee-1's log key"},
		{"signed by another trustee", sign(edited(func(u *PinUpdate) {}), b.LogSigner), "not signed by trustee-1's log key"},
		{"an extra signature", sign(*u, a.LogSigner, b.LogSigner), "signed by other keys"},
		{"text changed after signing", bytes.Replace(good, []byte("trustee-1\naddress"), []byte("trustee-2\naddress"), 1), "replaces pin"},
		{"new pin changed after signing", bytes.Replace(good, []byte("new "+u.NewPin), []byte("new "+TLSPin(b.TLS.Leaf)), 1), "not signed by trustee-1's log key"},
		{"another old pin", sign(edited(func(u *PinUpdate) { u.OldPin = TLSPin(b.TLS.Leaf) }), a.LogSigner), "the group file pins"},
		{"another address", sign(edited(func(u *PinUpdate) { u.Address = "127.0.0.1:7409" }), a.LogSigner), "lists it at 127.0.0.1:7401"},
		{"unknown trustee", sign(edited(func(u *PinUpdate) { u.Trustee = "trustee-9" }), a.LogSigner), "lists no trustee named trustee-9"},
		{"unsigned", []byte(u.Text()), "no signature"},
		{"another version", bytes.Replace(good, []byte(" v1\n"), []byte(" v2\n"), 1), "this build reads"},
		{"non-canonical time", bytes.Replace(good, []byte("time 2026-04-01T09:30:00Z"), []byte("time 2026-04-01T11:30:00+02:00"), 1), "not in canonical form"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenPinUpdate(tc.signed, g)
			if !errors.Is(err, ErrBadPinUpdate) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrBadPinUpdate saying %q", err, tc.want)
			}
		})
	}
	if _, err := SignPinUpdate(u, b.LogSigner); !errors.Is(err, ErrBadPinUpdate) {
		t.Fatalf("signing trustee-1's update with trustee-2's key: %v", err)
	}
	if _, err := SignPinUpdate(&PinUpdate{Trustee: "trustee-1", Address: "127.0.0.1:7401", OldPin: u.OldPin, NewPin: u.OldPin, Time: identityTime}, a.LogSigner); !errors.Is(err, ErrBadPinUpdate) {
		t.Fatalf("an update to the same pin: %v", err)
	}
}

func FuzzParsePinUpdateText(f *testing.F) {
	a := testIdentity(f, "trustee-1", "127.0.0.1:7401")
	b := testIdentity(f, "trustee-2", "127.0.0.1:7402")
	u := &PinUpdate{Trustee: "trustee-1", Address: "127.0.0.1:7401", OldPin: TLSPin(a.TLS.Leaf), NewPin: TLSPin(b.TLS.Leaf), Time: identityTime}
	f.Add(u.Text())
	f.Add(strings.Replace(u.Text(), "trustee-1", "trustee 1", 1))
	f.Add(PinUpdateVersion + "\n")
	f.Fuzz(func(t *testing.T, text string) {
		u, err := ParsePinUpdateText(text)
		if err != nil {
			if !errors.Is(err, ErrBadPinUpdate) {
				t.Fatalf("error does not wrap ErrBadPinUpdate: %v", err)
			}
			return
		}
		if u.Text() != text {
			t.Fatalf("text(parse(s)) != s: %q", text)
		}
	})
}

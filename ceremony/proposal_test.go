package ceremony

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"golang.org/x/mod/sumdb/note"
)

func testRoster(t testing.TB, n int) ([]escrow.GroupMember, []note.Signer) {
	t.Helper()
	var ms []escrow.GroupMember
	var ss []note.Signer
	for i := 1; i <= n; i++ {
		name := "trustee-" + string(rune('0'+i))
		skey, vkey, err := note.GenerateKey(dkgRand("proposal/"+name), escrow.LogKeyName(name))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := note.NewSigner(skey)
		ms = append(ms, escrow.GroupMember{Index: i, Name: name, Address: "127.0.0.1:74" + string(rune('0'+i)) + "0", LogKey: vkey})
		ss = append(ss, s)
	}
	return ms, ss
}

func TestProposalRoundTrip(t *testing.T) {
	roster, signers := testRoster(t, 3)
	from := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	p, err := DKGProposal(roster, 2, escrow.GroupEpoch{Epoch: 1, ValidFrom: from, ValidUntil: from.AddDate(0, 0, 30)}, from.Add(time.Hour), dkgRand("proposal/id"))
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseProposalText(p.Text())
	if err != nil {
		t.Fatal(err)
	}
	if q.Text() != p.Text() || q.Hash() != p.Hash() {
		t.Fatalf("round trip changed the proposal:\n%s\n%s", p.Text(), q.Text())
	}
	signed, err := SignProposal(p, signers[1])
	if err != nil {
		t.Fatal(err)
	}
	o, who, err := OpenProposal(signed, nil)
	if err != nil || o.Hash() != p.Hash() || len(who) != 1 || who[0] != "trustee-2" {
		t.Fatalf("open: %v %v", err, who)
	}
	// Signed by a key of nobody in the roster: refused.
	skey, _, _ := note.GenerateKey(rand.Reader, escrow.LogKeyName("trustee-2"))
	forger, _ := note.NewSigner(skey)
	forged, _ := SignProposal(p, forger)
	if _, _, err := OpenProposal(forged, nil); !errors.Is(err, ErrBadProposal) || !strings.Contains(err.Error(), "not signed by a trustee of its roster") {
		t.Fatalf("forged: %v", err)
	}
	// Any change of the text is a different proposal, or none.
	for _, edit := range []func(string) string{
		func(s string) string { return strings.Replace(s, "threshold 2", "threshold 3", 1) },
		func(s string) string { return strings.Replace(s, "deadline 2026-12-01T01:00:00Z", "deadline 2026-12-01T02:00:00Z", 1) },
		func(s string) string { return strings.Replace(s, "trustee-3", "trustee-9", 1) },
		func(s string) string { return s + "extra\n" },
		func(s string) string { return strings.TrimSuffix(s, "\n") },
		func(s string) string { return strings.Replace(s, "kind dkg", "kind deal", 1) },
	} {
		if q, err := ParseProposalText(edit(p.Text())); err == nil && q.Hash() == p.Hash() {
			t.Errorf("an edited proposal has the same hash:\n%s", edit(p.Text()))
		}
	}
}

// FuzzParseProposalText: whatever parses is in canonical form, so
// parse(b).Text() == b and a proposal has exactly one encoding.
func FuzzParseProposalText(f *testing.F) {
	roster, _ := testRoster(f, 3)
	from := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	p, _ := DKGProposal(roster, 2, escrow.GroupEpoch{Epoch: 1, ValidFrom: from, ValidUntil: from.AddDate(0, 0, 30)}, from.Add(time.Hour), dkgRand("fuzz/id"))
	f.Add(p.Text())
	r := *p
	r.Kind, r.GroupHash = ProposeReshare, strings.Repeat("ab", 32)
	f.Add(r.Text())
	f.Add("keyquorum ceremony proposal v1\nid x\n")
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseProposalText(s)
		if err != nil {
			if !errors.Is(err, ErrBadProposal) {
				t.Fatalf("error not wrapping ErrBadProposal: %v", err)
			}
			return
		}
		if q.Text() != s {
			t.Fatalf("parsed a non-canonical proposal:\n%q\n%q", s, q.Text())
		}
		if err := q.Validate(); err != nil {
			t.Fatalf("parsed an invalid proposal: %v", err)
		}
	})
}

package ceremony

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
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
		func(s string) string {
			return strings.Replace(s, "deadline 2026-12-01T01:00:00Z", "deadline 2026-12-01T02:00:00Z", 1)
		},
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
	w := 0
	r.WitnessQuorum = &w
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

// TestProposalWitnessQuorum: a proposal may set the new group's witness
// quorum w; the value is part of what operators approve, a bad one is
// refused, a DKG under it makes a group file that carries it, and a
// rotation keeps it.
func TestProposalWitnessQuorum(t *testing.T) {
	roster, _ := testRoster(t, 3)
	from := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	p, err := DKGProposal(roster, 2, escrow.GroupEpoch{Epoch: 1, ValidFrom: from, ValidUntil: from.AddDate(0, 0, 30)}, from.Add(time.Hour), dkgRand("proposal/w"))
	if err != nil {
		t.Fatal(err)
	}
	unset := p.Hash()
	if strings.Contains(p.Text(), "witnesses") || !strings.Contains(p.Summary(nil, []string{"trustee-1"}), "cosigned by 1 other trustees (the default") {
		t.Fatalf("a proposal without w:\n%s\n%s", p.Text(), p.Summary(nil, nil))
	}
	for _, w := range []int{0, 2} {
		p.WitnessQuorum = &w
		if err := p.Validate(); err != nil {
			t.Fatalf("w=%d: %v", w, err)
		}
		q, err := ParseProposalText(p.Text())
		if err != nil || q.WitnessQuorum == nil || *q.WitnessQuorum != w || q.Hash() != p.Hash() || p.Hash() == unset {
			t.Fatalf("w=%d round trip: %v\n%s", w, err, p.Text())
		}
	}
	if !strings.Contains(p.Summary(nil, nil), "cosigned by 2 other trustees (set by the proposal") {
		t.Errorf("summary does not say w=2:\n%s", p.Summary(nil, nil))
	}
	for _, w := range []int{-1, 3} {
		p.WitnessQuorum = &w
		if err := p.Validate(); !errors.Is(err, ErrBadProposal) || !strings.Contains(err.Error(), "witness quorum") {
			t.Errorf("w=%d with 3 trustees: %v, want a bad-proposal refusal naming the witness quorum", w, err)
		}
		if _, err := ParseProposalText(strings.Replace(unsetText(t, p), "threshold 2\n", fmt.Sprintf("threshold 2\nwitnesses %d\n", w), 1)); !errors.Is(err, ErrBadProposal) {
			t.Errorf("parsed a proposal with w=%d: %v", w, err)
		}
	}
}

func unsetText(t *testing.T, p *Proposal) string {
	t.Helper()
	q := *p
	q.WitnessQuorum = nil
	return q.Text()
}

// TestDKGWitnessQuorum: the group file a DKG makes carries the proposal's
// w, and a rotation keeps it.
func TestDKGWitnessQuorum(t *testing.T) {
	ns, roster := ceremonyFederation(t, 3)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	p, err := DKGProposal(roster, 2, escrow.GroupEpoch{Epoch: 1, ValidFrom: t0, ValidUntil: t0.Add(30 * 24 * time.Hour)}, time.Now().Add(10*time.Minute), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	w := 2
	p.WitnessQuorum = &w
	rep, err := runDKG(context.Background(), approvedOptions(p, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Group.Witnesses(); got != 2 || rep.Group.WitnessQuorum == nil {
		t.Fatalf("group file after a DKG proposing w=2: witness quorum %v (Witnesses %d)", rep.Group.WitnessQuorum, got)
	}
	opts, err := NextEpochOptions(rep.Signed, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	rep2, err := runDKG(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep2.Group.Witnesses(); got != 2 || len(rep2.Group.Epochs) != 2 {
		t.Fatalf("after a rotation: w=%d, %d epochs; want w=2 kept", got, len(rep2.Group.Epochs))
	}
	// A rotation that would change w is refused: that takes a reshare.
	p3, err := RotationProposal(rep2.Signed, t0, 0, time.Now().Add(10*time.Minute), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	one := 1
	p3.WitnessQuorum = &one
	if _, _, err := ns[0].host.Approve(sign(p3, rep2.Signed), rep2.Signed); !errors.Is(err, ErrCeremonyRefused) || !strings.Contains(err.Error(), "witness quorum") {
		t.Fatalf("approving a rotation that changes w: %v, want a refusal naming the witness quorum", err)
	}
}

package trustee

import (
	"crypto/rand"
	"errors"
	"slices"
	"testing"

	"github.com/keyquorum/keyquorum/escrow"
)

// TestCheckGroupAgainstShares checks a 3-of-5 two-epoch group as trustee
// 1 would before signing it: the group it was dealt passes, and every
// way the file can differ from what the node knows is refused with its
// own error.
func TestCheckGroupAgainstShares(t *testing.T) {
	sg := dealSealedGroup(t, 3, 5, 2)
	me := sg.ids[0]
	stored, err := OpenSealedShare(sg.sealed[0], sg.groupJSON, me)
	if err != nil {
		t.Fatal(err)
	}
	// The same trustees dealt another key: trustee 1 is listed as it is,
	// but its share is not the one the commitment gives it.
	var ds []Descriptor
	for _, id := range sg.ids {
		ds = append(ds, id.Descriptor())
	}
	otherJSON, _, err := DealSealed(ds, 3, sealedTestEpochs(2), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	outsider := testIdentity(t, "trustee-9", "10.0.0.9:7000")

	parse := func(b []byte) *escrow.GroupFile {
		g, err := escrow.ParseGroupFile(b)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	edit := func(f func(g *escrow.GroupFile)) *escrow.GroupFile {
		g := parse(sg.groupJSON)
		f(g)
		return g
	}
	otherKey := sg.ids[1].Descriptor()
	for _, tc := range []struct {
		name   string
		group  *escrow.GroupFile
		me     Descriptor
		stored []escrow.EpochShare
		want   error
	}{
		{"its own group", parse(sg.groupJSON), me.Descriptor(), stored, nil},
		{"an epoch it does not hold and is not said to", edit(func(g *escrow.GroupFile) { g.Epochs[1].Holders = []int{2, 3, 4} }), me.Descriptor(), stored[:1], nil},
		{"a stored epoch the file does not list", edit(func(g *escrow.GroupFile) { g.Epochs = g.Epochs[:1] }), me.Descriptor(), stored, nil},
		{"not in the roster", parse(sg.groupJSON), outsider.Descriptor(), nil, ErrNotInGroup},
		{"another identity key", edit(func(g *escrow.GroupFile) { g.Trustees[0].IdentityKey = otherKey.IdentityKey }), me.Descriptor(), stored, ErrNotInGroup},
		{"another log key", edit(func(g *escrow.GroupFile) { g.Trustees[0].LogKey = otherKey.LogKey }), me.Descriptor(), stored, ErrNotInGroup},
		{"another TLS pin", edit(func(g *escrow.GroupFile) { g.Trustees[0].TLSPin = otherKey.TLSPin }), me.Descriptor(), stored, ErrNotInGroup},
		{"another address", edit(func(g *escrow.GroupFile) { g.Trustees[0].Address = "10.0.0.1:7999" }), me.Descriptor(), stored, ErrNotInGroup},
		{"another group key", parse(otherJSON), me.Descriptor(), stored, ErrGroupCommitment},
		{"a share of another index", parse(sg.groupJSON), me.Descriptor(), withIndex(stored, 2), ErrGroupCommitment},
		{"a share it does not hold", parse(sg.groupJSON), me.Descriptor(), stored[:1], ErrGroupShareMissing},
		{"no share at all", parse(sg.groupJSON), me.Descriptor(), nil, ErrGroupShareMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckGroupAgainstShares(tc.group, tc.me, tc.stored)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	// Without the stored group key, the share check alone catches another
	// group, and passes its own.
	g := parse(sg.groupJSON)
	other := parse(otherJSON)
	noKey := slices.Clone(stored)
	for i := range noKey {
		noKey[i].GroupKey = nil
	}
	if err := CheckGroupAgainstShares(other, me.Descriptor(), noKey); !errors.Is(err, ErrGroupCommitment) {
		t.Fatalf("share against another commitment: %v", err)
	}
	if err := CheckGroupAgainstShares(g, me.Descriptor(), noKey); err != nil {
		t.Fatalf("share without a stored key against its own commitment: %v", err)
	}
}

func withIndex(ss []escrow.EpochShare, index int) []escrow.EpochShare {
	out := slices.Clone(ss)
	for i := range out {
		out[i].Index = index
	}
	return out
}

package trustee

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	"github.com/keyquorum/keyquorum/shares"
	"go.dedis.ch/kyber/v3"
)

var sealedEpochStart = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

func sealedTestEpochs(n int) []escrow.GroupEpoch {
	var es []escrow.GroupEpoch
	for i := range n {
		from := sealedEpochStart.AddDate(0, 0, 30*i)
		es = append(es, escrow.GroupEpoch{Epoch: uint32(i + 1), ValidFrom: from, ValidUntil: from.AddDate(0, 0, 30)})
	}
	return es
}

// sealedGroup is a dealt group of trustees with identities.
type sealedGroup struct {
	ids       []*Identity
	groupJSON []byte
	sealed    [][]byte // file bytes, by roster order
}

func dealSealedGroup(t testing.TB, threshold, n, epochs int) *sealedGroup {
	t.Helper()
	sg := &sealedGroup{}
	var ds []Descriptor
	for i := 1; i <= n; i++ {
		id := testIdentity(t, fmt.Sprintf("trustee-%d", i), fmt.Sprintf("10.0.0.%d:7000", i))
		sg.ids = append(sg.ids, id)
		ds = append(ds, id.Descriptor())
	}
	gj, ss, err := DealSealed(ds, threshold, sealedTestEpochs(epochs), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sg.groupJSON = gj
	for _, s := range ss {
		b, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		sg.sealed = append(sg.sealed, b)
	}
	return sg
}

// TestSealedShareDealAndOpen deals 3-of-5 over two epochs, opens every
// trustee's share with its own identity, and recovers each epoch's group
// secret from every 3 of the opened shares: the key matches the group file.
func TestSealedShareDealAndOpen(t *testing.T) {
	sg := dealSealedGroup(t, 3, 5, 2)
	g, err := escrow.ParseGroupFile(sg.groupJSON)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range g.Trustees {
		if m != sg.ids[i].Descriptor().Member(i+1) {
			t.Fatalf("roster entry %d = %+v, not the descriptor's", i+1, m)
		}
	}
	byEpoch := map[uint32][]shares.Share{}
	for i, id := range sg.ids {
		if !bytes.HasPrefix(sg.sealed[i], []byte(SealedShareHeader+"\n# "+id.Name+"'s shares")) {
			t.Fatalf("sealed share %d starts %q", i, sg.sealed[i][:60])
		}
		if bytes.Contains(sg.sealed[i], []byte(ShareFileHeader)) {
			t.Fatal("the sealed file holds the plaintext share file")
		}
		es, err := OpenSealedShare(sg.sealed[i], sg.groupJSON, id)
		if err != nil {
			t.Fatalf("%s: %v", id.Name, err)
		}
		if len(es) != 2 {
			t.Fatalf("%s: %d epoch shares, want 2", id.Name, len(es))
		}
		for _, e := range es {
			if e.Index != i+1 {
				t.Fatalf("%s: index %d", id.Name, e.Index)
			}
			byEpoch[e.Epoch] = append(byEpoch[e.Epoch], shares.Share{Index: e.Index, Value: e.Share})
		}
	}
	for _, e := range g.Epochs {
		eg, err := g.EscrowGroup(e.Epoch)
		if err != nil {
			t.Fatal(err)
		}
		for _, subset := range [][]int{{0, 1, 2}, {0, 3, 4}, {2, 3, 4}} {
			var pts []shares.IndexedPoint
			for _, j := range subset {
				s := byEpoch[e.Epoch][j]
				pts = append(pts, shares.IndexedPoint{Index: s.Index, Point: group.Point().Mul(s.Value, nil)})
			}
			key, err := shares.RecoverPoint(pts, 3)
			if err != nil {
				t.Fatal(err)
			}
			if !key.Equal(eg.Key) {
				t.Fatalf("epoch %d: trustees %v recover another key", e.Epoch, subset)
			}
		}
	}
}

func TestOpenSealedShareRefusals(t *testing.T) {
	sg := dealSealedGroup(t, 2, 3, 2)
	other := dealSealedGroup(t, 2, 3, 2)
	me := sg.ids[1]
	mine := sg.sealed[1]
	// The same trustee name, set up again: a new identity key.
	reinit := testIdentity(t, me.Name, me.Address)

	// A share file whose epoch-2 share is off by one, sealed properly.
	x := group.Scalar().SetInt64(12345)
	bad := &ShareFile{Index: 2, Name: me.Name, Threshold: 2, Shares: map[uint32]kyber.Scalar{1: x, 2: x}}
	es, err := OpenSealedShare(mine, sg.groupJSON, me)
	if err != nil {
		t.Fatal(err)
	}
	bad.Shares[1] = es[0].Share
	bad.Shares[2] = group.Scalar().Add(es[1].Share, group.Scalar().One())
	inconsistent, err := SealShare(bad, sg.groupJSON)
	if err != nil {
		t.Fatal(err)
	}
	inconsistentFile, _ := inconsistent.Marshal()

	onlyOne := &ShareFile{Index: 2, Name: me.Name, Threshold: 2, Shares: map[uint32]kyber.Scalar{1: es[0].Share}}
	missing, err := SealShare(onlyOne, sg.groupJSON)
	if err != nil {
		t.Fatal(err)
	}
	missingFile, _ := missing.Marshal()

	// One base64 character of the sealed part changed (still canonical).
	lines := strings.Split(string(mine), "\n")
	body := lines[len(lines)-3]
	c := byte('A')
	if body[10] == 'A' {
		c = 'B'
	}
	lines[len(lines)-3] = body[:10] + string(c) + body[11:]
	flipped := []byte(strings.Join(lines, "\n"))

	plain, _ := (&ShareFile{Index: 2, Name: me.Name, Threshold: 2, Shares: map[uint32]kyber.Scalar{1: x}}).Marshal()

	tests := []struct {
		name      string
		sealed    []byte
		groupJSON []byte
		id        *Identity
		want      error
		says      string
	}{
		{"another trustee's share", sg.sealed[0], sg.groupJSON, me, ErrNotMyShare, "it is trustee-1's share"},
		{"same name, new identity key", mine, sg.groupJSON, reinit, ErrNotMyShare, "this node is trustee-2"},
		{"another group's file", mine, other.groupJSON, me, ErrWrongGroupFile, "use the group.json the dealer wrote"},
		{"share inconsistent with the commitment", inconsistentFile, sg.groupJSON, me, ErrShareCommitment, "epoch 2"},
		{"an epoch missing", missingFile, sg.groupJSON, me, ErrBadSealedShare, "no share for epoch 2"},
		{"sealed part altered", flipped, sg.groupJSON, me, ErrBadSealedShare, "does not open"},
		{"header altered", bytes.Replace(mine, []byte("trustee: 2\n"), []byte("trustee: 3\n"), 1), sg.groupJSON, me, ErrNotMyShare, "trustee 3"},
		{"plaintext share file", plain, sg.groupJSON, me, ErrBadSealedShare, "plaintext share file"},
		{"truncated", mine[:len(mine)-30], sg.groupJSON, me, ErrBadSealedShare, ""},
		{"comment edited", bytes.Replace(mine, []byte("# key."), []byte("# Key."), 1), sg.groupJSON, me, ErrBadSealedShare, "canonical"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenSealedShare(tt.sealed, tt.groupJSON, tt.id)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("err = %v\nwant %v saying %q", err, tt.want, tt.says)
			}
		})
	}

	// A dealer that lists this node with another log key or address: the
	// share opens, but nobody could reach or verify this node, so it is
	// refused.
	impostor := testIdentity(t, me.Name, "10.9.9.9:7000").Descriptor()
	good := &ShareFile{Index: 2, Name: me.Name, Threshold: 2, Shares: map[uint32]kyber.Scalar{1: es[0].Share, 2: es[1].Share}}
	for _, f := range []struct {
		what string
		edit func(m *escrow.GroupMember)
	}{
		{"log key", func(m *escrow.GroupMember) { m.LogKey = impostor.LogKey }},
		{"TLS pin", func(m *escrow.GroupMember) { m.TLSPin = impostor.TLSPin }},
		{"address", func(m *escrow.GroupMember) { m.Address = impostor.Address }},
	} {
		g2, _ := escrow.ParseGroupFile(sg.groupJSON)
		f.edit(&g2.Trustees[1])
		gj, err := g2.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		s, err := SealShare(good, gj)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := s.Marshal()
		if _, err := OpenSealedShare(b, gj, me); !errors.Is(err, ErrNotMyShare) || !strings.Contains(err.Error(), f.what) {
			t.Errorf("roster with another %s: err = %v", f.what, err)
		}
	}
}

func TestDealSealedRefusals(t *testing.T) {
	a := testIdentity(t, "trustee-1", "10.0.0.1:7001").Descriptor()
	b := testIdentity(t, "trustee-2", "10.0.0.2:7001").Descriptor()
	if _, _, err := DealSealed(nil, 1, sealedTestEpochs(1), rand.Reader); !errors.Is(err, ErrBadDescriptor) {
		t.Fatalf("no descriptors: err = %v", err)
	}
	if _, _, err := DealSealed([]Descriptor{a, a}, 1, sealedTestEpochs(1), rand.Reader); !errors.Is(err, ErrBadDescriptor) {
		t.Fatalf("duplicate descriptors: err = %v", err)
	}
	if _, _, err := DealSealed([]Descriptor{a, b}, 3, sealedTestEpochs(1), rand.Reader); err == nil || !strings.Contains(err.Error(), "threshold") {
		t.Fatalf("threshold above n: err = %v", err)
	}
}

func TestImportIntoVault(t *testing.T) {
	sg := dealSealedGroup(t, 2, 3, 3)
	s, _ := newBoltStore(t)
	v := mustVault(t, s)
	es, err := OpenSealedShare(sg.sealed[2], sg.groupJSON, sg.ids[2])
	if err != nil {
		t.Fatal(err)
	}
	if err := v.PutEpochShares(es); err != nil {
		t.Fatal(err)
	}
	got, err := v.EpochShares()
	if err != nil || len(got) != 3 {
		t.Fatalf("%d shares, %v", len(got), err)
	}
	g, _ := escrow.ParseGroupFile(sg.groupJSON)
	for _, e := range got {
		eg, _ := g.EscrowGroup(e.Epoch)
		if !group.Point().Mul(e.Share, nil).Equal(eg.PublicShares[3]) || !e.GroupKey.Equal(eg.Key) {
			t.Fatalf("epoch %d share does not match the group after the vault round trip", e.Epoch)
		}
	}
}

func FuzzParseSealedShare(f *testing.F) {
	sg := dealSealedGroup(f, 1, 1, 1)
	f.Add(sg.sealed[0])
	f.Add([]byte(SealedShareHeader + "\ntrustee: 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSealedShare(b)
		if err != nil {
			return
		}
		again, err := s.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %q but marshals to %q, %v", b, again, err)
		}
	})
}

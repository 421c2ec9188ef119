package escrow

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/keyquorum/keyquorum/internal/group"
)

// TestEpochKey: the three ways to an EpochKey (bytes, group file, kyber
// point) give the same key, with the ID contexts name, and it seals what
// the kyber-keyed reference seals (TestSealEnvelopeMatchesKyber covers
// the bytes).
func TestEpochKey(t *testing.T) {
	g, _, err := Deal([]string{"a", "b", "c"}, 2, []GroupEpoch{{Epoch: 4, ValidFrom: sessionStart, ValidUntil: sessionStart.AddDate(0, 0, 7)}}, detReader("epoch key"))
	if err != nil {
		t.Fatal(err)
	}
	eg, err := g.EscrowGroup(4)
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := g.EpochKey(4)
	if err != nil {
		t.Fatal(err)
	}
	fromBytes, err := ParseEpochKey(group.PointBytes(eg.Key))
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]*EpochKey{"file": fromFile, "bytes": fromBytes, "group": eg.EpochKey(), "point": NewEpochKey(eg.Key)} {
		if !bytes.Equal(k.Bytes(), group.PointBytes(eg.Key)) || k.ID() != KeyIDOf(eg.Key) || !k.Equal(fromFile) {
			t.Errorf("%s: key %x id %s, want %x %s", name, k.Bytes(), k.ID(), group.PointBytes(eg.Key), KeyIDOf(eg.Key))
		}
		if k.String() != g.Epochs[0].Key {
			t.Errorf("%s: String %s, the group file says %s", name, k, g.Epochs[0].Key)
		}
	}
	// Bytes returns a copy.
	b := fromFile.Bytes()
	b[0] ^= 1
	if bytes.Equal(b, fromFile.Bytes()) {
		t.Error("Bytes exposes the key's storage")
	}
	if _, err := g.EpochKey(5); err == nil {
		t.Error("EpochKey of a missing epoch succeeded")
	}
	bad := *g
	bad.Epochs = append([]GroupEpoch(nil), g.Epochs...)
	bad.Epochs[0].Key = "not base64!"
	if _, err := bad.EpochKey(4); !errors.Is(err, ErrBadGroupFile) {
		t.Errorf("non-base64 key: got %v, want ErrBadGroupFile", err)
	}
	for _, bp := range badPoints(t) {
		if _, err := ParseEpochKey(bp.enc); !errors.Is(err, bp.want) {
			t.Errorf("ParseEpochKey(%s): got %v, want %v", bp.name, err, bp.want)
		}
		bad.Epochs[0].Key = base64.StdEncoding.EncodeToString(bp.enc)
		if _, err := bad.EpochKey(4); !errors.Is(err, ErrBadGroupFile) || !errors.Is(err, bp.want) {
			t.Errorf("group file with key %s: got %v, want ErrBadGroupFile wrapping %v", bp.name, err, bp.want)
		}
	}
	if _, err := ParseEpochKey(make([]byte, 31)); !errors.Is(err, group.ErrPointEncoding) {
		t.Errorf("31 bytes: got %v", err)
	}
}

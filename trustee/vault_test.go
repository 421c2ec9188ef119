package trustee

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	bolt "go.etcd.io/bbolt"
)

var testPassphrase = []byte("correct horse battery staple")

// testKDF makes tests fast; real nodes use DefaultKDFParams.
var testKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

func mustVault(t testing.TB, s *Store) *Vault {
	t.Helper()
	v, err := s.CreateVault(testPassphrase, testKDF, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func testEpochShare(t testing.TB, epoch uint32, index int) escrow.EpochShare {
	t.Helper()
	x, err := group.RandomScalar(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := group.Point().Mul(x, nil) // any point of the group
	return escrow.EpochShare{Epoch: epoch, Index: index, Share: x, GroupKey: key}
}

func sharesEqual(a, b escrow.EpochShare) bool {
	return a.Epoch == b.Epoch && a.Index == b.Index && a.Share.Equal(b.Share) && a.GroupKey.Equal(b.GroupKey)
}

func TestVaultRoundTrip(t *testing.T) {
	s, _ := newBoltStore(t)
	v := mustVault(t, s)
	id := testIdentity(t, "trustee-3", "trustee-3.example.org:8443")
	if err := v.SaveIdentity(id); err != nil {
		t.Fatal(err)
	}
	if err := v.SaveIdentity(id); err == nil || !strings.Contains(err.Error(), "already holds a node identity") {
		t.Fatalf("second SaveIdentity: err = %v", err)
	}
	put := []escrow.EpochShare{testEpochShare(t, 2, 3), testEpochShare(t, 1, 3), testEpochShare(t, 300, 3)}
	if err := v.PutEpochShares(put); err != nil {
		t.Fatal(err)
	}
	v.Close()

	s = reopenStore(t, s)
	v, err := s.Unlock(testPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	got, err := v.LoadIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if got.Descriptor() != id.Descriptor() {
		t.Fatalf("descriptor after reload:\n%+v\nwant\n%+v", got.Descriptor(), id.Descriptor())
	}
	if !got.Key.Equal(id.Key) || got.logSignerKey != id.logSignerKey || !bytes.Equal(got.TLS.Certificate[0], id.TLS.Certificate[0]) {
		t.Fatal("identity keys changed across save and load")
	}
	shares, err := v.EpochShares()
	if err != nil {
		t.Fatal(err)
	}
	want := []escrow.EpochShare{put[1], put[0], put[2]} // by epoch
	if len(shares) != len(want) {
		t.Fatalf("%d shares, want %d", len(shares), len(want))
	}
	for i := range want {
		if !sharesEqual(shares[i], want[i]) {
			t.Fatalf("share %d = epoch %d, want epoch %d (or values differ)", i, shares[i].Epoch, want[i].Epoch)
		}
	}

	// The same share again is accepted; a different one for a held epoch
	// is refused and nothing of that batch is stored.
	if err := v.PutEpochShares(put[:1]); err != nil {
		t.Fatalf("repeating an import: %v", err)
	}
	other := testEpochShare(t, 2, 3)
	if err := v.PutEpochShares([]escrow.EpochShare{testEpochShare(t, 7, 3), other}); !errors.Is(err, ErrShareExists) {
		t.Fatalf("different share for epoch 2: err = %v", err)
	}
	if shares, _ := v.EpochShares(); len(shares) != 3 {
		t.Fatalf("%d shares after a refused batch, want 3", len(shares))
	}
	if err := v.DeleteEpochShare(1); err != nil {
		t.Fatalf("DeleteEpochShare(1): %v", err)
	}
	if err := v.DeleteEpochShare(1); err != nil {
		t.Fatalf("second DeleteEpochShare(1): %v", err)
	}
	if shares, _ := v.EpochShares(); len(shares) != 2 || shares[0].Epoch != 2 {
		t.Fatalf("after delete: %d shares", len(shares))
	}
}

func TestVaultWrongPassphrase(t *testing.T) {
	s, path := newBoltStore(t)
	mustVault(t, s).Close()
	for _, pass := range [][]byte{[]byte("Correct horse battery staple"), []byte("x"), nil} {
		_, err := s.Unlock(pass)
		if !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("Unlock(%q): err = %v", pass, err)
		}
		if want := "wrong passphrase for " + path; !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	v, err := s.Unlock(testPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
}

func TestVaultCreateRefusals(t *testing.T) {
	s, _ := newBoltStore(t)
	if _, err := s.CreateVault(nil, testKDF, rand.Reader); err == nil || !strings.Contains(err.Error(), "empty passphrase") {
		t.Fatalf("empty passphrase: err = %v", err)
	}
	if _, err := s.CreateVault(testPassphrase, KDFParams{Time: 0, MemoryKiB: 64, Threads: 1}, rand.Reader); err == nil {
		t.Fatal("zero argon2 passes accepted")
	}
	if _, err := s.Unlock(testPassphrase); !errors.Is(err, ErrNoVault) {
		t.Fatalf("Unlock before CreateVault: err = %v", err)
	}
	mustVault(t, s)
	if _, err := s.CreateVault(testPassphrase, testKDF, rand.Reader); err == nil || !strings.Contains(err.Error(), "already has a vault") {
		t.Fatalf("second vault: err = %v", err)
	}
	v := mustVault(t, newStoreOnly(t))
	if _, err := v.LoadIdentity(); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("LoadIdentity of a fresh vault: err = %v", err)
	}
}

func newStoreOnly(t *testing.T) *Store { s, _ := newBoltStore(t); return s }

// TestVaultKDFRecordBound: weakening the stored argon2 parameters does not
// give a faster way in; the passphrase simply stops working.
func TestVaultKDFRecordBound(t *testing.T) {
	s, _ := newBoltStore(t)
	mustVault(t, s).Close()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketVault)
		var rec kdfRecord
		if err := json.Unmarshal(b.Get(keyKDF), &rec); err != nil {
			return err
		}
		rec.MemoryKiB = 32
		out, _ := json.Marshal(rec)
		return b.Put(keyKDF, out)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unlock(testPassphrase); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("err = %v", err)
	}
}

// TestVaultValueBoundToKey: a sealed value copied to another key does not
// open there.
func TestVaultValueBoundToKey(t *testing.T) {
	s, path := newBoltStore(t)
	v := mustVault(t, s)
	if err := v.PutEpochShares([]escrow.EpochShare{testEpochShare(t, 1, 1)}); err != nil {
		t.Fatal(err)
	}
	v.Close()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketShares)
		return b.Put(epochKey(2), bytes.Clone(b.Get(epochKey(1))))
	}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Unlock(testPassphrase)
	if !errors.Is(err, ErrStoreCorrupt) || !strings.Contains(err.Error(), "shares/00000002") || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v", err)
	}
}

func TestVaultCloseZeroesKey(t *testing.T) {
	s, _ := newBoltStore(t)
	v := mustVault(t, s)
	key := v.key
	if bytes.Equal(key, make([]byte, len(key))) {
		t.Fatal("vault key is zero before Close")
	}
	v.Close()
	if !bytes.Equal(key, make([]byte, len(key))) {
		t.Fatal("Close left the vault key in memory")
	}
	if _, err := v.LoadIdentity(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("LoadIdentity after Close: err = %v", err)
	}
	if err := v.PutEpochShares([]escrow.EpochShare{testEpochShare(t, 1, 1)}); err == nil {
		t.Fatal("PutEpochShares after Close succeeded")
	}
}

func BenchmarkUnlockDefaultParams(b *testing.B) {
	s, _ := newBoltStore(b)
	v, err := s.CreateVault(testPassphrase, DefaultKDFParams(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	v.Close()
	for b.Loop() {
		v, err := s.Unlock(testPassphrase)
		if err != nil {
			b.Fatal(err)
		}
		v.Close()
	}
}

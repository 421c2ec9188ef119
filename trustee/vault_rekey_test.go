package trustee

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/keyquorum/keyquorum/escrow"
)

func TestVaultChangePassphrase(t *testing.T) {
	s, _ := newBoltStore(t)
	v := mustVault(t, s)
	id := testIdentity(t, "trustee-2", "127.0.0.1:7402")
	if err := v.SaveIdentity(id); err != nil {
		t.Fatal(err)
	}
	share := testEpochShare(t, 1, 2)
	if err := v.PutEpochShares([]escrow.EpochShare{share}); err != nil {
		t.Fatal(err)
	}
	if err := v.ChangePassphrase(nil, testKDF, rand.Reader); err == nil {
		t.Fatal("an empty new passphrase was accepted")
	}
	newPass := []byte("a new passphrase for trustee-2")
	if err := v.ChangePassphrase(newPass, testKDF, rand.Reader); err != nil {
		t.Fatal(err)
	}
	// The open vault goes on working under the new key.
	if shares, err := v.EpochShares(); err != nil || len(shares) != 1 {
		t.Fatalf("after the change: %v, %d shares", err, len(shares))
	}
	v.Close()

	s = reopenStore(t, s)
	if _, err := s.Unlock(testPassphrase); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("old passphrase after the change: %v", err)
	}
	v, err := s.Unlock(newPass) // Unlock opens every sealed value
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	got, err := v.LoadIdentity()
	if err != nil || got.Descriptor() != id.Descriptor() {
		t.Fatalf("identity after the change: %v", err)
	}
	shares, err := v.EpochShares()
	if err != nil || len(shares) != 1 || !sharesEqual(shares[0], share) {
		t.Fatalf("shares after the change: %v", err)
	}
}

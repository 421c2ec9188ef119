package escrow

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
)

// KeyIDOf returns the identifier of a group public key: the first 8 bytes
// of SHA-256 over its encoding.
func KeyIDOf(pub kyber.Point) KeyID {
	sum := sha256.Sum256(group.PointBytes(pub))
	var id KeyID
	copy(id[:], sum[:8])
	return id
}

// RequesterKey is an investigator's key pair: q and Q = q·G. A warrant names
// Q; trustees re-encrypt their partial decryptions to it, so only the holder
// of q can finish a decryption.
type RequesterKey struct {
	Private kyber.Scalar
	Public  kyber.Point
}

// GenerateRequesterKey draws a fresh requester key from rand.
func GenerateRequesterKey(rand io.Reader) (*RequesterKey, error) {
	q, err := group.RandomScalar(rand)
	if err != nil {
		return nil, fmt.Errorf("escrow: %w", err)
	}
	return &RequesterKey{Private: q, Public: group.Point().Mul(q, nil)}, nil
}

// NewRequesterKey rebuilds a requester key from its private scalar.
func NewRequesterKey(q kyber.Scalar) *RequesterKey {
	return &RequesterKey{Private: q, Public: group.Point().Mul(q, nil)}
}

// UserKey is a messaging user's keys: an X25519 key that session keys are
// sealed to with HPKE (RFC 9180), and an Ed25519 key that signs the user's
// messages, so that whoever recovers a session key can read the session but
// cannot forge messages in it.
type UserKey struct {
	Name string
	KEM  *ecdh.PrivateKey
	Sign ed25519.PrivateKey
}

// UserPublic is what others need to talk to a user.
type UserPublic struct {
	Name   string
	KEM    *ecdh.PublicKey
	Verify ed25519.PublicKey
}

// GenerateUserKey draws fresh keys for the named user from rand.
func GenerateUserKey(name string, rand io.Reader) (*UserKey, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("escrow: user name %q: use 1-%d letters, digits or . _ @ + -", name, MaxNameLen)
	}
	var seed [32]byte
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, fmt.Errorf("escrow: reading randomness: %w", err)
	}
	kem, err := ecdh.X25519().NewPrivateKey(seed[:])
	if err != nil {
		return nil, fmt.Errorf("escrow: %w", err)
	}
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, fmt.Errorf("escrow: reading randomness: %w", err)
	}
	return &UserKey{Name: name, KEM: kem, Sign: ed25519.NewKeyFromSeed(seed[:])}, nil
}

// Public returns the user's public keys.
func (u *UserKey) Public() *UserPublic {
	return &UserPublic{Name: u.Name, KEM: u.KEM.PublicKey(), Verify: u.Sign.Public().(ed25519.PublicKey)}
}

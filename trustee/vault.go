package trustee

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// ErrWrongPassphrase is returned by [Store.Unlock] when the passphrase does
// not open the store's vault.
var ErrWrongPassphrase = errors.New("trustee: wrong passphrase")

// ErrNoVault: the store has no vault, because the node's set-up stopped
// half way. Remove the directory and initialise the node again.
var ErrNoVault = errors.New("trustee: node store has no vault")

// Labels of the vault. The check value's plaintext is fixed; each sealed
// value's associated data names the vault, its bucket and its key.
const (
	labelVaultCheck = "keyquorum/v1/vault/check"
	labelVaultValue = "keyquorum/v1/vault/value"
	vaultCheckText  = "keyquorum vault check v1"
	sealedVersion   = 1
)

var (
	keyKDF   = []byte("kdf")
	keyCheck = []byte("check")
)

// KDFParams are the argon2id parameters (RFC 9106) that turn the
// passphrase into the vault key. They are stored in the node store with a
// random 16-byte salt and bound to the check value, so changing them in the
// file only makes the passphrase fail.
type KDFParams struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // lanes
}

// DefaultKDFParams returns the parameters of RFC 9106's second recommended
// option, 3 passes over 64 MiB with 4 lanes: about 0.2 s on a 2-core machine,
// paid once when a node starts or a share is imported.
func DefaultKDFParams() KDFParams {
	return KDFParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 4}
}

// Bounds on parameters read from a store, so that a damaged or hostile file
// cannot make Unlock run for hours or exhaust memory.
const (
	maxKDFTime      = 64
	maxKDFMemoryKiB = 4 << 20 // 4 GiB
	maxKDFThreads   = 64
	kdfSaltSize     = 16
)

func (p KDFParams) check() error {
	if p.Time < 1 || p.Time > maxKDFTime || p.Threads < 1 || p.Threads > maxKDFThreads ||
		p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxKDFMemoryKiB {
		return fmt.Errorf("argon2id parameters out of range: time %d (1-%d), memory %d KiB (8 per thread - %d), threads %d (1-%d)",
			p.Time, maxKDFTime, p.MemoryKiB, maxKDFMemoryKiB, p.Threads, maxKDFThreads)
	}
	return nil
}

// kdfRecord is the stored form of the key-derivation parameters.
type kdfRecord struct {
	Alg       string `json:"alg"`
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
	Salt      string `json:"salt"`
}

func parseKDFRecord(b []byte) (KDFParams, []byte, error) {
	var r kdfRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return KDFParams{}, nil, err
	}
	if r.Alg != "argon2id" {
		return KDFParams{}, nil, fmt.Errorf("key derivation %q, this build knows argon2id", r.Alg)
	}
	p := KDFParams{Time: r.Time, MemoryKiB: r.MemoryKiB, Threads: r.Threads}
	if err := p.check(); err != nil {
		return KDFParams{}, nil, err
	}
	salt, err := base64.StdEncoding.Strict().DecodeString(r.Salt)
	if err != nil || len(salt) != kdfSaltSize {
		return KDFParams{}, nil, errors.New("salt is not 16 bytes of base64")
	}
	return p, salt, nil
}

// Vault is an unlocked node store: it holds the key derived from the
// passphrase and reads and writes the node's sealed secrets.
//
// Each secret is sealed with XChaCha20-Poly1305 under the vault key with a
// fresh random 24-byte nonce; the associated data names the bucket and key
// the value is stored under, so a sealed value moved to another key does
// not open. Stored form: version byte 1, nonce, ciphertext and tag.
//
// Close zeroes the vault key. Go gives no guarantee that no other copy is
// left in memory (the AEAD's key schedule is garbage collected, not wiped),
// so this shortens, rather than ends, the key's life in memory.
//
// A Vault is safe for concurrent use. It stays usable only while its store
// is open.
type Vault struct {
	store *Store
	mu    sync.Mutex
	key   []byte // nil once closed
}

// CreateVault derives a vault key from passphrase with params and a fresh
// salt, stores the parameters and a check value, and returns the open
// vault. It refuses an empty passphrase and a store that has a vault.
func (s *Store) CreateVault(passphrase []byte, params KDFParams, random io.Reader) (*Vault, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("trustee: empty passphrase; a node's secrets need one")
	}
	if err := params.check(); err != nil {
		return nil, fmt.Errorf("trustee: %w", err)
	}
	salt := make([]byte, kdfSaltSize)
	if _, err := io.ReadFull(random, salt); err != nil {
		return nil, fmt.Errorf("trustee: drawing a salt: %w", err)
	}
	rec, err := json.Marshal(kdfRecord{Alg: "argon2id", Time: params.Time, MemoryKiB: params.MemoryKiB, Threads: params.Threads, Salt: base64.StdEncoding.EncodeToString(salt)})
	if err != nil {
		return nil, err
	}
	v := &Vault{store: s, key: deriveVaultKey(passphrase, salt, params)}
	check, err := v.seal(random, checkAD(rec), []byte(vaultCheckText))
	if err != nil {
		v.Close()
		return nil, err
	}
	err = s.update("creating the vault", func(tx *bolt.Tx) error {
		b, err := s.bucket(tx, bucketVault)
		if err != nil {
			return err
		}
		if b.Get(keyKDF) != nil || b.Get(keyCheck) != nil {
			return fmt.Errorf("trustee: %s already has a vault", s.path)
		}
		if err := b.Put(keyKDF, rec); err != nil {
			return err
		}
		return b.Put(keyCheck, check)
	})
	if err != nil {
		v.Close()
		return nil, err
	}
	return v, nil
}

// Unlock derives the vault key from passphrase and checks it against the
// store's check value. A passphrase that does not open it gives an error
// wrapping [ErrWrongPassphrase]. Unlock then opens every sealed value in
// the store, so that a secret altered in the file is reported now, as an
// error wrapping [ErrStoreCorrupt], and not in the middle of serving.
func (s *Store) Unlock(passphrase []byte) (*Vault, error) {
	var rec, check []byte
	err := s.view("reading the vault", func(tx *bolt.Tx) error {
		b, err := s.bucket(tx, bucketVault)
		if err != nil {
			return err
		}
		rec, check = bytes.Clone(b.Get(keyKDF)), bytes.Clone(b.Get(keyCheck))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rec == nil && check == nil {
		return nil, fmt.Errorf("%w: %s has no vault (its set-up did not finish); remove the directory and run keyquorum trustee init again", ErrNoVault, s.path)
	}
	params, salt, err := parseKDFRecord(rec)
	if err != nil || check == nil {
		return nil, s.corrupt("vault key-derivation record is damaged: %v", err)
	}
	v := &Vault{store: s, key: deriveVaultKey(passphrase, salt, params)}
	pt, err := v.open(checkAD(rec), check)
	if err != nil || string(pt) != vaultCheckText {
		v.Close()
		return nil, fmt.Errorf("%w for %s: give the passphrase this node was initialised with", ErrWrongPassphrase, s.path)
	}
	if err := v.checkAll(); err != nil {
		v.Close()
		return nil, err
	}
	return v, nil
}

func deriveVaultKey(passphrase, salt []byte, p KDFParams) []byte {
	return argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize)
}

func checkAD(kdfRecord []byte) []byte {
	return append([]byte(labelVaultCheck+"\x00"), kdfRecord...)
}

func valueAD(bucket, key []byte) []byte {
	ad := append([]byte(labelVaultValue+"\x00"), bucket...)
	ad = append(ad, 0)
	return append(ad, key...)
}

// Close zeroes the vault key. Later calls on the vault fail.
func (v *Vault) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	clear(v.key)
	v.key = nil
	return nil
}

// live refuses to work once the vault is closed.
func (v *Vault) live() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.key == nil {
		return errors.New("trustee: the vault is closed")
	}
	return nil
}

func (v *Vault) aead() (cipher.AEAD, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.key == nil {
		return nil, errors.New("trustee: the vault is closed")
	}
	return chacha20poly1305.NewX(v.key)
}

// seal encrypts plaintext under the vault key with a fresh nonce.
func (v *Vault) seal(random io.Reader, ad, plaintext []byte) ([]byte, error) {
	a, err := v.aead()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+a.NonceSize(), 1+a.NonceSize()+len(plaintext)+a.Overhead())
	out[0] = sealedVersion
	if _, err := io.ReadFull(random, out[1:]); err != nil {
		return nil, fmt.Errorf("trustee: drawing a nonce: %w", err)
	}
	return a.Seal(out, out[1:], plaintext, ad), nil
}

// open decrypts a value sealed by seal.
func (v *Vault) open(ad, sealed []byte) ([]byte, error) {
	a, err := v.aead()
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1+a.NonceSize()+a.Overhead() || sealed[0] != sealedVersion {
		return nil, errors.New("not a sealed value")
	}
	n := 1 + a.NonceSize()
	return a.Open(nil, sealed[1:n], sealed[n:], ad)
}

// put seals plaintext and stores it at bucket/key in tx.
func (v *Vault) put(tx *bolt.Tx, bucket, key, plaintext []byte) error {
	sealed, err := v.seal(rand.Reader, valueAD(bucket, key), plaintext)
	if err != nil {
		return err
	}
	b, err := v.store.bucket(tx, bucket)
	if err != nil {
		return err
	}
	return b.Put(key, sealed)
}

// get returns the opened value at bucket/key in tx, or nil if there is
// none. A value that does not open is reported as damage.
func (v *Vault) get(tx *bolt.Tx, bucket, key []byte) ([]byte, error) {
	b, err := v.store.bucket(tx, bucket)
	if err != nil {
		return nil, err
	}
	sealed := b.Get(key)
	if sealed == nil {
		return nil, nil
	}
	pt, err := v.open(valueAD(bucket, key), sealed)
	if err != nil {
		return nil, v.store.corrupt("sealed value %s/%s fails its integrity check (altered or damaged)", bucket, printableKey(key))
	}
	return pt, nil
}

// sealedBuckets are the buckets whose values are sealed under the vault
// key.
func sealedBuckets() [][]byte { return [][]byte{bucketSecrets, bucketShares, bucketCeremonies} }

// checkAll opens every sealed value in the store.
func (v *Vault) checkAll() error {
	return v.store.view("checking the sealed secrets", func(tx *bolt.Tx) error {
		for _, name := range sealedBuckets() {
			b, err := v.store.bucket(tx, name)
			if err != nil {
				return err
			}
			if err := b.ForEach(func(k, _ []byte) error {
				pt, err := v.get(tx, name, k)
				clear(pt)
				return err
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

// printableKey renders a bucket key for an error message.
func printableKey(k []byte) string {
	for _, c := range k {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("%x", k)
		}
	}
	return string(k)
}

// Epoch shares are stored in the "shares" bucket under the big-endian
// epoch number, sealed; the plaintext is a version byte (1), the 1-based
// share index (2 bytes, big-endian), the share (32-byte scalar) and the
// epoch's group key (32-byte point).
const epochShareRecordVersion = 1

func epochKey(epoch uint32) []byte { return binary.BigEndian.AppendUint32(nil, epoch) }

func marshalEpochShare(s escrow.EpochShare) ([]byte, error) {
	if s.Index < 1 || s.Index > 0xffff || s.Share == nil || s.GroupKey == nil {
		return nil, fmt.Errorf("trustee: incomplete share for epoch %d", s.Epoch)
	}
	b := []byte{epochShareRecordVersion}
	b = binary.BigEndian.AppendUint16(b, uint16(s.Index))
	b = append(b, group.ScalarBytes(s.Share)...)
	return append(b, group.PointBytes(s.GroupKey)...), nil
}

func parseEpochShare(epoch uint32, b []byte) (escrow.EpochShare, error) {
	if len(b) != 1+2+32+32 || b[0] != epochShareRecordVersion {
		return escrow.EpochShare{}, fmt.Errorf("share record for epoch %d has the wrong length or version", epoch)
	}
	x, err := group.ParseScalar(b[3:35])
	if err != nil {
		return escrow.EpochShare{}, fmt.Errorf("share for epoch %d: %v", epoch, err)
	}
	key, err := group.ParsePoint(b[35:])
	if err != nil {
		return escrow.EpochShare{}, fmt.Errorf("group key of epoch %d: %v", epoch, err)
	}
	idx := int(binary.BigEndian.Uint16(b[1:3]))
	if idx < 1 {
		return escrow.EpochShare{}, fmt.Errorf("share for epoch %d has index 0", epoch)
	}
	return escrow.EpochShare{Epoch: epoch, Index: idx, Share: x, GroupKey: key}, nil
}

// ErrShareExists: the store already holds a different share for the epoch.
var ErrShareExists = errors.New("trustee: the node already holds a different share for that epoch")

// PutEpochShares stores shares, sealed, in one transaction: all or none.
// A share identical to the stored one for its epoch is accepted again (so
// an import can be repeated); a different one is refused with an error
// wrapping [ErrShareExists].
func (v *Vault) PutEpochShares(shares []escrow.EpochShare) error {
	if err := v.live(); err != nil {
		return err
	}
	recs := make([][]byte, len(shares))
	defer func() {
		for _, r := range recs {
			clear(r)
		}
	}()
	for i, s := range shares {
		var err error
		if recs[i], err = marshalEpochShare(s); err != nil {
			return err
		}
	}
	return v.store.update("storing epoch shares", func(tx *bolt.Tx) error {
		for i, s := range shares {
			k := epochKey(s.Epoch)
			old, err := v.get(tx, bucketShares, k)
			if err != nil {
				return err
			}
			same := old != nil && subtle.ConstantTimeCompare(old, recs[i]) == 1
			clear(old)
			if same {
				continue
			}
			if old != nil {
				return fmt.Errorf("%w: epoch %d in %s", ErrShareExists, s.Epoch, v.store.path)
			}
			if err := v.put(tx, bucketShares, k, recs[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReplaceEpochShares erases every stored epoch share and stores shares in
// their place, in one synced transaction (a reshare).
func (v *Vault) ReplaceEpochShares(shares []escrow.EpochShare) error {
	if err := v.live(); err != nil {
		return err
	}
	var recs [][]byte
	defer func() {
		for _, r := range recs {
			clear(r)
		}
	}()
	for _, s := range shares {
		r, err := marshalEpochShare(s)
		if err != nil {
			return err
		}
		recs = append(recs, r)
	}
	return v.store.update("replacing epoch shares", func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketShares); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketShares); err != nil {
			return err
		}
		for i, s := range shares {
			if err := v.put(tx, bucketShares, epochKey(s.Epoch), recs[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// EpochShares returns every stored epoch share, by ascending epoch.
func (v *Vault) EpochShares() ([]escrow.EpochShare, error) {
	if err := v.live(); err != nil {
		return nil, err
	}
	var out []escrow.EpochShare
	err := v.store.view("reading epoch shares", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketShares).ForEach(func(k, _ []byte) error {
			if len(k) != 4 {
				return v.store.corrupt("share key %x is not an epoch number", k)
			}
			epoch := binary.BigEndian.Uint32(k)
			b, err := v.get(tx, bucketShares, k)
			if err != nil {
				return err
			}
			defer clear(b)
			s, err := parseEpochShare(epoch, b)
			if err != nil {
				return v.store.corrupt("%v", err)
			}
			out = append(out, s)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteEpochShare removes the share of epoch from the store, in one
// synced transaction; an epoch it does not hold is no error. It fits
// [WithShareEraser].
//
// What remains: bbolt copies pages on write, so the sealed bytes stay in a
// free page of the file until bbolt reuses that page, and in any backup or
// copy of the file made before. They are encrypted under the vault key, so
// reading them takes the passphrase as well as the old bytes.
func (v *Vault) DeleteEpochShare(epoch uint32) error {
	if err := v.live(); err != nil {
		return err
	}
	return v.store.update("deleting an epoch share", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketShares).Delete(epochKey(epoch))
	})
}

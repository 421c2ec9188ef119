package trustee

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// ChangePassphrase re-keys the vault: it derives a new vault key from
// passphrase with params and a fresh salt, seals every secret again under
// it, and replaces the key-derivation record and check value, all in one
// store transaction, so the store opens with either the old passphrase or
// the new one, never neither. The vault stays open, under the new key.
//
// The old sealed bytes may survive in free pages of the file (bbolt copies
// pages on write), still under the old passphrase: whoever had it and a
// copy of the file keeps what that copy held. Changing a passphrase
// protects what is written later, not what was copied before.
func (v *Vault) ChangePassphrase(passphrase []byte, params KDFParams, random io.Reader) error {
	if len(passphrase) == 0 {
		return errors.New("trustee: empty passphrase; a node's secrets need one")
	}
	if err := params.check(); err != nil {
		return fmt.Errorf("trustee: %w", err)
	}
	if err := v.live(); err != nil {
		return err
	}
	salt := make([]byte, kdfSaltSize)
	if _, err := io.ReadFull(random, salt); err != nil {
		return fmt.Errorf("trustee: drawing a salt: %w", err)
	}
	rec, err := json.Marshal(kdfRecord{Alg: "argon2id", Time: params.Time, MemoryKiB: params.MemoryKiB, Threads: params.Threads, Salt: base64.StdEncoding.EncodeToString(salt)})
	if err != nil {
		return err
	}
	next := &Vault{store: v.store, key: deriveVaultKey(passphrase, salt, params)}
	defer next.Close()
	check, err := next.seal(random, checkAD(rec), []byte(vaultCheckText))
	if err != nil {
		return err
	}
	err = v.store.update("changing the passphrase", func(tx *bolt.Tx) error {
		for _, name := range sealedBuckets() {
			b, err := v.store.bucket(tx, name)
			if err != nil {
				return err
			}
			var keys [][]byte
			if err := b.ForEach(func(k, _ []byte) error {
				keys = append(keys, append([]byte(nil), k...))
				return nil
			}); err != nil {
				return err
			}
			for _, k := range keys {
				pt, err := v.get(tx, name, k)
				if err != nil {
					return err
				}
				sealed, err := next.seal(random, valueAD(name, k), pt)
				clear(pt)
				if err != nil {
					return err
				}
				if err := b.Put(k, sealed); err != nil {
					return err
				}
			}
		}
		b, err := v.store.bucket(tx, bucketVault)
		if err != nil {
			return err
		}
		if err := b.Put(keyKDF, rec); err != nil {
			return err
		}
		return b.Put(keyCheck, check)
	})
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	clear(v.key)
	v.key = append([]byte(nil), next.key...)
	return nil
}

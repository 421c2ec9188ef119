package trustee

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// PutCeremony stores the state of a ceremony, sealed, in one synced
// transaction.
func (v *Vault) PutCeremony(id string, state []byte) error {
	if err := v.live(); err != nil {
		return err
	}
	return v.store.update("storing ceremony state", func(tx *bolt.Tx) error {
		return v.put(tx, bucketCeremonies, []byte(id), state)
	})
}

// Ceremony returns the stored state of a ceremony, or nil.
func (v *Vault) Ceremony(id string) ([]byte, error) {
	if err := v.live(); err != nil {
		return nil, err
	}
	var out []byte
	err := v.store.view("reading ceremony state", func(tx *bolt.Tx) error {
		b, err := v.get(tx, bucketCeremonies, []byte(id))
		out = b
		return err
	})
	return out, err
}

// DeleteCeremony removes the stored state of a ceremony.
func (v *Vault) DeleteCeremony(id string) error {
	if err := v.live(); err != nil {
		return err
	}
	return v.store.update("deleting ceremony state", func(tx *bolt.Tx) error {
		b, err := v.store.bucket(tx, bucketCeremonies)
		if err != nil {
			return err
		}
		return b.Delete([]byte(id))
	})
}

// CeremonyIDs lists the ceremonies whose state is stored.
func (v *Vault) CeremonyIDs() ([]string, error) {
	if err := v.live(); err != nil {
		return nil, err
	}
	var ids []string
	err := v.store.view("listing ceremonies", func(tx *bolt.Tx) error {
		b, err := v.store.bucket(tx, bucketCeremonies)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, _ []byte) error {
			if !bytes.HasPrefix(k, approvalPrefix) {
				ids = append(ids, string(k))
			}
			return nil
		})
	})
	return ids, err
}

// approvalPrefix marks the keys of approved proposals in the ceremonies
// bucket (ceremony ids are hex, so they never start with it).
var approvalPrefix = []byte("approval:")

// PutApproval stores an approved proposal, sealed, in one synced
// transaction.
func (v *Vault) PutApproval(hash string, signed []byte) error {
	return v.PutCeremony(string(approvalPrefix)+hash, signed)
}

// Approval returns an approved proposal, or nil.
func (v *Vault) Approval(hash string) ([]byte, error) {
	return v.Ceremony(string(approvalPrefix) + hash)
}

// DeleteApproval forgets an approved proposal.
func (v *Vault) DeleteApproval(hash string) error {
	return v.DeleteCeremony(string(approvalPrefix) + hash)
}

// ApprovalHashes lists the approved proposals.
func (v *Vault) ApprovalHashes() ([]string, error) {
	if err := v.live(); err != nil {
		return nil, err
	}
	var hs []string
	err := v.store.view("listing approvals", func(tx *bolt.Tx) error {
		b, err := v.store.bucket(tx, bucketCeremonies)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, _ []byte) error {
			if h, ok := bytes.CutPrefix(k, approvalPrefix); ok {
				hs = append(hs, string(h))
			}
			return nil
		})
	})
	return hs, err
}

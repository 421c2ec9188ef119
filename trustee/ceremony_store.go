package trustee

import (
	"sync"

	bolt "go.etcd.io/bbolt"
)

// CeremonyStore keeps the state of the key ceremonies a node takes part
// in, so that a node restarted mid-ceremony resumes it. The state holds
// the secrets of the ceremony (the node's DKG key and the seed of its
// polynomial): a store must keep it sealed. [Vault] implements it; a
// [MemCeremonyStore] is for tests.
type CeremonyStore interface {
	// PutCeremony stores (or replaces) the state of ceremony id, durably.
	PutCeremony(id string, state []byte) error
	// Ceremony returns the state of ceremony id, or nil if there is none.
	Ceremony(id string) ([]byte, error)
	// DeleteCeremony removes the state of ceremony id; a missing one is no
	// error.
	DeleteCeremony(id string) error
	// CeremonyIDs lists the ceremonies with stored state.
	CeremonyIDs() ([]string, error)
}

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
			ids = append(ids, string(k))
			return nil
		})
	})
	return ids, err
}

// MemCeremonyStore is a [CeremonyStore] in memory, for tests and
// examples. It is safe for concurrent use.
type MemCeremonyStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

// PutCeremony implements [CeremonyStore].
func (s *MemCeremonyStore) PutCeremony(id string, state []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[id] = append([]byte(nil), state...)
	return nil
}

// Ceremony implements [CeremonyStore].
func (s *MemCeremonyStore) Ceremony(id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.m[id]; ok {
		return append([]byte(nil), b...), nil
	}
	return nil, nil
}

// DeleteCeremony implements [CeremonyStore].
func (s *MemCeremonyStore) DeleteCeremony(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

// CeremonyIDs implements [CeremonyStore].
func (s *MemCeremonyStore) CeremonyIDs() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.m {
		ids = append(ids, id)
	}
	return ids, nil
}

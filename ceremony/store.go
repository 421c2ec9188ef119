package ceremony

import (
	"slices"
	"sync"
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

// MemCeremonyStore is a [CeremonyStore] in memory, for tests and
// examples. It is safe for concurrent use.
type MemCeremonyStore struct {
	mu        sync.Mutex
	m         map[string][]byte
	approvals map[string][]byte
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

// ApprovalStore keeps the proposals a node's operator approved, by
// proposal hash. Approvals are written only over the node's control
// channel, never by its public API.
type ApprovalStore interface {
	// PutApproval stores the signed proposal approved under hash, durably.
	PutApproval(hash string, signed []byte) error
	// Approval returns the approved signed proposal, nil if none.
	Approval(hash string) ([]byte, error)
	// DeleteApproval forgets an approval; a missing one is no error.
	DeleteApproval(hash string) error
	// ApprovalHashes lists the stored approvals.
	ApprovalHashes() ([]string, error)
}

// PutApproval implements [ApprovalStore].
func (s *MemCeremonyStore) PutApproval(hash string, signed []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.approvals == nil {
		s.approvals = map[string][]byte{}
	}
	s.approvals[hash] = slices.Clone(signed)
	return nil
}

// Approval implements [ApprovalStore].
func (s *MemCeremonyStore) Approval(hash string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.approvals[hash]), nil
}

// DeleteApproval implements [ApprovalStore].
func (s *MemCeremonyStore) DeleteApproval(hash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.approvals, hash)
	return nil
}

// ApprovalHashes implements [ApprovalStore].
func (s *MemCeremonyStore) ApprovalHashes() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var hs []string
	for h := range s.approvals {
		hs = append(hs, h)
	}
	slices.Sort(hs)
	return hs, nil
}

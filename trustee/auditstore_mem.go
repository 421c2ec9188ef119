package trustee

import (
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// MemAuditStore is an [AuditStore] that keeps the log in memory. It is for
// tests, examples and loopback demos: its records last only as long as the
// process, so it meets the durability contract of [AuditStore] only in that
// limited sense. A MemAuditStore is safe for concurrent use.
type MemAuditStore struct {
	mu      sync.RWMutex
	records [][]byte
	hashes  []tlog.Hash
}

// NewMemAuditStore returns an empty in-memory audit store.
func NewMemAuditStore() *MemAuditStore {
	return &MemAuditStore{}
}

// Append implements [AuditStore]. It stores nothing unless every check
// passes, and copies the records so later changes by the caller cannot
// reach the log.
func (s *MemAuditStore) Append(start int64, records [][]byte, hashes []tlog.Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	size := int64(len(s.records))
	if start != size {
		return fmt.Errorf("%w: append at %d, store holds %d records", ErrAuditStoreConflict, start, size)
	}
	want := tlog.StoredHashCount(size+int64(len(records))) - tlog.StoredHashCount(size)
	if int64(len(hashes)) != want {
		return fmt.Errorf("trustee: audit store: appending %d records needs %d hashes, got %d", len(records), want, len(hashes))
	}
	for _, r := range records {
		s.records = append(s.records, append([]byte(nil), r...))
	}
	s.hashes = append(s.hashes, hashes...)
	return nil
}

// ReadHashes implements [tlog.HashReader] and so [AuditStore].
func (s *MemAuditStore) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(s.hashes)) {
			return nil, fmt.Errorf("%w: stored hash %d (store holds %d hashes)", ErrAuditOutOfRange, x, len(s.hashes))
		}
		out[i] = s.hashes[x]
	}
	return out, nil
}

// ReadRecord implements [AuditStore]. The returned slice is a copy.
func (s *MemAuditStore) ReadRecord(i int64) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if i < 0 || i >= int64(len(s.records)) {
		return nil, fmt.Errorf("%w: record %d (store holds %d records)", ErrAuditOutOfRange, i, len(s.records))
	}
	return append([]byte(nil), s.records[i]...), nil
}

// Size implements [AuditStore].
func (s *MemAuditStore) Size() (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int64(len(s.records)), nil
}

package auditlog

import (
	"bytes"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// MemStore is an [Store] that keeps the log in memory. It is for
// tests, examples and loopback demos: its records last only as long as the
// process, so it meets the durability contract of [Store] only in that
// limited sense. A MemStore is safe for concurrent use.
type MemStore struct {
	mu         sync.RWMutex
	records    [][]byte
	hashes     []tlog.Hash
	checkpoint []byte
}

// NewMemStore returns an empty in-memory audit store.
func NewMemStore() *MemStore {
	return &MemStore{}
}

// Append implements [Store]. It stores nothing unless every check
// passes, and copies the records so later changes by the caller cannot
// reach the log.
func (s *MemStore) Append(start int64, records [][]byte, hashes []tlog.Hash, checkpoint []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	size := int64(len(s.records))
	if start != size {
		return fmt.Errorf("%w: append at %d, store holds %d records", ErrStoreConflict, start, size)
	}
	want := tlog.StoredHashCount(size+int64(len(records))) - tlog.StoredHashCount(size)
	if int64(len(hashes)) != want {
		return fmt.Errorf("auditlog: store: appending %d records needs %d hashes, got %d", len(records), want, len(hashes))
	}
	for _, r := range records {
		s.records = append(s.records, append([]byte(nil), r...))
	}
	s.hashes = append(s.hashes, hashes...)
	s.checkpoint = bytes.Clone(checkpoint)
	return nil
}

// Checkpoint implements [Store].
func (s *MemStore) Checkpoint() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return bytes.Clone(s.checkpoint), nil
}

// ReadHashes implements [tlog.HashReader] and so [Store].
func (s *MemStore) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(s.hashes)) {
			return nil, fmt.Errorf("%w: stored hash %d (store holds %d hashes)", ErrOutOfRange, x, len(s.hashes))
		}
		out[i] = s.hashes[x]
	}
	return out, nil
}

// ReadRecord implements [Store]. The returned slice is a copy.
func (s *MemStore) ReadRecord(i int64) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if i < 0 || i >= int64(len(s.records)) {
		return nil, fmt.Errorf("%w: record %d (store holds %d records)", ErrOutOfRange, i, len(s.records))
	}
	return append([]byte(nil), s.records[i]...), nil
}

// Size implements [Store].
func (s *MemStore) Size() (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int64(len(s.records)), nil
}

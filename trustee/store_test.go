package trustee

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keyquorum/keyquorum/auditlog"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// newBoltStore creates an empty store in a fresh directory and closes it
// when the test ends (closing twice is harmless).
func newBoltStore(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "node.db")
	s, err := CreateStore(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func reopenStore(t testing.TB, s *Store) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenStore(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	return s2
}

// auditStoreImpls are the AuditStore implementations the contract tests
// run over.
var auditStoreImpls = []struct {
	name string
	new  func(t *testing.T) AuditStore
}{
	{"mem", func(t *testing.T) AuditStore { return NewMemAuditStore() }},
	{"bbolt", func(t *testing.T) AuditStore { s, _ := newBoltStore(t); return s }},
}

// TestAuditStoreContract runs the behaviours the in-memory store is tested
// for (see TestMemAuditStoreAppendIsAllOrNothing) over every
// implementation.
func TestAuditStoreContract(t *testing.T) {
	for _, impl := range auditStoreImpls {
		t.Run(impl.name, func(t *testing.T) {
			s := impl.new(t)
			rec := []byte("r0")
			good := []tlog.Hash{tlog.RecordHash(rec)}
			refused := []struct {
				name    string
				start   int64
				records [][]byte
				hashes  []tlog.Hash
				want    error
			}{
				{"wrong start", 1, [][]byte{rec}, good, ErrAuditStoreConflict},
				{"negative start", -1, [][]byte{rec}, good, ErrAuditStoreConflict},
				{"too few hashes", 0, [][]byte{rec}, nil, errAny},
				{"too many hashes", 0, [][]byte{rec}, append(good, good...), errAny},
			}
			for _, tt := range refused {
				err := s.Append(tt.start, tt.records, tt.hashes, nil)
				if err == nil || tt.want != errAny && !errors.Is(err, tt.want) {
					t.Fatalf("%s: err = %v, want %v", tt.name, err, tt.want)
				}
				if n, err := s.Size(); n != 0 || err != nil {
					t.Fatalf("%s: size %d (%v) after a refused append", tt.name, n, err)
				}
				if _, err := s.ReadHashes([]int64{0}); !errors.Is(err, ErrAuditOutOfRange) {
					t.Fatalf("%s: a hash was stored by a refused append (err = %v)", tt.name, err)
				}
			}

			// Two records in one call; the store keeps its own copy.
			buf := []byte("r1")
			h0, h1 := tlog.RecordHash(rec), tlog.RecordHash(buf)
			if err := s.Append(0, [][]byte{rec, buf}, []tlog.Hash{h0, h1, tlog.NodeHash(h0, h1)}, nil); err != nil {
				t.Fatal(err)
			}
			buf[0] = 'X'
			if got, _ := s.ReadRecord(1); string(got) != "r1" {
				t.Fatalf("record 1 = %q after the caller changed its buffer", got)
			}
			got, _ := s.ReadRecord(0)
			got[0] = 'Z'
			if again, _ := s.ReadRecord(0); string(again) != "r0" {
				t.Fatalf("record 0 = %q after the caller changed a returned slice", again)
			}
			if n, err := s.Size(); n != 2 || err != nil {
				t.Fatalf("size = %d, %v; want 2", n, err)
			}
			hs, err := s.ReadHashes([]int64{2, 0, 1})
			if err != nil || hs[0] != tlog.NodeHash(h0, h1) || hs[1] != h0 || hs[2] != h1 {
				t.Fatalf("ReadHashes = %v, %v", hs, err)
			}
			for _, idx := range []int64{3, -1} {
				if _, err := s.ReadHashes([]int64{0, idx}); !errors.Is(err, ErrAuditOutOfRange) {
					t.Fatalf("ReadHashes(%d): err = %v", idx, err)
				}
			}
			for _, i := range []int64{2, -1} {
				if _, err := s.ReadRecord(i); !errors.Is(err, ErrAuditOutOfRange) {
					t.Fatalf("ReadRecord(%d): err = %v", i, err)
				}
			}
			if err := s.Append(0, [][]byte{rec}, good, nil); !errors.Is(err, ErrAuditStoreConflict) {
				t.Fatalf("append over existing records: err = %v", err)
			}
		})
	}
}

// TestStoreAuditLogSurvivesReopen runs the audit log over a bbolt store,
// closes it, reopens it, and checks that every record and hash is there,
// that the restarted log signs the same head, and that it extends it.
func TestStoreAuditLogSurvivesReopen(t *testing.T) {
	s, _ := newBoltStore(t)
	signer, v := testLogKey(t, "trustee-1.keyquorum", 1)
	l, err := NewAuditLog(s, signer, testClock)
	if err != nil {
		t.Fatal(err)
	}
	const n = 37
	heads := appendN(t, l, v, n, "reopen")
	var records [][]byte
	var hashes []tlog.Hash
	for i := range int64(n) {
		_, data, err := l.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, data)
	}
	all := make([]int64, tlog.StoredHashCount(n))
	for i := range all {
		all[i] = int64(i)
	}
	if hashes, err = s.ReadHashes(all); err != nil {
		t.Fatal(err)
	}

	s2 := reopenStore(t, s)
	if got, err := s2.Size(); got != n || err != nil {
		t.Fatalf("size after reopen = %d, %v; want %d", got, err, n)
	}
	again, err := s2.ReadHashes(all)
	if err != nil {
		t.Fatal(err)
	}
	for i := range hashes {
		if again[i] != hashes[i] {
			t.Fatalf("hash %d changed across close and reopen", i)
		}
	}
	l2, err := NewAuditLog(s2, signer, testClock)
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(n) {
		_, data, err := l2.Record(i)
		if err != nil || !bytes.Equal(data, records[i]) {
			t.Fatalf("record %d after reopen: %q, %v", i, data, err)
		}
	}
	h, err := l2.Head()
	if err != nil {
		t.Fatal(err)
	}
	tree, err := VerifyHead(h.Note, v)
	if err != nil || tree != heads[n] {
		t.Fatalf("head after reopen = %+v, %v; want %+v", tree, err, heads[n])
	}
	// The restarted log extends every head signed before the restart.
	more := appendN(t, l2, v, 5, "after")
	last := more[len(more)-1]
	for _, old := range heads {
		p, err := l2.ConsistencyProof(old.N, last.N)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyConsistency(old, last, p); err != nil {
			t.Fatalf("size %d to %d: %v", old.N, last.N, err)
		}
	}
}

func TestStoreOpenRefusals(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nothing", "node.db")
	if _, err := OpenStore(missing); !errors.Is(err, ErrNoStore) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing store: err = %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("OpenStore created a file")
	}

	s, path := newBoltStore(t)
	s.Close()
	if _, err := CreateStore(path); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("CreateStore over an existing store: err = %v", err)
	}
	if s2, err := OpenStore(path); err != nil {
		t.Fatalf("the existing store was damaged by the refused create: %v", err)
	} else {
		s2.Close()
	}
}

// TestStoreLocked opens a store twice: the second open waits for the lock
// for StoreLockTimeout and gives up with a clear error.
func TestStoreLocked(t *testing.T) {
	s, path := newBoltStore(t)
	_, err := OpenStore(path)
	if !errors.Is(err, ErrStoreLocked) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "stop that process") {
		t.Fatalf("second open: err = %v", err)
	}
	s.Close()
	s2, err := OpenStore(path)
	if err != nil {
		t.Fatalf("open after the holder closed: %v", err)
	}
	s2.Close()
}

// damagedStoreFile builds a store with an identity, shares and a few
// hundred audit records, closes it and returns its path and the bytes.
func damagedStoreFile(t *testing.T) (string, []byte) {
	t.Helper()
	s, path := newBoltStore(t)
	v := mustVault(t, s)
	id := testIdentity(t, "trustee-1", "127.0.0.1:7001")
	if err := v.SaveIdentity(id); err != nil {
		t.Fatal(err)
	}
	signer, lv := testLogKey(t, "trustee-1.keyquorum", 1)
	l, err := NewAuditLog(s, signer, testClock)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, lv, 300, "damage")
	v.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

// openAndUnlock is what a node does at start.
func openAndUnlock(path string) error {
	s, err := OpenStore(path)
	if err != nil {
		return err
	}
	defer s.Close()
	v, err := s.Unlock(testPassphrase)
	if err != nil {
		return err
	}
	defer v.Close()
	_, err = v.LoadIdentity()
	return err
}

// TestStoreDamage damages a store file in several ways. Each must be
// refused with an error that names the file and says to restore it, and
// nothing may panic or fault.
func TestStoreDamage(t *testing.T) {
	path, orig := damagedStoreFile(t)
	if err := openAndUnlock(path); err != nil {
		t.Fatalf("undamaged store: %v", err)
	}
	flip := func(b []byte, from, to int) {
		for i := from; i < to && i < len(b); i++ {
			b[i] ^= 0xa5
		}
	}
	pageSize := os.Getpagesize()
	recordAt := func(b []byte) int {
		rec, err := testRecord(150, "damage").Marshal()
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(b, rec)
		if i < 0 {
			t.Fatal("record 150 not found in the file")
		}
		return i
	}
	tests := []struct {
		name   string
		damage func(b []byte) []byte
		want   string
	}{
		{"bytes flipped in the middle", func(b []byte) []byte {
			mid := len(b) / 2
			flip(b, mid-pageSize/2, mid+pageSize/2)
			return b
		}, ""},
		{"one record's bytes changed", func(b []byte) []byte {
			i := recordAt(b)
			flip(b, i+20, i+21)
			return b
		}, "audit log tree hash"},
		{"a page header overwritten", func(b []byte) []byte {
			p := (recordAt(b) / pageSize) * pageSize
			flip(b, p, p+16)
			return b
		}, ""},
		{"truncated to half", func(b []byte) []byte { return b[:len(b)/2] }, "truncated"},
		{"truncated to one page", func(b []byte) []byte { return b[:pageSize] }, ""},
		{"truncated to nothing", func(b []byte) []byte { return nil }, "empty"},
		{"both meta pages destroyed", func(b []byte) []byte {
			flip(b, 0, 2*pageSize)
			return b
		}, ""},
		{"not a store at all", func(b []byte) []byte {
			return bytes.Repeat([]byte("keyquorum "), 3000)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.damage(bytes.Clone(orig))
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			err := openAndUnlock(path)
			if !errors.Is(err, ErrStoreCorrupt) {
				t.Fatalf("err = %v, want ErrStoreCorrupt", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, "restore "+path+" from a backup") || !strings.Contains(msg, tt.want) {
				t.Fatalf("error does not name the file, the fix or %q:\n%v", tt.want, err)
			}
		})
	}
}

// TestStoreSealedSecretDamage changes bytes of the sealed identity inside
// the file: the store opens (bbolt cannot tell), and the vault refuses.
func TestStoreSealedSecretDamage(t *testing.T) {
	path, orig := damagedStoreFile(t)
	b := bytes.Clone(orig)
	i := bytes.Index(b, append([]byte("identity"), sealedVersion))
	if i < 0 {
		t.Fatal("sealed identity not found in the file")
	}
	b[i+len("identity")+40] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Unlock(testPassphrase)
	if !errors.Is(err, ErrStoreCorrupt) || !strings.Contains(err.Error(), "secrets/identity") || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v", err)
	}
}

// TestStoreAuditSizeMismatch: a size record that disagrees with the
// records held is damage.
func TestStoreAuditSizeMismatch(t *testing.T) {
	s, path := newBoltStore(t)
	rec := []byte("r0")
	if err := s.Append(0, [][]byte{rec}, []tlog.Hash{tlog.RecordHash(rec)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyAuditSize, be64(2))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := OpenStore(path); !errors.Is(err, ErrStoreCorrupt) || !strings.Contains(err.Error(), "holds 1 records but says it holds 2") {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkStoreAppend(b *testing.B) {
	s, _ := newBoltStore(b)
	signer, _ := testLogKey(b, "trustee-1.keyquorum", 1)
	l, err := NewAuditLog(s, signer, testClock)
	if err != nil {
		b.Fatal(err)
	}
	rec := testRecord(0, "bench")
	b.ResetTimer()
	for b.Loop() {
		if _, _, _, err := l.Append(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// countingStore counts the commits (Appends, each one synced bbolt
// transaction) of a store.
type countingStore struct {
	*Store
	commits atomic.Int64
}

func (s *countingStore) Append(start int64, records [][]byte, hashes []tlog.Hash, checkpoint []byte) error {
	s.commits.Add(1)
	return s.Store.Append(start, records, hashes, checkpoint)
}

// BenchmarkStoreAppendConcurrent: many decisions logged at once on the
// real bbolt store (32 appenders per CPU), each returning only once its
// record is synced, with one fsync per record (batch of 1) and with group
// commits (auditlog.DefaultMaxBatch).
func BenchmarkStoreAppendConcurrent(b *testing.B) {
	for _, bc := range []struct {
		name  string
		batch int
	}{{"fsync-per-record", 1}, {"group-commit", auditlog.DefaultMaxBatch}} {
		b.Run(bc.name, func(b *testing.B) {
			s, _ := newBoltStore(b)
			cs := &countingStore{Store: s}
			signer, _ := testLogKey(b, "trustee-1.keyquorum", 1)
			l, err := NewAuditLog(cs, signer, testClock)
			if err != nil {
				b.Fatal(err)
			}
			l.SetMaxBatch(bc.batch)
			rec := testRecord(0, "bench")
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, _, err := l.Append(rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.N)/float64(max(cs.commits.Load(), 1)), "records/commit")
		})
	}
}

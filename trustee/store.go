package trustee

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io/fs"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// StoreFormat is the format record of a node store: the value of the key
// "format" in its "meta" bucket. A store without it, or with another value,
// is refused.
const StoreFormat = "keyquorum node store v1"

// StoreLockTimeout is how long [OpenStore] and [CreateStore] wait for the
// file lock another process holds before giving up.
const StoreLockTimeout = time.Second

// Errors from opening and reading a node store. The returned errors wrap
// them and name the file.
var (
	// ErrNoStore: there is no store at that path.
	ErrNoStore = errors.New("trustee: no node store")

	// ErrStoreLocked: another process (usually a running trustee serve)
	// holds the store's lock. Stop it first.
	ErrStoreLocked = errors.New("trustee: node store is in use by another process")

	// ErrStoreCorrupt: the file is damaged, truncated, altered or not a
	// node store. The node refuses to run on it: restore it from a backup.
	ErrStoreCorrupt = errors.New("trustee: node store is damaged")
)

// Bucket names. Every bucket is created with the store.
var (
	bucketMeta       = []byte("meta")          // format, audit-size
	bucketVault      = []byte("vault")         // kdf parameters and check value
	bucketSecrets    = []byte("secrets")       // sealed node secrets
	bucketShares     = []byte("shares")        // sealed epoch shares by epoch
	bucketRecords    = []byte("audit-records") // audit record i at key be64(i)
	bucketHashes     = []byte("audit-hashes")  // tlog stored hash i at key be64(i)
	bucketCeremonies = []byte("ceremonies")    // sealed state of key ceremonies in progress, by id

	storeBuckets = [][]byte{bucketMeta, bucketVault, bucketSecrets, bucketShares, bucketRecords, bucketHashes, bucketCeremonies}

	keyFormat     = []byte("format")
	keyAuditSize  = []byte("audit-size")
	keyCheckpoint = []byte("audit-checkpoint") // the latest checkpoint the log signed, stored with the records it covers
)

// Store is a trustee node's durable state: one bbolt file (DIR/node.db)
// holding the audit log, the sealed secrets and the vault's key-derivation
// record. Secrets are readable only through a [Vault] from [Store.Unlock].
//
// A Store implements [AuditStore]: each [Store.Append] is one bbolt
// transaction, written and synced to disk (fdatasync) before it returns.
//
// # Damage
//
// bbolt checks the checksums of its two meta pages but not of data pages,
// and it can panic or fault on a damaged page. A Store therefore checks the
// whole file when it opens: every page reachable from the root is read
// (memory faults and bbolt panics become errors), bbolt's own consistency
// check runs, and every audit record and tree hash is recomputed from the
// records. Secrets are sealed with an AEAD, so a changed secret fails its
// check when the vault is unlocked. Any failure is an error wrapping
// [ErrStoreCorrupt] that names the file and says to restore it from a
// backup; nothing panics.
//
// Two limits remain. Bytes changed in unused space are harmless and go
// unnoticed. And bbolt keeps two meta pages so that a write torn by a power
// cut falls back to the previous transaction; a damaged newest meta page
// therefore rolls the store back one transaction instead of being refused.
// The auditors' consistency checks catch a log that lost a record it had
// signed.
//
// A Store is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
}

// CreateStore creates a new, empty node store at path. It refuses if path
// exists.
func CreateStore(path string) (*Store, error) {
	db, err := openBolt(path, true)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path}
	err = s.update("creating the store", func(tx *bolt.Tx) error {
		for _, name := range storeBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyFormat, []byte(StoreFormat)); err != nil {
			return err
		}
		return meta.Put(keyAuditSize, be64(0))
	})
	if err != nil {
		s.Close()
		os.Remove(path)
		return nil, err
	}
	return s, nil
}

// OpenStore opens the node store at path, taking its lock (waiting at most
// [StoreLockTimeout]), and checks the whole file (see [Store]). It never
// creates a store: a missing file is an error wrapping [ErrNoStore].
func OpenStore(path string) (*Store, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %s does not exist; give the --dir of an initialised trustee (keyquorum trustee init creates one)", ErrNoStore, path)
	case err != nil:
		return nil, fmt.Errorf("trustee: opening %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrNoStore, path)
	case fi.Size() == 0:
		return nil, corruptError(path, "the file is empty (truncated?)")
	}
	db, err := openBolt(path, false)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path}
	if err := s.verify(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Path returns the file the store lives in.
func (s *Store) Path() string { return s.path }

// Close releases the store's file and lock. Close a [Vault] first.
func (s *Store) Close() (err error) {
	defer guardFault(&err, s.path, "closing")()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("trustee: closing %s: %w", s.path, err)
	}
	return nil
}

// openBolt opens (or, with create, creates exclusively) the bbolt file,
// turning lock timeouts, damage and panics into errors naming the file.
func openBolt(path string, create bool) (db *bolt.DB, err error) {
	if !create {
		if err := checkHighWater(path); err != nil {
			return nil, err
		}
	}
	var file *os.File
	defer func() {
		// After a panic bbolt still holds the file, and with it the
		// lock; let both go.
		if err != nil && db == nil && file != nil {
			file.Close()
		}
	}()
	defer guardFault(&err, path, "opening")()
	opts := &bolt.Options{
		Timeout: StoreLockTimeout,
		OpenFile: func(name string, flag int, perm fs.FileMode) (*os.File, error) {
			if create {
				flag |= os.O_CREATE | os.O_EXCL
			} else {
				flag &^= os.O_CREATE
			}
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	}
	db, err = bolt.Open(path, 0o600, opts)
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("%w: %s is locked (a running `keyquorum trustee serve`?); stop that process first", ErrStoreLocked, path)
	case create && errors.Is(err, fs.ErrExist):
		return nil, fmt.Errorf("trustee: %s exists; refusing to overwrite a node store", path)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoStore, path)
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrChecksum), errors.Is(err, bolt.ErrVersionMismatch):
		return nil, corruptError(path, err.Error())
	default:
		return nil, fmt.Errorf("trustee: opening %s: %w", path, err)
	}
}

// checkHighWater refuses a bbolt file shorter than the high-water mark
// its newest valid meta page records, before bbolt maps it: bbolt would
// read past the end of the file while opening it. It reads the meta page
// layout of bbolt's file format version 2 (page header of 16 bytes, then
// magic, version, page size, flags, root bucket, freelist page, high-water
// page id, transaction id, FNV-1a checksum, in native byte order); a file
// it cannot read that way is left for bbolt to judge.
func checkHighWater(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil // bbolt reports it
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	const (
		pageHeader = 16
		metaSize   = 64
		magic      = 0xED0CDAED
		version    = 2
	)
	readMeta := func(off int64) (pageSize, highWater, txid uint64, ok bool) {
		m := make([]byte, metaSize)
		if _, err := f.ReadAt(m, off+pageHeader); err != nil {
			return 0, 0, 0, false
		}
		u32 := func(i int) uint64 { return uint64(binary.NativeEndian.Uint32(m[i:])) }
		u64 := func(i int) uint64 { return binary.NativeEndian.Uint64(m[i:]) }
		h := fnv.New64a()
		h.Write(m[:56])
		if u32(0) != magic || u32(4) != version || u64(56) != h.Sum64() {
			return 0, 0, 0, false
		}
		return u32(8), u64(40), u64(48), true
	}
	ps, hw, tx, ok := readMeta(0)
	if ps == 0 || ps > 1<<20 {
		ok, ps = false, uint64(os.Getpagesize())
	}
	if ps1, hw1, tx1, ok1 := readMeta(int64(ps)); ok1 && (!ok || tx1 > tx) {
		ps, hw, ok = ps1, hw1, true
	}
	if !ok || hw > 1<<40 {
		return nil
	}
	if need := hw * ps; uint64(fi.Size()) < need {
		return corruptError(path, fmt.Sprintf("truncated: the file holds %d bytes, the store needs %d", fi.Size(), need))
	}
	return nil
}

func corruptError(path, detail string) error {
	return fmt.Errorf("%w: %s: %s; the node will not run on it: restore %s from a backup", ErrStoreCorrupt, path, detail, path)
}

func (s *Store) corrupt(format string, args ...any) error {
	return corruptError(s.path, fmt.Sprintf(format, args...))
}

// guardFault makes memory faults on the mapped file panic instead of
// killing the process, and turns any panic into an error wrapping
// [ErrStoreCorrupt]. Use as: defer guardFault(&err, path, what)().
func guardFault(err *error, path, what string) func() {
	old := debug.SetPanicOnFault(true)
	return func() {
		if r := recover(); r != nil {
			*err = corruptError(path, fmt.Sprintf("%s failed: %v", what, r))
		}
		debug.SetPanicOnFault(old)
	}
}

// view and update run fn in a read or write transaction with faults and
// panics turned into errors. An update commits and syncs before returning.
func (s *Store) view(what string, fn func(tx *bolt.Tx) error) (err error) {
	defer guardFault(&err, s.path, what)()
	return s.db.View(fn)
}

func (s *Store) update(what string, fn func(tx *bolt.Tx) error) (err error) {
	defer guardFault(&err, s.path, what)()
	return s.db.Update(fn)
}

// buckets returns the store's buckets in tx, or an error if one is missing.
func (s *Store) bucket(tx *bolt.Tx, name []byte) (*bolt.Bucket, error) {
	b := tx.Bucket(name)
	if b == nil {
		return nil, s.corrupt("bucket %q is missing", name)
	}
	return b, nil
}

// verify checks the whole file; see the Damage section of [Store].
func (s *Store) verify() error {
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("trustee: %s: %w", s.path, err)
	}
	return s.view("checking the store", func(tx *bolt.Tx) error {
		// A file shorter than its own high-water mark was truncated;
		// reading past its end would fault.
		if need := tx.Size(); fi.Size() < need {
			return s.corrupt("truncated: the file holds %d bytes, the store needs %d", fi.Size(), need)
		}
		meta, err := s.bucket(tx, bucketMeta)
		if err != nil {
			return s.corrupt("not a keyquorum node store (no meta bucket)")
		}
		if f := meta.Get(keyFormat); !bytes.Equal(f, []byte(StoreFormat)) {
			return s.corrupt("format record is %q, want %q", truncateBytes(f), StoreFormat)
		}
		for _, name := range storeBuckets {
			if _, err := s.bucket(tx, name); err != nil {
				return err
			}
		}
		// Touch every key and value of every bucket in this goroutine,
		// where a fault is caught, before bbolt's checker (which runs in a
		// goroutine of its own) walks the same pages.
		crc := crc32.NewIEEE()
		if err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				crc.Write(k)
				crc.Write(v)
				return nil
			})
		}); err != nil {
			return s.corrupt("reading: %v", err)
		}
		// Drain the checker fully: it reads the mapped file until it is
		// done, so the transaction must outlive it.
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
		}
		if first != nil {
			return s.corrupt("structure check: %v", first)
		}
		return s.verifyAuditLog(tx)
	})
}

// verifyAuditLog recomputes every stored tree hash from the records.
func (s *Store) verifyAuditLog(tx *bolt.Tx) error {
	size, err := s.auditSize(tx)
	if err != nil {
		return err
	}
	recs, hashes := tx.Bucket(bucketRecords), tx.Bucket(bucketHashes)
	if n := recs.Stats().KeyN; int64(n) != size {
		return s.corrupt("audit log holds %d records but says it holds %d", n, size)
	}
	if n := hashes.Stats().KeyN; int64(n) != tlog.StoredHashCount(size) {
		return s.corrupt("audit log holds %d tree hashes, %d records need %d", n, size, tlog.StoredHashCount(size))
	}
	computed := make(memHashes, 0, tlog.StoredHashCount(size))
	for i := int64(0); i < size; i++ {
		rec := recs.Get(be64(uint64(i)))
		if rec == nil {
			return s.corrupt("audit record %d is missing", i)
		}
		hs, err := tlog.StoredHashes(i, rec, computed)
		if err != nil {
			return s.corrupt("audit record %d: %v", i, err)
		}
		for _, h := range hs {
			stored := hashes.Get(be64(uint64(len(computed))))
			if !bytes.Equal(stored, h[:]) {
				return s.corrupt("audit log tree hash %d does not match the records (record %d or the hash was altered)", len(computed), i)
			}
			computed = append(computed, h)
		}
	}
	return nil
}

// memHashes is a tlog.HashReader over hashes held in memory.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("%w: stored hash %d", ErrAuditOutOfRange, x)
		}
		out[i] = m[x]
	}
	return out, nil
}

func (s *Store) auditSize(tx *bolt.Tx) (int64, error) {
	meta, err := s.bucket(tx, bucketMeta)
	if err != nil {
		return 0, err
	}
	v := meta.Get(keyAuditSize)
	if len(v) != 8 || binary.BigEndian.Uint64(v) > 1<<62 {
		return 0, s.corrupt("audit log size record is damaged")
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// Size implements [AuditStore].
func (s *Store) Size() (int64, error) {
	var n int64
	err := s.view("reading the audit log size", func(tx *bolt.Tx) error {
		var err error
		n, err = s.auditSize(tx)
		return err
	})
	return n, err
}

// Append implements [AuditStore]: records, hashes and the checkpoint that
// covers them are written in one bbolt transaction that is synced to disk
// before Append returns nil.
func (s *Store) Append(start int64, records [][]byte, hashes []tlog.Hash, checkpoint []byte) error {
	return s.update("appending to the audit log", func(tx *bolt.Tx) error {
		size, err := s.auditSize(tx)
		if err != nil {
			return err
		}
		if start != size {
			return fmt.Errorf("%w: append at %d, store holds %d records", ErrAuditStoreConflict, start, size)
		}
		end := size + int64(len(records))
		if want := tlog.StoredHashCount(end) - tlog.StoredHashCount(size); int64(len(hashes)) != want {
			return fmt.Errorf("trustee: audit store: appending %d records needs %d hashes, got %d", len(records), want, len(hashes))
		}
		recs, hb := tx.Bucket(bucketRecords), tx.Bucket(bucketHashes)
		// Keys only ever grow: pack pages full instead of half.
		recs.FillPercent, hb.FillPercent = 1, 1
		for i, r := range records {
			if err := recs.Put(be64(uint64(start)+uint64(i)), r); err != nil {
				return err
			}
		}
		base := uint64(tlog.StoredHashCount(size))
		for i := range hashes {
			if err := hb.Put(be64(base+uint64(i)), hashes[i][:]); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketMeta).Put(keyCheckpoint, checkpoint); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyAuditSize, be64(uint64(end)))
	})
}

// Checkpoint implements [AuditStore].
func (s *Store) Checkpoint() ([]byte, error) {
	var out []byte
	err := s.view("reading the audit checkpoint", func(tx *bolt.Tx) error {
		meta, err := s.bucket(tx, bucketMeta)
		if err != nil {
			return err
		}
		out = bytes.Clone(meta.Get(keyCheckpoint))
		return nil
	})
	return out, err
}

// ReadHashes implements [tlog.HashReader] and so [AuditStore].
func (s *Store) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	err := s.view("reading audit log hashes", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHashes)
		for i, x := range indexes {
			if x < 0 {
				return fmt.Errorf("%w: stored hash %d", ErrAuditOutOfRange, x)
			}
			v := b.Get(be64(uint64(x)))
			if v == nil {
				return fmt.Errorf("%w: stored hash %d (not stored yet)", ErrAuditOutOfRange, x)
			}
			if len(v) != len(out[i]) {
				return s.corrupt("audit log tree hash %d has %d bytes", x, len(v))
			}
			copy(out[i][:], v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadRecord implements [AuditStore]. The returned slice is the caller's.
func (s *Store) ReadRecord(i int64) ([]byte, error) {
	var out []byte
	err := s.view("reading an audit record", func(tx *bolt.Tx) error {
		size, err := s.auditSize(tx)
		if err != nil {
			return err
		}
		if i < 0 || i >= size {
			return fmt.Errorf("%w: record %d (store holds %d records)", ErrAuditOutOfRange, i, size)
		}
		v := tx.Bucket(bucketRecords).Get(be64(uint64(i)))
		if v == nil {
			return s.corrupt("audit record %d is missing", i)
		}
		out = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func be64(x uint64) []byte { return binary.BigEndian.AppendUint64(nil, x) }

// truncateBytes shortens b for an error message.
func truncateBytes(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

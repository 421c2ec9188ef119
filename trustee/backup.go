package trustee

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/auditlog"
	"github.com/keyquorum/keyquorum/escrow"
	bolt "go.etcd.io/bbolt"
)

// # Backups
//
// A backup is one file holding a consistent copy of a node's directory:
// the store (node.db) as bbolt writes it from one read transaction, so the
// running node keeps serving while it is taken, and the node's small files
// (descriptor.json, group.json, policy.toml) as they are. The store's
// secrets stay sealed under the node's passphrase exactly as at rest: a
// backup holds no plaintext secret, but whoever holds it can try
// passphrases offline against it, so keep it as carefully as node.db.
//
// Its format is versioned by its first line and ends with a checksum of
// everything before it:
//
//	keyquorum trustee backup v1
//	trustee <name>
//	origin <log origin>
//	tree-size <records in the audit log>
//	checkpoint <base64 of the signed checkpoint stored with them>   (absent for a log that never signed one)
//	file <name> <bytes>                                             (one line per file, names in order)
//	<empty line>
//	<the files' bytes, one after the other, in the order of their lines>
//	sha256 <hex SHA-256 of every byte above>
//
// [RestoreBackup] checks the checksum, the header against the store it
// carries (the store is opened and checked whole, as [OpenStore] does), and
// marks the restored store so that the node cannot serve from it before
// its witnesses have confirmed that it is not behind what the federation
// has seen of its log ([Store.Restored], [CheckWitnesses]).

// BackupFormat is the first line of a backup file.
const BackupFormat = "keyquorum trustee backup v1"

// BackupStoreFile is the store's name in a backup and in a node's
// directory.
const BackupStoreFile = "node.db"

// backupFiles are the files a backup may hold, in their order in it.
// node.db is required; the others are copied when present.
var backupFiles = []string{"descriptor.json", "group.json", BackupStoreFile, "policy.toml"}

// maxBackupSideFile bounds the small files of a backup (all but node.db).
const maxBackupSideFile = 16 << 20

// maxBackupHeader bounds the header of a backup file.
const maxBackupHeader = 64 << 10

// Errors of backups and restores.
var (
	// ErrBadBackup: the file is not a whole, unaltered keyquorum backup.
	// Take a new backup, or use another copy of this one.
	ErrBadBackup = errors.New("trustee: not a valid keyquorum trustee backup")

	// ErrRestoreTarget: the directory to restore into holds a node (or a
	// node serves it); the error says what to do.
	ErrRestoreTarget = errors.New("trustee: will not restore into that directory")
)

// BackupFile is one file in a backup.
type BackupFile struct {
	Name string
	Size int64
}

// BackupHeader is what a backup says it holds.
type BackupHeader struct {
	Trustee    string
	Origin     string // the audit log's origin, escrow.LogKeyName(Trustee)
	TreeSize   int64  // records in the audit log
	Checkpoint []byte // the signed checkpoint stored with them; nil if none
	Files      []BackupFile
}

// Marshal returns the header's text, ending with the empty line.
func (h *BackupHeader) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\ntrustee %s\norigin %s\ntree-size %d\n", BackupFormat, h.Trustee, h.Origin, h.TreeSize)
	if h.Checkpoint != nil {
		fmt.Fprintf(&b, "checkpoint %s\n", base64.StdEncoding.EncodeToString(h.Checkpoint))
	}
	for _, f := range h.Files {
		fmt.Fprintf(&b, "file %s %d\n", f.Name, f.Size)
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// ParseBackupHeader parses a header written by [BackupHeader.Marshal]
// (up to and including its empty line), refusing any other form with an
// error wrapping [ErrBadBackup].
func ParseBackupHeader(text []byte) (*BackupHeader, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: header: %s", ErrBadBackup, fmt.Sprintf(format, args...))
	}
	body, ok := bytes.CutSuffix(text, []byte("\n\n"))
	if !ok {
		return nil, bad("does not end with an empty line")
	}
	lines := strings.Split(string(body), "\n")
	if lines[0] != BackupFormat {
		if strings.HasPrefix(lines[0], "keyquorum trustee backup ") {
			return nil, bad("version %q; this build reads %q (use a newer keyquorum)", truncateBytes([]byte(lines[0])), BackupFormat)
		}
		return nil, bad("first line is not %q", BackupFormat)
	}
	field := func(i int, name string) (string, error) {
		if i >= len(lines) {
			return "", bad("missing %q line", name)
		}
		v, ok := strings.CutPrefix(lines[i], name+" ")
		if !ok {
			return "", bad("line %d is not %q", i+1, name+" ...")
		}
		return v, nil
	}
	h := &BackupHeader{}
	var err error
	if h.Trustee, err = field(1, "trustee"); err != nil {
		return nil, err
	}
	if !escrow.ValidTrusteeName(h.Trustee) {
		return nil, bad("trustee name %q", truncateBytes([]byte(h.Trustee)))
	}
	if h.Origin, err = field(2, "origin"); err != nil {
		return nil, err
	}
	if h.Origin != escrow.LogKeyName(h.Trustee) {
		return nil, bad("origin %q is not trustee %s's log", truncateBytes([]byte(h.Origin)), h.Trustee)
	}
	size, err := field(3, "tree-size")
	if err != nil {
		return nil, err
	}
	if h.TreeSize, err = parseCanonicalSize(size); err != nil {
		return nil, bad("tree-size %q", truncateBytes([]byte(size)))
	}
	i := 4
	if i < len(lines) && strings.HasPrefix(lines[i], "checkpoint ") {
		v, _ := field(i, "checkpoint")
		cp, err := base64.StdEncoding.Strict().DecodeString(v)
		if err != nil || len(cp) == 0 || base64.StdEncoding.EncodeToString(cp) != v {
			return nil, bad("checkpoint is not base64")
		}
		origin, tree, err := auditlog.ParseCheckpointText(string(cp))
		if err != nil {
			return nil, bad("checkpoint: %v", err)
		}
		if tree.N != h.TreeSize {
			return nil, bad("checkpoint of size %d, tree-size %d", tree.N, h.TreeSize)
		}
		if origin != h.Origin {
			return nil, bad("checkpoint of log %q, origin %q", truncateBytes([]byte(origin)), h.Origin)
		}
		h.Checkpoint = cp
		i++
	} else if h.TreeSize != 0 {
		return nil, bad("a log of %d records without its checkpoint", h.TreeSize)
	}
	next := 0 // index in backupFiles of the next name allowed
	for ; i < len(lines); i++ {
		v, err := field(i, "file")
		if err != nil {
			return nil, err
		}
		name, n, ok := strings.Cut(v, " ")
		size, err := parseCanonicalSize(n)
		if !ok || err != nil {
			return nil, bad("file line %q", truncateBytes([]byte(lines[i])))
		}
		j := next
		for j < len(backupFiles) && backupFiles[j] != name {
			j++
		}
		if j == len(backupFiles) {
			return nil, bad("file %q is unknown, repeated or out of order", truncateBytes([]byte(name)))
		}
		if name != BackupStoreFile && size > maxBackupSideFile {
			return nil, bad("file %s of %d bytes", name, size)
		}
		next = j + 1
		h.Files = append(h.Files, BackupFile{Name: name, Size: size})
	}
	if !h.has(BackupStoreFile) {
		return nil, bad("no %s", BackupStoreFile)
	}
	return h, nil
}

func (h *BackupHeader) has(name string) bool {
	for _, f := range h.Files {
		if f.Name == name {
			return true
		}
	}
	return false
}

// parseCanonicalSize parses a non-negative decimal without sign or
// leading zeros.
func parseCanonicalSize(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > 1<<50 || strconv.FormatInt(n, 10) != s {
		return 0, errors.New("not a size")
	}
	return n, nil
}

// WriteBackup writes a backup of the node in dir, whose store s is open
// (by this process, a running node), to w: the store from one read
// transaction, with the header naming what it holds, and dir's small
// files. trusteeName is the node's name. It returns the header written.
// An error part way leaves w without its checksum line, which
// [RestoreBackup] refuses.
func WriteBackup(w io.Writer, s *Store, dir, trusteeName string) (*BackupHeader, error) {
	if !escrow.ValidTrusteeName(trusteeName) {
		return nil, fmt.Errorf("trustee: backup: trustee name %q", trusteeName)
	}
	side := map[string][]byte{}
	for _, name := range backupFiles {
		if name == BackupStoreFile {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return nil, fmt.Errorf("trustee: backup: %w", err)
		case len(b) > maxBackupSideFile:
			return nil, fmt.Errorf("trustee: backup: %s holds %d bytes, more than a node's file should", name, len(b))
		}
		side[name] = b
	}
	sum := sha256.New()
	out := io.MultiWriter(w, sum)
	var h *BackupHeader
	err := s.view("backing up the store", func(tx *bolt.Tx) error {
		size, err := s.auditSize(tx)
		if err != nil {
			return err
		}
		meta, err := s.bucket(tx, bucketMeta)
		if err != nil {
			return err
		}
		h = &BackupHeader{Trustee: trusteeName, Origin: escrow.LogKeyName(trusteeName), TreeSize: size, Checkpoint: bytes.Clone(meta.Get(keyCheckpoint))}
		for _, name := range backupFiles {
			if name == BackupStoreFile {
				h.Files = append(h.Files, BackupFile{Name: name, Size: tx.Size()})
			} else if b, ok := side[name]; ok {
				h.Files = append(h.Files, BackupFile{Name: name, Size: int64(len(b))})
			}
		}
		if _, err := ParseBackupHeader(h.Marshal()); err != nil {
			return fmt.Errorf("trustee: backup of %s: %w", s.path, err)
		}
		if _, err := out.Write(h.Marshal()); err != nil {
			return err
		}
		for _, f := range h.Files {
			if f.Name != BackupStoreFile {
				if _, err := out.Write(side[f.Name]); err != nil {
					return err
				}
				continue
			}
			if _, err := tx.WriteTo(out); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trustee: backup: %w", err)
	}
	if _, err := fmt.Fprintf(w, "sha256 %s\n", hex.EncodeToString(sum.Sum(nil))); err != nil {
		return nil, fmt.Errorf("trustee: backup: %w", err)
	}
	return h, nil
}

// BackupStoppedNode writes a backup of the node in dir, which no process
// serves: it opens the store (checking it whole) and names the trustee
// from descriptor.json.
func BackupStoppedNode(w io.Writer, dir string) (*BackupHeader, error) {
	db, err := os.ReadFile(filepath.Join(dir, "descriptor.json"))
	if err != nil {
		return nil, fmt.Errorf("trustee: backup: the node's name: %w", err)
	}
	d, err := ParseDescriptor(db)
	if err != nil {
		return nil, fmt.Errorf("trustee: backup: %s: %w", filepath.Join(dir, "descriptor.json"), err)
	}
	s, err := OpenStore(filepath.Join(dir, BackupStoreFile))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return WriteBackup(w, s, dir, d.Name)
}

// RestoreOptions changes how [RestoreBackup] treats the target directory.
type RestoreOptions struct {
	// Force replaces a directory that holds a node. The old directory is
	// kept beside it as DIR.replaced-<time>, never deleted: it may be the
	// evidence of what went wrong.
	Force bool
	// Now is the clock for the restored marker and the replaced
	// directory's name (default time.Now).
	Now func() time.Time
}

// RestoreBackup checks the backup read from r whole and puts it in place
// as the node directory dir. It writes the files into a new directory
// beside dir, checks the checksum, opens the store and checks it whole
// and against the header, marks the store as restored ([Store.Restored]),
// and only then renames the new directory to dir. It refuses (with an
// error wrapping [ErrRestoreTarget]) while a node serves dir or holds its
// store, and, unless opts.Force, when dir holds anything. A damaged or
// truncated backup gives an error wrapping [ErrBadBackup] and changes
// nothing.
func RestoreBackup(r io.Reader, dir string, opts RestoreOptions) (*BackupHeader, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	dir = filepath.Clean(dir)
	replace, err := checkRestoreTarget(dir, opts.Force)
	if err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".restore-*")
	if err != nil {
		return nil, fmt.Errorf("trustee: restore: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(stage)
		}
	}()
	if err := os.Chmod(stage, 0o700); err != nil {
		return nil, fmt.Errorf("trustee: restore: %w", err)
	}
	h, err := extractBackup(r, stage)
	if err != nil {
		return nil, err
	}
	if err := checkRestoredStore(filepath.Join(stage, BackupStoreFile), h, opts.Now()); err != nil {
		return nil, err
	}
	syncPath(stage)
	if replace {
		old := fmt.Sprintf("%s.replaced-%s", dir, opts.Now().UTC().Format("20060102T150405Z"))
		for i := 2; ; i++ {
			if _, err := os.Lstat(old); errors.Is(err, fs.ErrNotExist) {
				break
			}
			old = fmt.Sprintf("%s.replaced-%s-%d", dir, opts.Now().UTC().Format("20060102T150405Z"), i)
		}
		if err := os.Rename(dir, old); err != nil {
			return nil, fmt.Errorf("trustee: restore: moving the old directory aside: %w", err)
		}
	} else if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("trustee: restore: %w", err)
	}
	if err := os.Rename(stage, dir); err != nil {
		return nil, fmt.Errorf("trustee: restore: %w", err)
	}
	ok = true
	syncPath(filepath.Dir(dir))
	return h, nil
}

// checkRestoreTarget says whether dir holds a node to replace, refusing a
// live one, and a non-empty one without force.
func checkRestoreTarget(dir string, force bool) (replace bool, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%w: %s: %v", ErrRestoreTarget, dir, err)
	case len(entries) == 0:
		return false, nil
	}
	if c, err := dialControl(dir); err == nil {
		c.Close()
		return false, fmt.Errorf("%w: a node is serving %s (its control socket answers); stop it first (systemctl stop, or SIGTERM)", ErrRestoreTarget, dir)
	}
	if storeLocked(filepath.Join(dir, BackupStoreFile)) {
		return false, fmt.Errorf("%w: a process holds %s; stop it first", ErrRestoreTarget, filepath.Join(dir, BackupStoreFile))
	}
	if !force {
		return false, fmt.Errorf("%w: %s is not empty; to replace the node in it, pass --force (the old directory is kept beside it as %s.replaced-<time>)", ErrRestoreTarget, dir, filepath.Base(dir))
	}
	return true, nil
}

// storeLocked reports whether another process holds the bbolt lock on path.
func storeLocked(path string) (locked bool) {
	if _, err := os.Stat(path); err != nil {
		return false
	}
	defer func() {
		if recover() != nil {
			locked = false // a damaged file, not a live one
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if err == nil {
		db.Close()
		return false
	}
	return errors.Is(err, bolt.ErrTimeout)
}

// extractBackup reads a backup into the directory stage, checking its
// checksum, and returns its header.
func extractBackup(r io.Reader, stage string) (*BackupHeader, error) {
	sum := sha256.New()
	br := bufio.NewReader(r)
	var head []byte
	for {
		line, err := br.ReadSlice('\n')
		head = append(head, line...)
		if err != nil {
			return nil, fmt.Errorf("%w: the header ends early (%v); is this a backup file?", ErrBadBackup, err)
		}
		if len(head) > maxBackupHeader {
			return nil, fmt.Errorf("%w: no header within %d bytes", ErrBadBackup, maxBackupHeader)
		}
		if len(line) == 1 {
			break
		}
	}
	sum.Write(head)
	h, err := ParseBackupHeader(head)
	if err != nil {
		return nil, err
	}
	for _, f := range h.Files {
		if err := writeStaged(filepath.Join(stage, f.Name), io.TeeReader(io.LimitReader(br, f.Size), sum), f.Size); err != nil {
			return nil, err
		}
	}
	want := fmt.Sprintf("sha256 %x\n", sum.Sum(nil))
	trailer, err := io.ReadAll(io.LimitReader(br, int64(len(want))+1))
	if err != nil || string(trailer) != want {
		return nil, fmt.Errorf("%w: the checksum at its end is missing or does not match: the file is truncated or altered; use another copy", ErrBadBackup)
	}
	return h, nil
}

// writeStaged writes exactly size bytes from r to a new file at path and
// syncs it.
func writeStaged(path string, r io.Reader, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("trustee: restore: %w", err)
	}
	n, err := io.Copy(f, r)
	if err == nil && n != size {
		err = fmt.Errorf("%w: %s ends after %d of its %d bytes: the file is truncated; use another copy", ErrBadBackup, filepath.Base(path), n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, ErrBadBackup) {
		err = fmt.Errorf("trustee: restore: writing %s: %w", path, err)
	}
	return err
}

// checkRestoredStore opens the store a backup carried, checks it whole
// and against the header, and marks it restored.
func checkRestoredStore(path string, h *BackupHeader, now time.Time) error {
	s, err := OpenStore(path)
	if err != nil {
		return fmt.Errorf("%w: its store: %w", ErrBadBackup, err)
	}
	defer s.Close()
	size, err := s.Size()
	if err != nil {
		return fmt.Errorf("%w: its store: %w", ErrBadBackup, err)
	}
	cp, err := s.Checkpoint()
	if err != nil {
		return fmt.Errorf("%w: its store: %w", ErrBadBackup, err)
	}
	if size != h.TreeSize || !bytes.Equal(cp, h.Checkpoint) {
		return fmt.Errorf("%w: the header says %d records, the store holds %d (or its checkpoint differs); the backup was altered", ErrBadBackup, h.TreeSize, size)
	}
	return s.markRestored(h, now)
}

// keyRestored, in the meta bucket, marks a store put back from a backup
// that has not yet been checked against its witnesses.
var keyRestored = []byte("restored")

func (s *Store) markRestored(h *BackupHeader, now time.Time) error {
	v := fmt.Sprintf("restored %s from a backup of tree size %d", now.UTC().Format(time.RFC3339), h.TreeSize)
	return s.update("marking the store restored", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyRestored, []byte(v))
	})
}

// Restored returns the note [RestoreBackup] left in the store, or "" for
// a store that was not restored or whose restore its witnesses have
// since confirmed ([Store.ClearRestored]). A node must not sign anything
// from a restored store before its witnesses confirm it is not behind
// ([CheckWitnesses]).
func (s *Store) Restored() (string, error) {
	var v string
	err := s.view("reading the restored mark", func(tx *bolt.Tx) error {
		meta, err := s.bucket(tx, bucketMeta)
		if err != nil {
			return err
		}
		v = string(meta.Get(keyRestored))
		return nil
	})
	return v, err
}

// ClearRestored removes the restored mark, once the witnesses have
// confirmed the store.
func (s *Store) ClearRestored() error {
	return s.update("clearing the restored mark", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Delete(keyRestored)
	})
}

// syncPath syncs a directory's entries, where the platform allows.
func syncPath(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// VerifyBackup checks the backup read from r as [RestoreBackup] would
// (checksum, header, the whole store against it) without putting it
// anywhere: the files are written to a new directory under scratch and
// removed again. Backups are checked when they are taken.
func VerifyBackup(r io.Reader, scratch string) (*BackupHeader, error) {
	stage, err := os.MkdirTemp(scratch, ".keyquorum-backup-check-*")
	if err != nil {
		return nil, fmt.Errorf("trustee: checking the backup: %w", err)
	}
	defer os.RemoveAll(stage)
	h, err := extractBackup(r, stage)
	if err != nil {
		return nil, err
	}
	if err := checkRestoredStore(filepath.Join(stage, BackupStoreFile), h, time.Now()); err != nil {
		return nil, err
	}
	return h, nil
}

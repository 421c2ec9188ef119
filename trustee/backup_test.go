package trustee

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/auditlog"
	"golang.org/x/mod/sumdb/tlog"
)

// backupNode makes a node directory holding a store whose log has n
// records and the node's small files, and returns it with the store open.
func backupNode(t testing.TB, n int) (string, *Store) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "node")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := CreateStore(filepath.Join(dir, BackupStoreFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	signer, v := testLogKey(t, "trustee-1.keyquorum", 1)
	l, err := NewAuditLog(s, signer, testClock)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, v, n, "backup")
	for name, body := range map[string]string{"policy.toml": "# policy\n", "group.json": "{}\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, s
}

// TestBackupRestoreRoundTrip: a backup taken from an open store restores
// to a directory with the same files, a store that opens and holds the
// same log, marked restored until the mark is cleared.
func TestBackupRestoreRoundTrip(t *testing.T) {
	dir, s := backupNode(t, 9)
	var buf bytes.Buffer
	h, err := WriteBackup(&buf, s, dir, "trustee-1")
	if err != nil {
		t.Fatal(err)
	}
	if h.TreeSize != 9 || h.Origin != "trustee-1.keyquorum" || h.Checkpoint == nil {
		t.Fatalf("header %+v", h)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte(BackupFormat+"\n")) {
		t.Fatalf("backup does not start with its format line: %.40q", buf.Bytes())
	}
	if _, err := VerifyBackup(bytes.NewReader(buf.Bytes()), t.TempDir()); err != nil {
		t.Fatalf("fresh backup does not verify: %v", err)
	}
	to := filepath.Join(t.TempDir(), "restored")
	got, err := RestoreBackup(bytes.NewReader(buf.Bytes()), to, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Marshal(), h.Marshal()) {
		t.Fatalf("restored header %q, written %q", got.Marshal(), h.Marshal())
	}
	for _, name := range []string{"policy.toml", "group.json"} {
		a, _ := os.ReadFile(filepath.Join(dir, name))
		b, err := os.ReadFile(filepath.Join(to, name))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s restored as %q (%v), was %q", name, b, err, a)
		}
	}
	if fi, err := os.Stat(to); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("restored directory mode: %v %v", fi.Mode(), err)
	}
	r, err := OpenStore(filepath.Join(to, BackupStoreFile))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cp, _ := r.Checkpoint()
	if n, _ := r.Size(); n != 9 || !bytes.Equal(cp, h.Checkpoint) {
		t.Fatalf("restored store: %d records, checkpoint %q", n, cp)
	}
	mark, err := r.Restored()
	if err != nil || !strings.Contains(mark, "tree size 9") {
		t.Fatalf("restored mark %q, %v", mark, err)
	}
	if err := r.ClearRestored(); err != nil {
		t.Fatal(err)
	}
	if mark, _ := r.Restored(); mark != "" {
		t.Fatalf("mark after clearing: %q", mark)
	}
	// The source is not marked.
	if mark, _ := s.Restored(); mark != "" {
		t.Fatalf("the backed-up store is marked %q", mark)
	}
}

// TestRestoreRefusals: a damaged, truncated or altered backup is refused
// with ErrBadBackup and leaves the target alone; a target that holds a
// node is refused with ErrRestoreTarget unless forced, and the replaced
// directory is kept.
func TestRestoreRefusals(t *testing.T) {
	dir, s := backupNode(t, 3)
	var buf bytes.Buffer
	if _, err := WriteBackup(&buf, s, dir, "trustee-1"); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	headerEnd := bytes.Index(good, []byte("\n\n")) + 2
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		return b
	}
	bad := map[string][]byte{
		"empty":            nil,
		"not a backup":     []byte("hello\n\nworld"),
		"newer version":    append([]byte("keyquorum trustee backup v2\n"), good[len(BackupFormat)+1:]...),
		"truncated":        good[:len(good)/2],
		"no checksum":      good[:bytes.LastIndex(good, []byte("sha256 "))],
		"store byte":       flip(headerEnd + 4096 + 100),
		"checksum altered": flip(len(good) - 3),
		"trailing bytes":   append(bytes.Clone(good), 'x'),
		"header size":      bytes.Replace(good, []byte("tree-size 3\n"), []byte("tree-size 4\n"), 1),
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			to := filepath.Join(t.TempDir(), "node")
			_, err := RestoreBackup(bytes.NewReader(b), to, RestoreOptions{})
			if !errors.Is(err, ErrBadBackup) {
				t.Fatalf("err = %v, want ErrBadBackup", err)
			}
			if _, err := os.Stat(to); !os.IsNotExist(err) {
				t.Fatalf("a refused restore left %s: %v", to, err)
			}
			left, _ := filepath.Glob(filepath.Join(filepath.Dir(to), ".node.restore-*"))
			if len(left) != 0 {
				t.Fatalf("staging left behind: %v", left)
			}
		})
	}

	// A live node: its store is held open.
	if _, err := RestoreBackup(bytes.NewReader(good), dir, RestoreOptions{Force: true}); !errors.Is(err, ErrRestoreTarget) || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("restore over a live node: %v", err)
	}
	s.Close()
	before, _ := os.ReadFile(filepath.Join(dir, BackupStoreFile))
	if _, err := RestoreBackup(bytes.NewReader(good), dir, RestoreOptions{}); !errors.Is(err, ErrRestoreTarget) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("restore over a node without --force: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, BackupStoreFile)); !bytes.Equal(before, after) {
		t.Fatal("a refused restore changed the store")
	}
	now := time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC)
	if _, err := RestoreBackup(bytes.NewReader(good), dir, RestoreOptions{Force: true, Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	kept, err := os.ReadFile(filepath.Join(dir+".replaced-20261205T110000Z", BackupStoreFile))
	if err != nil || !bytes.Equal(kept, before) {
		t.Fatalf("the replaced directory was not kept: %v", err)
	}
	// An empty directory is fine.
	empty := filepath.Join(t.TempDir(), "empty")
	os.Mkdir(empty, 0o700)
	if _, err := RestoreBackup(bytes.NewReader(good), empty, RestoreOptions{}); err != nil {
		t.Fatalf("restore into an empty directory: %v", err)
	}
}

// TestBackupStoppedNode: a stopped node is backed up by opening its
// store; it takes its name from descriptor.json.
func TestBackupStoppedNode(t *testing.T) {
	dir, s := backupNode(t, 2)
	s.Close()
	if _, err := BackupStoppedNode(&bytes.Buffer{}, dir); err == nil || !strings.Contains(err.Error(), "descriptor.json") {
		t.Fatalf("backup without a descriptor: %v", err)
	}
	id, err := GenerateIdentity("trustee-1", "127.0.0.1:1", testClock(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := id.Descriptor().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "descriptor.json"), desc, 0o600); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	h, err := BackupStoppedNode(&buf, dir)
	if err != nil {
		t.Fatal(err)
	}
	if h.Trustee != "trustee-1" || h.TreeSize != 2 || len(h.Files) != 4 {
		t.Fatalf("header %+v", h)
	}
	if _, err := VerifyBackup(&buf, t.TempDir()); err != nil {
		t.Fatal(err)
	}
}

// backupHeaderSeeds are two good headers, then bad ones.
var backupHeaderSeeds = []string{
	BackupFormat + "\ntrustee trustee-1\norigin trustee-1.keyquorum\ntree-size 0\nfile node.db 32768\n\n",
	BackupFormat + "\ntrustee t2\norigin t2.keyquorum\ntree-size 1\ncheckpoint " +
		base64.StdEncoding.EncodeToString([]byte(auditlog.FormatCheckpoint("t2.keyquorum", tlog.Tree{N: 1})+"\n\u2014 t2.keyquorum AAAAAAAA\n")) +
		"\nfile descriptor.json 10\nfile group.json 2\nfile node.db 65536\nfile policy.toml 9\n\n",
	BackupFormat + "\ntrustee a\norigin a.keyquorum\ntree-size 01\nfile node.db 1\n\n",
	BackupFormat + "\ntrustee a\norigin a.keyquorum\ntree-size 0\nfile policy.toml 1\nfile node.db 1\n\n",
}

// TestBackupHeaderRoundTrip: whatever parses marshals back to the same
// bytes, and the refusals say why.
func TestBackupHeaderRoundTrip(t *testing.T) {
	for i, s := range backupHeaderSeeds {
		h, err := ParseBackupHeader([]byte(s))
		if i >= 2 {
			if !errors.Is(err, ErrBadBackup) {
				t.Errorf("seed %d parsed: %+v, %v", i, h, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if got := h.Marshal(); string(got) != s {
			t.Errorf("seed %d: marshal(parse) = %q", i, got)
		}
	}
}

func FuzzParseBackupHeader(f *testing.F) {
	for _, s := range backupHeaderSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseBackupHeader(b)
		if err != nil {
			if !errors.Is(err, ErrBadBackup) {
				t.Fatalf("error without ErrBadBackup: %v", err)
			}
			return
		}
		if got := h.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("marshal(parse(%q)) = %q", b, got)
		}
		again, err := ParseBackupHeader(h.Marshal())
		if err != nil || !bytes.Equal(again.Marshal(), b) {
			t.Fatalf("parse(marshal) = %v", err)
		}
	})
}

// FuzzVerifyBackup: whatever bytes are offered as a backup, checking them
// either accepts a backup whose header marshals back to the bytes it
// started with, or refuses with ErrBadBackup; nothing panics.
func FuzzVerifyBackup(f *testing.F) {
	dir, s := backupNode(f, 2)
	var buf bytes.Buffer
	if _, err := WriteBackup(&buf, s, dir, "trustee-1"); err != nil {
		f.Fatal(err)
	}
	good := buf.Bytes()
	f.Add(good)
	f.Add(good[:len(good)-10])
	f.Add([]byte(backupHeaderSeeds[0] + "sha256 00\n"))
	scratch := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := VerifyBackup(bytes.NewReader(b), scratch)
		if err != nil {
			if !errors.Is(err, ErrBadBackup) {
				t.Fatalf("error without ErrBadBackup: %v", err)
			}
			return
		}
		if !bytes.HasPrefix(b, h.Marshal()) {
			t.Fatalf("accepted a backup whose header is not its first bytes")
		}
	})
}

// TestControlBackup: a running node's backup over its control socket is
// the file WriteBackup makes; a backup that fails before its first byte
// is an error to the client, and one cut short fails its check.
func TestControlBackup(t *testing.T) {
	dir, s := backupNode(t, 4)
	l, err := ListenControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var backupErr, cutAfter = error(nil), 0
	go http.Serve(l, ControlHandler(ControlConfig{Backup: func(w io.Writer) error {
		if backupErr != nil {
			return backupErr
		}
		if cutAfter > 0 {
			var buf bytes.Buffer
			WriteBackup(&buf, s, dir, "trustee-1")
			w.Write(buf.Bytes()[:cutAfter])
			return errors.New("disk gone")
		}
		_, err := WriteBackup(w, s, dir, "trustee-1")
		return err
	}}))
	c := NewControlClient(dir)
	var got bytes.Buffer
	if err := c.Backup(&got); err != nil {
		t.Fatal(err)
	}
	h, err := VerifyBackup(bytes.NewReader(got.Bytes()), t.TempDir())
	if err != nil || h.TreeSize != 4 {
		t.Fatalf("backup over the socket: %+v, %v", h, err)
	}
	backupErr = errors.New("trustee: the store is closed")
	if err := c.Backup(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "the store is closed") {
		t.Fatalf("failed backup: %v", err)
	}
	backupErr, cutAfter = nil, 5000
	got.Reset()
	if err := c.Backup(&got); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyBackup(bytes.NewReader(got.Bytes()), t.TempDir()); !errors.Is(err, ErrBadBackup) {
		t.Fatalf("a backup cut short: %v", err)
	}
}

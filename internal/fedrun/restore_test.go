package fedrun_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/auditlog"
	"github.com/keyquorum/keyquorum/internal/fedrun"
	"github.com/keyquorum/keyquorum/trustee"
)

// feedWitnesses sends tr's current checkpoint to every other trustee's
// witness (C2SP tlog-witness add-checkpoint, with the consistency proof
// from the size each one knows) and returns its size. It stands for the
// node's own submissions to its witnesses.
func feedWitnesses(ctx context.Context, t *testing.T, fed *fedrun.Federation, tr *fedrun.Trustee) int64 {
	t.Helper()
	tree, head, err := verifiedHead(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range fed.Trustees {
		if w == tr {
			continue
		}
		_, err := w.Client.AddCheckpoint(ctx, auditlog.FormatAddCheckpoint(0, nil, head))
		var conflict *auditlog.WitnessConflictError
		if errors.As(err, &conflict) && conflict.Known < tree.N {
			proof, perr := tr.Client.Consistency(ctx, conflict.Known, tree.N)
			if perr != nil {
				t.Fatal(perr)
			}
			_, err = w.Client.AddCheckpoint(ctx, auditlog.FormatAddCheckpoint(conflict.Known, proof, head))
		} else if errors.As(err, &conflict) && conflict.Known == tree.N {
			err = nil
		}
		if err != nil {
			t.Fatalf("%s witnessing %s at size %d: %v", w.Name, tr.Name, tree.N, err)
		}
	}
	return tree.N
}

// TestRestoreOldBackupRefused: a dishonest or mistaken operator of
// trustee-2 puts back an old backup of its node, taken before some of its
// grants, after the other trustees' witnesses cosigned the larger log.
// The restored node refuses to start with ErrBehindWitnesses' message
// naming the missing sizes, signs nothing and leaves its store as
// restored; the latest backup, restored next, starts, serves a decryption
// and every log verifies (issue 9, build item 5).
func TestRestoreOldBackupRefused(t *testing.T) {
	fx := newFixture(t, fixtureConfig{trustees: 3, threshold: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tr := fx.fed.Trustees[1]
	dir := t.TempDir()
	backup := func(name string) string {
		t.Helper()
		out := filepath.Join(dir, name)
		code, stdout, stderr := runKeyquorum(t, "trustee", "backup", "--dir", tr.Dir, "--out", out)
		if code != 0 || !strings.Contains(stdout, "from the running node") {
			t.Fatalf("backup: exit %d: %s %s", code, stdout, stderr)
		}
		return out
	}

	if _, err := fx.decrypt(ctx, fx.fed.Group, fx.fed.Clients(), fx.inScope[:1]); err != nil {
		t.Fatal(err)
	}
	oldSize := feedWitnesses(ctx, t, fx.fed, tr)
	oldBackup := backup("old.backup")
	for i := 1; i < 3; i++ {
		if _, err := fx.decrypt(ctx, fx.fed.Group, fx.fed.Clients(), fx.inScope[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	newSize := feedWitnesses(ctx, t, fx.fed, tr)
	if newSize <= oldSize {
		t.Fatalf("log did not grow: %d then %d", oldSize, newSize)
	}
	latestBackup := backup("latest.backup")
	if err := tr.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}

	// The old backup: restored, then refused at start.
	code, stdout, stderr := runKeyquorum(t, "trustee", "restore", "--dir", tr.Dir, "--from", oldBackup)
	if code != 2 || !strings.Contains(stderr, "--force") {
		t.Fatalf("restore over the node without --force: exit %d %s %s", code, stdout, stderr)
	}
	code, stdout, stderr = runKeyquorum(t, "trustee", "restore", "--dir", tr.Dir, "--from", oldBackup, "--force")
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("audit log of %d records", oldSize)) {
		t.Fatalf("restore: exit %d %s %s", code, stdout, stderr)
	}
	storePath := filepath.Join(tr.Dir, "node.db")
	before, err := os.ReadFile(storePath)
	if err != nil {
		t.Fatal(err)
	}
	err = tr.Start(ctx)
	if err == nil {
		t.Fatal("a node restored from an old backup started")
	}
	want := fmt.Sprintf("records %d to %d (sizes %d..%d) are missing", oldSize, newSize-1, oldSize, newSize)
	for _, w := range []string{"refusing to serve", want, "keyquorum trustee restore", "fork"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("start-up error does not say %q: %v", w, err)
		}
	}
	// The operator's override is for witnesses that cannot be reached,
	// never for a log they show to be behind.
	tr.ServeArgs = []string{"--override-witness-check", "I am sure this is the latest backup"}
	err = tr.Start(ctx)
	tr.ServeArgs = nil
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("old backup with the override: %v", err)
	}
	after, err := os.ReadFile(storePath)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Fatal("the refused node changed its store")
	}
	s, err := trustee.OpenStore(storePath)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := s.Size()
	mark, _ := s.Restored()
	s.Close()
	if n != oldSize || mark == "" {
		t.Fatalf("after the refusal: %d records (want %d), restored mark %q", n, oldSize, mark)
	}

	// The latest backup: restored, starts, clears its mark and serves.
	code, stdout, stderr = runKeyquorum(t, "trustee", "restore", "--dir", tr.Dir, "--from", latestBackup, "--force")
	if code != 0 {
		t.Fatalf("restore latest: exit %d %s %s", code, stdout, stderr)
	}
	if err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	logs, _ := os.ReadFile(filepath.Join(tr.Dir, "serve.log"))
	if !strings.Contains(string(logs), "witness check passed") {
		t.Errorf("the restored node did not log its witness check:\n%s", logs)
	}
	if _, err := fx.decrypt(ctx, fx.fed.Group, fx.fed.Clients(), fx.inScope[3:4]); err != nil {
		t.Fatal(err)
	}
	if got := feedWitnesses(ctx, t, fx.fed, tr); got <= newSize {
		t.Fatalf("the restored log did not grow: %d", got)
	}
	code, stdout, stderr = runKeyquorum(t, "audit", "verify", "--group", fx.fed.GroupPath, "--state", filepath.Join(dir, "audit.state"))
	if code != 0 {
		t.Fatalf("audit verify: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, m := range fx.fed.Trustees {
		if !strings.Contains(stdout, m.Name) || strings.Contains(stdout, "FORKED") {
			t.Errorf("audit verify on %s:\n%s", m.Name, stdout)
		}
	}
	// The replaced directories are kept.
	kept, _ := filepath.Glob(tr.Dir + ".replaced-*")
	if len(kept) == 0 {
		t.Error("restore --force kept no replaced directory")
	}
}

// TestRestoredNodeNeedsWitnesses: a node restored from its latest backup
// while the other trustees are down does not start (it cannot know it is
// not behind), names the witnesses it could not reach, and starts with
// an explicit operator override, which it logs.
func TestRestoredNodeNeedsWitnesses(t *testing.T) {
	fx := newFixture(t, fixtureConfig{trustees: 2, threshold: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tr, other := fx.fed.Trustees[0], fx.fed.Trustees[1]
	out := filepath.Join(t.TempDir(), "t1.backup")
	if code, _, stderr := runKeyquorum(t, "trustee", "backup", "--dir", tr.Dir, "--out", out); code != 0 {
		t.Fatal(stderr)
	}
	if err := tr.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := other.Kill(); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runKeyquorum(t, "trustee", "restore", "--dir", tr.Dir, "--from", out, "--force"); code != 0 {
		t.Fatal(stderr)
	}
	tr.ServeArgs = []string{"--witness-wait", "2s"}
	err := tr.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "0 of the 1 witnesses it needs answered") || !strings.Contains(err.Error(), other.Name) || !strings.Contains(err.Error(), "--override-witness-check") {
		t.Fatalf("restored node without witnesses: %v", err)
	}
	const reason = "trustee-2's machine burned down; restored from last night's backup"
	tr.ServeArgs = []string{"--witness-wait", "2s", "--override-witness-check", reason}
	if err := tr.Start(ctx); err != nil {
		t.Fatalf("with the override: %v", err)
	}
	logs, _ := os.ReadFile(filepath.Join(tr.Dir, "serve.log"))
	if !strings.Contains(string(logs), "OPERATOR OVERRIDE") || !strings.Contains(string(logs), reason) {
		t.Errorf("the override is not logged with its reason:\n%s", logs)
	}
	if err := tr.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The mark stays: the next start asks the witnesses again.
	s, err := trustee.OpenStore(filepath.Join(tr.Dir, "node.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if mark, _ := s.Restored(); mark == "" {
		t.Fatal("the override cleared the restored mark")
	}
}

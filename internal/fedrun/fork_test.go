package fedrun_test

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/trustee"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// TestKilledNodeRefusesRewrittenLog: a dishonest operator (or a restore
// gone wrong) kills a trustee with SIGKILL, erases its grant record and
// grows the log back to the same size with records of its choosing,
// recomputing every tree hash, so that the store is self-consistent. The
// restarted node refuses to serve or sign: the checkpoint it stored with
// the records no longer matches them (issue 9, finding 4).
func TestKilledNodeRefusesRewrittenLog(t *testing.T) {
	fx := newFixture(t, fixtureConfig{trustees: 1, threshold: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr := fx.fed.Trustees[0]
	if _, err := tr.Client.Decrypt(ctx, fx.request(t, fx.inScope[:1])); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Client.Decrypt(ctx, fx.request(t, fx.inScope[1:2])); err != nil {
		t.Fatal(err)
	}
	before, head, err := verifiedHead(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Kill(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(tr.Dir, "node.db")
	// Erase the first grant and regrow to the same size with a copy of
	// the second one.
	rewriteLog(t, path, func(recs [][]byte) [][]byte {
		return [][]byte{recs[1], recs[1]}
	})

	err = tr.Start(ctx)
	if err == nil {
		t.Fatal("the trustee started over a rewritten log")
	}
	for _, want := range []string{"refusing to sign", "do not hash to the checkpoint of size 2", "keyquorum trustee restore"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("start-up error does not say %q: %v", want, err)
		}
	}
	// Nothing was signed: the checkpoint in the store is the last one the
	// node served.
	s, err := trustee.OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stored, err := s.Checkpoint()
	if err != nil || string(stored) != string(head) {
		t.Fatalf("stored checkpoint changed: %q (%v), the node served %q (size %d)", stored, err, head, before.N)
	}
}

// rewriteLog replaces the audit records of the stopped node's store at
// path with edit(records), recomputing the tree hashes so that the store
// is consistent in itself, and leaves the stored checkpoint alone.
func rewriteLog(t *testing.T, path string, edit func([][]byte) [][]byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		recs, hashes := tx.Bucket([]byte("audit-records")), tx.Bucket([]byte("audit-hashes"))
		var old [][]byte
		recs.ForEach(func(_, v []byte) error {
			old = append(old, append([]byte(nil), v...))
			return nil
		})
		newRecs := edit(old)
		for _, name := range []string{"audit-records", "audit-hashes"} {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return err
			}
		}
		recs, err := tx.CreateBucket([]byte("audit-records"))
		if err != nil {
			return err
		}
		if hashes, err = tx.CreateBucket([]byte("audit-hashes")); err != nil {
			return err
		}
		var all memHashes
		for i, r := range newRecs {
			hs, err := tlog.StoredHashes(int64(i), r, all)
			if err != nil {
				return err
			}
			all = append(all, hs...)
			if err := recs.Put(binary.BigEndian.AppendUint64(nil, uint64(i)), r); err != nil {
				return err
			}
		}
		for i, h := range all {
			if err := hashes.Put(binary.BigEndian.AppendUint64(nil, uint64(i)), h[:]); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("audit-size"), binary.BigEndian.AppendUint64(nil, uint64(len(newRecs))))
	})
	if err != nil {
		t.Fatal(err)
	}
}

type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m[x]
	}
	return out, nil
}

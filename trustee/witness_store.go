package trustee

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/keyquorum/keyquorum/auditlog"
	"github.com/keyquorum/keyquorum/escrow"
	bolt "go.etcd.io/bbolt"
)

// The node's witness state, in its own buckets of the node store (made on
// first use, so stores made before witnessing open unchanged):
//
//   - witness-latest: by log origin, the latest checkpoint of that log the
//     node cosigned, exactly as the log signed it;
//   - witness-evidence: by origin, 0x00 and a big-endian sequence number,
//     each pair of checkpoints of one log that no proof connects: the one
//     kept and the one refused, each length-prefixed (4 bytes, big-endian).
var (
	bucketWitnessLatest   = []byte("witness-latest")
	bucketWitnessEvidence = []byte("witness-evidence")
)

// WitnessStore returns the node store as the durable
// [auditlog.WitnessStore] of the node's witness: each change is one bbolt
// transaction synced to disk before it returns, so a restarted witness
// neither cosigns a checkpoint that does not extend one it cosigned
// before, nor forgets the evidence of a fork.
func (s *Store) WitnessStore() auditlog.WitnessStore { return witnessStore{s} }

type witnessStore struct{ s *Store }

// Latest implements [auditlog.WitnessStore].
func (w witnessStore) Latest(origin string) ([]byte, error) {
	var out []byte
	err := w.s.view("reading the witness state", func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketWitnessLatest); b != nil {
			out = bytes.Clone(b.Get([]byte(origin)))
		}
		return nil
	})
	return out, err
}

// Advance implements [auditlog.WitnessStore].
func (w witnessStore) Advance(origin string, prev, next []byte) error {
	return w.s.update("advancing the witness state", func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketWitnessLatest)
		if err != nil {
			return err
		}
		if cur := b.Get([]byte(origin)); !bytes.Equal(cur, prev) {
			_, tree, _ := auditlog.ParseCheckpointText(string(cur))
			return &auditlog.WitnessConflictError{Known: tree.N}
		}
		return b.Put([]byte(origin), next)
	})
}

// KeepEvidence implements [auditlog.WitnessStore].
func (w witnessStore) KeepEvidence(origin string, kept, refused []byte) error {
	return w.s.update("keeping evidence of a fork", func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketWitnessEvidence)
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		key := binary.BigEndian.AppendUint64(append([]byte(origin), 0), seq)
		var v []byte
		for _, cp := range [][]byte{kept, refused} {
			v = binary.BigEndian.AppendUint32(v, uint32(len(cp)))
			v = append(v, cp...)
		}
		return b.Put(key, v)
	})
}

// WitnessEvidence returns the pairs of checkpoints of the log origin that
// the node's witness refused as forks, oldest first: in each, the
// checkpoint it had cosigned and the one that does not extend it.
func (s *Store) WitnessEvidence(origin string) ([][2][]byte, error) {
	var out [][2][]byte
	err := s.view("reading the witness evidence", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWitnessEvidence)
		if b == nil {
			return nil
		}
		prefix := append([]byte(origin), 0)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, v = c.Next() {
			var pair [2][]byte
			for i := range pair {
				if len(v) < 4 || uint32(len(v)-4) < binary.BigEndian.Uint32(v) {
					return s.corrupt("witness evidence for %s is truncated", origin)
				}
				n := binary.BigEndian.Uint32(v)
				pair[i], v = bytes.Clone(v[4:4+n]), v[4+n:]
			}
			out = append(out, pair)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trustee: %w", err)
	}
	return out, nil
}

// WitnessStatus is what a node's witness holds, for its operator
// ([NodeStatus]): per other trustee's log, the size of the latest
// checkpoint it cosigned and the forks it refused, with their evidence.
type WitnessStatus struct {
	Quorum int                `json:"witness_quorum"` // w of the group
	Logs   []WitnessLogStatus `json:"logs"`
}

// WitnessLogStatus is the witness's state for one log.
type WitnessLogStatus struct {
	Trustee  string        `json:"trustee"`
	Cosigned int64         `json:"cosigned_size"` // 0: none yet
	Forks    []ForkRefused `json:"forks_refused,omitempty"`
}

// ForkRefused is one pair of checkpoints of a log that no proof connects:
// the one the witness had cosigned and the one it refused. Together they
// prove the log's operator signed a fork.
type ForkRefused struct {
	Kept    string `json:"kept"`
	Refused string `json:"refused"`
}

// WitnessStatus reads the state of trustee self's witness for the other
// trustees of g.
func (s *Store) WitnessStatus(g *escrow.GroupFile, self string) (*WitnessStatus, error) {
	out := &WitnessStatus{Quorum: g.Witnesses(), Logs: []WitnessLogStatus{}}
	ws := s.WitnessStore()
	for _, m := range g.Trustees {
		if m.Name == self {
			continue
		}
		origin := escrow.LogKeyName(m.Name)
		l := WitnessLogStatus{Trustee: m.Name}
		latest, err := ws.Latest(origin)
		if err != nil {
			return nil, err
		}
		if latest != nil {
			_, tree, _ := auditlog.ParseCheckpointText(string(latest))
			l.Cosigned = tree.N
		}
		ev, err := s.WitnessEvidence(origin)
		if err != nil {
			return nil, err
		}
		for _, p := range ev {
			l.Forks = append(l.Forks, ForkRefused{Kept: string(p[0]), Refused: string(p[1])})
		}
		out.Logs = append(out.Logs, l)
	}
	return out, nil
}

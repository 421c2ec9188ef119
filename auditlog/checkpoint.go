package auditlog

import (
	"fmt"
	"math"

	fmtlog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/tlog"
)

// FormatCheckpoint returns the body of a C2SP tlog-checkpoint of tree for
// the log named origin: origin, size and base64 root hash, one per line,
// as github.com/transparency-dev/formats/log writes it.
func FormatCheckpoint(origin string, tree tlog.Tree) string {
	return string(fmtlog.Checkpoint{Origin: origin, Size: uint64(tree.N), Hash: tree.Hash[:]}.Marshal())
}

// ParseCheckpointText parses the body of a C2SP tlog-checkpoint (no
// signatures checked) and returns its origin and tree. Extension lines are
// allowed. It refuses with [ErrMalformedCheckpoint].
func ParseCheckpointText(text string) (origin string, tree tlog.Tree, err error) {
	var cp fmtlog.Checkpoint
	if _, err := cp.Unmarshal([]byte(text)); err != nil {
		return "", tlog.Tree{}, fmt.Errorf("%w: %v", ErrMalformedCheckpoint, err)
	}
	tree, err = treeOf(&cp)
	return cp.Origin, tree, err
}

// parseCheckpointText parses a checkpoint body and checks its origin.
func parseCheckpointText(text, origin string) (tlog.Tree, error) {
	got, tree, err := ParseCheckpointText(text)
	if err != nil {
		return tlog.Tree{}, err
	}
	if got != origin {
		return tlog.Tree{}, fmt.Errorf("%w: origin %q, want %q", ErrMalformedCheckpoint, got, origin)
	}
	return tree, nil
}

func treeOf(cp *fmtlog.Checkpoint) (tlog.Tree, error) {
	var t tlog.Tree
	if len(cp.Hash) != len(t.Hash) {
		return tlog.Tree{}, fmt.Errorf("%w: root hash of %d bytes, want %d", ErrMalformedCheckpoint, len(cp.Hash), len(t.Hash))
	}
	if cp.Size > math.MaxInt64 {
		return tlog.Tree{}, fmt.Errorf("%w: size %d is too large", ErrMalformedCheckpoint, cp.Size)
	}
	t.N = int64(cp.Size)
	copy(t.Hash[:], cp.Hash)
	return t, nil
}

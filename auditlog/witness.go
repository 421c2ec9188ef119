package auditlog

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Witnessing: each trustee also witnesses the other trustees' logs, as a
// C2SP tlog-witness (https://c2sp.org/tlog-witness): a log sends it
// add-checkpoint requests (the size the witness last cosigned, a
// consistency proof from it, and the new checkpoint); the witness checks
// the log's signature and the proof, keeps the new checkpoint as the
// latest for that log, and answers with a C2SP tlog-cosignature
// (https://c2sp.org/tlog-cosignature) line. A checkpoint that does not
// extend the one kept is refused and both are kept as evidence of the
// fork. A split view of a log then needs its operator and every witness
// that cosigned both views to collude.

// Errors of the witness. [WitnessHTTPStatus] maps them to the status
// codes of C2SP tlog-witness.
var (
	// ErrUnknownLog: the witness does not witness a log of that origin.
	ErrUnknownLog = errors.New("auditlog: witness: unknown log origin")
	// ErrWitnessBadRequest: the add-checkpoint request is malformed.
	ErrWitnessBadRequest = errors.New("auditlog: witness: malformed add-checkpoint request")
	// ErrWitnessSignature: the checkpoint is not validly signed by the
	// log's key.
	ErrWitnessSignature = errors.New("auditlog: witness: checkpoint not signed by the log's key")
	// ErrInconsistent: the consistency proof does not show that the new
	// checkpoint extends the one the witness cosigned last: the log forked.
	// The witness keeps both checkpoints ([WitnessStore.KeepEvidence]).
	ErrInconsistent = errors.New("auditlog: witness: the checkpoint does not extend the one cosigned before (the log forked); both are kept as evidence")
)

// WitnessConflictError is returned when the old size of a request is not
// the size the witness last cosigned for the log: the log should retry
// from Known (C2SP tlog-witness answers 409 with it).
type WitnessConflictError struct {
	Known int64
}

func (e *WitnessConflictError) Error() string {
	return fmt.Sprintf("auditlog: witness: the last checkpoint cosigned for this log has size %d, not the old size given", e.Known)
}

// WitnessHTTPStatus is the HTTP status C2SP tlog-witness gives an error of
// [Witness.AddCheckpoint].
func WitnessHTTPStatus(err error) int {
	var conflict *WitnessConflictError
	switch {
	case err == nil:
		return 200
	case errors.As(err, &conflict):
		return 409
	case errors.Is(err, ErrUnknownLog), errors.Is(err, ErrWitnessSignature):
		return 403
	case errors.Is(err, ErrWitnessBadRequest):
		return 400
	case errors.Is(err, ErrInconsistent):
		return 422
	case errors.Is(err, ErrNotWitnessed):
		return 404
	}
	return 500
}

// WitnessStore keeps, per log origin, the latest checkpoint the witness
// cosigned, and the evidence of forks it saw.
type WitnessStore interface {
	// Latest returns the latest checkpoint cosigned for origin, or nil.
	Latest(origin string) ([]byte, error)
	// Advance replaces the latest checkpoint of origin, which must still
	// be prev (nil for none), with next, durably; otherwise it changes
	// nothing and returns an error wrapping [WitnessConflictError].
	Advance(origin string, prev, next []byte) error
	// KeepEvidence durably keeps a pair of checkpoints of origin that no
	// proof connects.
	KeepEvidence(origin string, kept, refused []byte) error
}

// Witness is a C2SP tlog-witness for a fixed set of logs. It is safe for
// concurrent use.
type Witness struct {
	cosigner note.Signer
	logs     map[string]note.Verifier // by origin, which is the key name
	store    WitnessStore
	mu       sync.Mutex
}

// NewWitness returns a witness that cosigns with cosigner (a
// tlog-cosignature/v1 signer, for example from
// github.com/transparency-dev/formats/note.NewSignerForCosignatureV1) the
// checkpoints of the logs whose keys are given; each log's origin is its
// key's name.
func NewWitness(cosigner note.Signer, logs []note.Verifier, store WitnessStore) (*Witness, error) {
	if cosigner == nil || store == nil {
		return nil, errors.New("auditlog: NewWitness needs a cosigner and a store")
	}
	w := &Witness{cosigner: cosigner, logs: map[string]note.Verifier{}, store: store}
	for _, v := range logs {
		if _, dup := w.logs[v.Name()]; dup {
			return nil, fmt.Errorf("auditlog: NewWitness: two logs named %q", v.Name())
		}
		w.logs[v.Name()] = v
	}
	return w, nil
}

// AddCheckpoint handles the body of a C2SP tlog-witness add-checkpoint
// request and returns the cosignature lines to answer with.
func (w *Witness) AddCheckpoint(body []byte) ([]byte, error) {
	oldSize, proof, signed, err := ParseAddCheckpoint(body)
	if err != nil {
		return nil, err
	}
	origin, _, _ := strings.Cut(string(signed), "\n")
	v, ok := w.logs[origin]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownLog, origin)
	}
	tree, err := VerifyCheckpoint(signed, v)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWitnessSignature, err)
	}
	if oldSize > tree.N {
		return nil, fmt.Errorf("%w: old size %d is larger than the checkpoint's %d", ErrWitnessBadRequest, oldSize, tree.N)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	latest, err := w.store.Latest(origin)
	if err != nil {
		return nil, fmt.Errorf("auditlog: witness: %w", err)
	}
	var known tlog.Tree
	if latest != nil {
		if known, err = VerifyCheckpoint(latest, v); err != nil {
			return nil, fmt.Errorf("auditlog: witness: the checkpoint kept for %s does not verify: %w", origin, err)
		}
	}
	if known.N != oldSize {
		return nil, &WitnessConflictError{Known: known.N}
	}
	if latest != nil {
		if err := VerifyConsistency(known, tree, proof); err != nil {
			if kerr := w.store.KeepEvidence(origin, latest, signed); kerr != nil {
				return nil, fmt.Errorf("%w (and keeping the evidence failed: %v): %w", ErrInconsistent, kerr, err)
			}
			return nil, fmt.Errorf("%w: %s: %w", ErrInconsistent, origin, err)
		}
	}
	sig, err := w.cosign(signed, v)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWitnessSignature, err)
	}
	if tree.N > known.N || latest == nil {
		if err := w.store.Advance(origin, latest, signed); err != nil {
			return nil, err
		}
	}
	return sig, nil
}

// cosign returns the witness's cosignature line for the checkpoint signed
// by the log v. It covers the log's exact text, extension lines included.
func (w *Witness) cosign(signed []byte, v note.Verifier) ([]byte, error) {
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return nil, err
	}
	cosigned, err := note.Sign(&note.Note{Text: n.Text}, w.cosigner)
	if err != nil {
		return nil, fmt.Errorf("auditlog: witness: cosigning: %w", err)
	}
	_, sig, _ := bytes.Cut(cosigned, []byte("\n\n"))
	return sig, nil
}

// Latest returns the latest checkpoint of the log origin this witness
// cosigned (as the log signed it), nil if none yet, or an error wrapping
// [ErrUnknownLog] for a log it does not witness. A node restored from a
// backup asks its witnesses for it before signing anything.
func (w *Witness) Latest(origin string) ([]byte, error) {
	if _, ok := w.logs[origin]; !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownLog, origin)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	b, err := w.store.Latest(origin)
	if err != nil {
		return nil, fmt.Errorf("auditlog: witness: %w", err)
	}
	return b, nil
}

// ErrNotWitnessed: the witness knows the log but has cosigned none of its
// checkpoints yet.
var ErrNotWitnessed = errors.New("auditlog: witness: no checkpoint of this log cosigned yet")

// Checkpoint returns the latest checkpoint of the log origin that the
// witness cosigned, as the log signed it, followed by a fresh
// cosignature line of the witness: what an auditor asks every witness
// for, so that a log showing it anything that does not extend this
// checkpoint is caught from the witnesses alone. It refuses with
// [ErrUnknownLog] or [ErrNotWitnessed].
func (w *Witness) Checkpoint(origin string) ([]byte, error) {
	latest, err := w.Latest(origin)
	if err != nil {
		return nil, err
	}
	if latest == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotWitnessed, origin)
	}
	sig, err := w.cosign(latest, w.logs[origin])
	if err != nil {
		return nil, fmt.Errorf("auditlog: witness: the checkpoint kept for %s: %w", origin, err)
	}
	return append(bytes.Clone(latest), sig...), nil
}

// Name returns the witness's key name, the name of its cosignatures.
func (w *Witness) Name() string { return w.cosigner.Name() }

// FormatAddCheckpoint is the body of a C2SP tlog-witness add-checkpoint
// request: "old <size>", the consistency proof's hashes in base64 one per
// line, an empty line, and the signed checkpoint.
func FormatAddCheckpoint(oldSize int64, proof tlog.TreeProof, signed []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", oldSize)
	for _, h := range proof {
		b.WriteString(h.String())
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(signed)
	return b.Bytes()
}

// ParseAddCheckpoint parses a body written by [FormatAddCheckpoint],
// refusing any other form with [ErrWitnessBadRequest].
func ParseAddCheckpoint(body []byte) (oldSize int64, proof tlog.TreeProof, signed []byte, err error) {
	head, signed, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		return 0, nil, nil, fmt.Errorf("%w: no empty line before the checkpoint", ErrWitnessBadRequest)
	}
	lines := strings.Split(string(head), "\n")
	size, ok := strings.CutPrefix(lines[0], "old ")
	if !ok {
		return 0, nil, nil, fmt.Errorf("%w: the first line is not \"old <size>\"", ErrWitnessBadRequest)
	}
	oldSize, err = strconv.ParseInt(size, 10, 64)
	if err != nil || oldSize < 0 || strconv.FormatInt(oldSize, 10) != size {
		return 0, nil, nil, fmt.Errorf("%w: old size %q", ErrWitnessBadRequest, size)
	}
	if len(lines)-1 > 63 {
		return 0, nil, nil, fmt.Errorf("%w: a consistency proof of %d hashes", ErrWitnessBadRequest, len(lines)-1)
	}
	for _, l := range lines[1:] {
		h, err := tlog.ParseHash(l)
		if err != nil || h.String() != l {
			return 0, nil, nil, fmt.Errorf("%w: proof hash %q", ErrWitnessBadRequest, l)
		}
		proof = append(proof, h)
	}
	return oldSize, proof, signed, nil
}

// MemWitnessStore is a [WitnessStore] in memory, for tests and demos.
type MemWitnessStore struct {
	mu       sync.Mutex
	latest   map[string][]byte
	Evidence map[string][][2][]byte // by origin: pairs kept, refused
}

// NewMemWitnessStore returns an empty in-memory witness store.
func NewMemWitnessStore() *MemWitnessStore {
	return &MemWitnessStore{latest: map[string][]byte{}, Evidence: map[string][][2][]byte{}}
}

// Latest implements [WitnessStore].
func (s *MemWitnessStore) Latest(origin string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.latest[origin]), nil
}

// Advance implements [WitnessStore].
func (s *MemWitnessStore) Advance(origin string, prev, next []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !bytes.Equal(s.latest[origin], prev) {
		_, tree, _ := ParseCheckpointText(string(s.latest[origin]))
		return &WitnessConflictError{Known: tree.N}
	}
	s.latest[origin] = bytes.Clone(next)
	return nil
}

// KeepEvidence implements [WitnessStore].
func (s *MemWitnessStore) KeepEvidence(origin string, kept, refused []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Evidence[origin] = append(s.Evidence[origin], [2][]byte{bytes.Clone(kept), bytes.Clone(refused)})
	return nil
}

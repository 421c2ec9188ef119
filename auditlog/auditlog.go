package auditlog

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	fmtlog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Errors returned by the audit log, its stores and its verification
// functions. Callers test for them with [errors.Is]; the returned errors wrap
// them with details.
var (
	// ErrBadRecord: the audit record is malformed, not in canonical
	// form, or breaks a rule of [Record] (for instance a refusal
	// without a code).
	ErrBadRecord = errors.New("auditlog: bad audit record")

	// ErrMalformedCheckpoint: the bytes are not a signed checkpoint in the format
	// [Log.Head] produces. Fetch the head again.
	ErrMalformedCheckpoint = errors.New("auditlog: malformed signed checkpoint")

	// ErrWrongKey: the head carries no signature by the trustee key
	// you hold. Check that you have the right trustee's verifier key (from
	// the group file); do not trust the head.
	ErrWrongKey = errors.New("auditlog: tree head is not signed by the trustee key you trust")

	// ErrBadSignature: the head names the trustee key you hold but the
	// signature does not verify, so the head text was altered after signing
	// or forged. Do not trust it; fetch it again and report it if it persists.
	ErrBadSignature = errors.New("auditlog: tree head signature does not verify: the head was altered or forged")

	// ErrBadInclusion: the record is not at that index in the signed tree.
	// Either the record or the proof was altered, or the trustee's log was
	// rewritten. Do not treat the action as logged; keep the head, the
	// record and the proof, and report it.
	ErrBadInclusion = errors.New("auditlog: record is not included in the signed log at that index: the record, the proof or the log was altered; report it")

	// ErrForked: two signed heads from the same trustee cannot both be
	// true: the newer one does not extend the older one. Keep both signed
	// heads: together they prove the trustee's log was rewritten or forked.
	// Report it. (A proof damaged in transit looks the same; fetch the
	// proof again before reporting.)
	ErrForked = errors.New("auditlog: the trustee's log was rewritten or forked: the newer head does not extend the older one; keep both signed heads and report it")

	// ErrShrank: the head passed as the newer one is smaller than the
	// older one. Either the heads were passed in the wrong order, or the
	// trustee is showing an old state of its log (rolled back).
	ErrShrank = errors.New("auditlog: the newer tree head is smaller than the older one: heads passed in the wrong order, or the log was rolled back")

	// ErrOutOfRange: a record index or tree size beyond what the log
	// holds. Ask for a head first and use sizes up to its size.
	ErrOutOfRange = errors.New("auditlog: record index or tree size out of range for the audit log")

	// ErrStoreConflict: the store's size is not the one the appender
	// expected, so something else wrote to it. Only one Log may write
	// to a store.
	ErrStoreConflict = errors.New("auditlog: audit store changed underneath the log (more than one writer?)")

	// ErrStoreCorrupt: the trustee found its own store inconsistent with
	// what it stored or signed before (a record that does not match its
	// hash, or a tree that does not extend the last head it signed). The
	// node refuses to sign or serve from it: restore the store from a
	// backup and investigate.
	ErrStoreCorrupt = errors.New("auditlog: audit store is corrupt; refusing to sign or serve from it")

	// ErrWouldFork: the records in the store do not extend the largest
	// checkpoint this log signed (kept in the store with the records it
	// covers), so signing anything now would sign a fork: records were
	// erased or rewritten, or an old copy of the store was put back. The
	// log refuses to sign. Do not delete the stored checkpoint to get
	// past this: restore the latest backup (keyquorum trustee restore)
	// and keep this store for investigation.
	ErrWouldFork = errors.New("auditlog: refusing to sign: the log in the store does not extend the largest checkpoint this log signed (restore the latest backup with keyquorum trustee restore and keep this store as evidence; never delete the stored checkpoint)")
)

// Store is where a [Log] keeps its records, the tree hashes tlog computes
// for them, and the latest checkpoint it signed. It is deliberately narrow
// so that a durable store (bbolt) and the in-memory [MemStore] are
// interchangeable.
//
// Records are numbered from 0. Hashes are numbered by tlog's storage index
// (see [tlog.StoredHashIndex]): after n records the store holds exactly
// [tlog.StoredHashCount](n) hashes.
//
// Implementations must be safe for concurrent use. [Log] never calls
// Append concurrently with itself or with the read methods, but other
// readers of the same store may.
type Store interface {
	// ReadHashes returns the hashes at the given storage indexes, in the
	// same order, or an error (wrapping [ErrOutOfRange] for an index
	// not yet stored). It makes every Store a [tlog.HashReader].
	ReadHashes(indexes []int64) ([]tlog.Hash, error)

	// Append adds records as record indexes start, start+1, ... and hashes
	// as storage indexes tlog.StoredHashCount(start), ..., and replaces
	// the stored checkpoint with checkpoint, all in one atomic step.
	// hashes must be the concatenation of the [tlog.StoredHashes] results
	// for those records, in order; records and hashes may be empty (the
	// first checkpoint of an empty log).
	//
	// Contract: when Append returns nil, the records, hashes and
	// checkpoint are durably committed together: they survive a crash of
	// the process or machine (a file store syncs its transaction before
	// returning). When Append returns an error, nothing was stored. If
	// start is not the current size, Append stores nothing and returns an
	// error wrapping [ErrStoreConflict]. Append must not keep references
	// to the slices it is given.
	//
	// The trustee releases no share until Append has returned nil for the
	// record of that decision: the log fails closed.
	Append(start int64, records [][]byte, hashes []tlog.Hash, checkpoint []byte) error

	// ReadRecord returns the bytes of record i, or an error (wrapping
	// [ErrOutOfRange] if i is not stored). The caller may modify the
	// returned slice.
	ReadRecord(i int64) ([]byte, error)

	// Size returns the number of records committed.
	Size() (int64, error)

	// Checkpoint returns the checkpoint stored by the latest Append, or
	// nil if there is none yet.
	Checkpoint() ([]byte, error)
}

// SignedCheckpoint is a signed C2SP tlog-checkpoint
// (https://c2sp.org/tlog-checkpoint) of the log: a [note] whose text is
//
//	<origin>
//	<number of records, decimal>
//	<root hash, base64>
//
// signed by the trustee's log key, whose key name is the origin (a
// C2SP signed note, https://c2sp.org/signed-note):
//
//	— trustee-1.keyquorum <base64 key hash and Ed25519 signature>
//
// The text is made and parsed by github.com/transparency-dev/formats/log,
// so the requester, the auditor and any C2SP tool (witnesses among them)
// check it with standard code. Note is what travels; Tree is what it says.
type SignedCheckpoint struct {
	Tree tlog.Tree
	Note []byte
}

// Log is a trustee's append-only, tamper-evident audit log over a [Store].
// It encodes records, computes the Merkle tree hashes, signs checkpoints
// with the trustee's log key and serves inclusion and consistency proofs.
// It is safe for concurrent use; appends are serialised.
//
// Every decision on a warrant, granted or refused, and every destruction of
// an epoch share is one [Record]. The records are the leaves of the
// Merkle tree of RFC 6962 (Certificate Transparency), section 2.1: a leaf
// hash is SHA-256(0x00 || record), an interior node SHA-256(0x01 || left ||
// right), and a tree of n leaves splits at the largest power of two below n.
// Hash storage and proofs follow the Go checksum database (Russ Cox,
// "Transparent Logs for Skeptical Clients", 2019,
// https://research.swtch.com/tlog), through [tlog]; checkpoints are C2SP
// tlog-checkpoints in C2SP signed notes ([SignedCheckpoint]).
//
// What this buys:
//
//   - The trustee commits the record before any share leaves the node, and
//     the answer carries the signed checkpoint and the inclusion proof. The
//     requester can show anyone that this use of the key was logged without
//     relying on the trustee's word ([VerifyCheckpoint], [VerifyInclusion]).
//   - An auditor keeps the checkpoints it has seen and asks for consistency
//     proofs between them ([VerifyConsistency]). A trustee that deletes or
//     rewrites a record, or shows different logs to different people, ends
//     up having signed two checkpoints that no proof connects; those two
//     are the evidence.
//   - The log holds no secrets: hashes of the warrant and of the case
//     reference, public identifiers, codes and epochs.
//
// # Never a fork
//
// The log signs a checkpoint only in [Log.Append], and stores it in the
// same atomic [Store.Append] as the records it covers; [Log.Head] returns
// the stored one. When the log opens ([New]) it checks that the stored
// checkpoint is its own and that the records in the store still hash to
// it, and before every signature it checks again, against the store, that
// the new tree extends it. A store rewritten under the running log or
// between runs (records erased and regrown, an old copy put back) makes
// it refuse with [ErrWouldFork] instead of signing a fork. What the
// store cannot show (an old copy of the whole store, checkpoint
// included) the witnesses can: see [Witness].
type Log struct {
	// qmu guards the commit queue; mu the store and what was signed.
	// A committer takes qmu only briefly, never while holding mu.
	qmu        sync.Mutex
	queue      []*pendingAppend
	committing bool // a caller is committing; the others wait
	maxBatch   int  // 0: DefaultMaxBatch

	mu     sync.Mutex
	store  Store
	signer note.Signer
	origin string
	now    func() time.Time

	signed     SignedCheckpoint // latest checkpoint signed and stored, if haveSigned
	haveSigned bool
}

// New returns a log over store whose checkpoints are signed by signer (the
// trustee's log key, for example from [note.NewSigner] on a key made by
// [note.GenerateKey] with a name like "trustee-1.keyquorum"; keep it apart
// from the trustee's other keys). The signer's key name is the log's
// origin. now is the clock used to stamp records that carry no time.
//
// New refuses a store whose records do not extend the checkpoint stored in
// it ([ErrWouldFork]) or whose checkpoint this key did not sign
// ([ErrStoreCorrupt]).
func New(store Store, signer note.Signer, now func() time.Time) (*Log, error) {
	if store == nil || signer == nil || now == nil {
		return nil, errors.New("auditlog: New needs a store, a signer and a clock")
	}
	l := &Log{store: store, signer: signer, origin: signer.Name(), now: now}
	if err := l.load(); err != nil {
		return nil, err
	}
	return l, nil
}

// Size returns the number of records in the log.
func (l *Log) Size() (int64, error) {
	n, err := l.store.Size()
	if err != nil {
		return 0, fmt.Errorf("auditlog: reading size: %w", err)
	}
	return n, nil
}

// Origin returns the log's origin: the first line of its checkpoints and
// the key name of its signer.
func (l *Log) Origin() string { return l.origin }

// load reads the stored checkpoint and checks the store against it.
func (l *Log) load() error {
	n, err := l.store.Size()
	if err != nil {
		return fmt.Errorf("auditlog: reading size: %w", err)
	}
	b, err := l.store.Checkpoint()
	if err != nil {
		return fmt.Errorf("auditlog: reading the stored checkpoint: %w", err)
	}
	if b == nil {
		if n != 0 {
			return fmt.Errorf("%w: the store holds %d records but no checkpoint; a store always keeps the checkpoint with the records it covers, so this one was altered", ErrWouldFork, n)
		}
		return nil
	}
	cp, err := l.parseOwn(b)
	if err != nil {
		return err
	}
	l.signed, l.haveSigned = cp, true
	return l.checkStoreLocked(n)
}

// parseOwn parses a checkpoint the log stored, and checks that its own key
// signed exactly these bytes (Ed25519 signatures are deterministic).
func (l *Log) parseOwn(b []byte) (SignedCheckpoint, error) {
	n, err := note.Open(b, note.VerifierList(ownVerifier{l.signer}))
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("%w: the stored checkpoint is not one of this log's: %v", ErrStoreCorrupt, err)
	}
	tree, err := parseCheckpointText(n.Text, l.origin)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("%w: the stored checkpoint: %w", ErrStoreCorrupt, err)
	}
	again, err := note.Sign(&note.Note{Text: n.Text}, l.signer)
	if err != nil || !bytes.Equal(again, b) {
		return SignedCheckpoint{}, fmt.Errorf("%w: the stored checkpoint is not signed by this log's key", ErrStoreCorrupt)
	}
	return SignedCheckpoint{Tree: tree, Note: bytes.Clone(b)}, nil
}

// ownVerifier lets note.Open find the signer's signature by name and key
// hash; parseOwn then checks the signature bytes by signing again.
type ownVerifier struct{ s note.Signer }

func (v ownVerifier) Name() string                { return v.s.Name() }
func (v ownVerifier) KeyHash() uint32             { return v.s.KeyHash() }
func (v ownVerifier) Verify(msg, sig []byte) bool { return true }

// checkStoreLocked checks, against the store, that the stored checkpoint
// is still the one the log signed last and that the store's first
// l.signed.N records still hash to it; n is the store's size. l.mu must be
// held (or the log not yet shared).
func (l *Log) checkStoreLocked(n int64) error {
	if !l.haveSigned {
		return nil
	}
	b, err := l.store.Checkpoint()
	if err != nil {
		return fmt.Errorf("auditlog: reading the stored checkpoint: %w", err)
	}
	if !bytes.Equal(b, l.signed.Note) {
		return fmt.Errorf("%w: the checkpoint in the store is not the one this log signed last (size %d); something else writes to the store", ErrWouldFork, l.signed.Tree.N)
	}
	if n < l.signed.Tree.N {
		return fmt.Errorf("%w: the store holds %d records, the checkpoint this log signed covers %d; records %d to %d are missing", ErrWouldFork, n, l.signed.Tree.N, n, l.signed.Tree.N-1)
	}
	if n > l.signed.Tree.N {
		return fmt.Errorf("%w: the store holds %d records, but its checkpoint covers only %d; records were added without a checkpoint", ErrWouldFork, n, l.signed.Tree.N)
	}
	h, err := tlog.TreeHash(n, l.store)
	if err != nil {
		return fmt.Errorf("auditlog: computing tree hash at size %d: %w", n, err)
	}
	if h != l.signed.Tree.Hash {
		return fmt.Errorf("%w: the %d records in the store do not hash to the checkpoint of size %d this log signed: records were erased and regrown or rewritten", ErrWouldFork, n, n)
	}
	return nil
}

// DefaultMaxBatch is how many records one commit of a [Log] takes at
// most, unless [Log.SetMaxBatch] says otherwise.
const DefaultMaxBatch = 256

// Append commits rec to the log and returns its index, the signed
// checkpoint of the tree that now ends with it, and the proof that the
// checkpoint includes it.
//
// When Append returns a nil error the record and its checkpoint are
// durably committed together (as the store's Append promises) and the
// proof has been checked against the checkpoint. On any error the caller
// must not act on the decision (fail closed); the record may nevertheless
// have been committed if the error came after the store's Append, in which
// case the error says so.
//
// # Group commit
//
// Appends made concurrently share one commit: while one commit is being
// synced, the records that arrive wait in a queue, and the next commit
// takes all of them (up to the batch size): one signature and one
// [Store.Append], so one fsync, for the lot. Each caller still returns
// only once its own record is durably stored, with the checkpoint that
// covers it (the one signed for its batch, stored in the same transaction
// as the records), so nothing is released before its record is synced,
// and the log never signs a checkpoint that does not extend the last one.
// The idea is the group commit of database logs (DeWitt et al., 1984,
// "Implementation techniques for main memory database systems"); a
// caller alone waits for no one.
func (l *Log) Append(rec Record) (index int64, head SignedCheckpoint, proof tlog.RecordProof, err error) {
	if rec.Time.IsZero() {
		rec.Time = l.now()
	}
	data, err := rec.Marshal()
	if err != nil {
		return -1, SignedCheckpoint{}, nil, err
	}
	p := &pendingAppend{data: data, done: make(chan appendResult, 1), lead: make(chan struct{})}
	l.qmu.Lock()
	l.queue = append(l.queue, p)
	leader := !l.committing
	l.committing = true
	l.qmu.Unlock()
	if !leader {
		select {
		case r := <-p.done:
			return r.index, r.head, r.proof, r.err
		case <-p.lead:
		}
	}
	// This caller commits the queue as it stands (its own record among
	// it), then hands the next commit to the first caller still waiting.
	l.qmu.Lock()
	max := l.maxBatch
	if max <= 0 {
		max = DefaultMaxBatch
	}
	batch := l.queue[:min(len(l.queue), max)]
	l.queue = l.queue[len(batch):]
	l.qmu.Unlock()
	l.commit(batch)
	l.qmu.Lock()
	if len(l.queue) > 0 {
		close(l.queue[0].lead)
	} else {
		l.committing = false
	}
	l.qmu.Unlock()
	r := <-p.done
	return r.index, r.head, r.proof, r.err
}

// SetMaxBatch sets how many records one commit takes at most (at least
// 1; 1 commits every record alone, with its own fsync).
func (l *Log) SetMaxBatch(n int) {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	l.maxBatch = max(n, 1)
}

// pendingAppend is a record waiting in the commit queue.
type pendingAppend struct {
	data []byte
	done chan appendResult // receives the result once committed
	lead chan struct{}     // closed when this caller is to commit the queue
}

type appendResult struct {
	index int64
	head  SignedCheckpoint
	proof tlog.RecordProof
	err   error
}

// commit appends the batch's records in one signed, durable step and
// sends each caller its result.
func (l *Log) commit(batch []*pendingAppend) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fail := func(err error) {
		for _, p := range batch {
			p.done <- appendResult{index: -1, err: err}
		}
	}
	n, err := l.store.Size()
	if err != nil {
		fail(fmt.Errorf("auditlog: reading size: %w", err))
		return
	}
	if err := l.checkStoreLocked(n); err != nil {
		fail(err)
		return
	}
	records := make([][]byte, len(batch))
	pending := pendingHashes{Store: l.store, base: tlog.StoredHashCount(n)}
	for i, p := range batch {
		records[i] = p.data
		hs, err := tlog.StoredHashes(n+int64(i), p.data, pending)
		if err != nil {
			fail(fmt.Errorf("auditlog: computing hashes for record %d: %w", n+int64(i), err))
			return
		}
		pending.hashes = append(pending.hashes, hs...)
	}
	end := n + int64(len(batch))
	head, err := l.signLocked(end, pending)
	if err != nil {
		fail(err)
		return
	}
	if err := l.store.Append(n, records, pending.hashes, head.Note); err != nil {
		fail(fmt.Errorf("auditlog: committing records %d to %d: %w", n, end-1, err))
		return
	}
	l.signed, l.haveSigned = head, true
	for i, p := range batch {
		idx := n + int64(i)
		proof, err := tlog.ProveRecord(end, idx, l.store)
		if err != nil {
			p.done <- appendResult{index: -1, err: fmt.Errorf("auditlog: record %d was committed but cannot be proved: %w", idx, err)}
			continue
		}
		if err := VerifyInclusion(head.Tree, idx, p.data, proof); err != nil {
			p.done <- appendResult{index: -1, err: fmt.Errorf("auditlog: record %d was committed but cannot be proved: %w: %w", idx, ErrStoreCorrupt, err)}
			continue
		}
		p.done <- appendResult{index: idx, head: head, proof: proof}
	}
}

// pendingHashes reads hashes from the store and, from storage index base
// on, from hashes about to be appended.
type pendingHashes struct {
	Store
	base   int64
	hashes []tlog.Hash
}

func (p pendingHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var old []int64
	for _, x := range indexes {
		if x < p.base {
			old = append(old, x)
		}
	}
	got, err := p.Store.ReadHashes(old)
	if err != nil {
		return nil, err
	}
	for i, x := range indexes {
		switch {
		case x < p.base:
			out[i], got = got[0], got[1:]
		case x-p.base < int64(len(p.hashes)):
			out[i] = p.hashes[x-p.base]
		default:
			return nil, fmt.Errorf("%w: stored hash %d", ErrOutOfRange, x)
		}
	}
	return out, nil
}

// Head returns the signed checkpoint of the whole log as it stands: the one
// stored with the latest record. For a log that never signed one (an empty
// log) it signs and stores the checkpoint of the empty tree.
func (l *Log) Head() (SignedCheckpoint, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.store.Size()
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("auditlog: reading size: %w", err)
	}
	if err := l.checkStoreLocked(n); err != nil {
		return SignedCheckpoint{}, err
	}
	if l.haveSigned {
		return l.signed, nil
	}
	if n != 0 {
		return SignedCheckpoint{}, fmt.Errorf("%w: the store holds %d records but no checkpoint", ErrWouldFork, n)
	}
	head, err := l.signLocked(0, l.store)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	if err := l.store.Append(0, nil, nil, head.Note); err != nil {
		return SignedCheckpoint{}, fmt.Errorf("auditlog: storing the first checkpoint: %w", err)
	}
	l.signed, l.haveSigned = head, true
	return head, nil
}

// signLocked signs the checkpoint of the tree of size n over hashes, after
// checking that the tree extends the one signed before. l.mu must be held.
func (l *Log) signLocked(n int64, hashes tlog.HashReader) (SignedCheckpoint, error) {
	h, err := tlog.TreeHash(n, hashes)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("auditlog: computing tree hash at size %d: %w", n, err)
	}
	tree := tlog.Tree{N: n, Hash: h}
	if l.haveSigned {
		old := l.signed.Tree
		var proof tlog.TreeProof
		if old.N > 0 && old.N <= n {
			proof, err = tlog.ProveTree(n, old.N, hashes)
			if err != nil {
				return SignedCheckpoint{}, fmt.Errorf("auditlog: proving size %d extends signed size %d: %w", n, old.N, err)
			}
		}
		if err := VerifyConsistency(old, tree, proof); err != nil {
			return SignedCheckpoint{}, fmt.Errorf("%w: the tree of size %d does not extend the checkpoint of size %d signed earlier: %w", ErrWouldFork, n, old.N, err)
		}
	}
	msg, err := note.Sign(&note.Note{Text: FormatCheckpoint(l.origin, tree)}, l.signer)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("auditlog: signing checkpoint: %w", err)
	}
	return SignedCheckpoint{Tree: tree, Note: msg}, nil
}

// Record returns record i, decoded and as the exact bytes that were hashed
// into the log. It checks the bytes against their stored leaf hash first
// and returns an error wrapping [ErrStoreCorrupt] if they differ.
func (l *Log) Record(i int64) (Record, []byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkRangeLocked(i+1, "record index", i); err != nil {
		return Record{}, nil, err
	}
	data, err := l.store.ReadRecord(i)
	if err != nil {
		return Record{}, nil, fmt.Errorf("auditlog: reading record %d: %w", i, err)
	}
	leaf, err := l.store.ReadHashes([]int64{tlog.StoredHashIndex(0, i)})
	if err != nil {
		return Record{}, nil, fmt.Errorf("auditlog: reading hash of record %d: %w", i, err)
	}
	if len(leaf) != 1 || leaf[0] != tlog.RecordHash(data) {
		return Record{}, nil, fmt.Errorf("%w: record %d does not match its stored hash", ErrStoreCorrupt, i)
	}
	rec, err := ParseRecord(data)
	if err != nil {
		return Record{}, nil, fmt.Errorf("%w: record %d: %w", ErrStoreCorrupt, i, err)
	}
	return rec, data, nil
}

// InclusionProof returns the proof that record i is in the tree of size
// treeSize, for a requester or auditor holding a head of that size.
func (l *Log) InclusionProof(i, treeSize int64) (tlog.RecordProof, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i < 0 || i >= treeSize {
		return nil, fmt.Errorf("%w: record %d is not in a tree of size %d", ErrOutOfRange, i, treeSize)
	}
	if err := l.checkRangeLocked(treeSize, "tree size", treeSize); err != nil {
		return nil, err
	}
	p, err := tlog.ProveRecord(treeSize, i, l.store)
	if err != nil {
		return nil, fmt.Errorf("auditlog: proving record %d in tree of size %d: %w", i, treeSize, err)
	}
	return p, nil
}

// ConsistencyProof returns the proof that the tree of size newSize extends
// the tree of size oldSize (RFC 6962, section 2.1.2). The proof from size 0
// is empty.
func (l *Log) ConsistencyProof(oldSize, newSize int64) (tlog.TreeProof, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if oldSize < 0 || oldSize > newSize {
		return nil, fmt.Errorf("%w: cannot prove size %d extends size %d", ErrOutOfRange, newSize, oldSize)
	}
	if err := l.checkRangeLocked(newSize, "tree size", newSize); err != nil {
		return nil, err
	}
	if oldSize == 0 {
		return tlog.TreeProof{}, nil
	}
	p, err := tlog.ProveTree(newSize, oldSize, l.store)
	if err != nil {
		return nil, fmt.Errorf("auditlog: proving size %d extends size %d: %w", newSize, oldSize, err)
	}
	return p, nil
}

// checkRangeLocked refuses a needed size beyond the store's size.
func (l *Log) checkRangeLocked(need int64, what string, v int64) error {
	n, err := l.store.Size()
	if err != nil {
		return fmt.Errorf("auditlog: reading size: %w", err)
	}
	if v < 0 || need > n {
		return fmt.Errorf("%w: %s %d, the log holds %d records", ErrOutOfRange, what, v, n)
	}
	return nil
}

// VerifyCheckpoint checks that signed is a C2SP checkpoint signed by the
// log whose key verifier holds, with the verifier's key name as its origin,
// and returns the tree it describes. Signatures by other keys may
// accompany the log's (cosignatures of witnesses) and are ignored here;
// extension lines after the root hash are allowed, as C2SP
// tlog-checkpoint does. It refuses with an error wrapping [ErrWrongKey],
// [ErrBadSignature] or [ErrMalformedCheckpoint].
func VerifyCheckpoint(signed []byte, verifier note.Verifier) (tlog.Tree, error) {
	if verifier == nil {
		return tlog.Tree{}, errors.New("auditlog: VerifyCheckpoint needs the log's verifier key")
	}
	if _, err := note.Open(signed, note.VerifierList(verifier)); err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			return tlog.Tree{}, fmt.Errorf("%w: want a signature by %s", ErrWrongKey, verifier.Name())
		case errors.As(err, &invalid):
			return tlog.Tree{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
		default:
			return tlog.Tree{}, fmt.Errorf("%w: %v", ErrMalformedCheckpoint, err)
		}
	}
	cp, _, n, err := fmtlog.ParseCheckpoint(signed, verifier.Name(), verifier)
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("%w: %v", ErrMalformedCheckpoint, err)
	}
	tree, err := treeOf(cp)
	if err != nil {
		return tlog.Tree{}, err
	}
	// One text per tree: the origin, size and hash lines exactly as
	// FormatCheckpoint writes them (no "08", no other base64 padding).
	if !strings.HasPrefix(n.Text, FormatCheckpoint(cp.Origin, tree)) {
		return tlog.Tree{}, fmt.Errorf("%w: the size or hash line is not in canonical form", ErrMalformedCheckpoint)
	}
	return tree, nil
}

// VerifyInclusion checks that recordBytes is record index of tree, using the
// proof the trustee gave (RFC 6962, section 2.1.1). tree should come from
// [VerifyCheckpoint]. It refuses with an error wrapping [ErrBadInclusion].
func VerifyInclusion(tree tlog.Tree, index int64, recordBytes []byte, proof tlog.RecordProof) error {
	if index < 0 || index >= tree.N {
		return fmt.Errorf("%w: index %d is outside a tree of size %d", ErrBadInclusion, index, tree.N)
	}
	if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, tlog.RecordHash(recordBytes)); err != nil {
		return fmt.Errorf("%w: record %d in tree of size %d: %v", ErrBadInclusion, index, tree.N, err)
	}
	return nil
}

// VerifyConsistency checks that the tree new extends the tree old, using the
// proof the trustee gave (RFC 6962, section 2.1.2): every record of old is
// in new, unchanged, in the same place. Both trees should come from
// [VerifyCheckpoint]. Two heads of the same size must be identical, and any tree
// extends the empty one. It refuses with an error wrapping [ErrForked]
// or [ErrShrank].
func VerifyConsistency(old, new tlog.Tree, proof tlog.TreeProof) error {
	if old.N < 0 || new.N < 0 {
		return fmt.Errorf("%w: negative tree size", ErrMalformedCheckpoint)
	}
	if old.N > new.N {
		return fmt.Errorf("%w: sizes %d then %d", ErrShrank, old.N, new.N)
	}
	if old.N == 0 {
		empty, _ := tlog.TreeHash(0, nil)
		if old.Hash != empty {
			return fmt.Errorf("%w: a head of size 0 with a hash other than the empty tree's", ErrForked)
		}
		if len(proof) != 0 {
			return fmt.Errorf("%w: a proof from the empty tree must be empty", ErrForked)
		}
		return nil
	}
	if old.N == new.N && old.Hash != new.Hash {
		return fmt.Errorf("%w: two different heads of size %d", ErrForked, old.N)
	}
	if err := tlog.CheckTree(proof, new.N, new.Hash, old.N, old.Hash); err != nil {
		return fmt.Errorf("%w: sizes %d then %d: %v", ErrForked, old.N, new.N, err)
	}
	return nil
}

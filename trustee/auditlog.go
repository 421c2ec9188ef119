package trustee

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Errors returned by the audit log, its stores and its verification
// functions. Callers test for them with [errors.Is]; the returned errors wrap
// them with details.
var (
	// ErrBadAuditRecord: the audit record is malformed, not in canonical
	// form, or breaks a rule of [AuditRecord] (for instance a refusal
	// without a code).
	ErrBadAuditRecord = errors.New("trustee: bad audit record")

	// ErrMalformedHead: the bytes are not a signed tree head in the format
	// [AuditLog.Head] produces. Fetch the head again.
	ErrMalformedHead = errors.New("trustee: malformed signed tree head")

	// ErrHeadWrongKey: the head carries no signature by the trustee key
	// you hold. Check that you have the right trustee's verifier key (from
	// the group file); do not trust the head.
	ErrHeadWrongKey = errors.New("trustee: tree head is not signed by the trustee key you trust")

	// ErrBadHeadSignature: the head names the trustee key you hold but the
	// signature does not verify, so the head text was altered after signing
	// or forged. Do not trust it; fetch it again and report it if it persists.
	ErrBadHeadSignature = errors.New("trustee: tree head signature does not verify: the head was altered or forged")

	// ErrBadInclusion: the record is not at that index in the signed tree.
	// Either the record or the proof was altered, or the trustee's log was
	// rewritten. Do not treat the action as logged; keep the head, the
	// record and the proof, and report it.
	ErrBadInclusion = errors.New("trustee: record is not included in the signed log at that index: the record, the proof or the log was altered; report it")

	// ErrLogForked: two signed heads from the same trustee cannot both be
	// true: the newer one does not extend the older one. Keep both signed
	// heads: together they prove the trustee's log was rewritten or forked.
	// Report it. (A proof damaged in transit looks the same; fetch the
	// proof again before reporting.)
	ErrLogForked = errors.New("trustee: the trustee's log was rewritten or forked: the newer head does not extend the older one; keep both signed heads and report it")

	// ErrLogShrank: the head passed as the newer one is smaller than the
	// older one. Either the heads were passed in the wrong order, or the
	// trustee is showing an old state of its log (rolled back).
	ErrLogShrank = errors.New("trustee: the newer tree head is smaller than the older one: heads passed in the wrong order, or the log was rolled back")

	// ErrAuditOutOfRange: a record index or tree size beyond what the log
	// holds. Ask for a head first and use sizes up to its size.
	ErrAuditOutOfRange = errors.New("trustee: record index or tree size out of range for the audit log")

	// ErrAuditStoreConflict: the store's size is not the one the appender
	// expected, so something else wrote to it. Only one AuditLog may write
	// to a store.
	ErrAuditStoreConflict = errors.New("trustee: audit store changed underneath the log (more than one writer?)")

	// ErrAuditStoreCorrupt: the trustee found its own store inconsistent with
	// what it stored or signed before (a record that does not match its
	// hash, or a tree that does not extend the last head it signed). The
	// node refuses to sign or serve from it: restore the store from a
	// backup and investigate.
	ErrAuditStoreCorrupt = errors.New("trustee: audit store is corrupt; refusing to sign or serve from it")
)

// AuditStore is where an [AuditLog] keeps its records and the tree hashes
// tlog computes for them. It is deliberately narrow so that a durable store
// (bbolt) and the in-memory [MemAuditStore] are interchangeable.
//
// Records are numbered from 0. Hashes are numbered by tlog's storage index
// (see [tlog.StoredHashIndex]): after n records the store holds exactly
// [tlog.StoredHashCount](n) hashes.
//
// Implementations must be safe for concurrent use. [AuditLog] never calls
// Append concurrently with itself or with the read methods, but other
// readers of the same store may.
type AuditStore interface {
	// ReadHashes returns the hashes at the given storage indexes, in the
	// same order, or an error (wrapping [ErrAuditOutOfRange] for an index
	// not yet stored). It makes every AuditStore a [tlog.HashReader].
	ReadHashes(indexes []int64) ([]tlog.Hash, error)

	// Append adds records as record indexes start, start+1, ... and hashes
	// as storage indexes tlog.StoredHashCount(start), ..., in one atomic
	// step. hashes must be the concatenation of the [tlog.StoredHashes]
	// results for those records, in order.
	//
	// Contract: when Append returns nil, the records and hashes are durably
	// committed: they survive a crash of the process or machine (a file
	// store syncs its transaction before returning). When Append returns an
	// error, nothing was stored. If start is not the current size, Append
	// stores nothing and returns an error wrapping [ErrAuditStoreConflict].
	// Append must not keep references to the slices it is given.
	//
	// The trustee releases no share until Append has returned nil for the
	// record of that decision: the log fails closed.
	Append(start int64, records [][]byte, hashes []tlog.Hash) error

	// ReadRecord returns the bytes of record i, or an error (wrapping
	// [ErrAuditOutOfRange] if i is not stored). The caller may modify the
	// returned slice.
	ReadRecord(i int64) ([]byte, error)

	// Size returns the number of records committed.
	Size() (int64, error)
}

// AuditRecordVersion is the value of the "version" field that starts every
// encoded [AuditRecord]. A change to the encoding gets a new version string.
const AuditRecordVersion = "keyquorum/v2/audit-record"

// Kinds and decisions used in [AuditRecord]. Kind is an open set; these are
// the ones the trustee writes today.
const (
	AuditKindDecision       = "decision"        // a warranted decryption request was decided
	AuditKindShareDestroyed = "share-destroyed" // an epoch share was destroyed past retention

	AuditGranted = "granted"
	AuditRefused = "refused"
)

// maxAuditRecordSize bounds an encoded record, so that parsing a hostile
// record costs little.
const maxAuditRecordSize = 1 << 20

// AuditRecord is one entry in the trustee's audit log. It never holds a
// secret or plaintext case material: warrants and case references appear
// only as SHA-256 hashes, people and keys only as public identifiers.
//
// # Encoding
//
// [AuditRecord.Marshal] encodes a record as one line of JSON with no
// insignificant white space, fields in this order, optional fields left out
// when empty:
//
//	{"version":"keyquorum/v2/audit-record","time":"2026-03-01T12:00:00Z",
//	 "kind":"decision","decision":"granted","request":"<32 hex>",
//	 "request_hash":"<64 hex>","warrant_id":"W-42",
//	 "warrant_hash":"<64 hex>","judges":["judge-a.example"],
//	 "requester":"<64 hex>","case_ref_hash":"<64 hex>","sessions":["s1"],
//	 "epochs":[1,2],"refusal":{"code":"..."}}
//
// (shown wrapped; the encoding is a single line with no trailing newline).
// Time is RFC 3339 in UTC with the fewest fractional digits needed. Strings
// are escaped as Go's encoding/json does with HTML escaping off.
// [ParseAuditRecord] accepts only this canonical form, so every record has
// exactly one encoding and therefore one leaf hash.
//
// # Rules
//
// Marshal and ParseAuditRecord refuse a record unless: Time is set and in
// years 1 to 9999; Kind is a lowercase token; a [AuditKindDecision] record
// has a Decision; Refusal, with a code that is a lowercase token, is
// present exactly when the decision is [AuditRefused]; RequestHash,
// WarrantHash, CaseRefHash and Requester are empty or 64 lowercase hex
// digits (so case text cannot slip into them); the warrant id is a token
// of letters, digits and . _ - as [escrow] allows in warrants; Epochs are
// ascending without repeats; and every judge or session name is valid
// UTF-8 without control characters or spaces, at most 256 bytes.
//
// # What a record never holds
//
// A record is public (anyone may read a trustee's log), so it holds codes,
// ids, hashes and epochs only: never text that came with a request. In
// particular a refusal carries its code and no message, since refusal
// messages name warrant targets and users (version 1 of this format
// logged them; version 2 has no field for them).
type AuditRecord struct {
	// Time the decision was taken. [AuditLog.Append] fills it from the
	// log's clock when it is zero. It is stored in UTC.
	Time time.Time
	// Kind says what happened: [AuditKindDecision],
	// [AuditKindShareDestroyed], or another lowercase token of letters,
	// digits and '-', starting with a letter.
	Kind string
	// Epoch is the key epoch the action concerns, for records about one
	// epoch (a destroyed share, a ceremony); decisions leave it 0 and list
	// Epochs instead.
	Epoch uint64
	// Decision is [AuditGranted] or [AuditRefused] for a decision, and
	// empty otherwise.
	Decision string
	// Request is the lowercase hex id (16 bytes) of the decryption request
	// decided, so a requester can tell its own grant from an older one
	// for the same sessions.
	Request string
	// RequestHash is the lowercase hex SHA-256 of the encoded request,
	// so that a node recognises a replayed request after a restart.
	RequestHash string
	// WarrantID is the warrant's identifier as written in the warrant (a
	// token of letters, digits and . _ -).
	WarrantID string
	// WarrantHash is the lowercase hex SHA-256 of the signed warrant note.
	WarrantHash string
	// Judges are the names of the judges whose signatures were accepted.
	Judges []string
	// Requester is the lowercase hex of the requester's public key Q (32
	// bytes).
	Requester string
	// CaseRefHash is the lowercase hex SHA-256 of the case reference, never
	// the reference itself.
	CaseRefHash string
	// Sessions are the ids of the sessions whose decryption shares were
	// released (empty for a refusal).
	Sessions []string
	// Epochs are the key epochs of the released sessions, ascending.
	Epochs []uint64
	// Refusal says why a request was refused. It is set exactly when
	// Decision is [AuditRefused].
	Refusal *AuditRefusal
}

// AuditRefusal is the reason recorded for a refused request: the refusal
// code the requester received (such as [CodeOutOfScope]). The message the
// requester got is not logged: it names targets and users.
type AuditRefusal struct {
	Code string
}

// auditRecordJSON is the wire form of [AuditRecord]; its field order is the
// canonical order.
type auditRecordJSON struct {
	Version     string            `json:"version"`
	Time        string            `json:"time"`
	Kind        string            `json:"kind"`
	Epoch       uint64            `json:"epoch,omitempty"`
	Decision    string            `json:"decision,omitempty"`
	Request     string            `json:"request,omitempty"`
	RequestHash string            `json:"request_hash,omitempty"`
	WarrantID   string            `json:"warrant_id,omitempty"`
	WarrantHash string            `json:"warrant_hash,omitempty"`
	Judges      []string          `json:"judges,omitempty"`
	Requester   string            `json:"requester,omitempty"`
	CaseRefHash string            `json:"case_ref_hash,omitempty"`
	Sessions    []string          `json:"sessions,omitempty"`
	Epochs      []uint64          `json:"epochs,omitempty"`
	Refusal     *auditRefusalJSON `json:"refusal,omitempty"`
}

type auditRefusalJSON struct {
	Code string `json:"code"`
}

// Marshal returns the canonical encoding of r (see [AuditRecord]). It
// returns an error wrapping [ErrBadAuditRecord] if r breaks a rule of its
// fields.
func (r AuditRecord) Marshal() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	w := auditRecordJSON{
		Version:     AuditRecordVersion,
		Time:        r.Time.UTC().Format(time.RFC3339Nano),
		Kind:        r.Kind,
		Epoch:       r.Epoch,
		Decision:    r.Decision,
		Request:     r.Request,
		RequestHash: r.RequestHash,
		WarrantID:   r.WarrantID,
		WarrantHash: r.WarrantHash,
		Judges:      r.Judges,
		Requester:   r.Requester,
		CaseRefHash: r.CaseRefHash,
		Sessions:    r.Sessions,
		Epochs:      r.Epochs,
	}
	if r.Refusal != nil {
		w.Refusal = &auditRefusalJSON{Code: r.Refusal.Code}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadAuditRecord, err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) > maxAuditRecordSize {
		return nil, fmt.Errorf("%w: encoding is %d bytes, limit is %d", ErrBadAuditRecord, len(b), maxAuditRecordSize)
	}
	return b, nil
}

// ParseAuditRecord decodes a record encoded by [AuditRecord.Marshal]. It
// refuses, with an error wrapping [ErrBadAuditRecord], anything that is not the
// canonical encoding of a valid record: other field order or case, unknown
// or duplicate fields, white space, other escapes, a different version.
// The result is in normal form: UTC time and nil for empty lists.
func ParseAuditRecord(b []byte) (AuditRecord, error) {
	if len(b) > maxAuditRecordSize {
		return AuditRecord{}, fmt.Errorf("%w: %d bytes, limit is %d", ErrBadAuditRecord, len(b), maxAuditRecordSize)
	}
	var w auditRecordJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return AuditRecord{}, fmt.Errorf("%w: %v", ErrBadAuditRecord, err)
	}
	if w.Version != AuditRecordVersion {
		return AuditRecord{}, fmt.Errorf("%w: version %q, want %q", ErrBadAuditRecord, w.Version, AuditRecordVersion)
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return AuditRecord{}, fmt.Errorf("%w: time: %v", ErrBadAuditRecord, err)
	}
	r := AuditRecord{
		Time:        t.UTC(),
		Kind:        w.Kind,
		Epoch:       w.Epoch,
		Decision:    w.Decision,
		Request:     w.Request,
		RequestHash: w.RequestHash,
		WarrantID:   w.WarrantID,
		WarrantHash: w.WarrantHash,
		Judges:      w.Judges,
		Requester:   w.Requester,
		CaseRefHash: w.CaseRefHash,
		Sessions:    w.Sessions,
		Epochs:      w.Epochs,
	}
	if w.Refusal != nil {
		r.Refusal = &AuditRefusal{Code: w.Refusal.Code}
	}
	// The decoder is lenient (case-insensitive keys, duplicates, white
	// space, escapes, trailing data); re-encoding and comparing bytes
	// refuses every such variant at once.
	again, err := r.Marshal()
	if err != nil {
		return AuditRecord{}, err
	}
	if !bytes.Equal(again, b) {
		return AuditRecord{}, fmt.Errorf("%w: not in canonical form", ErrBadAuditRecord)
	}
	return r, nil
}

// check enforces the rules of AuditRecord's fields.
func (r AuditRecord) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadAuditRecord}, args...)...)
	}
	if r.Time.IsZero() {
		return bad("time is not set")
	}
	if y := r.Time.UTC().Year(); y < 1 || y > 9999 {
		return bad("time %v is outside years 1 to 9999", r.Time)
	}
	if !isKind(r.Kind) {
		return bad("kind %q is not a lowercase token", r.Kind)
	}
	if r.Request != "" && !isHexLen(r.Request, 16) {
		return bad("request id %q is not 32 lowercase hex digits", r.Request)
	}
	switch r.Decision {
	case "":
		if r.Kind == AuditKindDecision {
			return bad("a %q record needs a decision", AuditKindDecision)
		}
	case AuditGranted, AuditRefused:
	default:
		return bad("decision %q is neither %q nor %q", r.Decision, AuditGranted, AuditRefused)
	}
	if (r.Decision == AuditRefused) != (r.Refusal != nil) {
		return bad("a refusal reason must be given exactly when the decision is %q", AuditRefused)
	}
	if r.Refusal != nil {
		if r.Refusal.Code == "" {
			return bad("refusal without an error code")
		}
		if !isKind(r.Refusal.Code) {
			return bad("refusal code %q is not a lowercase token", r.Refusal.Code)
		}
	}
	for i := 1; i < len(r.Epochs); i++ {
		if r.Epochs[i] <= r.Epochs[i-1] {
			return bad("epochs %v are not ascending without repeats", r.Epochs)
		}
	}
	for _, f := range []struct{ name, value string }{
		{"request_hash", r.RequestHash},
		{"warrant_hash", r.WarrantHash},
		{"case_ref_hash", r.CaseRefHash},
		{"requester", r.Requester},
	} {
		if f.value != "" && !isHex32(f.value) {
			return bad("%s must be 64 lowercase hex digits (a SHA-256 hash or a 32-byte key)", f.name)
		}
	}
	if !isWarrantID(r.WarrantID) {
		return bad("warrant id %q is not a token of letters, digits and . _ -", r.WarrantID)
	}
	for _, list := range []struct {
		name  string
		items []string
	}{{"judge", r.Judges}, {"session", r.Sessions}} {
		for _, s := range list.items {
			if s == "" {
				return bad("empty %s name", list.name)
			}
			if err := checkText(list.name, s, 256); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkText refuses invalid UTF-8 (which encoding/json would silently
// replace), control characters and over-long strings.
func checkText(what, s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("%w: %s is %d bytes, limit is %d", ErrBadAuditRecord, what, len(s), limit)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrBadAuditRecord, what)
	}
	if strings.ContainsFunc(s, func(c rune) bool { return c <= 0x20 || c == 0x7f }) {
		return fmt.Errorf("%w: %s contains a space or a control character", ErrBadAuditRecord, what)
	}
	return nil
}

// isWarrantID reports whether s is empty or a warrant id as escrow
// allows them: at most 256 letters, digits and . _ -.
func isWarrantID(s string) bool {
	if len(s) > 256 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func isKind(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func isHex32(s string) bool { return isHexLen(s, 32) }

// isHexLen reports whether s is n bytes in lowercase hex.
func isHexLen(s string, n int) bool {
	if len(s) != 2*n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// SignedHead is a signed tree head: a [note] whose text is exactly
// [tlog.FormatTree] of Tree, signed by the trustee's log key:
//
//	go.sum database tree
//	<number of records, decimal>
//	<root hash, base64>
//
//	— trustee-1.keyquorum <base64 key hash and Ed25519 signature>
//
// The first line is tlog's and says nothing about the Go checksum database
// here; the signer's key name identifies the log. Note is what travels to
// requesters and auditors; they check it with [VerifyHead].
type SignedHead struct {
	Tree tlog.Tree
	Note []byte
}

// AuditLog is a trustee's append-only, tamper-evident audit log over an
// [AuditStore]. It encodes records, computes the Merkle tree hashes, signs
// tree heads with the trustee's log key and serves inclusion and consistency
// proofs. It is safe for concurrent use; appends are serialised.
//
// Every decision on a warrant, granted or refused, and every destruction of
// an epoch share is one [AuditRecord]. The records are the leaves of the
// Merkle tree of RFC 6962 (Certificate Transparency), section 2.1: a leaf
// hash is SHA-256(0x00 || record), an interior node SHA-256(0x01 || left ||
// right), and a tree of n leaves splits at the largest power of two below n.
// Hash storage, proofs and signed tree heads follow the Go checksum database
// (Russ Cox, "Transparent Logs for Skeptical Clients", 2019,
// https://research.swtch.com/tlog), through [tlog] and [note].
//
// What this buys:
//
//   - The trustee commits the record before any share leaves the node, and
//     the answer carries the signed head and the inclusion proof. The
//     requester can show anyone that this use of the key was logged without
//     relying on the trustee's word ([VerifyHead], [VerifyInclusion]).
//   - An auditor keeps the heads it has seen and asks for consistency
//     proofs between them ([VerifyConsistency]). A trustee that deletes or
//     rewrites a record, or shows different logs to different people, ends
//     up having signed two heads that no proof connects; those two signed
//     heads are the evidence.
//   - The log holds no secrets: hashes of the warrant and of the case
//     reference, public identifiers, and the decision.
//   - A head has exactly one text per tree and key: the body is exactly
//     [tlog.FormatTree] output, and [VerifyHead] refuses any other body,
//     including the extra trailing lines [tlog.ParseTree] tolerates.
//
// The log remembers the largest tree it has signed and refuses
// ([ErrAuditStoreCorrupt]) to sign a head that does not extend it, so a store
// rewritten under a running trustee cannot make it sign a fork. After a
// restart that memory is gone; auditors' consistency checks
// ([VerifyConsistency]) are what catch a rewrite then.
type AuditLog struct {
	mu     sync.Mutex
	store  AuditStore
	signer note.Signer
	now    func() time.Time

	signed     tlog.Tree // largest tree signed so far, if haveSigned
	haveSigned bool
}

// NewAuditLog returns a log over store whose heads are signed by signer (the
// trustee's log key, for example from [note.NewSigner] on a key made by
// [note.GenerateKey] with a name like "trustee-1.keyquorum"; keep it apart
// from the trustee's other keys). now is the clock used to stamp records
// that carry no time.
func NewAuditLog(store AuditStore, signer note.Signer, now func() time.Time) (*AuditLog, error) {
	if store == nil || signer == nil || now == nil {
		return nil, errors.New("trustee: NewAuditLog needs a store, a signer and a clock")
	}
	return &AuditLog{store: store, signer: signer, now: now}, nil
}

// Append commits rec to the log and returns its index, the signed head of
// the tree that now ends with it, and the proof that the head includes it.
//
// When Append returns a nil error the record is durably committed (as the
// store's Append promises) and the proof has been checked against the head.
// On any error the caller must not act on the decision (fail closed); the
// record may nevertheless have been committed if the error came after the
// store's Append, in which case the error says so.
func (l *AuditLog) Append(rec AuditRecord) (index int64, head SignedHead, proof tlog.RecordProof, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()

	if rec.Time.IsZero() {
		rec.Time = l.now()
	}
	data, err := rec.Marshal()
	if err != nil {
		return -1, SignedHead{}, nil, err
	}
	n, err := l.store.Size()
	if err != nil {
		return -1, SignedHead{}, nil, fmt.Errorf("trustee: audit log: reading size: %w", err)
	}
	hashes, err := tlog.StoredHashes(n, data, l.store)
	if err != nil {
		return -1, SignedHead{}, nil, fmt.Errorf("trustee: audit log: computing hashes for record %d: %w", n, err)
	}
	if err := l.store.Append(n, [][]byte{data}, hashes); err != nil {
		return -1, SignedHead{}, nil, fmt.Errorf("trustee: audit log: committing record %d: %w", n, err)
	}

	committed := func(err error) error {
		return fmt.Errorf("trustee: audit log: record %d was committed but cannot be proved: %w", n, err)
	}
	head, err = l.signLocked(n + 1)
	if err != nil {
		return -1, SignedHead{}, nil, committed(err)
	}
	proof, err = tlog.ProveRecord(n+1, n, l.store)
	if err != nil {
		return -1, SignedHead{}, nil, committed(err)
	}
	if err := VerifyInclusion(head.Tree, n, data, proof); err != nil {
		return -1, SignedHead{}, nil, committed(fmt.Errorf("%w: %w", ErrAuditStoreCorrupt, err))
	}
	return n, head, proof, nil
}

// Head returns the signed head of the whole log as it stands.
func (l *AuditLog) Head() (SignedHead, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.store.Size()
	if err != nil {
		return SignedHead{}, fmt.Errorf("trustee: audit log: reading size: %w", err)
	}
	return l.signLocked(n)
}

// signLocked signs the head of the tree of size n, after checking that the
// tree extends the largest one signed before. l.mu must be held.
func (l *AuditLog) signLocked(n int64) (SignedHead, error) {
	h, err := tlog.TreeHash(n, l.store)
	if err != nil {
		return SignedHead{}, fmt.Errorf("trustee: audit log: computing tree hash at size %d: %w", n, err)
	}
	tree := tlog.Tree{N: n, Hash: h}
	if l.haveSigned {
		var proof tlog.TreeProof
		if l.signed.N > 0 && l.signed.N <= n {
			proof, err = tlog.ProveTree(n, l.signed.N, l.store)
			if err != nil {
				return SignedHead{}, fmt.Errorf("trustee: audit log: proving size %d extends signed size %d: %w", n, l.signed.N, err)
			}
		}
		if err := VerifyConsistency(l.signed, tree, proof); err != nil {
			return SignedHead{}, fmt.Errorf("%w: the tree of size %d does not extend the head of size %d signed earlier: %w", ErrAuditStoreCorrupt, n, l.signed.N, err)
		}
	}
	msg, err := note.Sign(&note.Note{Text: string(tlog.FormatTree(tree))}, l.signer)
	if err != nil {
		return SignedHead{}, fmt.Errorf("trustee: audit log: signing head: %w", err)
	}
	if !l.haveSigned || n > l.signed.N {
		l.signed, l.haveSigned = tree, true
	}
	return SignedHead{Tree: tree, Note: msg}, nil
}

// Record returns record i, decoded and as the exact bytes that were hashed
// into the log. It checks the bytes against their stored leaf hash first
// and returns an error wrapping [ErrAuditStoreCorrupt] if they differ.
func (l *AuditLog) Record(i int64) (AuditRecord, []byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkRangeLocked(i+1, "record index", i); err != nil {
		return AuditRecord{}, nil, err
	}
	data, err := l.store.ReadRecord(i)
	if err != nil {
		return AuditRecord{}, nil, fmt.Errorf("trustee: audit log: reading record %d: %w", i, err)
	}
	leaf, err := l.store.ReadHashes([]int64{tlog.StoredHashIndex(0, i)})
	if err != nil {
		return AuditRecord{}, nil, fmt.Errorf("trustee: audit log: reading hash of record %d: %w", i, err)
	}
	if len(leaf) != 1 || leaf[0] != tlog.RecordHash(data) {
		return AuditRecord{}, nil, fmt.Errorf("%w: record %d does not match its stored hash", ErrAuditStoreCorrupt, i)
	}
	rec, err := ParseAuditRecord(data)
	if err != nil {
		return AuditRecord{}, nil, fmt.Errorf("%w: record %d: %w", ErrAuditStoreCorrupt, i, err)
	}
	return rec, data, nil
}

// InclusionProof returns the proof that record i is in the tree of size
// treeSize, for a requester or auditor holding a head of that size.
func (l *AuditLog) InclusionProof(i, treeSize int64) (tlog.RecordProof, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i < 0 || i >= treeSize {
		return nil, fmt.Errorf("%w: record %d is not in a tree of size %d", ErrAuditOutOfRange, i, treeSize)
	}
	if err := l.checkRangeLocked(treeSize, "tree size", treeSize); err != nil {
		return nil, err
	}
	p, err := tlog.ProveRecord(treeSize, i, l.store)
	if err != nil {
		return nil, fmt.Errorf("trustee: audit log: proving record %d in tree of size %d: %w", i, treeSize, err)
	}
	return p, nil
}

// ConsistencyProof returns the proof that the tree of size newSize extends
// the tree of size oldSize (RFC 6962, section 2.1.2). The proof from size 0
// is empty.
func (l *AuditLog) ConsistencyProof(oldSize, newSize int64) (tlog.TreeProof, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if oldSize < 0 || oldSize > newSize {
		return nil, fmt.Errorf("%w: cannot prove size %d extends size %d", ErrAuditOutOfRange, newSize, oldSize)
	}
	if err := l.checkRangeLocked(newSize, "tree size", newSize); err != nil {
		return nil, err
	}
	if oldSize == 0 {
		return tlog.TreeProof{}, nil
	}
	p, err := tlog.ProveTree(newSize, oldSize, l.store)
	if err != nil {
		return nil, fmt.Errorf("trustee: audit log: proving size %d extends size %d: %w", newSize, oldSize, err)
	}
	return p, nil
}

// checkRangeLocked refuses a needed size beyond the store's size.
func (l *AuditLog) checkRangeLocked(need int64, what string, v int64) error {
	n, err := l.store.Size()
	if err != nil {
		return fmt.Errorf("trustee: audit log: reading size: %w", err)
	}
	if v < 0 || need > n {
		return fmt.Errorf("%w: %s %d, the log holds %d records", ErrAuditOutOfRange, what, v, n)
	}
	return nil
}

// VerifyHead checks that signedHead is a tree head signed by the trustee
// whose log key verifier holds, and returns the tree it describes.
// Signatures by other keys may accompany the trustee's (for example
// witnesses) and are ignored. It refuses with an error wrapping
// [ErrHeadWrongKey], [ErrBadHeadSignature] or [ErrMalformedHead].
func VerifyHead(signedHead []byte, verifier note.Verifier) (tlog.Tree, error) {
	if verifier == nil {
		return tlog.Tree{}, errors.New("trustee: VerifyHead needs the trustee's verifier key")
	}
	n, err := note.Open(signedHead, note.VerifierList(verifier))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			return tlog.Tree{}, fmt.Errorf("%w: want a signature by %s", ErrHeadWrongKey, verifier.Name())
		case errors.As(err, &invalid):
			return tlog.Tree{}, fmt.Errorf("%w: %v", ErrBadHeadSignature, err)
		default:
			return tlog.Tree{}, fmt.Errorf("%w: %v", ErrMalformedHead, err)
		}
	}
	tree, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("%w: %v", ErrMalformedHead, err)
	}
	if n.Text != string(tlog.FormatTree(tree)) {
		return tlog.Tree{}, fmt.Errorf("%w: the signed text is not exactly a tree description", ErrMalformedHead)
	}
	return tree, nil
}

// VerifyInclusion checks that recordBytes is record index of tree, using the
// proof the trustee gave (RFC 6962, section 2.1.1). tree should come from
// [VerifyHead]. It refuses with an error wrapping [ErrBadInclusion].
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
// [VerifyHead]. Two heads of the same size must be identical, and any tree
// extends the empty one. It refuses with an error wrapping [ErrLogForked]
// or [ErrLogShrank].
func VerifyConsistency(old, new tlog.Tree, proof tlog.TreeProof) error {
	if old.N < 0 || new.N < 0 {
		return fmt.Errorf("%w: negative tree size", ErrMalformedHead)
	}
	if old.N > new.N {
		return fmt.Errorf("%w: sizes %d then %d", ErrLogShrank, old.N, new.N)
	}
	if old.N == 0 {
		empty, _ := tlog.TreeHash(0, nil)
		if old.Hash != empty {
			return fmt.Errorf("%w: a head of size 0 with a hash other than the empty tree's", ErrLogForked)
		}
		if len(proof) != 0 {
			return fmt.Errorf("%w: a proof from the empty tree must be empty", ErrLogForked)
		}
		return nil
	}
	if old.N == new.N && old.Hash != new.Hash {
		return fmt.Errorf("%w: two different heads of size %d", ErrLogForked, old.N)
	}
	if err := tlog.CheckTree(proof, new.N, new.Hash, old.N, old.Hash); err != nil {
		return fmt.Errorf("%w: sizes %d then %d: %v", ErrLogForked, old.N, new.N, err)
	}
	return nil
}

package auditlog

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// RecordVersion is the value of the "version" field that starts every
// encoded [Record]. A change to the encoding gets a new version string.
const RecordVersion = "keyquorum/v2/audit-record"

// Kinds and decisions used in [Record]. Kind is an open set; these are
// the ones the trustee writes today.
const (
	KindDecision       = "decision"        // a warranted decryption request was decided
	KindShareDestroyed = "share-destroyed" // an epoch share was destroyed past retention

	Granted = "granted"
	Refused = "refused"
)

// maxRecordSize bounds an encoded record, so that parsing a hostile
// record costs little.
const maxRecordSize = 1 << 20

// Record is one entry in the trustee's audit log. It never holds a
// secret or plaintext case material: warrants and case references appear
// only as SHA-256 hashes, people and keys only as public identifiers.
//
// # Encoding
//
// [Record.Marshal] encodes a record as one line of JSON with no
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
// [ParseRecord] accepts only this canonical form, so every record has
// exactly one encoding and therefore one leaf hash.
//
// # Rules
//
// Marshal and ParseRecord refuse a record unless: Time is set and in
// years 1 to 9999; Kind is a lowercase token; a [KindDecision] record
// has a Decision; Refusal, with a code that is a lowercase token, is
// present exactly when the decision is [Refused]; RequestHash,
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
type Record struct {
	// Time the decision was taken. [Log.Append] fills it from the
	// log's clock when it is zero. It is stored in UTC.
	Time time.Time
	// Kind says what happened: [KindDecision],
	// [KindShareDestroyed], or another lowercase token of letters,
	// digits and '-', starting with a letter.
	Kind string
	// Epoch is the key epoch the action concerns, for records about one
	// epoch (a destroyed share, a ceremony); decisions leave it 0 and list
	// Epochs instead.
	Epoch uint64
	// Decision is [Granted] or [Refused] for a decision, and
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
	// Decision is [Refused].
	Refusal *Refusal
	// Ceremony describes a key-ceremony event (kinds ceremony-approved,
	// ceremony-completed, ceremony-aborted, shares-erased); nil otherwise.
	Ceremony *Ceremony
}

// Ceremony is what a ceremony event's record holds: ids, hashes and
// epochs, never names or proposal text.
type Ceremony struct {
	ID       string   `json:"id"`                 // the ceremony id, 32 hex digits
	Proposal string   `json:"proposal,omitempty"` // hex SHA-256 of the proposal text
	Roster   string   `json:"roster,omitempty"`   // hex SHA-256 of the (new) roster
	Group    string   `json:"group,omitempty"`    // hex SHA-256 of the group file installed, or of the current one
	Epochs   []uint32 `json:"epochs,omitempty"`
	Code     string   `json:"code,omitempty"` // why it was aborted
}

// Refusal is the reason recorded for a refused request: the refusal
// code the requester received (such as "out-of-scope"). The message the
// requester got is not logged: it names targets and users.
type Refusal struct {
	Code string
}

// recordJSON is the wire form of [Record]; its field order is the
// canonical order.
type recordJSON struct {
	Version     string       `json:"version"`
	Time        string       `json:"time"`
	Kind        string       `json:"kind"`
	Epoch       uint64       `json:"epoch,omitempty"`
	Decision    string       `json:"decision,omitempty"`
	Request     string       `json:"request,omitempty"`
	RequestHash string       `json:"request_hash,omitempty"`
	WarrantID   string       `json:"warrant_id,omitempty"`
	WarrantHash string       `json:"warrant_hash,omitempty"`
	Judges      []string     `json:"judges,omitempty"`
	Requester   string       `json:"requester,omitempty"`
	CaseRefHash string       `json:"case_ref_hash,omitempty"`
	Sessions    []string     `json:"sessions,omitempty"`
	Epochs      []uint64     `json:"epochs,omitempty"`
	Refusal     *refusalJSON `json:"refusal,omitempty"`
	Ceremony    *Ceremony    `json:"ceremony,omitempty"`
}

type refusalJSON struct {
	Code string `json:"code"`
}

// Marshal returns the canonical encoding of r (see [Record]). It
// returns an error wrapping [ErrBadRecord] if r breaks a rule of its
// fields.
func (r Record) Marshal() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	w := recordJSON{
		Version:     RecordVersion,
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
		Ceremony:    r.Ceremony,
	}
	if r.Refusal != nil {
		w.Refusal = &refusalJSON{Code: r.Refusal.Code}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) > maxRecordSize {
		return nil, fmt.Errorf("%w: encoding is %d bytes, limit is %d", ErrBadRecord, len(b), maxRecordSize)
	}
	return b, nil
}

// ParseRecord decodes a record encoded by [Record.Marshal]. It
// refuses, with an error wrapping [ErrBadRecord], anything that is not the
// canonical encoding of a valid record: other field order or case, unknown
// or duplicate fields, white space, other escapes, a different version.
// The result is in normal form: UTC time and nil for empty lists.
func ParseRecord(b []byte) (Record, error) {
	if len(b) > maxRecordSize {
		return Record{}, fmt.Errorf("%w: %d bytes, limit is %d", ErrBadRecord, len(b), maxRecordSize)
	}
	var w recordJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if w.Version != RecordVersion {
		return Record{}, fmt.Errorf("%w: version %q, want %q", ErrBadRecord, w.Version, RecordVersion)
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return Record{}, fmt.Errorf("%w: time: %v", ErrBadRecord, err)
	}
	r := Record{
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
		Ceremony:    w.Ceremony,
	}
	if w.Refusal != nil {
		r.Refusal = &Refusal{Code: w.Refusal.Code}
	}
	// The decoder is lenient (case-insensitive keys, duplicates, white
	// space, escapes, trailing data); re-encoding and comparing bytes
	// refuses every such variant at once.
	again, err := r.Marshal()
	if err != nil {
		return Record{}, err
	}
	if !bytes.Equal(again, b) {
		return Record{}, fmt.Errorf("%w: not in canonical form", ErrBadRecord)
	}
	return r, nil
}

// check enforces the rules of Record's fields.
func (r Record) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadRecord}, args...)...)
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
		if r.Kind == KindDecision {
			return bad("a %q record needs a decision", KindDecision)
		}
	case Granted, Refused:
	default:
		return bad("decision %q is neither %q nor %q", r.Decision, Granted, Refused)
	}
	if (r.Decision == Refused) != (r.Refusal != nil) {
		return bad("a refusal reason must be given exactly when the decision is %q", Refused)
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
	if c := r.Ceremony; c != nil {
		if !isHexLen(c.ID, 16) {
			return bad("ceremony id %q is not 32 lowercase hex digits", c.ID)
		}
		for _, h := range []string{c.Proposal, c.Roster, c.Group} {
			if h != "" && !isHex32(h) {
				return bad("ceremony hashes must be 64 lowercase hex digits")
			}
		}
		if c.Code != "" && !isKind(c.Code) {
			return bad("ceremony code %q is not a lowercase token", c.Code)
		}
		if len(c.Epochs) > 1<<16 {
			return bad("%d epochs in a ceremony record", len(c.Epochs))
		}
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
		return fmt.Errorf("%w: %s is %d bytes, limit is %d", ErrBadRecord, what, len(s), limit)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrBadRecord, what)
	}
	if strings.ContainsFunc(s, func(c rune) bool { return c <= 0x20 || c == 0x7f }) {
		return fmt.Errorf("%w: %s contains a space or a control character", ErrBadRecord, what)
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

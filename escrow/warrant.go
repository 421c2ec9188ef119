package escrow

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
	"golang.org/x/mod/sumdb/note"
)

// Errors returned by warrant parsing, signing, verification and scope
// checks. Each is wrapped with the details and with what to do next; test
// for them with [errors.Is].
var (
	// ErrBadWarrant: the warrant text or one of its fields is malformed.
	ErrBadWarrant = errors.New("escrow: malformed warrant")
	// ErrWarrantSignature: a trusted judge's signature does not verify;
	// the text was altered after signing or the signature is corrupt.
	ErrWarrantSignature = errors.New("escrow: warrant signature does not verify")
	// ErrUnknownJudge: no signature on the warrant is from a judge the
	// policy trusts.
	ErrUnknownJudge = errors.New("escrow: warrant is not signed by any judge this policy trusts")
	// ErrTooFewJudges: some trusted judges signed, but fewer than the
	// policy requires.
	ErrTooFewJudges = errors.New("escrow: warrant has too few trusted judge signatures")
	// ErrWarrantNotYetValid: the verification time is before valid-from.
	ErrWarrantNotYetValid = errors.New("escrow: warrant not yet valid")
	// ErrWarrantExpired: the verification time is at or after valid-until.
	ErrWarrantExpired = errors.New("escrow: warrant expired")
	// ErrOutOfScope: a session is not one the warrant names.
	ErrOutOfScope = errors.New("escrow: session outside the warrant's scope")
	// ErrAlreadySigned: [SignWarrant] was asked to add a second signature
	// by a key that has already signed.
	ErrAlreadySigned = errors.New("escrow: warrant already signed by this judge key")
)

// WarrantHeader is the first line of every warrant body. A format change
// gets a new version and a new header; this build reads only v1.
const WarrantHeader = "keyquorum warrant v1"

// warrantTimeLayout is the one accepted time form: RFC 3339, UTC, whole
// seconds.
const warrantTimeLayout = "2006-01-02T15:04:05Z"

// Limits on free-text and identifier fields.
const (
	maxWarrantIDLen   = 64
	maxWarrantTextLen = 512
)

// Warrant is the text a judge signs to authorise a warranted decryption:
// who may decrypt (Requester, by public key), whose sessions (Targets),
// which sessions (those that started in [WindowStart, WindowEnd)), while the
// warrant is valid ([ValidFrom, ValidUntil)) and how many sessions at most.
//
// # Text form
//
// The body is UTF-8 text, one "key: value" per line, each line ending in a
// newline, in exactly this order:
//
//	keyquorum warrant v1
//	id: W-2026-0001
//	case: <one line of free text>
//	requester: <Q, standard base64 of the 32-byte point>
//	target: alice
//	target: bob
//	window-start: 2026-03-01T00:00:00Z
//	window-end: 2026-03-08T00:00:00Z
//	valid-from: 2026-03-01T00:00:00Z
//	valid-until: 2026-03-15T00:00:00Z
//	max-sessions: 40
//	purpose: <one line of free text>
//
// There is one target line per target, at least one. Times are RFC 3339 in
// UTC with whole seconds. The form is canonical: [ParseWarrant] accepts a
// text only if [Warrant.MarshalText] gives back the same bytes, so a signed
// warrant has exactly one meaning and one reading.
//
// The signed form is a note ([golang.org/x/mod/sumdb/note]): the body, a
// blank line, and one signature line per judge.
type Warrant struct {
	ID          string      // short identifier: letters, digits, . _ -
	Case        string      // case reference, one line of free text
	Requester   kyber.Point // Q: the investigator's public key
	Targets     []string    // user names, per [ValidName]; no repeats
	WindowStart time.Time   // first session start time covered
	WindowEnd   time.Time   // sessions must start strictly before this
	ValidFrom   time.Time   // the warrant may be used from this time
	ValidUntil  time.Time   // and strictly before this one
	MaxSessions int         // at least 1
	Purpose     string      // one line of free text
}

// Field names, in the order they appear.
const (
	wfID          = "id"
	wfCase        = "case"
	wfRequester   = "requester"
	wfTarget      = "target"
	wfWindowStart = "window-start"
	wfWindowEnd   = "window-end"
	wfValidFrom   = "valid-from"
	wfValidUntil  = "valid-until"
	wfMaxSessions = "max-sessions"
	wfPurpose     = "purpose"
)

func warrantFieldOrder() []string {
	return []string{wfID, wfCase, wfRequester, wfTarget, wfWindowStart, wfWindowEnd, wfValidFrom, wfValidUntil, wfMaxSessions, wfPurpose}
}

func badWarrant(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadWarrant, fmt.Sprintf(format, args...))
}

// validate checks every field and the relations between them.
func (w *Warrant) validate() error {
	if !validWarrantID(w.ID) {
		return badWarrant("id %q: use 1-%d letters, digits or . _ -", truncateForError(w.ID), maxWarrantIDLen)
	}
	if err := checkWarrantText(wfCase, w.Case); err != nil {
		return err
	}
	if w.Requester == nil {
		return badWarrant("no requester public key")
	}
	if _, err := group.ParsePoint(group.PointBytes(w.Requester)); err != nil {
		return badWarrant("requester public key: %v", err)
	}
	if len(w.Targets) == 0 {
		return badWarrant("no targets; a warrant names at least one user")
	}
	for i, t := range w.Targets {
		if !ValidName(t) {
			return badWarrant("target %q: names are 1-%d letters, digits or . _ @ + -", truncateForError(t), MaxNameLen)
		}
		if slices.Contains(w.Targets[:i], t) {
			return badWarrant("target %q named twice", t)
		}
	}
	for _, f := range []struct {
		name string
		t    time.Time
	}{{wfWindowStart, w.WindowStart}, {wfWindowEnd, w.WindowEnd}, {wfValidFrom, w.ValidFrom}, {wfValidUntil, w.ValidUntil}} {
		if err := checkWarrantTime(f.name, f.t); err != nil {
			return err
		}
	}
	if !w.WindowEnd.After(w.WindowStart) {
		return badWarrant("window-end %s is not after window-start %s", formatWarrantTime(w.WindowEnd), formatWarrantTime(w.WindowStart))
	}
	if !w.ValidUntil.After(w.ValidFrom) {
		return badWarrant("valid-until %s is not after valid-from %s", formatWarrantTime(w.ValidUntil), formatWarrantTime(w.ValidFrom))
	}
	if w.MaxSessions < 1 {
		return badWarrant("max-sessions is %d; it must be at least 1", w.MaxSessions)
	}
	return checkWarrantText(wfPurpose, w.Purpose)
}

func validWarrantID(s string) bool {
	if len(s) == 0 || len(s) > maxWarrantIDLen {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == '-':
		default:
			return false
		}
	}
	return true
}

// checkWarrantText accepts one line of printable UTF-8 without leading or
// trailing spaces.
func checkWarrantText(field, s string) error {
	switch {
	case s == "":
		return badWarrant("%s is empty", field)
	case len(s) > maxWarrantTextLen:
		return badWarrant("%s is %d bytes; the limit is %d", field, len(s), maxWarrantTextLen)
	case !utf8.ValidString(s):
		return badWarrant("%s is not valid UTF-8", field)
	case strings.TrimSpace(s) != s:
		return badWarrant("%s has leading or trailing spaces", field)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return badWarrant("%s contains the non-printing character %U; it must be one line of text", field, r)
		}
	}
	return nil
}

func checkWarrantTime(field string, t time.Time) error {
	switch {
	case t.IsZero():
		return badWarrant("%s is not set", field)
	case t.UTC().Year() < 1970 || t.UTC().Year() > 9999:
		return badWarrant("%s %v is out of range (years 1970-9999)", field, t)
	case !t.Equal(t.Truncate(time.Second)):
		return badWarrant("%s %v has fractions of a second; use whole seconds", field, t)
	}
	return nil
}

func formatWarrantTime(t time.Time) string { return t.UTC().Format(warrantTimeLayout) }

// MarshalText validates w and returns its canonical body (see [Warrant]),
// ending with a newline. It is the text judges sign.
func (w *Warrant) MarshalText() ([]byte, error) {
	if err := w.validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	line := func(k, v string) { b.WriteString(k + ": " + v + "\n") }
	b.WriteString(WarrantHeader + "\n")
	line(wfID, w.ID)
	line(wfCase, w.Case)
	line(wfRequester, base64.StdEncoding.EncodeToString(group.PointBytes(w.Requester)))
	for _, t := range w.Targets {
		line(wfTarget, t)
	}
	line(wfWindowStart, formatWarrantTime(w.WindowStart))
	line(wfWindowEnd, formatWarrantTime(w.WindowEnd))
	line(wfValidFrom, formatWarrantTime(w.ValidFrom))
	line(wfValidUntil, formatWarrantTime(w.ValidUntil))
	line(wfMaxSessions, strconv.Itoa(w.MaxSessions))
	line(wfPurpose, w.Purpose)
	return b.Bytes(), nil
}

// ParseWarrant parses a warrant body (not a signed note; see
// [VerifyWarrant]). It is strict: fields must appear once each, in order
// (target may repeat), with no unknown fields, and the text must be exactly
// what [Warrant.MarshalText] would write for the result. Every failure
// wraps [ErrBadWarrant].
func ParseWarrant(text []byte) (*Warrant, error) {
	if !utf8.Valid(text) {
		return nil, badWarrant("text is not valid UTF-8")
	}
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return nil, badWarrant("text does not end with a newline")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if lines[0] != WarrantHeader {
		if strings.HasPrefix(lines[0], "keyquorum warrant ") {
			return nil, badWarrant("first line %q: this build reads only %q", lines[0], WarrantHeader)
		}
		return nil, badWarrant("first line is %q, not %q; this is not a keyquorum warrant", truncateForError(lines[0]), WarrantHeader)
	}
	var w Warrant
	order := warrantFieldOrder()
	next := 0 // index in warrantFieldOrder of the field expected next
	for i, ln := range lines[1:] {
		lineNo := i + 2
		key, val, ok := strings.Cut(ln, ": ")
		if !ok {
			return nil, badWarrant("line %d: %q is not a \"field: value\" line", lineNo, truncateForError(ln))
		}
		pos := slices.Index(order, key)
		switch {
		case pos < 0:
			return nil, badWarrant("line %d: unknown field %q", lineNo, truncateForError(key))
		case key == wfTarget && next == pos+1:
			// another target
		case pos < next:
			return nil, badWarrant("line %d: duplicate field %q", lineNo, key)
		case pos > next:
			return nil, badWarrant("line %d: found field %q where %q belongs; fields must all be present, in the order %s",
				lineNo, key, order[next], strings.Join(order, ", "))
		default:
			next++
		}
		if err := w.setField(key, val); err != nil {
			return nil, fmt.Errorf("%w (line %d)", err, lineNo)
		}
	}
	if next < len(order) {
		return nil, badWarrant("missing field %q", order[next])
	}
	canon, err := w.MarshalText()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canon, text) {
		want := strings.Split(strings.TrimSuffix(string(canon), "\n"), "\n")
		for i := range min(len(lines), len(want)) {
			if lines[i] != want[i] {
				return nil, badWarrant("line %d is not in canonical form (want %q); write warrants with Warrant.MarshalText, not by hand", i+1, truncateForError(want[i]))
			}
		}
		return nil, badWarrant("text is not in canonical form")
	}
	return &w, nil
}

func (w *Warrant) setField(key, val string) error {
	var err error
	switch key {
	case wfID:
		w.ID = val
	case wfCase:
		w.Case = val
	case wfRequester:
		w.Requester, err = parseRequesterPublic(val)
		if err != nil {
			return badWarrant("%v", err)
		}
	case wfTarget:
		w.Targets = append(w.Targets, val)
	case wfWindowStart:
		w.WindowStart, err = parseWarrantTime(key, val)
	case wfWindowEnd:
		w.WindowEnd, err = parseWarrantTime(key, val)
	case wfValidFrom:
		w.ValidFrom, err = parseWarrantTime(key, val)
	case wfValidUntil:
		w.ValidUntil, err = parseWarrantTime(key, val)
	case wfMaxSessions:
		w.MaxSessions, err = strconv.Atoi(val)
		if err != nil || strconv.Itoa(w.MaxSessions) != val {
			return badWarrant("max-sessions %q is not a whole number in plain decimal", truncateForError(val))
		}
	case wfPurpose:
		w.Purpose = val
	}
	return err
}

func parseWarrantTime(field, val string) (time.Time, error) {
	t, err := time.Parse(warrantTimeLayout, val)
	if err != nil || formatWarrantTime(t) != val {
		return time.Time{}, badWarrant("%s %q: write times as RFC 3339 in UTC with whole seconds, like 2026-03-01T00:00:00Z", field, truncateForError(val))
	}
	return t, nil
}

// truncateForError shortens untrusted text quoted in an error message.
func truncateForError(s string) string {
	const limit = 80
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Covers reports whether the session with context c is within w's scope:
// its sender or its recipient is a target, and it started in
// [WindowStart, WindowEnd). It returns nil if so, and otherwise an error
// wrapping [ErrOutOfScope] that says which condition failed. Covers checks
// scope only; validity dates and signatures are [VerifyWarrant]'s job, and
// counting sessions against MaxSessions is the trustee's.
func (w *Warrant) Covers(c *Context) error {
	if c == nil {
		return fmt.Errorf("%w: no session context", ErrOutOfScope)
	}
	var why []string
	if !slices.Contains(w.Targets, c.Sender) && !slices.Contains(w.Targets, c.Recipient) {
		why = append(why, fmt.Sprintf("target not named: neither %q nor %q is a target of warrant %s (targets: %s)",
			c.Sender, c.Recipient, w.ID, strings.Join(w.Targets, ", ")))
	}
	if c.Start.Before(w.WindowStart) || !c.Start.Before(w.WindowEnd) {
		why = append(why, fmt.Sprintf("start outside window: the session started at %s, outside the warrant's window [%s, %s)",
			formatWarrantTime(c.Start), formatWarrantTime(w.WindowStart), formatWarrantTime(w.WindowEnd)))
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s; a new warrant is needed to cover this session", ErrOutOfScope, strings.Join(why, "; "))
}

// NewJudgeKey generates a judge's signing key pair, named name, with
// randomness from rand. The signer key (PRIVATE+KEY+name+hash+key) signs
// warrants and must stay secret; the verifier key (name+hash+key) is what
// trustees put in their [JudgePolicy]. Names are 1-64 letters, digits or
// . _ @ - (no '+', which separates the parts of a note key).
func NewJudgeKey(name string, rand io.Reader) (signerKey, verifierKey string, err error) {
	if !validJudgeName(name) {
		return "", "", fmt.Errorf("escrow: judge name %q: use 1-%d letters, digits or . _ @ -", name, MaxNameLen)
	}
	skey, vkey, err := note.GenerateKey(rand, name)
	if err != nil {
		return "", "", fmt.Errorf("escrow: generating judge key: %w", err)
	}
	return skey, vkey, nil
}

func validJudgeName(name string) bool {
	return ValidName(name) && !strings.Contains(name, "+")
}

// noteSigSeparator separates a note's text from its signatures. A warrant
// body never contains it, since it has no empty lines.
const noteSigSeparator = "\n\n"

// SignWarrant adds signer's signature to a warrant. noteOrText is either an
// unsigned body or a note already signed by other judges; judges sign in
// turn, each adding one signature. The body must parse with
// [ParseWarrant]: a judge never signs a malformed warrant. Existing
// signatures are kept as they are, not checked. A second signature by the
// same key is refused with [ErrAlreadySigned].
func SignWarrant(noteOrText []byte, signer note.Signer) ([]byte, error) {
	if signer == nil {
		return nil, errors.New("escrow: no judge signing key")
	}
	n := &note.Note{Text: string(noteOrText)}
	if bytes.Contains(noteOrText, []byte(noteSigSeparator)) {
		// Opened with no known verifiers, every signature lands in
		// UnverifiedSigs, and note.Sign writes them back unchanged.
		_, err := note.Open(noteOrText, nil)
		var unverified *note.UnverifiedNoteError
		if !errors.As(err, &unverified) {
			return nil, badWarrant("not a warrant body or a signed warrant note: %v", err)
		}
		n = unverified.Note
	}
	if _, err := ParseWarrant([]byte(n.Text)); err != nil {
		return nil, err
	}
	for _, s := range n.UnverifiedSigs {
		if s.Name == signer.Name() && s.Hash == signer.KeyHash() {
			return nil, fmt.Errorf("%w: %s+%08x has signed already; each judge signs once", ErrAlreadySigned, s.Name, s.Hash)
		}
	}
	signed, err := note.Sign(n, signer)
	if err != nil {
		return nil, fmt.Errorf("escrow: signing warrant: %w", err)
	}
	return signed, nil
}

// JudgePolicy says which judges a verifier trusts and how many of them must
// have signed a warrant.
type JudgePolicy struct {
	Judges   []note.Verifier
	Required int // at least 1, at most the number of distinct judges
}

// VerifiedWarrant is a warrant whose signatures and validity dates have
// been checked against a [JudgePolicy] at some time.
type VerifiedWarrant struct {
	Warrant *Warrant
	Judges  []string // names of the trusted judges whose signatures verified, in note order
	Hash    [32]byte // SHA-256 of the signed note bytes
	Note    []byte   // the signed note, as given
}

type judgeKeyID struct {
	name string
	hash uint32
}

// VerifyWarrant opens a signed warrant note, checks its signatures against
// p, parses the body, and checks that now is in [ValidFrom, ValidUntil).
// Signatures by keys the policy does not list are ignored; a bad signature
// by a listed key fails the whole warrant ([ErrWarrantSignature]). Failures
// wrap [ErrBadWarrant], [ErrWarrantSignature], [ErrUnknownJudge],
// [ErrTooFewJudges], [ErrWarrantNotYetValid] or [ErrWarrantExpired]. Scope
// is checked per session with [Warrant.Covers].
func VerifyWarrant(signed []byte, p JudgePolicy, now time.Time) (*VerifiedWarrant, error) {
	var judges []note.Verifier
	seen := make(map[judgeKeyID]bool)
	for _, v := range p.Judges {
		if v == nil {
			return nil, errors.New("escrow: judge policy lists a nil verifier")
		}
		id := judgeKeyID{v.Name(), v.KeyHash()}
		if !seen[id] {
			seen[id] = true
			judges = append(judges, v)
		}
	}
	if len(judges) == 0 {
		return nil, errors.New("escrow: judge policy trusts no judges; add at least one judge verifier key")
	}
	if p.Required < 1 || p.Required > len(judges) {
		return nil, fmt.Errorf("escrow: judge policy requires %d signatures from %d trusted judges; it must require between 1 and %d", p.Required, len(judges), len(judges))
	}

	n, err := note.Open(signed, note.VerifierList(judges...))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			var names []string
			for _, s := range unverified.Note.UnverifiedSigs {
				names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
			}
			return nil, fmt.Errorf("%w: it is signed by %s; ask a trusted judge to sign it, or add the judge's verifier key if that judge should be trusted",
				ErrUnknownJudge, strings.Join(names, ", "))
		case errors.As(err, &invalid):
			return nil, fmt.Errorf("%w: the signature by judge %s+%08x does not match the text; the warrant was altered after signing or the signature is corrupt, so get the original from the issuing judge",
				ErrWarrantSignature, invalid.Name, invalid.Hash)
		case !bytes.Contains(signed, []byte(noteSigSeparator)):
			return nil, badWarrant("no judge signatures (an unsigned body?); a judge must sign it first")
		default:
			return nil, badWarrant("not a well-formed signed note: %v", err)
		}
	}

	var names []string
	counted := make(map[judgeKeyID]bool)
	for _, s := range n.Sigs {
		id := judgeKeyID{s.Name, s.Hash}
		if !counted[id] {
			counted[id] = true
			names = append(names, s.Name)
		}
	}
	if len(names) < p.Required {
		return nil, fmt.Errorf("%w: %d verified (%s), %d needed; ask another trusted judge to sign it",
			ErrTooFewJudges, len(names), strings.Join(names, ", "), p.Required)
	}

	w, err := ParseWarrant([]byte(n.Text))
	if err != nil {
		return nil, err
	}
	if now.Before(w.ValidFrom) {
		return nil, fmt.Errorf("%w: warrant %s is valid from %s; wait until then", ErrWarrantNotYetValid, w.ID, formatWarrantTime(w.ValidFrom))
	}
	if !now.Before(w.ValidUntil) {
		return nil, fmt.Errorf("%w at %s; ask the issuing judge for a new one", ErrWarrantExpired, formatWarrantTime(w.ValidUntil))
	}
	return &VerifiedWarrant{
		Warrant: w,
		Judges:  names,
		Hash:    sha256.Sum256(signed),
		Note:    bytes.Clone(signed),
	}, nil
}

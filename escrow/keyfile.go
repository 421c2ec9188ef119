package escrow

// Key file formats: every key keyquorum writes to disk or prints, in one
// place.
//
// A private key file is UTF-8 text. Its first line names the format and its
// version; a fixed block of "# " comment lines follows, saying what the file
// is and that it is secret; then one "field: value" line per field, in a
// fixed order. Binary values are standard base64 with padding. Every
// private key file also states its public key, which the parser checks
// against the private key, so a corrupted file is caught on reading rather
// than producing signatures or decryptions nobody can check.
//
// Parsers are strict: a file is accepted only if marshalling what was read
// gives back the same bytes, so there is one encoding per key, comments
// included (edit a key file and it will be refused, naming the line).
//
// Private key files are plaintext for now, protected only by file mode
// 0600; passphrase encryption comes with the trustee node's key store.

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
	"golang.org/x/mod/sumdb/note"
)

// ErrBadKeyFile is wrapped by every key file and public key parsing
// failure.
var ErrBadKeyFile = errors.New("escrow: malformed key file")

// First lines of the key file formats.
const (
	RequesterKeyHeader = "keyquorum requester key v1"
	UserKeyHeader      = "keyquorum user key v1"
	UserPublicHeader   = "keyquorum user public key v1"
	JudgeKeyHeader     = "keyquorum judge key v1"
)

const plaintextNotice = "# This file is not encrypted: it is protected only by its file mode (0600).\n" +
	"# Do not copy it to shared disks, backups or mail.\n"

func requesterKeyLayout() *keyFileLayout {
	return &keyFileLayout{
		kind:   "requester key",
		header: RequesterKeyHeader,
		comment: "# keyquorum requester (investigator) private key. SECRET.\n" +
			"# Warrants name the public key below; trustees answer such warrants with\n" +
			"# shares re-encrypted to it, and whoever holds this file can finish those\n" +
			"# decryptions.\n" + plaintextNotice,
		fields: []string{"public", "private"},
	}
}

func userKeyLayout() *keyFileLayout {
	return &keyFileLayout{
		kind:   "user key",
		header: UserKeyHeader,
		comment: "# keyquorum messaging user private key. SECRET.\n" +
			"# Session keys are sealed to the X25519 key and the user's messages are\n" +
			"# signed with the Ed25519 key: whoever holds this file can read this\n" +
			"# user's sessions and write in the user's name.\n" + plaintextNotice,
		fields: []string{"name", "x25519-public", "ed25519-public", "x25519-private", "ed25519-seed"},
	}
}

func userPublicLayout() *keyFileLayout {
	return &keyFileLayout{
		kind:   "user public key",
		header: UserPublicHeader,
		fields: []string{"name", "x25519", "ed25519"},
	}
}

func judgeKeyLayout() *keyFileLayout {
	return &keyFileLayout{
		kind:   "judge key",
		header: JudgeKeyHeader,
		comment: "# keyquorum judge signing key (a golang.org/x/mod/sumdb/note signer key).\n" +
			"# SECRET: whoever holds this file can sign warrants in this judge's name.\n" +
			"# Give out only the verifier key.\n" + plaintextNotice,
		fields: []string{"verifier", "signer"},
	}
}

// describeHeader names the kind of file a known first line starts.
func describeHeader(first string) (string, bool) {
	switch first {
	case RequesterKeyHeader:
		return "requester private key", true
	case UserKeyHeader:
		return "user private key", true
	case UserPublicHeader:
		return "user public key", true
	case JudgeKeyHeader:
		return "judge private key", true
	case WarrantHeader:
		return "warrant", true
	}
	return "", false
}

// keyFileLayout describes one key file format: header line, fixed comment
// block, fields in order.
type keyFileLayout struct {
	kind    string
	header  string
	comment string // "# " lines, each ending in "\n"; may be empty
	fields  []string
}

func (l *keyFileLayout) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrBadKeyFile, l.kind, fmt.Sprintf(format, args...))
}

func (l *keyFileLayout) marshal(values ...string) []byte {
	var b bytes.Buffer
	b.WriteString(l.header + "\n")
	b.WriteString(l.comment)
	for i, f := range l.fields {
		b.WriteString(f + ": " + values[i] + "\n")
	}
	return b.Bytes()
}

// parse checks the layout and returns the field values. The caller decodes
// them and finally compares its own marshalling with b.
func (l *keyFileLayout) parse(b []byte) ([]string, error) {
	first, _, _ := bytes.Cut(b, []byte("\n"))
	if string(first) != l.header {
		if bytes.HasSuffix(first, []byte("\r")) {
			return nil, l.errorf("has carriage returns; lines must end with a bare newline")
		}
		if what, ok := describeHeader(string(first)); ok {
			return nil, l.errorf("this is a keyquorum %s, not a %s", what, l.kind)
		}
		if bytes.HasPrefix(first, []byte(strings.TrimSuffix(l.header, " v1"))) {
			return nil, l.errorf("first line %q: this build reads only %q", truncateForError(string(first)), l.header)
		}
		return nil, l.errorf("first line is %q, not %q", truncateForError(string(first)), l.header)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, l.errorf("does not end with a newline")
	}
	if bytes.IndexByte(b, '\r') >= 0 {
		return nil, l.errorf("has carriage returns; lines must end with a bare newline")
	}
	rest := b[len(first)+1:]
	if !bytes.HasPrefix(rest, []byte(l.comment)) {
		return nil, l.errorf("the comment lines after the first line differ from what keyquorum writes; restore them (key files are read back byte for byte)")
	}
	rest = rest[len(l.comment):]
	lines := strings.Split(strings.TrimSuffix(string(rest), "\n"), "\n")
	firstField := 2 + strings.Count(l.comment, "\n") // line number of the first field
	if len(rest) == 0 {
		return nil, l.errorf("missing field %q", l.fields[0])
	}
	values := make([]string, len(l.fields))
	for i, ln := range lines {
		lineNo := firstField + i
		if i >= len(l.fields) {
			return nil, l.errorf("line %d: unexpected text after the last field %q", lineNo, l.fields[len(l.fields)-1])
		}
		key, val, ok := strings.Cut(ln, ": ")
		if !ok || key != l.fields[i] {
			return nil, l.errorf("line %d: expected field %q, found %q", lineNo, l.fields[i], truncateForError(ln))
		}
		values[i] = val
	}
	if len(lines) < len(l.fields) {
		return nil, l.errorf("missing field %q", l.fields[len(lines)])
	}
	return values, nil
}

// canonical is the last step of every parser.
func (l *keyFileLayout) canonical(b, want []byte) error {
	if !bytes.Equal(b, want) {
		return l.errorf("not in canonical form (non-canonical base64?); regenerate the file rather than editing it")
	}
	return nil
}

func (l *keyFileLayout) decodeB64(field, s string, size int) ([]byte, error) {
	raw, err := decodeStrictB64(s)
	if err != nil {
		return nil, l.errorf("%s: not standard base64", field)
	}
	if len(raw) != size {
		return nil, l.errorf("%s: %d bytes, want %d", field, len(raw), size)
	}
	return raw, nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// decodeStrictB64 accepts only the one encoding b64 writes: the decoder
// alone skips newlines and, unless strict, ignores unused low bits.
func decodeStrictB64(s string) ([]byte, error) {
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if b64(raw) != s {
		return nil, errors.New("non-canonical base64")
	}
	return raw, nil
}

// FormatRequesterPublic returns the text form of a requester public key Q:
// standard base64 of its 32-byte encoding. It is what a warrant's
// requester line holds. p must not be nil.
func FormatRequesterPublic(p kyber.Point) string {
	return b64(group.PointBytes(p))
}

// ParseRequesterPublic parses the form written by [FormatRequesterPublic],
// refusing points [group.ParsePoint] refuses (non-canonical, small order,
// outside the prime-order subgroup, identity).
func ParseRequesterPublic(s string) (kyber.Point, error) {
	p, err := parseRequesterPublic(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKeyFile, err)
	}
	return p, nil
}

func parseRequesterPublic(s string) (kyber.Point, error) {
	raw, err := decodeStrictB64(s)
	if err != nil || len(raw) != group.PointLen {
		return nil, fmt.Errorf("requester public key %q is not standard base64 of %d bytes", truncateForError(s), group.PointLen)
	}
	p, err := group.ParsePoint(raw)
	if err != nil {
		return nil, fmt.Errorf("requester public key: %w", err)
	}
	return p, nil
}

// ParseRequesterPublicFile reads a requester public key from a file's
// contents: either the text form of [FormatRequesterPublic], optionally
// followed by one newline, or a requester private key file, from which the
// public key is taken.
func ParseRequesterPublicFile(b []byte) (kyber.Point, error) {
	if bytes.HasPrefix(b, []byte(RequesterKeyHeader+"\n")) {
		k, err := ParseRequesterKey(b)
		if err != nil {
			return nil, err
		}
		return k.Public, nil
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if what, ok := describeHeader(first); ok {
		return nil, fmt.Errorf("%w: this is a keyquorum %s, not a requester public key or requester key", ErrBadKeyFile, what)
	}
	return ParseRequesterPublic(strings.TrimSuffix(string(b), "\n"))
}

// MarshalRequesterKey returns the requester private key file for k:
//
//	keyquorum requester key v1
//	# ... comment lines ...
//	public: <Q, base64>
//	private: <q, base64 of the 32-byte little-endian scalar>
//
// If k.Public is set, it must equal q·G.
func MarshalRequesterKey(k *RequesterKey) ([]byte, error) {
	l := requesterKeyLayout()
	if k == nil || k.Private == nil {
		return nil, l.errorf("no private key")
	}
	if k.Private.Equal(group.Scalar()) {
		return nil, l.errorf("private key is zero")
	}
	pub := group.Point().Mul(k.Private, nil)
	if k.Public != nil && !k.Public.Equal(pub) {
		return nil, l.errorf("public key does not match the private key")
	}
	return l.marshal(FormatRequesterPublic(pub), b64(group.ScalarBytes(k.Private))), nil
}

// ParseRequesterKey parses a file written by [MarshalRequesterKey].
func ParseRequesterKey(b []byte) (*RequesterKey, error) {
	l := requesterKeyLayout()
	v, err := l.parse(b)
	if err != nil {
		return nil, err
	}
	raw, err := l.decodeB64("private", v[1], group.ScalarLen)
	if err != nil {
		return nil, err
	}
	q, err := group.ParseScalar(raw)
	if err != nil {
		return nil, l.errorf("private: %v", err)
	}
	if q.Equal(group.Scalar()) {
		return nil, l.errorf("private key is zero")
	}
	pub, err := parseRequesterPublic(v[0])
	if err != nil {
		return nil, l.errorf("public: %v", err)
	}
	k := NewRequesterKey(q)
	if !k.Public.Equal(pub) {
		return nil, l.errorf("the public key does not match the private key; the file is corrupt")
	}
	out, err := MarshalRequesterKey(k)
	if err != nil {
		return nil, err
	}
	return k, l.canonical(b, out)
}

// MarshalUserKey returns the user private key file for u:
//
//	keyquorum user key v1
//	# ... comment lines ...
//	name: alice
//	x25519-public: <base64>
//	ed25519-public: <base64>
//	x25519-private: <base64 of the 32-byte X25519 private key>
//	ed25519-seed: <base64 of the 32-byte RFC 8032 seed>
func MarshalUserKey(u *UserKey) ([]byte, error) {
	l := userKeyLayout()
	if u == nil || u.KEM == nil || len(u.Sign) != ed25519.PrivateKeySize {
		return nil, l.errorf("incomplete user key")
	}
	if !ValidName(u.Name) {
		return nil, l.errorf("name %q: use 1-%d letters, digits or . _ @ + -", u.Name, MaxNameLen)
	}
	if u.KEM.Curve() != ecdh.X25519() {
		return nil, l.errorf("messaging key is not an X25519 key")
	}
	pub := u.Public()
	return l.marshal(u.Name, b64(pub.KEM.Bytes()), b64(pub.Verify), b64(u.KEM.Bytes()), b64(u.Sign.Seed())), nil
}

// ParseUserKey parses a file written by [MarshalUserKey].
func ParseUserKey(b []byte) (*UserKey, error) {
	l := userKeyLayout()
	v, err := l.parse(b)
	if err != nil {
		return nil, err
	}
	if !ValidName(v[0]) {
		return nil, l.errorf("name %q: use 1-%d letters, digits or . _ @ + -", truncateForError(v[0]), MaxNameLen)
	}
	kemRaw, err := l.decodeB64("x25519-private", v[3], 32)
	if err != nil {
		return nil, err
	}
	seed, err := l.decodeB64("ed25519-seed", v[4], ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	kem, err := ecdh.X25519().NewPrivateKey(kemRaw)
	if err != nil {
		return nil, l.errorf("x25519-private: %v", err)
	}
	u := &UserKey{Name: v[0], KEM: kem, Sign: ed25519.NewKeyFromSeed(seed)}
	pub := u.Public()
	if b64(pub.KEM.Bytes()) != v[1] {
		return nil, l.errorf("x25519-public does not match x25519-private; the file is corrupt")
	}
	if b64(pub.Verify) != v[2] {
		return nil, l.errorf("ed25519-public does not match ed25519-seed; the file is corrupt")
	}
	out, err := MarshalUserKey(u)
	if err != nil {
		return nil, err
	}
	return u, l.canonical(b, out)
}

// MarshalUserPublic returns the public form of a user's keys, which others
// need to open sessions with the user and check the user's messages:
//
//	keyquorum user public key v1
//	name: alice
//	x25519: <base64 of the 32-byte X25519 public key>
//	ed25519: <base64 of the 32-byte Ed25519 public key>
func MarshalUserPublic(p *UserPublic) ([]byte, error) {
	l := userPublicLayout()
	if p == nil || p.KEM == nil || p.Verify == nil {
		return nil, l.errorf("incomplete user public key")
	}
	if !ValidName(p.Name) {
		return nil, l.errorf("name %q: use 1-%d letters, digits or . _ @ + -", p.Name, MaxNameLen)
	}
	if p.KEM.Curve() != ecdh.X25519() {
		return nil, l.errorf("messaging key is not an X25519 key")
	}
	if err := checkX25519Public(p.KEM.Bytes()); err != nil {
		return nil, l.errorf("x25519: %v", err)
	}
	if _, err := group.ParsePoint(p.Verify); err != nil {
		return nil, l.errorf("ed25519: %v", err)
	}
	return l.marshal(p.Name, b64(p.KEM.Bytes()), b64(p.Verify)), nil
}

// ParseUserPublic parses the form written by [MarshalUserPublic]. It
// refuses X25519 keys that are non-canonical or of low order, and Ed25519
// keys that [group.ParsePoint] refuses; no honestly generated key is
// either.
func ParseUserPublic(b []byte) (*UserPublic, error) {
	l := userPublicLayout()
	v, err := l.parse(b)
	if err != nil {
		return nil, err
	}
	if !ValidName(v[0]) {
		return nil, l.errorf("name %q: use 1-%d letters, digits or . _ @ + -", truncateForError(v[0]), MaxNameLen)
	}
	kemRaw, err := l.decodeB64("x25519", v[1], 32)
	if err != nil {
		return nil, err
	}
	if err := checkX25519Public(kemRaw); err != nil {
		return nil, l.errorf("x25519: %v", err)
	}
	kem, err := ecdh.X25519().NewPublicKey(kemRaw)
	if err != nil {
		return nil, l.errorf("x25519: %v", err)
	}
	ver, err := l.decodeB64("ed25519", v[2], ed25519.PublicKeySize)
	if err != nil {
		return nil, err
	}
	if _, err := group.ParsePoint(ver); err != nil {
		return nil, l.errorf("ed25519: %v", err)
	}
	p := &UserPublic{Name: v[0], KEM: kem, Verify: ed25519.PublicKey(ver)}
	out, err := MarshalUserPublic(p)
	if err != nil {
		return nil, err
	}
	return p, l.canonical(b, out)
}

// x25519Probe is a fixed private key: X25519 clamps it to a multiple of 8,
// so multiplying a low-order point by it gives the all-zero output that
// crypto/ecdh refuses.
const x25519Probe = "keyquorum/v1/x25519-order-probe!"

// checkX25519Public refuses u-coordinates that are non-canonical (top bit
// set, or at least p = 2^255-19) or of low order.
func checkX25519Public(u []byte) error {
	if len(u) != 32 {
		return fmt.Errorf("%d bytes, want 32", len(u))
	}
	if u[31]&0x80 != 0 {
		return errors.New("non-canonical encoding (top bit set)")
	}
	if u[31] == 0x7f && u[0] >= 0xed && bytes.Count(u[1:31], []byte{0xff}) == 30 {
		return errors.New("non-canonical encoding (not reduced mod 2^255-19)")
	}
	probe, err := ecdh.X25519().NewPrivateKey([]byte(x25519Probe))
	if err != nil {
		return err
	}
	pub, err := ecdh.X25519().NewPublicKey(u)
	if err != nil {
		return err
	}
	if _, err := probe.ECDH(pub); err != nil {
		return errors.New("point of low order")
	}
	return nil
}

// JudgeKey is a judge's key pair as note key strings.
type JudgeKey struct {
	SignerKey   string // PRIVATE+KEY+name+hash+key: secret
	VerifierKey string // name+hash+key: given to trustees
}

// Name returns the judge's name, as it appears on signatures.
func (k *JudgeKey) Name() string {
	name, _, _ := strings.Cut(k.VerifierKey, "+")
	return name
}

// Signer returns the note signer for k.
func (k *JudgeKey) Signer() (note.Signer, error) {
	s, err := note.NewSigner(k.SignerKey)
	if err != nil {
		return nil, fmt.Errorf("%w: judge signer key: %w", ErrBadKeyFile, err)
	}
	return s, nil
}

// Verifier returns the note verifier for k.
func (k *JudgeKey) Verifier() (note.Verifier, error) { return ParseJudgeVerifier(k.VerifierKey) }

// check confirms that the signer key is a well-formed Ed25519 note key in
// canonical encoding and that the verifier key is its public half.
func (k *JudgeKey) check() error {
	l := judgeKeyLayout()
	if _, err := note.NewSigner(k.SignerKey); err != nil {
		return l.errorf("signer: not a note signer key (PRIVATE+KEY+name+hash+key)")
	}
	parts := strings.SplitN(k.SignerKey, "+", 5)
	if len(parts) != 5 {
		return l.errorf("signer: not a note signer key (PRIVATE+KEY+name+hash+key)")
	}
	raw, err := decodeStrictB64(parts[4])
	const algEd25519 = 1
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != algEd25519 {
		return l.errorf("signer: not an Ed25519 note signer key")
	}
	name := parts[2]
	if want := fmt.Sprintf("PRIVATE+KEY+%s+%s+%s", name, parts[3], b64(raw)); want != k.SignerKey {
		return l.errorf("signer: not in canonical form")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return l.errorf("signer: %v", err)
	}
	if vkey != k.VerifierKey {
		return l.errorf("the verifier key is not the public half of the signer key; the file is corrupt")
	}
	return nil
}

// MarshalJudgeKey returns the judge private key file for k:
//
//	keyquorum judge key v1
//	# ... comment lines ...
//	verifier: <name+hash+key>
//	signer: <PRIVATE+KEY+name+hash+key>
func MarshalJudgeKey(k *JudgeKey) ([]byte, error) {
	if k == nil {
		return nil, judgeKeyLayout().errorf("no key")
	}
	if err := k.check(); err != nil {
		return nil, err
	}
	return judgeKeyLayout().marshal(k.VerifierKey, k.SignerKey), nil
}

// ParseJudgeKey parses a file written by [MarshalJudgeKey].
func ParseJudgeKey(b []byte) (*JudgeKey, error) {
	l := judgeKeyLayout()
	v, err := l.parse(b)
	if err != nil {
		return nil, err
	}
	k := &JudgeKey{VerifierKey: v[0], SignerKey: v[1]}
	out, err := MarshalJudgeKey(k)
	if err != nil {
		return nil, err
	}
	return k, l.canonical(b, out)
}

// ParseJudgeVerifier parses a judge's verifier key, name+hash+key, as
// printed by NewJudgeKey and kept in trustee policies.
func ParseJudgeVerifier(vkey string) (note.Verifier, error) {
	v, err := parseJudgeVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
	}
	return v, nil
}

func parseJudgeVerifier(vkey string) (note.Verifier, error) {
	if strings.HasPrefix(vkey, "PRIVATE+KEY+") {
		return nil, errors.New("that is a judge's secret signer key, not a verifier key; use the verifier key (name+hash+key) and keep the signer key private")
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("judge verifier key %q: %v; expected name+hash+key", truncateForError(vkey), err)
	}
	return v, nil
}

// ParseJudgeList parses a list of judge verifier keys, one per line. Blank
// lines and lines starting with '#' are ignored; surrounding spaces are
// trimmed. Errors name the line.
func ParseJudgeList(b []byte) ([]note.Verifier, error) {
	var list []note.Verifier
	for i, ln := range strings.Split(string(b), "\n") {
		ln = strings.TrimSpace(ln)
		if ln == "" || strings.HasPrefix(ln, "#") {
			continue
		}
		v, err := parseJudgeVerifier(ln)
		if err != nil {
			return nil, fmt.Errorf("%w: judge list, line %d: %v", ErrBadKeyFile, i+1, err)
		}
		list = append(list, v)
	}
	return list, nil
}

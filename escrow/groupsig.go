package escrow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// A signed group file is one JSON object: the group file's fields
// followed by "signatures", one per trustee, in roster order:
//
//	{
//	  "version": "keyquorum group v2",
//	  ...
//	  "signatures": [
//	    {"name": "trustee-1.keyquorum", "key_hash": "1a2b3c4d", "signature": "base64..."},
//	    ...
//	  ]
//	}
//
// Each signature is a note signature (golang.org/x/mod/sumdb/note: the
// Ed25519 signature of the trustee's log key, whose verifier key is the
// roster's LogKey, named [LogKeyName]) over the canonical encoding of the
// group file without its signatures ([GroupFile.Marshal]), which is what
// [VerifyGroupFile] returns as text. So `jq .threshold` and Python's
// json.load read the file as what it is, and each signature covers every
// other byte: the file must be exactly the canonical re-encoding of what
// it parses to (no unknown field, no reordering, no other spacing), with
// its signatures listed once each in roster order, so one group has one
// signed encoding.
//
// After a DKG every qualified trustee checks that the file's epoch key
// and commitment are the ones its own ceremony computed and only then
// adds its signature, so a file signed by all of them is one they all
// agree on; clients verify with [VerifyGroupFile] and refuse anything
// less.
//
// The roster inside names the keys that must sign: the file vouches for
// itself, so clients must still get the roster (or one trustee's key)
// from somewhere they trust the first time; what the signatures add is
// that no trustee can be listed, and no key published, without that
// trustee's agreement.
//
// # Version 1
//
// Version 1 group files were the JSON text followed by a blank line and
// note signature lines, which JSON tools read as a broken file. This build
// refuses them ([ErrGroupFileV1]) rather than read both forms: two
// encodings of one group would have two hashes (a ceremony proposal binds
// one), and a version 1 signature cannot be carried over, since it signs
// the version 1 text. [ConvertGroupFileV1] turns one into the unsigned
// version 2 file, which the trustees sign again (keyquorum trustee
// sign-group does the conversion itself).

// Errors of a signed group file. Test them with errors.Is.
var (
	// ErrGroupUnsigned: a trustee of the roster has not signed the group
	// file (the error names who).
	ErrGroupUnsigned = errors.New("escrow: group file not signed by every trustee")
	// ErrGroupSignature: a signature does not verify (the file was
	// changed, or the signature forged) or was made by a key that is not a
	// trustee's log key in the roster.
	ErrGroupSignature = errors.New("escrow: bad group file signature")
	// ErrGroupFileV1: the file is a version 1 group file (JSON followed
	// by signature lines). It wraps [ErrBadGroupFile].
	ErrGroupFileV1 = fmt.Errorf("%w: version 1 (group JSON followed by note signature lines), which this build no longer reads", ErrBadGroupFile)
)

// GroupSignature is one trustee's signature of a group file.
type GroupSignature struct {
	Name      string `json:"name"`      // note key name of the trustee's log key: [LogKeyName]
	KeyHash   string `json:"key_hash"`  // the key's note key hash, 8 hex digits
	Signature []byte `json:"signature"` // base64 Ed25519 signature over [GroupFile.Marshal]
}

// SignedGroupFile is a group file with its signatures, as written on disk.
// [ParseSignedGroupFile] checks its encoding and fields but not its
// signatures: use [VerifyGroupFile] or [ReadGroupFile] for that.
type SignedGroupFile struct {
	GroupFile
	Signatures []GroupSignature `json:"signatures,omitempty"`
}

// Marshal encodes the signed group file in its canonical form; with no
// signatures it is the same as [GroupFile.Marshal].
func (s *SignedGroupFile) Marshal() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

const v1Prefix = "{\n  \"version\": \"keyquorum group v1\","

// ParseSignedGroupFile decodes a group file with or without signatures.
// Unknown fields are refused, the encoding must be the canonical one
// [SignedGroupFile.Marshal] writes and the signatures well-formed and in
// roster order; they are not verified.
func ParseSignedGroupFile(b []byte) (*SignedGroupFile, error) {
	if bytes.HasPrefix(b, []byte(v1Prefix)) {
		return nil, fmt.Errorf("%w; convert it: each trustee in turn runs keyquorum trustee sign-group --dir DIR --group FILE --out FILE, which rewrites it as version 2 and signs it", ErrGroupFileV1)
	}
	var s SignedGroupFile
	if err := decodeStrict(b, &s); err != nil {
		return nil, err
	}
	again, err := s.Marshal()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not in canonical form (was it edited by hand? fetch it again)", ErrBadGroupFile)
	}
	prev := 0
	for _, sig := range s.Signatures {
		m := s.signer(sig.Name)
		if m == nil {
			return nil, fmt.Errorf("%w: signed by %s, which is not a trustee's log key in the roster", ErrGroupSignature, sig.Name)
		}
		if m.Index <= prev {
			return nil, fmt.Errorf("%w: signatures must be listed once each, in roster order (%s is out of place)", ErrBadGroupFile, sig.Name)
		}
		prev = m.Index
		if h, err := strconv.ParseUint(sig.KeyHash, 16, 32); err != nil || fmt.Sprintf("%08x", h) != sig.KeyHash {
			return nil, fmt.Errorf("%w: signature by %s: key_hash %q is not 8 lowercase hex digits", ErrBadGroupFile, sig.Name, sig.KeyHash)
		}
	}
	return &s, nil
}

// decodeStrict decodes the one JSON object in b into v, refusing unknown
// fields and anything after the object.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadGroupFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data after the JSON object", ErrBadGroupFile)
	}
	return nil
}

// signer returns the roster member whose log key is named name, or nil.
func (g *GroupFile) signer(name string) *GroupMember {
	for i := range g.Trustees {
		if LogKeyName(g.Trustees[i].Name) == name {
			return &g.Trustees[i]
		}
	}
	return nil
}

// rosterVerifiers builds the verifiers of every trustee's log key, in
// roster order.
func rosterVerifiers(g *GroupFile) ([]note.Verifier, error) {
	var vs []note.Verifier
	seen := map[string]string{}
	for _, m := range g.Trustees {
		if m.LogKey == "" {
			return nil, fmt.Errorf("%w: trustee %d (%s) has no log key in the roster; it cannot sign", ErrBadGroupFile, m.Index, m.Name)
		}
		v, err := note.NewVerifier(m.LogKey)
		if err != nil {
			return nil, fmt.Errorf("%w: trustee %d (%s) log key: %v", ErrBadGroupFile, m.Index, m.Name, err)
		}
		if v.Name() != LogKeyName(m.Name) {
			return nil, fmt.Errorf("%w: trustee %d (%s) log key is named %q, want %q", ErrBadGroupFile, m.Index, m.Name, v.Name(), LogKeyName(m.Name))
		}
		id := fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash())
		if other, ok := seen[id]; ok {
			return nil, fmt.Errorf("%w: trustees %s and %s share a log key", ErrBadGroupFile, other, m.Name)
		}
		seen[id] = m.Name
		vs = append(vs, v)
	}
	return vs, nil
}

// openGroupFile parses a group file (signed or not) and verifies every
// signature it carries against the roster's log keys. It returns the
// file and the canonical encoding the signatures cover.
func openGroupFile(b []byte) (*SignedGroupFile, []byte, error) {
	s, err := ParseSignedGroupFile(b)
	if err != nil {
		return nil, nil, err
	}
	vs, err := rosterVerifiers(&s.GroupFile)
	if err != nil {
		return nil, nil, err
	}
	text, err := s.GroupFile.Marshal()
	if err != nil {
		return nil, nil, err
	}
	for _, sig := range s.Signatures {
		v := vs[s.signer(sig.Name).Index-1]
		if want := fmt.Sprintf("%08x", v.KeyHash()); sig.KeyHash != want {
			return nil, nil, fmt.Errorf("%w: signature by %s+%s is by another key than the roster's (%s+%s)", ErrGroupSignature, sig.Name, sig.KeyHash, sig.Name, want)
		}
		if !v.Verify(text, sig.Signature) {
			return nil, nil, fmt.Errorf("%w: signature by %s does not verify: the file was changed after signing, or the signature is forged; fetch the group file again", ErrGroupSignature, sig.Name)
		}
	}
	return s, text, nil
}

// SignGroupFile adds signer's signature to a group file: groupJSON is
// either the unsigned canonical group file or one already signed by other
// trustees (whose signatures are checked and kept; a signature of the
// signer's own key is replaced). The signer must be the log key of a
// trustee in the roster.
func SignGroupFile(groupJSON []byte, signer note.Signer) ([]byte, error) {
	s, text, err := openGroupFile(groupJSON)
	if err != nil {
		return nil, err
	}
	m := s.signer(signer.Name())
	if m == nil || m.LogKey == "" {
		return nil, fmt.Errorf("escrow: key %s+%08x is not a trustee's log key in this group file; sign with the node's own identity", signer.Name(), signer.KeyHash())
	}
	if v, _ := note.NewVerifier(m.LogKey); v.KeyHash() != signer.KeyHash() { // parsed by openGroupFile
		return nil, fmt.Errorf("escrow: key %s+%08x is not a trustee's log key in this group file (the roster's is %s); sign with the node's own identity", signer.Name(), signer.KeyHash(), m.LogKey)
	}
	sig, err := signer.Sign(text)
	if err != nil {
		return nil, fmt.Errorf("escrow: signing the group file: %w", err)
	}
	mine := GroupSignature{Name: signer.Name(), KeyHash: fmt.Sprintf("%08x", signer.KeyHash()), Signature: sig}
	s.Signatures = slices.DeleteFunc(s.Signatures, func(g GroupSignature) bool { return g.Name == mine.Name })
	at := len(s.Signatures)
	for i, other := range s.Signatures {
		if s.signer(other.Name).Index > m.Index {
			at = i
			break
		}
	}
	s.Signatures = slices.Insert(s.Signatures, at, mine)
	return s.Marshal()
}

// MergeGroupSignatures returns the group file base (signed or not) with
// the signatures of other added: both must be the same group file, and
// every signature in either must verify. It is how a ceremony's relay
// gathers the copies each trustee signed into one file.
func MergeGroupSignatures(base, other []byte) ([]byte, error) {
	s, text, err := openGroupFile(base)
	if err != nil {
		return nil, err
	}
	o, otext, err := openGroupFile(other)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(text, otext) {
		return nil, fmt.Errorf("%w: the signatures to merge are of another group file", ErrGroupSignature)
	}
	for _, sig := range o.Signatures {
		if !slices.ContainsFunc(s.Signatures, func(g GroupSignature) bool { return g.Name == sig.Name }) {
			s.Signatures = append(s.Signatures, sig)
		}
	}
	slices.SortFunc(s.Signatures, func(a, b GroupSignature) int { return s.signer(a.Name).Index - s.signer(b.Name).Index })
	return s.Marshal()
}

// VerifyGroupFile checks a signed group file and returns it and its
// canonical encoding without signatures (what the signatures cover).
// Every signature must verify and be by a trustee of the roster; with
// requireAll, every trustee that holds a share of the newest epoch
// ([GroupFile.HolderIndices]) must have signed, otherwise at least the
// threshold of them. A file signed by too few is refused with an error
// wrapping [ErrGroupUnsigned] that names the trustees missing; a bad or
// outside signature with [ErrGroupSignature].
func VerifyGroupFile(signed []byte, requireAll bool) (*GroupFile, []byte, error) {
	if s, err := ParseSignedGroupFile(signed); err == nil && len(s.Signatures) == 0 {
		return nil, nil, fmt.Errorf("%w: the file carries no signatures; have the trustees sign it", ErrGroupUnsigned)
	}
	s, text, err := openGroupFile(signed)
	if err != nil {
		return nil, nil, err
	}
	have := map[string]bool{}
	for _, sig := range s.Signatures {
		have[sig.Name] = true
	}
	g := &s.GroupFile
	holders := g.HolderIndices(g.Epochs[len(g.Epochs)-1])
	var missing []string
	for _, i := range holders {
		m := g.Trustees[i-1]
		if !have[LogKeyName(m.Name)] {
			missing = append(missing, fmt.Sprintf("%d (%s)", m.Index, m.Name))
		}
	}
	need := len(holders)
	if !requireAll {
		need = g.Threshold
	}
	if len(holders)-len(missing) < need {
		return nil, nil, fmt.Errorf("%w: missing the signature of trustee %s; ask them to sign it", ErrGroupUnsigned, strings.Join(missing, ", "))
	}
	return g, text, nil
}

// ReadGroupFile parses a group file that may or may not carry signatures,
// checking any it carries. It is for a trustee reading its own copy; a
// client must use [VerifyGroupFile].
func ReadGroupFile(b []byte) (*GroupFile, error) {
	s, _, err := openGroupFile(b)
	if err != nil {
		return nil, err
	}
	return &s.GroupFile, nil
}

// ConvertGroupFileV1 turns a version 1 group file (signed or not) into the
// unsigned version 2 file of the same group. The version 1 signatures are
// dropped unchecked: they sign the version 1 text, so every trustee signs
// the result again after checking it ([SignGroupFile]).
func ConvertGroupFileV1(b []byte) ([]byte, error) {
	if !bytes.HasPrefix(b, []byte(v1Prefix)) {
		return nil, fmt.Errorf("%w: not a version 1 group file", ErrBadGroupFile)
	}
	text := b
	if i := bytes.Index(b, []byte("\n}\n\n")); i >= 0 {
		text = b[:i+3]
	}
	var g GroupFile
	if err := decodeStrict(text, &g); err != nil {
		return nil, err
	}
	g.Version = GroupFileVersion
	out, err := g.Marshal()
	if err != nil {
		return nil, err
	}
	v2 := []byte(strings.Replace(v1Prefix, "v1", "v2", 1))
	if !bytes.Equal(out, bytes.Replace(text, []byte(v1Prefix), v2, 1)) {
		return nil, fmt.Errorf("%w: version 1 file not in canonical form (was it edited by hand?)", ErrBadGroupFile)
	}
	return out, nil
}

// LogKeyName is the note key name of a trustee's audit log signer: the
// trustee's name followed by ".keyquorum", so that a signed checkpoint
// says whose log it is ("— trustee-1.keyquorum ...").
func LogKeyName(trusteeName string) string { return trusteeName + ".keyquorum" }

// ValidTrusteeName reports whether s can name a trustee: a valid escrow
// name ([ValidName]) that can also appear in a note signature, so
// without '+'.
func ValidTrusteeName(s string) bool {
	return ValidName(s) && !strings.Contains(s, "+")
}

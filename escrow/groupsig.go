package escrow

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// A signed group file is a note (golang.org/x/mod/sumdb/note) whose text
// is the canonical group.json ([GroupFile.Marshal]) and which carries one
// signature per trustee, made with the trustee's log key (the roster's
// LogKey, named [LogKeyName]). After a DKG every qualified trustee checks
// that the file's epoch key and commitment are the ones its own ceremony
// computed and only then adds its signature, so a file signed by all of
// them is one they all agree on; clients verify with [VerifyGroupFile]
// and refuse anything less.
//
// The roster inside the text names the keys that must sign: the file
// vouches for itself, so clients must still get the roster (or one
// trustee's key) from somewhere they trust the first time; what the
// signatures add is that no trustee can be listed, and no key published,
// without that trustee's agreement.
//
// Errors of a signed group file. Test them with errors.Is.
var (
	// ErrGroupUnsigned: a trustee of the roster has not signed the group
	// file (the error names who).
	ErrGroupUnsigned = errors.New("escrow: group file not signed by every trustee")
	// ErrGroupSignature: a signature does not verify (the text was
	// changed, or the signature forged) or was made by a key that is not a
	// trustee's log key in the roster.
	ErrGroupSignature = errors.New("escrow: bad group file signature")
)

// splitSigned returns the text of a signed note, or all of b if it has no
// signature block.
func splitSigned(b []byte) (text []byte, signed bool) {
	i := bytes.LastIndex(b, []byte("\n\n"))
	if i < 0 {
		return b, false
	}
	return b[:i+1], true
}

// rosterVerifiers builds the verifiers of every trustee's log key.
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

// openGroupNote parses the group file in b (signed or not) and, if signed,
// verifies every signature against the roster's log keys.
func openGroupNote(b []byte) (*GroupFile, *note.Note, error) {
	text, signed := splitSigned(b)
	g, err := ParseGroupFile(text)
	if err != nil {
		return nil, nil, err
	}
	vs, err := rosterVerifiers(g)
	if err != nil {
		return nil, nil, err
	}
	if !signed {
		return g, &note.Note{Text: string(text)}, nil
	}
	n, err := note.Open(b, note.VerifierList(vs...))
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unverified):
		return nil, nil, fmt.Errorf("%w: signed only by keys that are not in the roster (%s)", ErrGroupSignature, sigNames(unverified.Note.UnverifiedSigs))
	case errors.As(err, &invalid):
		return nil, nil, fmt.Errorf("%w: signature by %s does not verify: the file was changed after signing, or the signature is forged; fetch the group file again", ErrGroupSignature, invalid.Name)
	case err != nil:
		return nil, nil, fmt.Errorf("%w: %v", ErrGroupSignature, err)
	}
	if len(n.UnverifiedSigs) > 0 {
		return nil, nil, fmt.Errorf("%w: signed by keys that are not in the roster (%s)", ErrGroupSignature, sigNames(n.UnverifiedSigs))
	}
	return g, n, nil
}

func sigNames(sigs []note.Signature) string {
	var s []string
	for _, sig := range sigs {
		s = append(s, fmt.Sprintf("%s+%08x", sig.Name, sig.Hash))
	}
	return strings.Join(s, ", ")
}

// SignGroupFile adds signer's signature to a group file: groupJSON is
// either the canonical group.json or a note of it already signed by other
// trustees (whose signatures are checked and kept). The signer must be
// the log key of a trustee in the roster.
func SignGroupFile(groupJSON []byte, signer note.Signer) ([]byte, error) {
	g, n, err := openGroupNote(groupJSON)
	if err != nil {
		return nil, err
	}
	member := false
	for _, m := range g.Trustees {
		v, _ := note.NewVerifier(m.LogKey) // checked by openGroupNote
		if v.Name() == signer.Name() && v.KeyHash() == signer.KeyHash() {
			member = true
		}
	}
	if !member {
		return nil, fmt.Errorf("escrow: key %s+%08x is not a trustee's log key in this group file; sign with the node's own identity", signer.Name(), signer.KeyHash())
	}
	out, err := note.Sign(n, signer)
	if err != nil {
		return nil, fmt.Errorf("escrow: signing the group file: %w", err)
	}
	return out, nil
}

// VerifyGroupFile checks a signed group file and returns it and its
// canonical group.json. Every signature must verify and be by a trustee
// of the roster; with requireAll, every trustee that holds a share of the
// newest epoch ([GroupFile.HolderIndices]) must have signed, otherwise at
// least the threshold of them. A file signed by too few is refused with
// an error wrapping [ErrGroupUnsigned] that names the trustees missing; a
// bad or outside signature with [ErrGroupSignature].
func VerifyGroupFile(signed []byte, requireAll bool) (*GroupFile, []byte, error) {
	if _, ok := splitSigned(signed); !ok {
		return nil, nil, fmt.Errorf("%w: the file carries no signatures; have the trustees sign it", ErrGroupUnsigned)
	}
	g, n, err := openGroupNote(signed)
	if err != nil {
		return nil, nil, err
	}
	have := map[string]bool{}
	for _, s := range n.Sigs {
		have[s.Name] = true
	}
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
	return g, []byte(n.Text), nil
}

// ReadGroupFile parses a group file that may or may not carry signatures,
// checking any it carries. It is for a trustee reading its own copy; a
// client must use [VerifyGroupFile].
func ReadGroupFile(b []byte) (*GroupFile, error) {
	g, _, err := openGroupNote(b)
	return g, err
}

// LogKeyName is the note key name of a trustee's audit log signer: the
// trustee's name followed by ".keyquorum", so that a signed tree head says
// whose log it is ("— trustee-1.keyquorum ...").
func LogKeyName(trusteeName string) string { return trusteeName + ".keyquorum" }

// ValidTrusteeName reports whether s can name a trustee: a valid escrow
// name ([ValidName]) that can also appear in a note signature, so
// without '+'.
func ValidTrusteeName(s string) bool {
	return ValidName(s) && !strings.Contains(s, "+")
}

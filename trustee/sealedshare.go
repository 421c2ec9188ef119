package trustee

import (
	"bufio"
	"bytes"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
)

// SealedShareHeader is the first line of a sealed share file.
const SealedShareHeader = "keyquorum sealed share v1"

// labelDealtShare starts the HPKE info of a sealed share; the SHA-256 of
// the group file follows it, so a share opens only with the group file it
// was dealt with.
const labelDealtShare = "keyquorum/v1/dealt-share"

// Errors from opening a sealed share. The returned errors wrap them.
var (
	// ErrBadSealedShare: the file is not a well-formed sealed share, or it
	// does not open (damaged or altered on the way).
	ErrBadSealedShare = errors.New("trustee: bad sealed share file")

	// ErrNotMyShare: the sealed share, or the group file's entry for
	// this node, belongs to another trustee or another identity key.
	ErrNotMyShare = errors.New("trustee: the sealed share is not for this trustee")

	// ErrWrongGroupFile: the share was dealt with another group file.
	ErrWrongGroupFile = errors.New("trustee: the sealed share was dealt with another group file")

	// ErrShareCommitment: an epoch share does not match the public share
	// the group file's commitment gives this trustee. The dealer or the
	// file is wrong; do not join the group with it.
	ErrShareCommitment = errors.New("trustee: share does not match the group's commitment")
)

// SealedShare is one trustee's [ShareFile] encrypted to its identity key
// with HPKE (RFC 9180) in base mode, suite DHKEM(X25519, HKDF-SHA256),
// HKDF-SHA256, ChaCha20-Poly1305:
//
//	info = "keyquorum/v1/dealt-share" || SHA-256(group file)
//	aad  = the file's field lines (trustee, name, identity-key, group-sha256)
//	Ciphertext = enc (32 bytes) || ChaCha20-Poly1305 ciphertext of the share file
//
// # File
//
//	keyquorum sealed share v1
//	# comment lines naming the trustee and the import command
//	trustee: 2
//	name: trustee-2
//	identity-key: <base64 X25519 public key>
//	group-sha256: <64 hex digits>
//	<base64 of Ciphertext, 64 characters a line>
//
// [ParseSealedShare] accepts only that encoding.
type SealedShare struct {
	Index       int
	Name        string
	IdentityKey string
	GroupSHA256 [sha256.Size]byte
	Ciphertext  []byte
}

const sealedShareLineWidth = 64

// x25519EncSize is the size of DHKEM(X25519)'s encapsulated key.
const x25519EncSize = 32

// maxSealedShareSize bounds what ParseSealedShare reads: a share file of
// thousands of epochs fits.
const maxSealedShareSize = 1 << 20

func (s *SealedShare) fields() []byte {
	return fmt.Appendf(nil, "trustee: %d\nname: %s\nidentity-key: %s\ngroup-sha256: %s\n",
		s.Index, s.Name, s.IdentityKey, hex.EncodeToString(s.GroupSHA256[:]))
}

// Marshal encodes s (see [SealedShare]).
func (s *SealedShare) Marshal() ([]byte, error) {
	if s.Index < 1 || !escrow.ValidTrusteeName(s.Name) || len(s.Ciphertext) == 0 {
		return nil, fmt.Errorf("%w: incomplete sealed share", ErrBadSealedShare)
	}
	if _, err := ParseIdentityKey(s.IdentityKey); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSealedShare, err)
	}
	var b bytes.Buffer
	fmt.Fprintln(&b, SealedShareHeader)
	fmt.Fprintf(&b, "# %s's shares of a keyquorum group's epoch keys, sealed with HPKE\n", s.Name)
	fmt.Fprintln(&b, "# (RFC 9180; X25519, HKDF-SHA256, ChaCha20-Poly1305) to that trustee's identity")
	fmt.Fprintf(&b, "# key. Only the node set up as %s can open it. On that machine, run:\n", s.Name)
	fmt.Fprintf(&b, "#   keyquorum trustee import-share --dir DIR --group group.json %s.sealed-share\n", s.Name)
	b.Write(s.fields())
	body := base64.StdEncoding.EncodeToString(s.Ciphertext)
	for len(body) > sealedShareLineWidth {
		b.WriteString(body[:sealedShareLineWidth] + "\n")
		body = body[sealedShareLineWidth:]
	}
	b.WriteString(body + "\n")
	return b.Bytes(), nil
}

// ParseSealedShare decodes a sealed share file strictly:
// marshal(parse(b)) == b. It does not open it; see [OpenSealedShare].
func ParseSealedShare(b []byte) (*SealedShare, error) {
	bad := func(line int, format string, args ...any) (*SealedShare, error) {
		return nil, fmt.Errorf("%w: line %d: %s", ErrBadSealedShare, line, fmt.Sprintf(format, args...))
	}
	if len(b) > maxSealedShareSize {
		return nil, fmt.Errorf("%w: %d bytes, a sealed share is at most %d", ErrBadSealedShare, len(b), maxSealedShareSize)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxSealedShareSize)
	line := 0
	next := func() (string, bool) {
		for sc.Scan() {
			line++
			if line > 1 && strings.HasPrefix(sc.Text(), "#") {
				continue
			}
			return sc.Text(), true
		}
		return "", false
	}
	if h, _ := next(); h != SealedShareHeader {
		if h == ShareFileHeader {
			return bad(1, "this is a plaintext share file, not a sealed one; it needs no import (and should not have been sent)")
		}
		return bad(1, "first line must be %q; is this a keyquorum sealed share?", SealedShareHeader)
	}
	field := func(key string) (string, error) {
		t, ok := next()
		v, found := strings.CutPrefix(t, key+": ")
		if !ok || !found {
			_, err := bad(line, "expected %q", key+": ...")
			return "", err
		}
		return v, nil
	}
	s := &SealedShare{}
	v, err := field("trustee")
	if err != nil {
		return nil, err
	}
	if s.Index, err = strconv.Atoi(v); err != nil || s.Index < 1 || strconv.Itoa(s.Index) != v {
		return bad(line, "trustee must be a positive integer")
	}
	if s.Name, err = field("name"); err != nil {
		return nil, err
	}
	if s.IdentityKey, err = field("identity-key"); err != nil {
		return nil, err
	}
	if v, err = field("group-sha256"); err != nil {
		return nil, err
	}
	if h, err := hex.DecodeString(v); err != nil || len(h) != sha256.Size {
		return bad(line, "group-sha256 must be 64 hex digits")
	} else {
		copy(s.GroupSHA256[:], h)
	}
	var body strings.Builder
	for {
		t, ok := next()
		if !ok {
			break
		}
		body.WriteString(t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSealedShare, err)
	}
	if s.Ciphertext, err = base64.StdEncoding.Strict().DecodeString(body.String()); err != nil || len(s.Ciphertext) == 0 {
		return nil, fmt.Errorf("%w: the sealed part is not base64 (truncated or damaged?)", ErrBadSealedShare)
	}
	again, err := s.Marshal()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not in canonical form (edited, re-wrapped or truncated?); ask the dealer for the file again", ErrBadSealedShare)
	}
	return s, nil
}

func hpkeSuite() (hpke.KDF, hpke.AEAD) { return hpke.HKDFSHA256(), hpke.ChaCha20Poly1305() }

func dealtShareInfo(groupSHA256 [sha256.Size]byte) []byte {
	return append([]byte(labelDealtShare), groupSHA256[:]...)
}

// SealShare encrypts sf to the identity key of its trustee in the group
// file groupJSON (the exact bytes the dealer writes). It checks that sf
// names a trustee of that group, by index and name, with an identity key.
// It does not check the shares against the commitments; the trustee does
// that when it opens them ([OpenSealedShare]).
func SealShare(sf *ShareFile, groupJSON []byte) (*SealedShare, error) {
	g, err := escrow.ParseGroupFile(groupJSON)
	if err != nil {
		return nil, err
	}
	if sf.Index < 1 || sf.Index > len(g.Trustees) || g.Trustees[sf.Index-1].Name != sf.Name {
		return nil, fmt.Errorf("trustee: share file of %s (index %d) is not for a trustee of this group", sf.Name, sf.Index)
	}
	m := g.Trustees[sf.Index-1]
	pub, err := ParseIdentityKey(m.IdentityKey)
	if err != nil {
		return nil, fmt.Errorf("trustee: %s in the group file: %v", m.Name, err)
	}
	pk, err := hpke.NewDHKEMPublicKey(pub)
	if err != nil {
		return nil, err
	}
	plain, err := sf.Marshal()
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	s := &SealedShare{Index: m.Index, Name: m.Name, IdentityKey: m.IdentityKey, GroupSHA256: sha256.Sum256(groupJSON)}
	kdf, aead := hpkeSuite()
	enc, sender, err := hpke.NewSender(pk, kdf, aead, dealtShareInfo(s.GroupSHA256))
	if err != nil {
		return nil, fmt.Errorf("trustee: sealing %s's share: %w", m.Name, err)
	}
	ct, err := sender.Seal(s.fields(), plain)
	if err != nil {
		return nil, fmt.Errorf("trustee: sealing %s's share: %w", m.Name, err)
	}
	s.Ciphertext = append(enc, ct...)
	return s, nil
}

// OpenSealedShare opens a sealed share file with the node's identity and
// checks it before anything is stored:
//
//   - it was dealt with exactly this group file (groupJSON's SHA-256);
//   - it is sealed to this node's identity key and name, and the group
//     file lists this node at that index with the same identity key, log
//     key, TLS pin and address, so that clients will trust this node;
//   - the share file inside is for that index and name, with the group's
//     threshold and a share for every epoch of the group;
//   - every epoch share x_i matches the group's commitment:
//     x_i·G = the public share of this index ([GroupFile.EscrowGroup]).
//
// It returns the epoch shares, ready for [Vault.PutEpochShares].
func OpenSealedShare(sealed, groupJSON []byte, id *Identity) ([]escrow.EpochShare, error) {
	s, err := ParseSealedShare(sealed)
	if err != nil {
		return nil, err
	}
	g, err := escrow.ParseGroupFile(groupJSON)
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(groupJSON); sum != s.GroupSHA256 {
		return nil, fmt.Errorf("%w (group file SHA-256 %x, the share names %x); use the group.json the dealer wrote with it", ErrWrongGroupFile, sum[:6], s.GroupSHA256[:6])
	}
	mine := id.Descriptor()
	if s.Name != id.Name || s.IdentityKey != mine.IdentityKey {
		return nil, fmt.Errorf("%w: it is %s's share (sealed to identity key %s), this node is %s (identity key %s); give each trustee its own file", ErrNotMyShare, s.Name, shortKey(s.IdentityKey), id.Name, shortKey(mine.IdentityKey))
	}
	if s.Index > len(g.Trustees) {
		return nil, fmt.Errorf("%w: index %d, the group has %d trustees", ErrNotMyShare, s.Index, len(g.Trustees))
	}
	m := g.Trustees[s.Index-1]
	want := mine.Member(s.Index)
	for _, f := range []struct{ what, got, want string }{
		{"name", m.Name, want.Name},
		{"identity key", m.IdentityKey, want.IdentityKey},
		{"log key", m.LogKey, want.LogKey},
		{"TLS pin", m.TLSPin, want.TLSPin},
		{"address", m.Address, want.Address},
	} {
		if f.got != f.want {
			return nil, fmt.Errorf("%w: the group file lists trustee %d with %s %q, this node's is %q; the dealer used another descriptor", ErrNotMyShare, s.Index, f.what, f.got, f.want)
		}
	}
	sk, err := hpke.NewDHKEMPrivateKey(id.Key)
	if err != nil {
		return nil, err
	}
	if len(s.Ciphertext) < x25519EncSize {
		return nil, fmt.Errorf("%w: sealed part too short", ErrBadSealedShare)
	}
	kdf, aead := hpkeSuite()
	r, err := hpke.NewRecipient(s.Ciphertext[:x25519EncSize], sk, kdf, aead, dealtShareInfo(s.GroupSHA256))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSealedShare, err)
	}
	plain, err := r.Open(s.fields(), s.Ciphertext[x25519EncSize:])
	if err != nil {
		return nil, fmt.Errorf("%w: it does not open with this node's identity key (damaged or altered); ask the dealer for it again", ErrBadSealedShare)
	}
	defer clear(plain)
	sf, err := ParseShareFile(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: the sealed share file: %w", ErrBadSealedShare, err)
	}
	if sf.Index != s.Index || sf.Name != s.Name {
		return nil, fmt.Errorf("%w: the sealed share file is %s's (index %d), the envelope says %s (index %d)", ErrNotMyShare, sf.Name, sf.Index, s.Name, s.Index)
	}
	if sf.Threshold != g.Threshold {
		return nil, fmt.Errorf("%w: share file says threshold %d, the group file %d", ErrWrongGroupFile, sf.Threshold, g.Threshold)
	}
	var out []escrow.EpochShare
	for _, e := range g.Epochs {
		x, ok := sf.Shares[e.Epoch]
		if !ok {
			return nil, fmt.Errorf("%w: no share for epoch %d of the group", ErrBadSealedShare, e.Epoch)
		}
		eg, err := g.EscrowGroup(e.Epoch)
		if err != nil {
			return nil, err
		}
		if !group.Point().Mul(x, nil).Equal(eg.PublicShares[s.Index]) {
			return nil, fmt.Errorf("%w: epoch %d: %s's share times G is not its public share from the commitment; the dealer or the file is wrong, do not join this group", ErrShareCommitment, e.Epoch, s.Name)
		}
		out = append(out, escrow.EpochShare{Epoch: e.Epoch, Index: s.Index, Share: x, GroupKey: eg.Key})
	}
	if len(sf.Shares) != len(g.Epochs) {
		return nil, fmt.Errorf("%w: the share file holds %d epochs, the group file %d", ErrWrongGroupFile, len(sf.Shares), len(g.Epochs))
	}
	return out, nil
}

func shortKey(k string) string {
	if len(k) > 12 {
		return k[:12] + "..."
	}
	return k
}

// DealSealed is dealer mode for trustees that ran `trustee init`: it puts
// the descriptors in the roster in the order given (indices 1..n), makes
// the group with [Deal], and seals each trustee's share file to its
// identity key. It returns the group file's bytes and one sealed share per
// trustee, in roster order. The dealer still saw every group secret; see
// [Deal].
func DealSealed(descriptors []Descriptor, t int, epochs []escrow.GroupEpoch, rand io.Reader) ([]byte, []*SealedShare, error) {
	if len(descriptors) == 0 {
		return nil, nil, fmt.Errorf("%w: no descriptors", ErrBadDescriptor)
	}
	if err := checkDescriptors(descriptors); err != nil {
		return nil, nil, err
	}
	names := make([]string, len(descriptors))
	for i, d := range descriptors {
		names[i] = d.Name
	}
	g, dealt, err := escrow.Deal(names, t, epochs, rand)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		for _, d := range dealt {
			d.Share.Value.Zero()
		}
	}()
	for i, d := range descriptors {
		g.Trustees[i] = d.Member(i + 1)
	}
	groupJSON, err := g.Marshal()
	if err != nil {
		return nil, nil, err
	}
	var out []*SealedShare
	for _, m := range g.Trustees {
		sf := &ShareFile{Index: m.Index, Name: m.Name, Threshold: t, Shares: map[uint32]kyber.Scalar{}}
		for _, d := range dealt {
			if d.Trustee.Index == m.Index {
				sf.Shares[d.Epoch] = d.Share.Value
			}
		}
		s, err := SealShare(sf, groupJSON)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, s)
	}
	return groupJSON, out, nil
}

package trustee

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
)

// PinUpdateVersion is the first line of a pin update.
const PinUpdateVersion = "keyquorum tls pin update v1"

// ErrBadPinUpdate wraps every refusal of a pin update.
var ErrBadPinUpdate = errors.New("trustee: bad TLS pin update")

// PinUpdate is a trustee's signed statement that its TLS pin changed. Its
// text form ([PinUpdate.Text]) is a signed note (golang.org/x/mod/sumdb/note)
// signed by the trustee's log key:
//
//	keyquorum tls pin update v1
//	trustee trustee-1
//	address 127.0.0.1:7001
//	old sha256/<base64>
//	new sha256/<base64>
//	time 2026-12-05T11:00:00Z
type PinUpdate struct {
	Trustee string
	Address string
	OldPin  string
	NewPin  string
	Time    time.Time // when the key was rotated, UTC whole seconds
}

// Text returns the canonical text of u.
func (u *PinUpdate) Text() string {
	return fmt.Sprintf("%s\ntrustee %s\naddress %s\nold %s\nnew %s\ntime %s\n",
		PinUpdateVersion, u.Trustee, u.Address, u.OldPin, u.NewPin, u.Time.UTC().Format(time.RFC3339))
}

func (u *PinUpdate) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadPinUpdate}, args...)...)
	}
	if !escrow.ValidTrusteeName(u.Trustee) {
		return bad("trustee name %q", u.Trustee)
	}
	if _, err := checkAddress(u.Address); err != nil {
		return bad("%v", strings.TrimPrefix(err.Error(), "trustee: "))
	}
	for _, p := range []string{u.OldPin, u.NewPin} {
		if err := checkTLSPin(p); err != nil {
			return bad("%v", err)
		}
	}
	if u.OldPin == u.NewPin {
		return bad("the old and new pins are the same")
	}
	if u.Time.Location() != time.UTC || !u.Time.Equal(u.Time.Truncate(time.Second)) {
		return bad("time must be UTC whole seconds")
	}
	return nil
}

// ParsePinUpdateText parses the text of a pin update, accepting only its
// canonical form.
func ParsePinUpdateText(text string) (*PinUpdate, error) {
	if len(text) > maxDescriptorSize {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrBadPinUpdate, maxDescriptorSize)
	}
	lines := strings.Split(text, "\n")
	keys := []string{"", "trustee", "address", "old", "new", "time"}
	if len(lines) != len(keys)+1 || lines[len(keys)] != "" {
		return nil, fmt.Errorf("%w: want %d lines, each ending in a newline", ErrBadPinUpdate, len(keys))
	}
	if lines[0] != PinUpdateVersion {
		return nil, fmt.Errorf("%w: first line %q, this build reads %q", ErrBadPinUpdate, lines[0], PinUpdateVersion)
	}
	v := make([]string, len(keys))
	for i := 1; i < len(keys); i++ {
		val, ok := strings.CutPrefix(lines[i], keys[i]+" ")
		if !ok {
			return nil, fmt.Errorf("%w: line %d: want %q", ErrBadPinUpdate, i+1, keys[i])
		}
		v[i] = val
	}
	t, err := time.Parse(time.RFC3339, v[5])
	if err != nil {
		return nil, fmt.Errorf("%w: time: %v", ErrBadPinUpdate, err)
	}
	u := &PinUpdate{Trustee: v[1], Address: v[2], OldPin: v[3], NewPin: v[4], Time: t.UTC()}
	if err := u.validate(); err != nil {
		return nil, err
	}
	if u.Text() != text {
		return nil, fmt.Errorf("%w: not in canonical form", ErrBadPinUpdate)
	}
	return u, nil
}

// SignPinUpdate signs u with the trustee's log key.
func SignPinUpdate(u *PinUpdate, signer note.Signer) ([]byte, error) {
	if err := u.validate(); err != nil {
		return nil, err
	}
	if signer.Name() != escrow.LogKeyName(u.Trustee) {
		return nil, fmt.Errorf("%w: signer %s is not %s's log key", ErrBadPinUpdate, signer.Name(), u.Trustee)
	}
	return note.Sign(&note.Note{Text: u.Text()}, signer)
}

// OpenPinUpdate checks a signed pin update against the current signed
// group file g: the trustee it names is in g's roster at the same
// address, g pins the update's old pin for it, and the update is signed
// by that trustee's log key as g lists it, and by no other key.
func OpenPinUpdate(signed []byte, g *escrow.GroupFile) (*PinUpdate, error) {
	if len(signed) > 2*maxDescriptorSize {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrBadPinUpdate, 2*maxDescriptorSize)
	}
	i := strings.Index(string(signed), "\n\n")
	if i < 0 {
		return nil, fmt.Errorf("%w: not a signed note (no signature)", ErrBadPinUpdate)
	}
	u, err := ParsePinUpdateText(string(signed[:i+1]))
	if err != nil {
		return nil, err
	}
	m := g.Member(u.Trustee)
	switch {
	case m == nil:
		return nil, fmt.Errorf("%w: the group file lists no trustee named %s", ErrBadPinUpdate, u.Trustee)
	case m.TLSPin == u.NewPin:
		return nil, fmt.Errorf("%w: the group file already pins %s's new key; nothing to apply", ErrBadPinUpdate, u.Trustee)
	case m.TLSPin != u.OldPin:
		return nil, fmt.Errorf("%w: it replaces pin %s, the group file pins %s for %s; apply it to the group file it was made for", ErrBadPinUpdate, u.OldPin, m.TLSPin, u.Trustee)
	case m.Address != u.Address:
		return nil, fmt.Errorf("%w: it is for %s at %s, the group file lists it at %s", ErrBadPinUpdate, u.Trustee, u.Address, m.Address)
	}
	v, err := note.NewVerifier(m.LogKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %s's log key in the group file: %v", ErrBadPinUpdate, u.Trustee, err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("%w: not signed by %s's log key in the group file (%v); ask the trustee for the update its node wrote", ErrBadPinUpdate, u.Trustee, err)
	}
	if len(n.Sigs) != 1 || len(n.UnverifiedSigs) != 0 {
		return nil, fmt.Errorf("%w: signed by other keys than %s's log key", ErrBadPinUpdate, u.Trustee)
	}
	return u, nil
}

// ApplyPinUpdate returns the unsigned group file that follows g: g with
// the update's new pin for its trustee. The trustees sign it as any group
// file (escrow.SignGroupFile); check the update with [OpenPinUpdate]
// first.
func ApplyPinUpdate(g *escrow.GroupFile, u *PinUpdate) ([]byte, error) {
	next := *g
	next.Trustees = append([]escrow.GroupMember(nil), g.Trustees...)
	m := next.Member(u.Trustee)
	if m == nil || m.TLSPin != u.OldPin {
		return nil, fmt.Errorf("%w: it does not apply to this group file", ErrBadPinUpdate)
	}
	m.TLSPin = u.NewPin
	return next.Marshal()
}

// RotateTLS replaces the node's TLS key and certificate in the store with
// new ones for the same host, in one transaction, and returns the
// identity with the new certificate and the unsigned [PinUpdate] saying
// so (the caller signs it with the identity's LogSigner). The node serves
// the new certificate from its next start.
func (v *Vault) RotateTLS(now time.Time, rand io.Reader) (*Identity, *PinUpdate, error) {
	if err := v.live(); err != nil {
		return nil, nil, err
	}
	var id *Identity
	var u *PinUpdate
	err := v.store.update("rotating the TLS key", func(tx *bolt.Tx) error {
		b, err := v.get(tx, bucketSecrets, keyIdentity)
		if err != nil {
			return err
		}
		if b == nil {
			return fmt.Errorf("%w: %s", ErrNoIdentity, v.store.path)
		}
		defer clear(b)
		var rec identityRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return v.store.corrupt("identity record: %v", err)
		}
		defer clear(rec.X25519)
		old, err := parseIdentityRecord(b)
		if err != nil {
			return v.store.corrupt("%v", err)
		}
		host, _ := checkAddress(old.Address) // checked by parseIdentityRecord
		cert, err := generateTLSCertificate(old.Name, host, now, rand)
		if err != nil {
			return err
		}
		tlsKey, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
		if err != nil {
			return fmt.Errorf("trustee: TLS key: %w", err)
		}
		defer clear(tlsKey)
		clear(rec.TLSKey)
		rec.TLSKey, rec.TLSCert = tlsKey, cert.Certificate[0]
		nb, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		defer clear(nb)
		if id, err = parseIdentityRecord(nb); err != nil {
			return err
		}
		u = &PinUpdate{Trustee: old.Name, Address: old.Address, OldPin: TLSPin(old.TLS.Leaf), NewPin: TLSPin(id.TLS.Leaf), Time: now.UTC().Truncate(time.Second)}
		return v.put(tx, bucketSecrets, keyIdentity, nb)
	})
	if err != nil {
		return nil, nil, err
	}
	return id, u, nil
}

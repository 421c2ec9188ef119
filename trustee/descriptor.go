package trustee

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/keyquorum/keyquorum/escrow"
	"golang.org/x/mod/sumdb/note"
)

// DescriptorVersion is the version field of a trustee descriptor.
const DescriptorVersion = "keyquorum trustee descriptor v1"

// ErrBadDescriptor wraps every descriptor validation failure.
var ErrBadDescriptor = errors.New("trustee: bad trustee descriptor")

// Descriptor is a trustee node's public description: what `keyquorum
// trustee init` prints and writes to DIR/descriptor.json, and what the
// dealer needs to put the node in a group's roster and seal its share to
// it. It holds no secret.
//
// # Encoding
//
// JSON, indented by two spaces, fields in this order, with a final newline:
//
//	{
//	  "version": "keyquorum trustee descriptor v1",
//	  "name": "trustee-1",
//	  "address": "127.0.0.1:7001",
//	  "identity_key": "<base64 X25519 public key>",
//	  "tls_pin": "sha256/<base64 SHA-256 of the certificate's public key>",
//	  "log_key": "trustee-1.keyquorum+<hash>+<key>"
//	}
//
// [ParseDescriptor] accepts only that encoding of a valid descriptor.
type Descriptor struct {
	Name        string
	Address     string // host:port of the node's API
	IdentityKey string // standard base64 of the X25519 public key
	TLSPin      string // see [TLSPin]; empty only for a loopback host (plain HTTP)
	LogKey      string // note verifier key named [LogKeyName](Name)
}

type descriptorJSON struct {
	Version     string `json:"version"`
	Name        string `json:"name"`
	Address     string `json:"address"`
	IdentityKey string `json:"identity_key"`
	TLSPin      string `json:"tls_pin"`
	LogKey      string `json:"log_key"`
}

// maxDescriptorSize bounds what ParseDescriptor reads.
const maxDescriptorSize = 4096

// Validate checks every field: a trustee name ([ValidTrusteeName]), a
// host:port address, an X25519 public key of full order in canonical
// encoding, a well-formed pin (or none on a loopback host), and a note
// verifier key named after the trustee.
func (d Descriptor) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadDescriptor}, args...)...)
	}
	if !escrow.ValidTrusteeName(d.Name) {
		return bad("name %q: use 1-64 letters, digits or . _ @ -", d.Name)
	}
	host, err := checkAddress(d.Address)
	if err != nil {
		return bad("%s: %v", d.Name, strings.TrimPrefix(err.Error(), "trustee: "))
	}
	if _, err := ParseIdentityKey(d.IdentityKey); err != nil {
		return bad("%s: %v", d.Name, err)
	}
	switch {
	case d.TLSPin == "" && !IsLoopbackHost(host):
		return bad("%s: no TLS pin for non-loopback address %s; plain HTTP is for loopback only", d.Name, d.Address)
	case d.TLSPin != "":
		if err := checkTLSPin(d.TLSPin); err != nil {
			return bad("%s: %v", d.Name, err)
		}
	}
	v, err := note.NewVerifier(d.LogKey)
	if err != nil {
		return bad("%s: log key: %v", d.Name, err)
	}
	if v.Name() != escrow.LogKeyName(d.Name) {
		return bad("%s: log key is named %q, want %q", d.Name, v.Name(), escrow.LogKeyName(d.Name))
	}
	return nil
}

// ParseIdentityKey decodes a trustee identity key (standard base64 of a
// 32-byte X25519 public key), refusing non-canonical encodings and points of
// low order, whose shared secrets would be predictable.
func ParseIdentityKey(s string) (*ecdh.PublicKey, error) {
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || base64.StdEncoding.EncodeToString(raw) != s {
		return nil, errors.New("identity key is not canonical base64")
	}
	if len(raw) != 32 {
		return nil, fmt.Errorf("identity key has %d bytes, want 32", len(raw))
	}
	// Canonical u-coordinates are below p = 2^255-19: top bit clear, and
	// not in [p, 2^255).
	if raw[31]&0x80 != 0 || (raw[31] == 0x7f && raw[0] >= 0xed && bytes.Count(raw[1:31], []byte{0xff}) == 30) {
		return nil, errors.New("identity key is not a canonical X25519 encoding")
	}
	pub, err := ecdh.X25519().NewPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("identity key: %v", err)
	}
	// A low-order point gives the all-zero shared secret with every
	// private key, which crypto/ecdh reports as an error.
	probe, err := ecdh.X25519().NewPrivateKey(lowOrderProbe[:])
	if err != nil {
		return nil, err
	}
	if _, err := probe.ECDH(pub); err != nil {
		return nil, errors.New("identity key is a point of low order")
	}
	return pub, nil
}

// lowOrderProbe is any fixed X25519 scalar: clamping makes it a multiple
// of the cofactor, so it maps every low-order point to zero.
var lowOrderProbe = sha256.Sum256([]byte("keyquorum/v1/identity-key-probe"))

func checkTLSPin(pin string) error {
	rest, ok := strings.CutPrefix(pin, tlsPinSHA256Prefix)
	if !ok {
		return fmt.Errorf("TLS pin %q does not start with %q", pin, tlsPinSHA256Prefix)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(rest)
	if err != nil || len(raw) != sha256.Size || base64.StdEncoding.EncodeToString(raw) != rest {
		return fmt.Errorf("TLS pin %q is not %s followed by the base64 of a SHA-256 hash", pin, tlsPinSHA256Prefix)
	}
	return nil
}

// Marshal encodes d (see [Descriptor]).
func (d Descriptor) Marshal() ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	w := descriptorJSON{Version: DescriptorVersion, Name: d.Name, Address: d.Address, IdentityKey: d.IdentityKey, TLSPin: d.TLSPin, LogKey: d.LogKey}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ParseDescriptor decodes a descriptor written by [Descriptor.Marshal],
// refusing unknown or missing fields, other versions, trailing data and
// any encoding but the canonical one.
func ParseDescriptor(b []byte) (Descriptor, error) {
	if len(b) > maxDescriptorSize {
		return Descriptor{}, fmt.Errorf("%w: %d bytes, a descriptor is at most %d", ErrBadDescriptor, len(b), maxDescriptorSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w descriptorJSON
	if err := dec.Decode(&w); err != nil {
		return Descriptor{}, fmt.Errorf("%w: %v", ErrBadDescriptor, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Descriptor{}, fmt.Errorf("%w: trailing data after the JSON object", ErrBadDescriptor)
	}
	if w.Version != DescriptorVersion {
		return Descriptor{}, fmt.Errorf("%w: version %q, this build reads %q", ErrBadDescriptor, w.Version, DescriptorVersion)
	}
	d := Descriptor{Name: w.Name, Address: w.Address, IdentityKey: w.IdentityKey, TLSPin: w.TLSPin, LogKey: w.LogKey}
	again, err := d.Marshal()
	if err != nil {
		return Descriptor{}, err
	}
	if !bytes.Equal(again, b) {
		return Descriptor{}, fmt.Errorf("%w: not in canonical form (edited by hand? use the descriptor.json trustee init wrote)", ErrBadDescriptor)
	}
	return d, nil
}

// Member returns d as the roster entry with the given 1-based index.
func (d Descriptor) Member(index int) escrow.GroupMember {
	return escrow.GroupMember{Index: index, Name: d.Name, Address: d.Address, IdentityKey: d.IdentityKey, TLSPin: d.TLSPin, LogKey: d.LogKey}
}

// checkDescriptors refuses a set of descriptors that could not form one
// roster: two trustees with the same name, address, identity key, TLS pin
// or log key.
func checkDescriptors(ds []Descriptor) error {
	seen := map[string]string{}
	for _, d := range ds {
		if err := d.Validate(); err != nil {
			return err
		}
		for _, f := range []struct{ what, v string }{
			{"name", d.Name}, {"address", d.Address}, {"identity key", d.IdentityKey}, {"TLS pin", d.TLSPin}, {"log key", d.LogKey},
		} {
			if f.v == "" {
				continue
			}
			k := f.what + "\x00" + canonicalAddressKey(f.what, f.v)
			if other, dup := seen[k]; dup {
				return fmt.Errorf("%w: %s and %s have the same %s; each trustee needs its own (did one node's descriptor get copied?)", ErrBadDescriptor, other, d.Name, f.what)
			}
			seen[k] = d.Name
		}
	}
	return nil
}

// canonicalAddressKey lowercases host names so that two spellings of one
// address count as the same.
func canonicalAddressKey(what, v string) string {
	if what != "address" {
		return v
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return v
	}
	return net.JoinHostPort(strings.ToLower(host), port)
}

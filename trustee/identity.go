package trustee

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
)

// IdentityVersion is the version field of the identity record sealed in a
// node store.
const IdentityVersion = "keyquorum node identity v1"

// TLSValidity is how long a node's self-signed certificate is valid.
// Clients trust it by its pin in the group file, not by a chain, so a long
// life costs nothing; a node that wants a new key rotates it
// ([Vault.RotateTLS]) and publishes the new pin in a signed [PinUpdate].
const TLSValidity = 10 * 365 * 24 * time.Hour

// ErrNoIdentity: the store's vault holds no node identity yet.
var ErrNoIdentity = errors.New("trustee: node store holds no identity")

var keyIdentity = []byte("identity")

// Identity is a trustee node's own keys and public description. Everything
// in it except Name, Address and the public halves is secret, and lives
// sealed in the node store's vault.
type Identity struct {
	// Name is the trustee's name in the group's roster.
	Name string
	// Address is the host:port its API listens on; the TLS certificate
	// names the host.
	Address string
	// Key is the X25519 identity key shares are sealed to (HPKE, RFC 9180).
	Key *ecdh.PrivateKey
	// LogSigner signs the heads of the node's audit log; LogKey is its
	// verifier key (name+hash+key), named [LogKeyName](Name).
	LogSigner note.Signer
	LogKey    string
	// TLS is the node's certificate with its ECDSA P-256 key; Leaf is set.
	TLS tls.Certificate

	logSignerKey string // PRIVATE+KEY+...: what LogSigner was made from
}

// GenerateIdentity makes a new node identity: an X25519 identity key, an
// Ed25519 note key for the audit log, and an ECDSA P-256 key with a
// self-signed certificate valid from now (less an hour, for clock skew)
// for [TLSValidity], naming the host of address as its only subject
// alternative name. Go's crypto may draw its own randomness for the
// ECDSA and X25519 keys whatever rand says.
func GenerateIdentity(name, address string, now time.Time, rand io.Reader) (*Identity, error) {
	if !escrow.ValidTrusteeName(name) {
		return nil, fmt.Errorf("trustee: name %q: use 1-%d letters, digits or . _ @ -", name, escrow.MaxNameLen)
	}
	host, err := checkAddress(address)
	if err != nil {
		return nil, err
	}
	kem, err := ecdh.X25519().GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("trustee: identity key: %w", err)
	}
	skey, vkey, err := note.GenerateKey(rand, escrow.LogKeyName(name))
	if err != nil {
		return nil, fmt.Errorf("trustee: log key: %w", err)
	}
	cert, err := generateTLSCertificate(name, host, now, rand)
	if err != nil {
		return nil, err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("trustee: log key: %w", err)
	}
	return &Identity{
		Name: name, Address: address, Key: kem,
		LogSigner: signer, LogKey: vkey, logSignerKey: skey,
		TLS: cert,
	}, nil
}

// generateTLSCertificate makes an ECDSA P-256 key and a self-signed
// certificate for host, valid from now (less an hour, for clock skew)
// for [TLSValidity].
func generateTLSCertificate(name, host string, now time.Time, rand io.Reader) (tls.Certificate, error) {
	tlsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("trustee: TLS key: %w", err)
	}
	serial, err := randSerial(rand)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour).UTC().Truncate(time.Second),
		NotAfter:              now.Add(TLSValidity).UTC().Truncate(time.Second),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand, tmpl, tmpl, &tlsKey.PublicKey, tlsKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("trustee: TLS certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("trustee: TLS certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: tlsKey, Leaf: leaf}, nil
}

func randSerial(rand io.Reader) (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(rand, b); err != nil {
		return nil, fmt.Errorf("trustee: certificate serial: %w", err)
	}
	b[0] &= 0x7f
	b[0] |= 0x40 // positive and 127 bits long
	return new(big.Int).SetBytes(b), nil
}

// TLSPin returns the pin of a certificate as group files carry it:
// "sha256/" followed by the standard base64 of the SHA-256 of the
// certificate's SubjectPublicKeyInfo (DER), as in HTTP public key pinning
// (RFC 7469, section 2.4). It pins the key, not the certificate.
func TLSPin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return tlsPinSHA256Prefix + base64.StdEncoding.EncodeToString(sum[:])
}

const tlsPinSHA256Prefix = "sha256/"

// Descriptor returns the identity's public descriptor, for the dealer.
func (id *Identity) Descriptor() Descriptor {
	return Descriptor{
		Name:        id.Name,
		Address:     id.Address,
		IdentityKey: base64.StdEncoding.EncodeToString(id.Key.PublicKey().Bytes()),
		TLSPin:      TLSPin(id.TLS.Leaf),
		LogKey:      id.LogKey,
	}
}

// identityRecord is the sealed form of an Identity. []byte fields are
// base64 in the JSON.
type identityRecord struct {
	Version   string `json:"version"`
	Name      string `json:"name"`
	Address   string `json:"address"`
	X25519    []byte `json:"x25519"`
	LogSigner string `json:"log_signer"`
	LogKey    string `json:"log_key"`
	TLSKey    []byte `json:"tls_key"`  // PKCS #8
	TLSCert   []byte `json:"tls_cert"` // DER
}

// SaveIdentity seals id into the store. A store holds one identity; it
// refuses to replace it.
func (v *Vault) SaveIdentity(id *Identity) error {
	if err := v.live(); err != nil {
		return err
	}
	tlsKey, err := x509.MarshalPKCS8PrivateKey(id.TLS.PrivateKey)
	if err != nil {
		return fmt.Errorf("trustee: TLS key: %w", err)
	}
	if len(id.TLS.Certificate) != 1 {
		return errors.New("trustee: the identity needs exactly one TLS certificate")
	}
	rec := identityRecord{
		Version: IdentityVersion, Name: id.Name, Address: id.Address,
		X25519: id.Key.Bytes(), LogSigner: id.logSignerKey, LogKey: id.LogKey,
		TLSKey: tlsKey, TLSCert: id.TLS.Certificate[0],
	}
	b, err := json.Marshal(rec)
	clear(rec.X25519)
	clear(tlsKey)
	if err != nil {
		return err
	}
	defer clear(b)
	// Check it loads before storing it.
	if _, err := parseIdentityRecord(b); err != nil {
		return err
	}
	return v.store.update("saving the identity", func(tx *bolt.Tx) error {
		if tx.Bucket(bucketSecrets).Get(keyIdentity) != nil {
			return fmt.Errorf("trustee: %s already holds a node identity", v.store.path)
		}
		return v.put(tx, bucketSecrets, keyIdentity, b)
	})
}

// LoadIdentity opens the node's identity from the store.
func (v *Vault) LoadIdentity() (*Identity, error) {
	if err := v.live(); err != nil {
		return nil, err
	}
	var b []byte
	err := v.store.view("reading the identity", func(tx *bolt.Tx) error {
		var err error
		b, err = v.get(tx, bucketSecrets, keyIdentity)
		return err
	})
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("%w: %s (its set-up did not finish); remove the directory and run keyquorum trustee init again", ErrNoIdentity, v.store.path)
	}
	defer clear(b)
	id, err := parseIdentityRecord(b)
	if err != nil {
		return nil, v.store.corrupt("%v", err)
	}
	return id, nil
}

func parseIdentityRecord(b []byte) (*Identity, error) {
	var rec identityRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("identity record: %v", err)
	}
	defer clear(rec.X25519)
	defer clear(rec.TLSKey)
	bad := func(format string, args ...any) (*Identity, error) {
		return nil, fmt.Errorf("identity record: "+format, args...)
	}
	if rec.Version != IdentityVersion {
		return bad("version %q, this build reads %q", rec.Version, IdentityVersion)
	}
	if !escrow.ValidTrusteeName(rec.Name) {
		return bad("name %q", rec.Name)
	}
	if _, err := checkAddress(rec.Address); err != nil {
		return bad("%v", err)
	}
	kem, err := ecdh.X25519().NewPrivateKey(rec.X25519)
	if err != nil {
		return bad("identity key: %v", err)
	}
	signer, err := note.NewSigner(rec.LogSigner)
	if err != nil {
		return bad("log signer key: %v", err)
	}
	verifier, err := note.NewVerifier(rec.LogKey)
	if err != nil {
		return bad("log verifier key: %v", err)
	}
	if signer.Name() != escrow.LogKeyName(rec.Name) || verifier.Name() != signer.Name() || verifier.KeyHash() != signer.KeyHash() {
		return bad("log keys do not belong together or to %s", rec.Name)
	}
	key, err := x509.ParsePKCS8PrivateKey(rec.TLSKey)
	if err != nil {
		return bad("TLS key: %v", err)
	}
	ecKey, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return bad("TLS key is a %T, want ECDSA", key)
	}
	leaf, err := x509.ParseCertificate(rec.TLSCert)
	if err != nil {
		return bad("TLS certificate: %v", err)
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&ecKey.PublicKey) {
		return bad("TLS certificate is not for the TLS key")
	}
	return &Identity{
		Name: rec.Name, Address: rec.Address, Key: kem,
		LogSigner: signer, LogKey: rec.LogKey, logSignerKey: rec.LogSigner,
		TLS: tls.Certificate{Certificate: [][]byte{rec.TLSCert}, PrivateKey: ecKey, Leaf: leaf},
	}, nil
}

// checkAddress checks a host:port API address and returns its host.
func checkAddress(address string) (string, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return "", fmt.Errorf("trustee: address %q: %v; write HOST:PORT", address, err)
	}
	if host == "" {
		return "", fmt.Errorf("trustee: address %q has no host; give the name or IP clients will connect to", address)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || strconv.Itoa(p) != port {
		return "", fmt.Errorf("trustee: address %q: port must be a number from 1 to 65535", address)
	}
	if net.ParseIP(host) == nil && !validDNSName(host) {
		return "", fmt.Errorf("trustee: address %q: host must be an IP address or a DNS name", address)
	}
	return host, nil
}

func validDNSName(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// IsLoopbackHost reports whether host is a loopback IP or "localhost":
// the only hosts a trustee may be reached at over plain HTTP.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

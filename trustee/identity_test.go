package trustee

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

var identityTime = time.Date(2026, 4, 1, 9, 30, 0, 0, time.UTC)

func testIdentity(t testing.TB, name, addr string) *Identity {
	t.Helper()
	id, err := GenerateIdentity(name, addr, identityTime, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestGenerateIdentity(t *testing.T) {
	for _, tt := range []struct {
		addr string
		ip   net.IP
		dns  string
	}{
		{"127.0.0.1:7001", net.ParseIP("127.0.0.1"), ""},
		{"[::1]:7001", net.ParseIP("::1"), ""},
		{"trustee.example.org:443", nil, "trustee.example.org"},
		{"localhost:9000", nil, "localhost"},
	} {
		id := testIdentity(t, "trustee-1", tt.addr)
		c := id.TLS.Leaf
		switch {
		case tt.ip != nil && (len(c.IPAddresses) != 1 || !c.IPAddresses[0].Equal(tt.ip) || len(c.DNSNames) != 0):
			t.Errorf("%s: certificate names IPs %v, DNS %v", tt.addr, c.IPAddresses, c.DNSNames)
		case tt.dns != "" && (len(c.DNSNames) != 1 || c.DNSNames[0] != tt.dns || len(c.IPAddresses) != 0):
			t.Errorf("%s: certificate names IPs %v, DNS %v", tt.addr, c.IPAddresses, c.DNSNames)
		}
		if !c.NotBefore.Before(identityTime) || c.NotAfter.Sub(identityTime) < TLSValidity-time.Second || c.IsCA {
			t.Errorf("%s: valid %v to %v, CA %v", tt.addr, c.NotBefore, c.NotAfter, c.IsCA)
		}
		if c.PublicKeyAlgorithm != x509.ECDSA {
			t.Errorf("%s: TLS key is %v", tt.addr, c.PublicKeyAlgorithm)
		}
		host, _, _ := net.SplitHostPort(tt.addr)
		if err := c.VerifyHostname(host); err != nil {
			t.Errorf("%s: %v", tt.addr, err)
		}
		d := id.Descriptor()
		if err := d.Validate(); err != nil {
			t.Errorf("%s: descriptor: %v", tt.addr, err)
		}
		v, err := note.NewVerifier(id.LogKey)
		if err != nil || v.Name() != "trustee-1.keyquorum" || id.LogSigner.Name() != v.Name() || id.LogSigner.KeyHash() != v.KeyHash() {
			t.Errorf("%s: log key %q: %v", tt.addr, id.LogKey, err)
		}
	}
}

func TestGenerateIdentityRefusals(t *testing.T) {
	for _, tt := range []struct{ name, addr, want string }{
		{"", "127.0.0.1:1", "name"},
		{"trustee+1", "127.0.0.1:1", "name"},
		{"trustee 1", "127.0.0.1:1", "name"},
		{"trustee-1", "127.0.0.1", "HOST:PORT"},
		{"trustee-1", ":7001", "no host"},
		{"trustee-1", "127.0.0.1:0", "port"},
		{"trustee-1", "127.0.0.1:http", "port"},
		{"trustee-1", "127.0.0.1:70000", "port"},
		{"trustee-1", "bad_host!:7001", "host"},
	} {
		_, err := GenerateIdentity(tt.name, tt.addr, identityTime, rand.Reader)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("GenerateIdentity(%q, %q): err = %v, want %q", tt.name, tt.addr, err, tt.want)
		}
	}
}

// TestTLSPin checks the pin against its definition and uses it the way a
// client does: a TLS 1.3 handshake with the node's certificate, accepted
// by pin alone.
func TestTLSPin(t *testing.T) {
	id := testIdentity(t, "trustee-1", "127.0.0.1:7001")
	sum := sha256.Sum256(id.TLS.Leaf.RawSubjectPublicKeyInfo)
	pin := TLSPin(id.TLS.Leaf)
	if want := "sha256/" + base64.StdEncoding.EncodeToString(sum[:]); pin != want {
		t.Fatalf("pin = %q, want %q", pin, want)
	}
	other := testIdentity(t, "trustee-1", "127.0.0.1:7001")
	if TLSPin(other.TLS.Leaf) == pin {
		t.Fatal("two keys have the same pin")
	}

	handshake := func(wantPin string) error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			tls.Server(c, &tls.Config{Certificates: []tls.Certificate{id.TLS}, MinVersion: tls.VersionTLS13}).Handshake()
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		cl := tls.Client(c, &tls.Config{
			MinVersion:         tls.VersionTLS13,
			InsecureSkipVerify: true, // the pin below is the check
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				c, err := x509.ParseCertificate(raw[0])
				if err != nil {
					return err
				}
				if TLSPin(c) != wantPin {
					return errors.New("pin mismatch")
				}
				return nil
			},
		})
		return cl.Handshake()
	}
	if err := handshake(pin); err != nil {
		t.Fatalf("handshake with the right pin: %v", err)
	}
	if err := handshake(TLSPin(other.TLS.Leaf)); err == nil {
		t.Fatal("handshake with another key's pin succeeded")
	}
}

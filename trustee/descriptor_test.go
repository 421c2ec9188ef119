package trustee

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestDescriptorRoundTrip(t *testing.T) {
	id := testIdentity(t, "trustee-2", "10.0.0.2:7002")
	d := id.Descriptor()
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("{\n  \"version\": \"keyquorum trustee descriptor v1\",\n  \"name\": \"trustee-2\",\n")) || !bytes.HasSuffix(b, []byte("}\n")) {
		t.Fatalf("encoding:\n%s", b)
	}
	got, err := ParseDescriptor(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != d {
		t.Fatalf("round trip: %+v, want %+v", got, d)
	}
	m := d.Member(4)
	if m.Index != 4 || m.Name != d.Name || m.Address != d.Address || m.IdentityKey != d.IdentityKey || m.TLSPin != d.TLSPin || m.LogKey != d.LogKey {
		t.Fatalf("Member(4) = %+v", m)
	}

	// Plain HTTP (no pin) is allowed on loopback only.
	plain := testIdentity(t, "trustee-3", "127.0.0.1:7003").Descriptor()
	plain.TLSPin = ""
	if b, err := plain.Marshal(); err != nil {
		t.Fatalf("loopback descriptor without a pin: %v", err)
	} else if again, err := ParseDescriptor(b); err != nil || again != plain {
		t.Fatalf("round trip without a pin: %+v, %v", again, err)
	}
}

func TestParseDescriptorRefusals(t *testing.T) {
	d := testIdentity(t, "trustee-2", "10.0.0.2:7002").Descriptor()
	good, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	other := testIdentity(t, "trustee-9", "10.0.0.9:7009").Descriptor()
	edit := func(f func(*Descriptor)) []byte {
		c := d
		f(&c)
		// Encode without validation, as a hand-made or damaged file would be.
		var b bytes.Buffer
		b.WriteString("{\n  \"version\": \"" + DescriptorVersion + "\",\n")
		b.WriteString("  \"name\": \"" + c.Name + "\",\n")
		b.WriteString("  \"address\": \"" + c.Address + "\",\n")
		b.WriteString("  \"identity_key\": \"" + c.IdentityKey + "\",\n")
		b.WriteString("  \"tls_pin\": \"" + c.TLSPin + "\",\n")
		b.WriteString("  \"log_key\": \"" + c.LogKey + "\"\n}\n")
		return b.Bytes()
	}
	if !bytes.Equal(edit(func(*Descriptor) {}), good) {
		t.Fatal("test encoder differs from Marshal")
	}
	zero := base64.StdEncoding.EncodeToString(make([]byte, 32))
	high := make([]byte, 32)
	high[31] = 0x80
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "EOF"},
		{"not JSON", []byte("trustee-2 10.0.0.2:7002\n"), "invalid character"},
		{"unknown field", bytes.Replace(good, []byte(`"name"`), []byte(`"nickname": "x",`+"\n  "+`"name"`), 1), "unknown field"},
		{"other version", bytes.Replace(good, []byte("descriptor v1"), []byte("descriptor v2"), 1), "version"},
		{"missing version", bytes.Replace(good, []byte(`"version": "keyquorum trustee descriptor v1",`+"\n  "), nil, 1), "version"},
		{"compact encoding", bytes.ReplaceAll(good, []byte("\n  "), nil), "canonical"},
		{"no final newline", bytes.TrimSuffix(good, []byte("\n")), "canonical"},
		{"trailing data", append(bytes.Clone(good), "{}\n"...), "trailing data"},
		{"name with +", edit(func(c *Descriptor) { c.Name = "trustee+2" }), "name"},
		{"address without port", edit(func(c *Descriptor) { c.Address = "10.0.0.2" }), "HOST:PORT"},
		{"identity key all zero (low order)", edit(func(c *Descriptor) { c.IdentityKey = zero }), "low order"},
		{"identity key with top bit", edit(func(c *Descriptor) { c.IdentityKey = base64.StdEncoding.EncodeToString(high) }), "canonical"},
		{"identity key short", edit(func(c *Descriptor) { c.IdentityKey = base64.StdEncoding.EncodeToString(make([]byte, 31)) }), "31 bytes"},
		{"no pin off loopback", edit(func(c *Descriptor) { c.TLSPin = "" }), "plain HTTP is for loopback only"},
		{"pin without prefix", edit(func(c *Descriptor) { c.TLSPin = strings.TrimPrefix(c.TLSPin, "sha256/") }), "does not start"},
		{"pin too short", edit(func(c *Descriptor) { c.TLSPin = "sha256/AAAA" }), "SHA-256"},
		{"log key of another trustee", edit(func(c *Descriptor) { c.LogKey = other.LogKey }), "trustee-9.keyquorum"},
		{"log key garbage", edit(func(c *Descriptor) { c.LogKey = "nonsense" }), "log key"},
		{"log key is a signer key", edit(func(c *Descriptor) { c.LogKey = "PRIVATE+KEY+" + c.LogKey }), "log key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDescriptor(tt.b)
			if !errors.Is(err, ErrBadDescriptor) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrBadDescriptor mentioning %q", err, tt.want)
			}
		})
	}
}

func TestCheckDescriptorsRefusesDuplicates(t *testing.T) {
	a := testIdentity(t, "trustee-1", "10.0.0.1:7001").Descriptor()
	b := testIdentity(t, "trustee-2", "10.0.0.2:7001").Descriptor()
	if err := checkDescriptors([]Descriptor{a, b}); err != nil {
		t.Fatal(err)
	}
	sameAddr := b
	sameAddr.Address = "10.0.0.1:7001"
	sameKey := b
	sameKey.IdentityKey = a.IdentityKey
	samePin := b
	samePin.TLSPin = a.TLSPin
	for _, tt := range []struct {
		name string
		ds   []Descriptor
		want string
	}{
		{"same descriptor twice", []Descriptor{a, a}, "same name"},
		{"same address", []Descriptor{a, sameAddr}, "same address"},
		{"same identity key", []Descriptor{a, sameKey}, "same identity key"},
		{"same TLS pin", []Descriptor{a, samePin}, "same TLS pin"},
	} {
		err := checkDescriptors(tt.ds)
		if !errors.Is(err, ErrBadDescriptor) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}

func FuzzParseDescriptor(f *testing.F) {
	d := testIdentity(f, "trustee-1", "127.0.0.1:7001").Descriptor()
	good, err := d.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	d.TLSPin = ""
	plain, _ := d.Marshal()
	f.Add(plain)
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDescriptor(b)
		if err != nil {
			return
		}
		again, err := d.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("parse(b) accepted but marshal gives %q, %v", again, err)
		}
	})
}

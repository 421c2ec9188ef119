package sim

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/keyquorum/keyquorum/escrow"
)

// CaptureFormat is the format field of a capture file's first line.
const CaptureFormat = "keyquorum capture v1"

// CaptureHeader is the first line of a capture file (JSON Lines): the
// users' public keys, which a reader needs to check message signatures.
type CaptureHeader struct {
	Format string        `json:"format"`
	Seed   uint64        `json:"seed"`
	Users  []CaptureUser `json:"users"`
}

// CaptureUser is one user's public keys.
type CaptureUser struct {
	Name   string `json:"name"`
	KEM    []byte `json:"kem"`    // X25519 public key
	Verify []byte `json:"verify"` // Ed25519 public key
}

// CaptureSession is every later line: one session as the provider carried
// it, and whether its recipient accepted it.
type CaptureSession struct {
	escrow.Session
	Accepted bool `json:"accepted"`
}

// ErrBadCapture wraps every capture parse failure.
var ErrBadCapture = errors.New("sim: bad capture file")

// WriteCapture writes a capture of t to w.
func WriteCapture(w io.Writer, seed uint64, t *Traffic) error {
	enc := json.NewEncoder(w)
	h := CaptureHeader{Format: CaptureFormat, Seed: seed}
	for _, u := range t.Users {
		p := u.Public()
		h.Users = append(h.Users, CaptureUser{Name: p.Name, KEM: p.KEM.Bytes(), Verify: p.Verify})
	}
	if err := enc.Encode(h); err != nil {
		return err
	}
	for _, c := range t.Sessions {
		if err := enc.Encode(CaptureSession{Session: *c.Session, Accepted: c.Accepted}); err != nil {
			return err
		}
	}
	return nil
}

// Capture is a parsed capture file.
type Capture struct {
	Seed     uint64
	Users    map[string]*escrow.UserPublic
	Sessions []CaptureSession
}

// ReadCapture parses a capture file, refusing unknown fields and naming the
// line of any error.
func ReadCapture(r io.Reader) (*Capture, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	decode := func(b []byte, v any) error {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("%w: line %d: %w", ErrBadCapture, line, err)
		}
		return nil
	}
	c := &Capture{Users: map[string]*escrow.UserPublic{}}
	for sc.Scan() {
		line++
		if line == 1 {
			var h CaptureHeader
			if err := decode(sc.Bytes(), &h); err != nil {
				return nil, err
			}
			if h.Format != CaptureFormat {
				return nil, fmt.Errorf("%w: line 1: format %q, this build reads %q", ErrBadCapture, h.Format, CaptureFormat)
			}
			c.Seed = h.Seed
			for _, u := range h.Users {
				kem, err := ecdh.X25519().NewPublicKey(u.KEM)
				if err != nil || len(u.Verify) != ed25519.PublicKeySize || !escrow.ValidName(u.Name) {
					return nil, fmt.Errorf("%w: line 1: bad public key for user %q", ErrBadCapture, u.Name)
				}
				c.Users[u.Name] = &escrow.UserPublic{Name: u.Name, KEM: kem, Verify: ed25519.PublicKey(u.Verify)}
			}
			continue
		}
		var s CaptureSession
		if err := decode(sc.Bytes(), &s); err != nil {
			return nil, err
		}
		c.Sessions = append(c.Sessions, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %w", ErrBadCapture, line+1, err)
	}
	if line == 0 {
		return nil, fmt.Errorf("%w: empty file", ErrBadCapture)
	}
	return c, nil
}

package escrow

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Context is everything an envelope is bound to: the epoch and group key it
// is escrowed under, the session, its two parties and when it started. A
// warrant's scope is decided on these fields alone, so they are covered by
// the envelope's proof and AEAD; an investigator cannot move an envelope to
// another context.
type Context struct {
	Epoch      uint32
	GroupKeyID KeyID     // identifies X_e; see [KeyIDOf]
	SessionID  SessionID // random, chosen by the sender
	Sender     string
	Recipient  string
	Start      time.Time // session start, whole seconds, UTC
}

// KeyID is the first 8 bytes of SHA-256 over a group public key encoding.
type KeyID [8]byte

func (k KeyID) String() string { return hex.EncodeToString(k[:]) }

// SessionID names one messaging session.
type SessionID [16]byte

func (s SessionID) String() string { return hex.EncodeToString(s[:]) }

// ParseSessionID parses the 32-hex-digit form printed by [SessionID.String].
func ParseSessionID(s string) (SessionID, error) {
	var id SessionID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("escrow: session id %q is not 32 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// contextVersion is the first byte of an encoded context.
const contextVersion = 1

// maxUnix bounds times in encodings (far past any real date).
const maxUnix = 1 << 40

// MaxNameLen bounds user names in a context.
const MaxNameLen = 64

// ErrBadContext is wrapped by every context validation failure.
var ErrBadContext = errors.New("escrow: bad session context")

// ValidName reports whether s may name a user: 1 to 64 bytes of letters,
// digits and . _ @ + -. Names appear in warrants, one per line, so no
// whitespace is allowed.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == '@' || c == '+' || c == '-':
		default:
			return false
		}
	}
	return true
}

// Validate checks the fields a context must satisfy before it is encoded.
func (c *Context) Validate() error {
	if !ValidName(c.Sender) {
		return fmt.Errorf("%w: sender %q: names are 1-%d letters, digits or . _ @ + -", ErrBadContext, c.Sender, MaxNameLen)
	}
	if !ValidName(c.Recipient) {
		return fmt.Errorf("%w: recipient %q: names are 1-%d letters, digits or . _ @ + -", ErrBadContext, c.Recipient, MaxNameLen)
	}
	if c.Sender == c.Recipient {
		return fmt.Errorf("%w: sender and recipient are both %q; a session has two parties", ErrBadContext, c.Sender)
	}
	if c.Start.IsZero() || c.Start.Unix() < 0 || c.Start.Unix() > maxUnix {
		return fmt.Errorf("%w: session start time missing, before 1970 or absurdly far in the future", ErrBadContext)
	}
	if !c.Start.Equal(c.Start.Truncate(time.Second)) {
		return fmt.Errorf("%w: session start must be whole seconds", ErrBadContext)
	}
	return nil
}

// Marshal returns the canonical encoding of c:
//
//	version(1) epoch(4) keyid(8) session(16) len(1) sender len(1) recipient start(8)
//
// integers big-endian, start as Unix seconds.
func (c *Context) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 1+4+8+16+2+len(c.Sender)+len(c.Recipient)+8)
	b = append(b, contextVersion)
	b = binary.BigEndian.AppendUint32(b, c.Epoch)
	b = append(b, c.GroupKeyID[:]...)
	b = append(b, c.SessionID[:]...)
	b = append(b, byte(len(c.Sender)))
	b = append(b, c.Sender...)
	b = append(b, byte(len(c.Recipient)))
	b = append(b, c.Recipient...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Start.Unix()))
	return b, nil
}

// ParseContext decodes a canonical context encoding; it refuses any other
// byte string, so a context has exactly one encoding.
func ParseContext(b []byte) (*Context, error) {
	r := bytes.NewReader(b)
	var c Context
	fail := func(what string) (*Context, error) {
		return nil, fmt.Errorf("%w: truncated or malformed at %s", ErrBadContext, what)
	}
	v, err := r.ReadByte()
	if err != nil {
		return fail("version")
	}
	if v != contextVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads version %d", ErrBadContext, v, contextVersion)
	}
	if binary.Read(r, binary.BigEndian, &c.Epoch) != nil {
		return fail("epoch")
	}
	if _, err := readFull(r, c.GroupKeyID[:]); err != nil {
		return fail("group key id")
	}
	if _, err := readFull(r, c.SessionID[:]); err != nil {
		return fail("session id")
	}
	readName := func() (string, bool) {
		n, err := r.ReadByte()
		if err != nil {
			return "", false
		}
		buf := make([]byte, n)
		if _, err := readFull(r, buf); err != nil {
			return "", false
		}
		return string(buf), true
	}
	var ok bool
	if c.Sender, ok = readName(); !ok {
		return fail("sender")
	}
	if c.Recipient, ok = readName(); !ok {
		return fail("recipient")
	}
	var start uint64
	if binary.Read(r, binary.BigEndian, &start) != nil {
		return fail("start time")
	}
	if start > maxUnix {
		return nil, fmt.Errorf("%w: start time out of range", ErrBadContext)
	}
	c.Start = time.Unix(int64(start), 0).UTC()
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadContext, r.Len())
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func readFull(r *bytes.Reader, buf []byte) (int, error) {
	if r.Len() < len(buf) {
		return 0, errors.New("short")
	}
	return r.Read(buf)
}

package escrow

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// Session is one messaging session as a provider carries and captures it:
// the context in clear, the session key K sealed to the recipient with HPKE
// (RFC 9180, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, info
// bound to the context), the escrow envelope, and the messages.
type Session struct {
	Context   []byte    `json:"context"`
	SealedKey []byte    `json:"sealed_key"`
	Envelope  []byte    `json:"envelope,omitempty"` // empty when a client stripped it
	Messages  []Message `json:"messages"`
}

// Message is one message of a session: encrypted under a key derived from K,
// and carrying inside the ciphertext an Ed25519 signature by its author
// (RFC 8032), so that recovering K lets a reader read but not forge.
type Message struct {
	Seq    uint32 `json:"seq"`
	From   string `json:"from"`
	Sealed []byte `json:"sealed"`
}

// Plaintext is a decrypted, signature-checked message.
type Plaintext struct {
	Seq  uint32
	From string
	Text string
}

// Errors from sessions.
var (
	// ErrReplayedSession: a session id the recipient has already accepted.
	ErrReplayedSession = errors.New("escrow: session id already seen; this is a replayed session, reject it")
	// ErrForgedMessage: a message whose signature does not verify under its
	// claimed author's key.
	ErrForgedMessage = errors.New("escrow: message signature does not verify under its author's key; it was forged or altered")
	// ErrNotForMe: a session addressed to someone else.
	ErrNotForMe = errors.New("escrow: session is addressed to another user")
)

// SessionKeys is what the two endpoints of a session hold.
type SessionKeys struct {
	Context *Context
	Key     []byte // K
	ctx     []byte
	msgKey  []byte
}

func newSessionKeys(ctx *Context, K []byte) (*SessionKeys, error) {
	cb, err := ctx.Marshal()
	if err != nil {
		return nil, err
	}
	mk, err := hkdf.Key(sha256.New, K, nil, labelMessageKey+string(cb), chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("escrow: %w", err)
	}
	return &SessionKeys{Context: ctx, Key: K, ctx: cb, msgKey: mk}, nil
}

// StartSession is the sender's side: it draws K and a session id from rand,
// seals K to the recipient and attaches the escrow envelope under the
// epoch's group key.
func StartSession(sender *UserKey, recipient *UserPublic, epoch uint32, groupKey *EpochKey, start time.Time, rand io.Reader) (*SessionKeys, *Session, error) {
	K := make([]byte, KeySize)
	if _, err := io.ReadFull(rand, K); err != nil {
		return nil, nil, fmt.Errorf("escrow: reading randomness: %w", err)
	}
	ctx := &Context{Epoch: epoch, GroupKeyID: groupKey.ID(), Sender: sender.Name, Recipient: recipient.Name, Start: start.UTC().Truncate(time.Second)}
	if _, err := io.ReadFull(rand, ctx.SessionID[:]); err != nil {
		return nil, nil, fmt.Errorf("escrow: reading randomness: %w", err)
	}
	keys, err := newSessionKeys(ctx, K)
	if err != nil {
		return nil, nil, err
	}
	env, err := SealEnvelope(K, ctx, groupKey)
	if err != nil {
		return nil, nil, err
	}
	pk, err := hpke.NewDHKEMPublicKey(recipient.KEM)
	if err != nil {
		return nil, nil, fmt.Errorf("escrow: recipient key: %w", err)
	}
	sealed, err := hpke.Seal(pk, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), []byte(labelSessionHPKE+string(keys.ctx)), K)
	if err != nil {
		return nil, nil, fmt.Errorf("escrow: sealing session key: %w", err)
	}
	return keys, &Session{Context: keys.ctx, SealedKey: sealed, Envelope: env.Marshal()}, nil
}

// ErrSessionTiming: the session claims a start time or epoch the recipient
// does not believe, which a sender could use to escape a warrant's window
// or to escrow under a retired key.
var ErrSessionTiming = errors.New("escrow: session start time or epoch is not current; a sender may be backdating it to escape warrants, reject the session")

// CheckSessionTiming is the recipient's check that a new session's claimed
// start is within maxSkew of its own clock and that it is escrowed under
// the epoch current at that time. Recipients call it with [AcceptSession]:
// the envelope check alone proves the escrow is genuine, not that its
// context tells the truth about when.
func CheckSessionTiming(ctx *Context, currentEpoch uint32, now time.Time, maxSkew time.Duration) error {
	if d := ctx.Start.Sub(now); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("%w: claims to start at %s, the recipient's clock says %s", ErrSessionTiming, ctx.Start.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if ctx.Epoch != currentEpoch {
		return fmt.Errorf("%w: escrowed under epoch %d, the current epoch is %d", ErrSessionTiming, ctx.Epoch, currentEpoch)
	}
	return nil
}

// SeenSessions remembers which session ids a recipient has accepted.
type SeenSessions map[SessionID]bool

// AcceptSession is the recipient's side. It checks the session is addressed
// to me from the claimed sender, opens K, and recomputes the escrow envelope
// from K: a missing envelope is ErrEnvelopeMissing, a different one
// ErrEnvelopeMismatch, a session id already in seen is ErrReplayedSession.
// groupKey is the trustee group's key for the context's epoch.
func AcceptSession(me *UserKey, sender *UserPublic, groupKey *EpochKey, s *Session, seen SeenSessions) (*SessionKeys, error) {
	ctx, err := ParseContext(s.Context)
	if err != nil {
		return nil, err
	}
	if ctx.Recipient != me.Name {
		return nil, fmt.Errorf("%w: %q, not %q", ErrNotForMe, ctx.Recipient, me.Name)
	}
	if ctx.Sender != sender.Name {
		return nil, fmt.Errorf("escrow: session claims sender %q but was checked against %q", ctx.Sender, sender.Name)
	}
	if seen[ctx.SessionID] {
		return nil, fmt.Errorf("%w (session %s)", ErrReplayedSession, ctx.SessionID)
	}
	sk, err := hpke.NewDHKEMPrivateKey(me.KEM)
	if err != nil {
		return nil, fmt.Errorf("escrow: %w", err)
	}
	K, err := hpke.Open(sk, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), []byte(labelSessionHPKE+string(s.Context)), s.SealedKey)
	if err != nil {
		return nil, fmt.Errorf("escrow: cannot open the session key: it was not sealed to %s for this context", me.Name)
	}
	if err := CheckEnvelope(K, ctx, groupKey, s.Envelope); err != nil {
		return nil, err
	}
	if seen != nil {
		seen[ctx.SessionID] = true
	}
	return newSessionKeys(ctx, K)
}

// KeysFromRecovered rebuilds a session's keys from a K recovered by
// [Combine]; it lets an investigator read but not write.
func KeysFromRecovered(env *Envelope, K []byte) (*SessionKeys, error) {
	return newSessionKeys(env.Context, K)
}

// Seal encrypts and signs one message from author, who must be one of the
// session's two parties.
func (k *SessionKeys) Seal(author *UserKey, seq uint32, text string) (Message, error) {
	if author.Name != k.Context.Sender && author.Name != k.Context.Recipient {
		return Message{}, fmt.Errorf("escrow: %q is not a party to this session", author.Name)
	}
	sig := ed25519.Sign(author.Sign, k.signedBytes(author.Name, seq, text))
	aead, _ := chacha20poly1305.New(k.msgKey)
	pt := append(sig, text...)
	return Message{Seq: seq, From: author.Name, Sealed: aead.Seal(nil, k.nonce(author.Name, seq), pt, k.messageAD(author.Name, seq))}, nil
}

// Open decrypts a message and verifies its author's signature with
// authors[m.From].
func (k *SessionKeys) Open(m Message, authors map[string]*UserPublic) (Plaintext, error) {
	if m.From != k.Context.Sender && m.From != k.Context.Recipient {
		return Plaintext{}, fmt.Errorf("%w: %q is not a party to this session", ErrForgedMessage, m.From)
	}
	aead, _ := chacha20poly1305.New(k.msgKey)
	pt, err := aead.Open(nil, k.nonce(m.From, m.Seq), m.Sealed, k.messageAD(m.From, m.Seq))
	if err != nil || len(pt) < ed25519.SignatureSize {
		return Plaintext{}, fmt.Errorf("escrow: message %d does not decrypt under this session's key", m.Seq)
	}
	text := string(pt[ed25519.SignatureSize:])
	pub := authors[m.From]
	if pub == nil {
		return Plaintext{}, fmt.Errorf("escrow: no public key for %q; cannot check who wrote message %d", m.From, m.Seq)
	}
	if !ed25519.Verify(pub.Verify, k.signedBytes(m.From, m.Seq, text), pt[:ed25519.SignatureSize]) {
		return Plaintext{}, fmt.Errorf("%w (message %d from %s)", ErrForgedMessage, m.Seq, m.From)
	}
	return Plaintext{Seq: m.Seq, From: m.From, Text: text}, nil
}

func (k *SessionKeys) signedBytes(from string, seq uint32, text string) []byte {
	return concat([]byte(labelMessageSig), k.messageAD(from, seq), []byte(text))
}

func (k *SessionKeys) messageAD(from string, seq uint32) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(k.ctx)))
	b = append(b, k.ctx...)
	b = append(b, byte(len(from)))
	b = append(b, from...)
	return binary.BigEndian.AppendUint32(b, seq)
}

// nonce is unique per (direction, seq): both parties share one message
// key, so the first byte says who wrote the message.
func (k *SessionKeys) nonce(from string, seq uint32) []byte {
	n := make([]byte, chacha20poly1305.NonceSize)
	if from == k.Context.Recipient {
		n[0] = 1
	}
	binary.BigEndian.PutUint32(n[8:], seq)
	return n
}

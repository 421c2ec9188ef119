package escrow

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"go.dedis.ch/kyber/v3"
)

// DecryptionRequest is what an investigator sends to every trustee: the
// signed warrant, the envelopes to open, and a signature with q, the private
// half of the requester key Q the warrant names.
//
// The signature is what stops requester-key substitution: without it, an
// investigator with a warrant for Alice could have had the warrant name
// Q = U_Bob − U_Alice + q'·G, for which V = x·(U_Alice + Q) = S_Bob + q'·X_e,
// and read Bob's session. Nobody knows log_G of such a Q, so nobody can sign.
type DecryptionRequest struct {
	ID        [16]byte
	Created   time.Time // whole seconds, UTC
	Warrant   []byte    // the signed warrant note
	Envelopes [][]byte
	sig       schnorrProof
}

const requestVersion = 1

// Limits on a request's encoding, so a trustee can bound what it reads.
const (
	MaxWarrantLen      = 64 << 10
	MaxRequestSessions = 100000
	maxEnvelopeLen     = 1 << 10
)

// Errors about requests.
var (
	// ErrBadRequestSignature: the request is not signed by the holder of the
	// warrant's requester key.
	ErrBadRequestSignature = errors.New("escrow: request is not signed by the requester key the warrant names; sign it with that key's private half")
	// ErrBadRequest: the request cannot be parsed.
	ErrBadRequest = errors.New("escrow: malformed decryption request")
)

// NewDecryptionRequest builds and signs a request with the requester's key.
// rand supplies the request id.
func NewDecryptionRequest(warrant []byte, envelopes [][]byte, req *RequesterKey, now time.Time, rand io.Reader) (*DecryptionRequest, error) {
	if len(envelopes) == 0 || len(envelopes) > MaxRequestSessions {
		return nil, fmt.Errorf("escrow: a request carries 1 to %d envelopes, got %d", MaxRequestSessions, len(envelopes))
	}
	if len(warrant) > MaxWarrantLen {
		return nil, fmt.Errorf("escrow: warrant is %d bytes, more than the %d allowed", len(warrant), MaxWarrantLen)
	}
	for i, e := range envelopes {
		if len(e) == 0 || len(e) > maxEnvelopeLen {
			return nil, fmt.Errorf("escrow: envelope %d is %d bytes; an envelope is 1 to %d bytes (was it stripped or corrupted?)", i, len(e), maxEnvelopeLen)
		}
	}
	if now.Unix() < 0 || now.Unix() > maxUnix {
		return nil, fmt.Errorf("escrow: request time %s is out of range; check the clock", now.Format(time.RFC3339))
	}
	r := &DecryptionRequest{Created: now.UTC().Truncate(time.Second), Warrant: warrant, Envelopes: envelopes}
	if _, err := io.ReadFull(rand, r.ID[:]); err != nil {
		return nil, fmt.Errorf("escrow: reading randomness: %w", err)
	}
	r.Sign(req)
	return r, nil
}

// Sign (re)signs the request with req's private key.
func (r *DecryptionRequest) Sign(req *RequesterKey) {
	r.sig = proveSchnorr(labelRequestSig, labelRequestNonce, req.Private, req.Public, r.digest())
}

// VerifySignature checks that the request was signed with log_G Q.
func (r *DecryptionRequest) VerifySignature(Q kyber.Point) error {
	if err := r.sig.verify(labelRequestSig, Q, r.digest()); err != nil {
		return ErrBadRequestSignature
	}
	return nil
}

// digest is SHA-256 over the encoding without the signature.
func (r *DecryptionRequest) digest() []byte {
	h := sha256.Sum256(r.body())
	return h[:]
}

func (r *DecryptionRequest) body() []byte {
	b := []byte{requestVersion}
	b = append(b, r.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Created.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Warrant)))
	b = append(b, r.Warrant...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Envelopes)))
	for _, e := range r.Envelopes {
		b = binary.BigEndian.AppendUint16(b, uint16(len(e)))
		b = append(b, e...)
	}
	return b
}

// Marshal encodes the request:
//
//	version(1) id(16) created(8) warrantlen(4) warrant count(4) {len(2) envelope}* signature(64)
func (r *DecryptionRequest) Marshal() []byte {
	return append(r.body(), r.sig.marshal()...)
}

// ParseDecryptionRequest decodes a request strictly. It does not verify the
// signature, the warrant or the envelopes.
func ParseDecryptionRequest(b []byte) (*DecryptionRequest, error) {
	fail := func(what string) (*DecryptionRequest, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadRequest, what)
	}
	if len(b) < 1+16+8+4 {
		return fail("too short")
	}
	if b[0] != requestVersion {
		return fail(fmt.Sprintf("version %d, this build reads version %d", b[0], requestVersion))
	}
	r := &DecryptionRequest{}
	copy(r.ID[:], b[1:17])
	created := binary.BigEndian.Uint64(b[17:25])
	if created > maxUnix {
		return fail("creation time out of range")
	}
	r.Created = time.Unix(int64(created), 0).UTC()
	rest := b[25:]
	wl := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if wl > MaxWarrantLen || int(wl) > len(rest) {
		return fail("warrant length out of range")
	}
	r.Warrant = append([]byte(nil), rest[:wl]...)
	rest = rest[wl:]
	if len(rest) < 4 {
		return fail("truncated before envelope count")
	}
	n := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if n == 0 || n > MaxRequestSessions || int(n)*2 > len(rest) {
		return fail(fmt.Sprintf("envelope count %d out of range", n))
	}
	r.Envelopes = make([][]byte, 0, n)
	for i := uint32(0); i < n; i++ {
		if len(rest) < 2 {
			return fail("truncated envelope length")
		}
		el := int(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		if el == 0 || el > maxEnvelopeLen || el > len(rest) {
			return fail(fmt.Sprintf("envelope %d length out of range", i))
		}
		r.Envelopes = append(r.Envelopes, append([]byte(nil), rest[:el]...))
		rest = rest[el:]
	}
	sig, err := parseSchnorrProof(rest)
	if err != nil {
		return fail("signature: " + err.Error())
	}
	r.sig = sig
	return r, nil
}

// Command clipper races the 1993 Clipper chip's escrow field against
// keyquorum's. Clipper's Law Enforcement Access Field (LEAF) carried the
// session key wrapped for the escrow agents and a 16-bit checksum, and the
// receiving chip checked only the checksum: Matt Blaze ("Protocol failure
// in the escrowed encryption standard", ACM CCS 1994) showed a rogue
// sender can try random fields until one passes, about 2^16 tries, and
// then talk with an escrow field that escrows nothing. A keyquorum
// recipient re-derives the whole envelope from the session key it
// received and compares every byte, so random fields, a stripped field and
// a field with one byte changed are all rejected.
//
// It uses only keyquorum's public escrow package and a seeded random
// source, so every run prints the same story.
package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"go.dedis.ch/kyber/v3/group/edwards25519"
)

// tries is how many random keyquorum envelopes a rogue sender tries.
const tries = 1 << 18

// leafLimit bounds the rogue sender's tries at one Clipper call.
const leafLimit = 1 << 22

// calls is how many Clipper calls the rogue sender forges a LEAF for.
const calls = 16

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "clipper:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	rnd := rand.NewChaCha8([32]byte{'c', 'l', 'i', 'p', 'p', 'e', 'r'})

	// Clipper: the receiving chip's check, and Blaze's brute force, for
	// each of a few calls.
	fmt.Fprintln(out, "Clipper (1993): the receiving chip checks only a 16-bit checksum in the escrow field.")
	forged, total := 0, 0
	for range calls {
		var key, iv, family [16]byte
		for _, b := range [][]byte{key[:], iv[:], family[:]} {
			io.ReadFull(rnd, b)
		}
		chip, err := newLEAFCheck(key[:], iv[:], family[:])
		if err != nil {
			return err
		}
		var leaf [16]byte
		for i := 1; i <= leafLimit; i++ {
			io.ReadFull(rnd, leaf[:])
			if chip.accepts(leaf) {
				forged++
				total += i
				break
			}
		}
	}
	fmt.Fprintf(out, "  a rogue sender forged a LEAF for %d of %d calls, in %d random tries per call on average\n", forged, calls, total/max(forged, 1))
	fmt.Fprintln(out, "  (2^16 = 65536 expected): each call went ahead with an escrow field that escrows nothing.")

	// keyquorum: alice opens a session to bob; bob re-derives the envelope.
	suite := edwards25519.NewBlakeSHA256Ed25519()
	// The trustees' group secret (nobody holds it in practice) and the
	// group key as the group file publishes it.
	x := suite.Scalar().Pick(suite.XOF(seed(rnd)))
	published, err := suite.Point().Mul(x, nil).MarshalBinary()
	if err != nil {
		return err
	}
	groupKey, err := escrow.ParseEpochKey(published)
	if err != nil {
		return err
	}
	alice, err := escrow.GenerateUserKey("alice", rnd)
	if err != nil {
		return err
	}
	bob, err := escrow.GenerateUserKey("bob", rnd)
	if err != nil {
		return err
	}
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	keys, session, err := escrow.StartSession(alice, bob.Public(), 1, groupKey, start, rnd)
	if err != nil {
		return err
	}
	check, err := escrow.NewEnvelopeChecker(keys.Key, keys.Context, groupKey)
	if err != nil {
		return err
	}
	// The rogue client keeps the session's context, so the field looks
	// right, and makes up the rest, as Blaze did.
	env, err := escrow.ParseEnvelope(session.Envelope)
	if err != nil {
		return err
	}
	ctxBytes := env.ContextBytes()
	keep := bytes.Index(session.Envelope, ctxBytes) + len(ctxBytes)
	accepted := 0
	cand := bytes.Clone(session.Envelope)
	for range tries {
		io.ReadFull(rnd, cand[keep:])
		if check.Check(cand) == nil {
			accepted++
		}
	}
	fmt.Fprintln(out, "keyquorum: the recipient re-derives the whole escrow envelope and compares every byte.")
	fmt.Fprintf(out, "  random envelopes with the right context accepted: %d of %d\n", accepted, tries)

	// Three more rogue clients: one strips the field, one changes a byte,
	// one sends a well-formed envelope (its proof checks) that escrows
	// another key.
	stripped := *session
	stripped.Envelope = nil
	changed := *session
	changed.Envelope = bytes.Clone(session.Envelope)
	changed.Envelope[len(changed.Envelope)-1] ^= 1
	decoy := make([]byte, escrow.KeySize)
	io.ReadFull(rnd, decoy)
	other, err := escrow.SealEnvelope(decoy, keys.Context, groupKey)
	if err != nil {
		return err
	}
	wrongKey := *session
	wrongKey.Envelope = other.Marshal()
	for _, c := range []struct {
		what string
		s    *escrow.Session
	}{
		{"envelope stripped", &stripped},
		{"one byte of the envelope changed", &changed},
		{"a well-formed envelope escrowing another key", &wrongKey},
		{"the honest envelope", session},
	} {
		_, err := escrow.AcceptSession(bob, alice.Public(), groupKey, c.s, escrow.SeenSessions{})
		fmt.Fprintf(out, "  %s: %s\n", c.what, verdict(err))
	}
	fmt.Fprintln(out, "What no check can stop: two users who both run modified clients, or who encrypt")
	fmt.Fprintln(out, "inside the channel. Escrow only reaches people who do not try to avoid it.")
	return nil
}

func verdict(err error) string {
	switch {
	case err == nil:
		return "accepted"
	case errors.Is(err, escrow.ErrEnvelopeMissing):
		return "rejected (no escrow envelope)"
	case errors.Is(err, escrow.ErrEnvelopeMismatch):
		return "rejected (does not match the session key)"
	}
	return "rejected (" + err.Error() + ")"
}

// seed draws 32 bytes from r.
func seed(r io.Reader) []byte {
	b := make([]byte, 32)
	io.ReadFull(r, b)
	return b
}

// leafCheck models the receiving chip of the Escrowed Encryption Standard
// (FIPS 185): the 128-bit LEAF (a 32-bit unit id, the 80-bit session key
// wrapped for the escrow agents, a 16-bit checksum of the session key and
// IV) is encrypted under a family key every chip shares; the chip decrypts
// it and checks only the checksum. AES-128 stands in for Skipjack; the
// attack does not depend on the cipher.
type leafCheck struct {
	family   cipher.Block
	checksum [2]byte
}

func newLEAFCheck(sessionKey, iv, familyKey []byte) (*leafCheck, error) {
	blk, err := aes.NewCipher(familyKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append(append([]byte("checksum"), sessionKey...), iv...))
	return &leafCheck{family: blk, checksum: [2]byte{sum[0], sum[1]}}, nil
}

func (l *leafCheck) accepts(leaf [16]byte) bool {
	var pt [16]byte
	l.family.Decrypt(pt[:], leaf[:])
	return pt[14] == l.checksum[0] && pt[15] == l.checksum[1]
}

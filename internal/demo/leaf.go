package demo

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"io"
)

// clipperLEAF models the Law Enforcement Access Field of the 1993 Escrowed
// Encryption Standard (FIPS 185): 128 bits made of a 32-bit unit id, the
// 80-bit session key wrapped under the unit's escrowed key, and a 16-bit
// checksum of the session key and IV, all encrypted under a family key
// every chip shares. A receiving chip decrypts the LEAF and checks only the
// 16-bit checksum. AES-128 stands in for Skipjack; the attack does not
// depend on the cipher.
//
// Blaze (1994, "Protocol failure in the escrowed encryption standard", ACM
// CCS) showed a rogue sender can simply try random 128-bit LEAFs until one
// passes the checksum: about 2^16 tries, after which the receiver accepts a
// field that escrows nothing.
type clipperLEAF struct {
	family   cipher.Block
	checksum [2]byte // what the receiver expects for this session
}

func newClipperLEAF(sessionKey, iv []byte, familyKey [16]byte) *clipperLEAF {
	sum := sha256.Sum256(append(append([]byte("checksum"), sessionKey...), iv...))
	blk, _ := aes.NewCipher(familyKey[:]) // a 16-byte key cannot fail
	return &clipperLEAF{family: blk, checksum: [2]byte{sum[0], sum[1]}}
}

// accepts is the receiving chip's check.
func (l *clipperLEAF) accepts(leaf [16]byte) bool {
	var pt [16]byte
	l.family.Decrypt(pt[:], leaf[:])
	return pt[14] == l.checksum[0] && pt[15] == l.checksum[1]
}

// forgeLEAF tries random LEAFs from rand until the receiver accepts one
// and returns the number of tries, or max+1 if none was accepted.
func forgeLEAF(l *clipperLEAF, rand io.Reader, max int) (int, error) {
	var leaf [16]byte
	for tries := 1; tries <= max; tries++ {
		if _, err := io.ReadFull(rand, leaf[:]); err != nil {
			return 0, err
		}
		if l.accepts(leaf) {
			return tries, nil
		}
	}
	return max + 1, nil
}

// Package shares splits secrets t-of-n and puts them back together: Shamir
// secret sharing over the Ed25519 scalar field, Feldman commitments that let
// anyone check a share, Lagrange interpolation of scalars and of points, and
// a file splitter that turns one file into n text share files of which any t
// restore it.
//
// The package does no I/O of its own: randomness and files arrive as
// [io.Reader] and [io.Writer] values.
//
// # Shamir secret sharing
//
// Shamir, "How to share a secret", Communications of the ACM 22(11), 1979.
// [Split] picks a random polynomial f of degree t−1 over the scalar field
// with f(0) = secret, and hands out the points (i, f(i)) for i = 1..n. Any t
// points determine f and so f(0) ([Recover]); t−1 points are consistent with
// every possible secret, so on their own they say nothing about it.
//
// # Share indices
//
// A [Share] carries its x-coordinate in Share.Index, 1-based, exactly as
// written in the share file and in every error message. (kyber's PriShare
// counts from 0 and evaluates at I+1; this package does the polynomial
// arithmetic with kyber's share package but does not use that convention
// anywhere in its API.) Indices run from 1 to [MaxShares], which
// keeps an index in one byte and n small enough that checking every share
// is cheap.
//
// # Feldman commitments
//
// Feldman, "A practical scheme for non-interactive verifiable secret
// sharing", 28th IEEE Symposium on Foundations of Computer Science (FOCS),
// 1987. Next to the shares, [Split] publishes a [Commitment]: the points
// A_j = a_j·G for the coefficients a_j of f, so A_0 = secret·G is the public
// key. Anyone can compute f(i)·G = Σ A_j·i^j ([Commitment.PublicShare]) and
// so check a share ([Commitment.Verify]) without learning it.
// [RecoverWithCommitment] checks every share before it interpolates and
// names the ones that fail: a tampered share, or a share of another split,
// is refused instead of producing a wrong secret.
//
// The price is that the commitment publishes secret·G. Shares below the
// threshold then hide the secret only as well as the discrete logarithm
// problem is hard, where Shamir alone hides it unconditionally. For a
// uniformly random 252-bit secret, as [SplitFile] uses, that is the usual
// Ed25519 security level.
//
// # Interpolating points
//
// [RecoverPoint] combines values x_i·P, one per share, into x·P by the same
// Lagrange coefficients ([LagrangeCoefficients]) applied in the exponent.
// This is what threshold decryption needs: trustees each answer x_i·P and
// nobody ever holds x.
//
// # Splitting files
//
// [SplitFile] draws a random non-zero scalar s, splits it t-of-n, and
// encrypts the file under a key derived from s, so every share file carries
// one share of s and the same ciphertext. Any t share files give s, the key
// and the file ([CombineFiles]).
//
// The key is HKDF-SHA256 (RFC 5869) of the encoded s, salted with a random
// 32-byte split id, with info [FileLabel] followed by the total n and the
// encoded commitment, so the key is bound to this exact split.
//
// The file is encrypted with ChaCha20-Poly1305 (RFC 8439) in chunks of
// [ChunkSize] bytes, following the STREAM construction of Hoang,
// Reyhanitabar, Rogaway and Vizár, "Online authenticated-encryption and its
// nonce-reuse misuse-resistance", CRYPTO 2015: the nonce of chunk k is the
// 11-byte big-endian counter k followed by one byte that is 1 on the last
// chunk and 0 otherwise. A chunk moved, dropped, repeated or appended, or a
// ciphertext cut at a chunk boundary, fails authentication, and a file of
// any size is processed in constant memory. Every chunk holds exactly
// ChunkSize bytes of plaintext except the last, which holds 1 to ChunkSize
// bytes (0 only for an empty file).
//
// CombineFiles writes each chunk's plaintext only after that chunk has
// authenticated, but a later chunk can still fail: whoever calls it must
// keep the output out of sight until it returns nil (the keyquorum command
// writes to a temporary file and renames it on success).
//
// # Share file format
//
// A share file is text. The first line names the format and its version,
// "keyquorum share file v1". Comment lines starting with "#" say what the
// file is and how to use it. Then come "key: value" lines in this order:
//
//	split-id:          64 lowercase hex digits, the same in every share file of one split
//	index:             this share's x-coordinate, 1..total
//	threshold:         t, the number of share files needed
//	total:             n, the number of share files made
//	commitment:        base64 of [Commitment.Marshal]
//	share:             base64 of the 32-byte share scalar (secret: keep the file private)
//	size:              the plaintext size in bytes
//	ciphertext-sha256: 64 lowercase hex digits, SHA-256 of the ciphertext
//
// An empty line ends the header; the ciphertext follows in standard base64,
// 64 characters a line, the last line padded. Numbers are plain decimal.
// Parsing is strict: unknown, missing, repeated or reordered keys are
// refused, and so is any byte that [FileHeader.Marshal] would not have
// written (edited comments included), so each share file has exactly one
// encoding.
//
// [SplitFile] reads its input twice, because the header, which comes first,
// holds the size and hash of the ciphertext. Both passes encrypt under the
// same key and nonces; only the second pass's ciphertext is written, and it
// must hash to what the first pass found, or SplitFile fails (the input
// changed while it was read).
//
// # Errors
//
// Every error starts with "shares: " and says what to do next. Callers
// decide with [errors.Is] on [ErrTooFewShares], [ErrMismatchedSplit],
// [ErrInvalidIndex], [ErrAuthentication] and [ErrTruncated], and with
// [errors.As] on [*DuplicateIndexError], [*InconsistentShareError],
// [*MismatchedSplitError], [*AuthenticationError], [*TruncatedError] and
// [*CiphertextFormatError], which name the share at fault by its index.
package shares

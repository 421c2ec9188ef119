// Package escrow holds keyquorum's protocol objects and every check on
// them: session contexts, escrow envelopes, messaging sessions, warrants,
// decryption requests, partial decryptions, and [Combine]. It does no I/O;
// randomness is a parameter.
//
// # Envelopes: an escrow field a recipient can check
//
// A session key K is sealed to the recipient with HPKE (RFC 9180) and
// escrowed to the trustee group's epoch key X_e in an [Envelope] that is a
// deterministic function of K and the session's [Context]: r is a hash of K
// and the context, U = r·G, and K is wrapped under a key derived from
// r·X_e. The recipient, who learns K, recomputes the envelope and rejects
// the session if a single byte differs ([AcceptSession],
// [CheckEnvelope]). This closes the hole in the Clipper chip's Law
// Enforcement Access Field, whose 16-bit checksum a sender could forge by
// brute force (Blaze 1994, "Protocol failure in the escrowed encryption
// standard", ACM CCS). Recipients also check that the session's claimed
// start time and epoch are current ([CheckSessionTiming]), because a
// genuine envelope for a false time could move a session out of any
// warrant's window.
//
// A Schnorr proof of knowledge of r, bound to the context and ciphertext
// (Schnorr 1991, J. Cryptology 4(3); Fiat–Shamir 1986), lets a trustee check
// that U belongs to this context without learning K. Without it, an
// investigator with a warrant for Alice could submit Bob's U under Alice's
// context.
//
// # Warranted decryption
//
// A [Warrant] is a note (golang.org/x/mod/sumdb/note) signed by one or more
// judges. A [DecryptionRequest] carries the warrant and the envelopes and
// is signed with q, the private half of the requester key Q that the
// warrant names. The signature stops requester-key substitution: with
// Q = U_B − U_A + q'·G a warrant for Alice would decrypt Bob's session.
// Each trustee answers with a [PartialDecryption] V_i = x_i·(U+Q) and a
// Chaum–Pedersen proof that it used its share (Chaum and Pedersen 1992,
// "Wallet databases with observers", CRYPTO '92). [Combine] checks every
// proof, names each trustee whose answer fails ([BadShareError]),
// interpolates t valid answers to x·(U+Q) = S + q·X_e, removes q·X_e, opens
// the wrapped key and confirms K by re-deriving U from it. No party ever
// holds x, and the answers are useless to anyone without q.
//
// # Batches
//
// A request of many sessions is answered per trustee with one
// [BatchAnswer]: V_j for every session and one composite DLEQ proof (RFC
// 9497, section 2.2.1; the soundness argument is next to the code in
// batch.go), made by [PartialDecryptBatch] with a [BatchKey]. A requester
// combines with a [Combiner], which computes q·X_e once per epoch and the
// Lagrange coefficients once per set of trustees, and whose
// [Combiner.CombineBatch] checks proofs only when a session fails to open.
// The per-session [PartialDecrypt] and [Combine] remain for single
// envelopes.
//
// # Arithmetic
//
// Envelopes, proofs, partial decryptions and combination compute with
// filippo.io/edwards25519 values from end to end: an [Envelope] holds U
// decoded once, an [EpochKey] holds X_e decoded once with a constant-time
// fixed-base table (internal/group's FixedBase), so that sealing costs three
// multiplications at base-point price (U, S and the proof's commitment). kyber remains where its
// share packages earn their place (DKG, resharing, Shamir polynomials), and
// the trustee's share x_i, its public share X_i and the requester key are
// kyber values that are converted once per call, or once per epoch in the
// batch API. The kyber computations these replaced are kept in the tests,
// which compare the two on random inputs; the test vectors are unchanged.
//
// # API shape
//
// A messaging client needs six names: [VerifyGroupFile], [GroupFile.EpochKey]
// (or [ParseEpochKey]), [StartSession], [AcceptSession],
// [CheckSessionTiming] and the [SessionKeys] methods. What we took from
// filippo.io/age's API, whose root package is its whole API:
//
//   - Keys are small opaque types parsed from their encodings and printed
//     back, as age's ParseX25519Recipient gives an *X25519Recipient with a
//     String method and never shows a curve type. [EpochKey] is that type for
//     X_e: [ParseEpochKey] and [EpochKey.Bytes], [EpochKey.String],
//     [EpochKey.ID]; no messenger-facing function takes or returns a kyber
//     type, so a client needs no group library of its own.
//   - Every wire object is a Parse/Marshal pair with one canonical encoding
//     ([ParseEnvelope], [ParseContext], [ParseBatchAnswer], ...), fuzzed so
//     that parse(marshal(x)) == x and marshal(parse(b)) == b, as age's
//     headers are not malleable.
//   - Errors are sentinels and a typed error a caller inspects with
//     errors.Is and errors.As (age's ErrIncorrectIdentity and
//     *NoIdentityMatchError; here [ErrEnvelopeMismatch], [*BadShareError],
//     joined when there are several).
//   - No global state and no default key path: the caller passes the epoch
//     key it chose, as age has no keyring.
//
// What we did not take: age's two one-method interfaces (Recipient.Wrap,
// Identity.Unwrap) exist so that new kinds of keys can plug in. Escrow has
// one kind of key and one envelope construction, and a recipient's check
// compares bytes with the one envelope K determines; a pluggable sealer
// would be a way to make envelopes that check differently, so there is no
// interface. And age keeps its root package small by moving armor, SSH keys
// and plugins to subpackages; escrow still also holds warrants, requests,
// partial decryptions and key files. A client uses none of them and they
// pull in nothing heavier than kyber and x/mod's note package, but a split
// (escrow for clients, another package for the warranted side) would be
// the next step toward age's shape. Unlike age, randomness is a parameter
// (an io.Reader), so that tests and vectors are reproducible.
//
// # Points from outside
//
// Every point read from outside (U, Q, V_i, keys) is decoded by
// internal/group, which accepts only canonical encodings of points in the
// prime-order subgroup that are not of small order. A torsion component in
// U or Q would otherwise leak x_i mod 8 through V_i.
//
// # What escrow cannot do
//
// Two users who both run modified clients can encrypt inside the channel,
// and no escrow field reaches them. And any t trustees who pool their shares
// can open every envelope of the epochs they hold, with no warrant at all.
package escrow

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

// Package ceremony runs the key ceremonies of a keyquorum trustee group:
// the dealerless key generation, rotations and reshares; the proposals
// that start them and the operators' approvals; the state each trustee
// keeps while one runs ([CeremonyHost]); and the relay that carries their
// messages ([RunDKG]). It holds no node: package trustee gives a host its
// store, its shares, its audit log and how to install a result.
//
// # The ceremonies
//
//   - A DKG makes a group's first epoch key: Pedersen's joint-Feldman DKG
//     (T. P. Pedersen, EUROCRYPT '91) as kyber's share/dkg/pedersen runs
//     it. Gennaro, Jarecki, Krawczyk and Rabin (J. Cryptology 2007) showed
//     that an active participant can bias the key's distribution; see
//     [Ceremony].
//   - A rotation is a DKG for the next epoch among the same roster
//     ([RotationProposal]).
//   - A reshare moves every epoch's key, unchanged, to a new roster and
//     threshold: the redistribution of Wong, Wang and Wing (2002), as
//     kyber's resharing does it; see [ReshareConfig].
//
// Each node announces a fresh DKG key for the ceremony in a note signed by
// its log key, checks every other announcement against the roster, keeps
// its ceremony state in its store after every step (a restarted node
// resumes), and installs the result only when every holder has signed the
// same group file ([escrow.VerifyGroupFile]). Whoever stops answering or
// deals badly is named and disqualified while the threshold of deals still
// qualifies; otherwise every node forgets the ceremony.
//
// # Who may start a ceremony
//
// A ceremony makes or moves the keys that open every session, so it needs
// the same kind of consent as a decryption. It starts from a [Proposal], a
// versioned signed note that fixes everything it will do: kind, current
// group (by hash), roster (by hash and members), threshold, epoch window
// and deadline. A trustee of the current group signs it (for a first DKG,
// a trustee of the roster), and each operator approves its exact text on
// their own node ([CeremonyHost.Approve]) over a channel the public API
// cannot reach. A node then takes part only in a ceremony whose parameters
// are that proposal's, before its deadline, once: calls that name no
// approved proposal are refused before anything is stored
// ([ErrNotApproved]). Trustees that did not approve take part under a key
// nobody holds, so only approving holders deal: a rotation or reshare can
// make or move a key only if at least t current holders approved, the
// same t-collusion limit as a decryption, no weaker.
//
// Approvals, completions, aborts and share erasures are audit records
// ([Event]) written before they take effect; a node that cannot write one
// installs and erases nothing.
//
// # Bounds without authentication
//
// A node's [Policy] caps a proposal's deadline (an hour ahead by default),
// its epoch length and how far ahead it may start, and how many approvals
// a node keeps. [Handler] answers at most a few calls at once, reads a
// body only as large as the largest approved roster needs, within a read
// deadline, and a host keeps only messages from participants, at most as
// many as the ceremony can send it.
package ceremony

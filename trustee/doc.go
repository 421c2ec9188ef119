// Package trustee is a keyquorum trustee node: it holds one share of each
// epoch's group key, decides decryption requests against its own policy,
// writes every decision to a tamper-evident audit log before any key share
// leaves, and answers with partial decryptions the requester can verify.
//
// # What a node decides
//
// A request is granted only if, in this order: it parses; its warrant is
// signed by enough judges this node trusts and is valid now; the warrant's
// session window and validity are within this node's limits; the request is
// signed by the requester key the warrant names; the signing judges are
// under this node's rate limit; every envelope's proof holds under a key
// this node still holds, its context is in the warrant's scope (and, in
// prospective-only mode, started after the warrant became valid); and the
// sessions released under this warrant, counted across all its requests,
// stay within both the warrant's and the policy's cap. A request is granted
// or refused whole: a single out-of-scope envelope refuses all of it, so a
// requester cannot probe the scope one session at a time without each probe
// being logged as a refusal.
//
// # Fail closed
//
// The decision record is appended to the audit log first; only if that
// append succeeds are partial decryptions computed and returned. A node that
// cannot log cannot release.
//
// # Witnessed release
//
// Each node is also a C2SP tlog-witness of the other trustees' logs
// ([NewGroupWitness], its state in the node store: [Store.WitnessStore]),
// and releases shares only under a checkpoint that w of them cosigned
// ([Witnesses], [Node.SetWitnesses]; w is the group file's witness
// quorum, by default t−1). A node that cannot gather w cosignatures
// refuses with [CodeWitnessQuorum] and releases nothing; requesters
// ([Decrypt], [CheckCosigned]), transcripts and auditors ([Audit], which
// also asks every witness for the latest checkpoint it cosigned) hold the
// trustees to the cosigned checkpoints. [escrow.GroupFile.Witnesses]
// says why t−1.
//
// # Answers in batches
//
// A granted request of m sessions is answered with one
// [escrow.BatchAnswer] per epoch: the m values V_j = x_i·(U_j+Q) and one
// composite DLEQ proof bound to the trustee, the request id and the epoch
// (RFC 9497 section 2.2.1; the soundness argument is in package escrow).
// The requester ([Decrypt]) checks the proofs of the first t valid
// answers, one multi-scalar multiplication each, and more only to replace
// one that fails, naming its trustee; it combines every session from t
// proven answers with one set of Lagrange coefficients and confirms each
// key by re-deriving the envelope. A warrant over more sessions than one
// request carries is sent in several ([DecryptOptions.ChunkSessions]).
//
// # What the audit log makes public
//
// Every record is meant to be published (keyquorum audit report). A
// record holds: the time, the decision and, for a refusal, its code and
// message; the warrant's id and the SHA-256 of the signed warrant; the
// names of the judges whose signatures were accepted; the requester's
// public key; the ids of the sessions released; the epoch for a share
// destruction; and a reference to the case keyed by the warrant
// ([CaseRefHash]), which only holders of the warrant can check. It never
// holds the case text, the warrant's purpose or targets, session keys,
// shares or message contents. What stays visible is volume and timing:
// how often each judge's warrants are used, and how many sessions each
// releases. That is the point of a transparency log.
//
// # Epochs and retention
//
// Each epoch has its own group key. [Node.DestroyEpochsBefore] erases the
// shares of past epochs and logs that it did; after every trustee has done
// so, no coalition of trustees, however large, can open those sessions.
//
// # Key ceremonies and the control channel
//
// Nobody deals the group keys: the trustees make them among themselves
// with package [ceremony], whose host a node serves on its API. A node
// takes part only in a ceremony whose proposal its own operator approved
// over the node's control channel ([ListenControl], a Unix socket in the
// node's directory that only its owner can open; drand's local control
// port is the model), which the public API cannot reach. The same channel
// serves the node's status ([Node.Status]) and signs the proposals its
// operator writes. Approvals, completions, aborts and share erasures are
// audit records ([Node.RecordCeremony]) written before they take effect.
//
// # Backups and the witnesses' word
//
// [WriteBackup] copies a node (its store from one read transaction, secrets
// still sealed, and its small files) into one versioned, checksummed file,
// while the node serves; [RestoreBackup] checks the file whole and puts it
// in place, marking the store restored ([Store.Restored]). A store cannot
// tell that it is an old copy of itself, checkpoint included; the other
// trustees' witnesses can. Before it signs anything a node asks them for
// the latest checkpoint of its log they cosigned ([CheckWitnesses],
// [PathWitnessLatest]) and refuses to serve a log behind it
// ([ErrBehindWitnesses]); a restored store must hear from
// enough of them (n − w) to be sure.
//
// # TLS keys and their pins
//
// Clients reach a node over TLS with the certificate's key pinned in the
// signed group file, not vouched for by any CA. [Vault.RotateTLS] gives a
// node a new key and returns a [PinUpdate] ("old pin, new pin"), which the
// node signs with its log key, the key the group file already lists for
// it; [OpenPinUpdate] checks one against the group file a client trusts,
// and [ApplyPinUpdate] makes the next group file, which every trustee
// signs. Until a client has that file, it refuses the node
// ([ErrPinMismatch]).
//
// # What a node cannot prevent
//
// Any t trustees that pool their shares can decrypt every envelope of every
// epoch they still hold, with no warrant and no log entry anywhere. The
// threshold turns "one key opens everything" into "t organisations must
// collude to open everything"; it does not make collusion impossible.
package trustee

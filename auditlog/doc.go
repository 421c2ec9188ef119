// Package auditlog is a trustee's public audit log: the records it
// writes for every decision and key event, the Merkle tree over them, its
// signed checkpoints, and the proofs and checks that let requesters and
// auditors hold the trustee to it.
//
// # Records
//
// A [Record] is one line of canonical JSON holding codes, ids, hashes and
// epochs only: never text that came with a request (targets, user names,
// refusal messages). [ParseRecord] accepts exactly what [Record.Marshal]
// writes, so each record has one leaf hash.
//
// # Checkpoints
//
// Tree heads are C2SP tlog-checkpoints (https://c2sp.org/tlog-checkpoint)
// in C2SP signed notes (https://c2sp.org/signed-note), made and parsed by
// github.com/transparency-dev/formats/log over golang.org/x/mod/sumdb/note.
// The origin is the log key's name (for trustee-1, "trustee-1.keyquorum"),
// unique within a group because trustee names are. Any C2SP verifier
// checks them; [VerifyCheckpoint] is the one keyquorum uses.
//
// That library was chosen over filippo.io/torchwood because it is small
// (the checkpoint and cosignature formats only; torchwood brings an SQLite
// witness, a bastion and their dependencies with it), is what other C2SP
// witnesses build on, and works with the Go this project pins.
//
// # Never a fork
//
// A [Log] stores the checkpoint it signs in the same atomic [Store.Append]
// as the records it covers, checks the store against it when it opens and
// before every signature, and refuses ([ErrWouldFork]) to sign anything
// that does not extend it. See [Log].
//
// # Group commit
//
// Appends that arrive while a commit is being synced share the next one:
// one checkpoint and one fsync for the lot, each caller answered only once
// its own record is durable ([Log.Append], [DefaultMaxBatch]).
//
// # Proofs
//
// Inclusion and consistency proofs are RFC 6962's, computed and checked
// by golang.org/x/mod/sumdb/tlog ([VerifyInclusion], [VerifyConsistency]).
package auditlog

package trustee

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/keyquorum/keyquorum/auditlog"
	fmtnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// # Learning from the witnesses before signing
//
// A store can show that it was rewritten under its own checkpoint, but not
// that it is an old copy of itself, checkpoint included: an old backup put
// back is consistent in itself. The witnesses can show it: each keeps the
// latest checkpoint of the log it cosigned. So before a node signs
// anything it asks the other trustees' witnesses for that checkpoint
// ([PathWitnessLatest], [CheckWitnesses]) and refuses to serve from a log
// that is behind it or does not extend it ([ErrBehindWitnesses]): signing
// from there would fork the log.
//
// A node restored from a backup ([Store.Restored]) must hear from enough
// witnesses before it serves; any other node asks the witnesses it can
// reach at start-up and goes on when none answers (they may be starting
// too). An operator who must start a restored node without its witnesses
// overrides the check explicitly, with a reason that the node logs.

// PathWitnessLatest is the endpoint of a trustee's witness that returns
// the latest checkpoint it cosigned of a log: GET with ?origin=<origin>,
// 200 with the checkpoint as the log signed it followed by the witness's
// cosignature line (text/plain), 404 with
// code [CodeNoCheckpoint] when it cosigned none of that log.
const PathWitnessLatest = "/v1/witness/latest"

// CodeNoCheckpoint is the API error code of a witness that has cosigned
// no checkpoint of the log asked about.
const CodeNoCheckpoint = "no-checkpoint"

// handleWitnessLatest serves [PathWitnessLatest] from the server's witness.
func (s *Server) handleWitnessLatest(w *statusWriter, r *http.Request) {
	wit := s.witness.Load()
	if wit == nil {
		s.writeError(w, http.StatusNotFound, CodeNotFound, "this trustee does not run a witness")
		return
	}
	origin := r.URL.Query().Get("origin")
	// The checkpoint as the log signed it, and this witness's
	// cosignature of it: an auditor verifies both.
	b, err := wit.Checkpoint(origin)
	switch {
	case errors.Is(err, auditlog.ErrUnknownLog):
		s.writeError(w, http.StatusNotFound, CodeNoCheckpoint, fmt.Sprintf("this witness does not witness the log %q", truncateForLog(origin)))
	case errors.Is(err, auditlog.ErrNotWitnessed):
		s.writeError(w, http.StatusNotFound, CodeNoCheckpoint, fmt.Sprintf("this witness has cosigned no checkpoint of %q yet", truncateForLog(origin)))
	case err != nil:
		s.writeError(w, http.StatusInternalServerError, CodeInternal, err.Error())
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(b)
	}
}

// ErrNoWitness: the trustee asked runs no witness (or an older version
// without [PathWitnessLatest]).
var ErrNoWitness = errors.New("trustee: the trustee runs no witness")

// WitnessLatest asks the trustee's witness for the latest checkpoint of
// the log origin it cosigned. It returns nil, nil when the witness has
// cosigned none, and an error wrapping [ErrNoWitness] when the trustee
// runs no witness. The checkpoint is not verified: check it with the
// log's key.
func (c *Client) WitnessLatest(ctx context.Context, origin string) ([]byte, error) {
	b, err := c.get(ctx, PathWitnessLatest, url.Values{"origin": {origin}})
	var ae *APIError
	switch {
	case err == nil:
		return b, nil
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound && ae.Code == CodeNoCheckpoint:
		return nil, nil
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s: %s", ErrNoWitness, c.member.Name, ae.Message)
	}
	return nil, err
}

// ErrBehindWitnesses: the node's audit log is behind (or not an extension
// of) a checkpoint of it that a witness cosigned: the store is an old copy
// (an old backup put back) or was rewritten. The node refuses to sign or
// serve from it. See [BehindWitnessesError].
var ErrBehindWitnesses = errors.New("trustee: the audit log is behind what its witnesses cosigned")

// BehindWitnessesError says how far behind the witnesses the log is. It
// matches [ErrBehindWitnesses] with errors.Is.
type BehindWitnessesError struct {
	Have     int64    // records in the node's log
	Want     int64    // size of the largest checkpoint a witness cosigned
	Witness  string   // a witness that holds it
	Forked   bool     // the log does not extend a checkpoint of a size it has
	Evidence [][]byte // the witnesses' checkpoints that the log does not extend
}

func (e *BehindWitnessesError) Is(target error) bool { return target == ErrBehindWitnesses }

func (e *BehindWitnessesError) Error() string {
	const todo = "restore the latest backup (keyquorum trustee restore --force --from FILE), keep this store as evidence, and never delete a witness's checkpoint to get past this: signing from this store would fork the log"
	if e.Forked {
		return fmt.Sprintf("trustee: refusing to serve: the audit log (%d records) does not extend the checkpoint of size %d that witness %s cosigned: the log was rewritten or is another copy; %s", e.Have, e.Want, e.Witness, todo)
	}
	return fmt.Sprintf("trustee: refusing to serve: the audit log holds %d records but witness %s cosigned a checkpoint of size %d: records %d to %d (sizes %d..%d) are missing, so this store is an old copy; %s", e.Have, e.Witness, e.Want, e.Have, e.Want-1, e.Have, e.Want, todo)
}

// ErrWitnessesUnreachable: fewer witnesses answered than the check
// needed. See [WitnessesUnreachableError].
var ErrWitnessesUnreachable = errors.New("trustee: not enough witnesses answered")

// WitnessesUnreachableError names the witnesses that did not answer.
type WitnessesUnreachableError struct {
	Answered, Need int
	Missing        []string // "name: why"
}

func (e *WitnessesUnreachableError) Is(target error) bool { return target == ErrWitnessesUnreachable }

func (e *WitnessesUnreachableError) Error() string {
	return fmt.Sprintf("trustee: refusing to serve a restored store: %d of the %d witnesses it needs answered (%s); it cannot know it is not behind what the federation saw of its log. Start it again when they are up, or, knowing the risk of signing a fork, pass --override-witness-check with a reason", e.Answered, e.Need, strings.Join(e.Missing, "; "))
}

// WitnessReport is what [CheckWitnesses] learned.
type WitnessReport struct {
	Size     int64    // records in the node's log
	Latest   int64    // largest size a witness cosigned (0 if none)
	Answered []string // witnesses that answered
	Missing  []string // "name: why" for the others
}

// CheckWitnesses asks each witness for the latest checkpoint of the log
// in store (signed by the key verifier holds) that it cosigned, and checks
// that the log extends every one. It returns an error wrapping
// [ErrBehindWitnesses] when the log is behind or forked from one of them,
// and then, if fewer than need witnesses answered, one wrapping
// [ErrWitnessesUnreachable]. A witness that answers with a checkpoint the
// log's key did not sign is counted as not answering. It signs nothing
// and changes nothing in store.
func CheckWitnesses(ctx context.Context, store AuditStore, verifier note.Verifier, witnesses []*Client, need int) (*WitnessReport, error) {
	rep := &WitnessReport{}
	var local tlog.Tree
	local.Hash, _ = tlog.TreeHash(0, nil)
	if cp, err := store.Checkpoint(); err != nil {
		return nil, fmt.Errorf("trustee: reading the stored checkpoint: %w", err)
	} else if cp != nil {
		if local, err = VerifyHead(cp, verifier); err != nil {
			return nil, fmt.Errorf("%w: the stored checkpoint: %w", ErrAuditStoreCorrupt, err)
		}
	}
	rep.Size = local.N
	type answer struct {
		name string
		cp   []byte
		err  error
	}
	answers := make([]answer, len(witnesses))
	var wg sync.WaitGroup
	for i, c := range witnesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp, err := c.WitnessLatest(ctx, verifier.Name())
			answers[i] = answer{name: c.member.Name, cp: cp, err: err}
		}()
	}
	wg.Wait()
	var behind *BehindWitnessesError
	for _, a := range answers {
		if a.err != nil {
			rep.Missing = append(rep.Missing, fmt.Sprintf("%s: %v", a.name, a.err))
			continue
		}
		if a.cp == nil {
			rep.Answered = append(rep.Answered, a.name)
			continue
		}
		tree, err := VerifyHead(a.cp, verifier)
		if err != nil {
			rep.Missing = append(rep.Missing, fmt.Sprintf("%s: its checkpoint does not verify: %v", a.name, err))
			continue
		}
		rep.Answered = append(rep.Answered, a.name)
		rep.Latest = max(rep.Latest, tree.N)
		var e *BehindWitnessesError
		if tree.N > local.N {
			e = &BehindWitnessesError{Have: local.N, Want: tree.N, Witness: a.name}
		} else if err := extends(store, local, tree); err != nil {
			e = &BehindWitnessesError{Have: local.N, Want: tree.N, Witness: a.name, Forked: true}
		}
		if e != nil {
			if behind == nil || e.Want > behind.Want {
				e.Evidence = behind.evidence()
				behind = e
			}
			behind.Evidence = append(behind.Evidence, a.cp)
		}
	}
	slices.Sort(rep.Answered)
	if behind != nil {
		return rep, behind
	}
	if len(rep.Answered) < need {
		return rep, &WitnessesUnreachableError{Answered: len(rep.Answered), Need: need, Missing: rep.Missing}
	}
	return rep, nil
}

func (e *BehindWitnessesError) evidence() [][]byte {
	if e == nil {
		return nil
	}
	return e.Evidence
}

// extends checks, from the store's hashes, that local extends old.
func extends(store AuditStore, local, old tlog.Tree) error {
	var proof tlog.TreeProof
	if old.N > 0 && old.N < local.N {
		p, err := tlog.ProveTree(local.N, old.N, store)
		if err != nil {
			return err
		}
		proof = p
	}
	return VerifyConsistency(old, local, proof)
}

// WitnessCosigner returns the signer the node's witness cosigns other
// logs' checkpoints with: a C2SP tlog-cosignature/v1 key made from the
// node's log key, named like it.
func (id *Identity) WitnessCosigner() (note.Signer, error) {
	return fmtnote.NewSignerForCosignatureV1(id.logSignerKey)
}

package trustee

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keyquorum/keyquorum/auditlog"
	"github.com/keyquorum/keyquorum/escrow"
	fmtnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Witnessed release. A node releases shares only under a checkpoint of
// its log that covers the decision record and carries the C2SP
// tlog-cosignatures of w other trustees of its group (w from the group
// file, [escrow.GroupFile.Witnesses]). After committing the grant it sends
// its current checkpoint to every other trustee's witness at once (C2SP
// tlog-witness add-checkpoint, with a consistency proof from the size each
// witness cosigned last), and answers once w cosignatures are in; the
// answer's Head is the checkpoint with those cosignatures appended. If
// fewer than w come back, it answers [CodeWitnessQuorum] and releases
// nothing. Requests decided at the same time share one round: a round
// cosigns the log's head as it stands, which covers every record
// committed before it.
//
// A witness is a trustee's log key used as a tlog-cosignature/v1 key
// (github.com/transparency-dev/formats/note treats an Ed25519 note key so):
// its cosignatures sign "cosignature/v1" messages, which no checkpoint
// (whose first line is a trustee's origin) and no group file (JSON) can
// be, so one key serves both without one signature standing for another,
// and the group file's log keys are the witnesses' keys too.

// CodeWitnessQuorum is the refusal code of a node that could not get the
// checkpoint covering its decision cosigned by w other trustees. It is
// answered with 503 and is retryable: the grant is logged, and the same
// request sent again is answered under the same record, without counting
// again, once the witnesses answer.
const CodeWitnessQuorum = "witness-quorum"

// ErrWitnessQuorum is wrapped by the refusal of a node that could not
// gather w cosignatures; the *[WitnessQuorumError] says which witnesses
// failed and why.
var ErrWitnessQuorum = errors.New("trustee: the checkpoint covering this decision is not cosigned by enough other trustees, so nothing is released")

// WitnessQuorumError says which witnesses did not cosign a node's
// checkpoint, and why.
type WitnessQuorumError struct {
	Trustee string // the node whose checkpoint it was
	Size    int64  // the checkpoint's size
	Need    int    // w
	Got     []string
	Failed  map[string]string // witness name -> why
}

func (e *WitnessQuorumError) Error() string {
	var why []string
	for _, name := range sortedKeys(e.Failed) {
		why = append(why, name+": "+e.Failed[name])
	}
	return fmt.Sprintf("%v: %s's checkpoint of size %d has %d of the %d cosignatures needed (from %s); failed: %s. Nothing was released; retry the same request later. The operator of %s should check that these trustees are up and reachable from it, and read their witness logs if one refused the checkpoint",
		ErrWitnessQuorum, e.Trustee, e.Size, len(e.Got), e.Need, orNone(e.Got), strings.Join(why, "; "), e.Trustee)
}

func (e *WitnessQuorumError) Unwrap() error { return ErrWitnessQuorum }

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// DefaultCosignTimeout bounds one round of cosigning.
const DefaultCosignTimeout = 5 * time.Second

// Witnesses gathers the cosignatures of a node's checkpoints from the
// other trustees of its group. It is safe for concurrent use.
type Witnesses struct {
	self    string
	quorum  int
	peers   []witnessPeer
	timeout time.Duration

	round sync.Mutex // one round at a time
	last  []byte     // the last checkpoint cosigned by a quorum
	lastN int64

	mu    sync.Mutex
	known map[string]int64 // the size each witness last cosigned
}

type witnessPeer struct {
	name   string
	client *Client
	cosig  note.Verifier
}

// NewWitnesses returns the witnesses of trustee self in group g:
// clients[i] talks to g.Trustees[i] (self's entry is not used, and may be
// nil). Each witness's cosignatures are checked with its log key from the
// group file. With w = 0 ([escrow.GroupFile.Witnesses]) the node's
// checkpoints go out as they are.
func NewWitnesses(g *escrow.GroupFile, self string, clients []*Client) (*Witnesses, error) {
	if len(clients) != len(g.Trustees) {
		return nil, fmt.Errorf("trustee: %d clients for the %d trustees of the group", len(clients), len(g.Trustees))
	}
	ws := &Witnesses{self: self, quorum: g.Witnesses(), timeout: DefaultCosignTimeout, known: map[string]int64{}}
	for i, m := range g.Trustees {
		if m.Name == self {
			continue
		}
		v, err := CosignatureVerifier(m)
		if err != nil {
			return nil, err
		}
		if clients[i] == nil {
			continue // unreachable: counted as failing, never as cosigning
		}
		ws.peers = append(ws.peers, witnessPeer{name: m.Name, client: clients[i], cosig: v})
	}
	if len(ws.peers) < ws.quorum {
		return nil, fmt.Errorf("trustee: the group needs %d witnesses for %s, it can reach %d", ws.quorum, self, len(ws.peers))
	}
	return ws, nil
}

// CosignatureVerifier returns the verifier of a trustee's C2SP
// tlog-cosignature/v1 cosignatures: its log key, as a cosignature key.
func CosignatureVerifier(m escrow.GroupMember) (note.Verifier, error) {
	v, err := fmtnote.NewVerifierForCosignatureV1(m.LogKey)
	if err != nil {
		return nil, fmt.Errorf("trustee: %s's log key in the group file is not a witness key: %v", m.Name, err)
	}
	return v, nil
}

// CosignatureSigner returns the signer of a trustee's cosignatures, from
// the private key of its log ("PRIVATE+KEY+..."). The node's identity
// gives it as [Identity.WitnessCosigner].
func CosignatureSigner(logSignerKey string) (note.Signer, error) {
	s, err := fmtnote.NewSignerForCosignatureV1(logSignerKey)
	if err != nil {
		return nil, fmt.Errorf("trustee: making the witness key: %v", err)
	}
	return s, nil
}

// Quorum returns w.
func (ws *Witnesses) Quorum() int { return ws.quorum }

// cosign returns the log's current checkpoint cosigned by at least w
// witnesses, and its tree.
func (ws *Witnesses) cosign(log *AuditLog) ([]byte, tlog.Tree, error) {
	ws.round.Lock()
	defer ws.round.Unlock()
	head, err := log.Head()
	if err != nil {
		return nil, tlog.Tree{}, fmt.Errorf("%w: %w", ErrAuditFailed, err)
	}
	if ws.last != nil && ws.lastN == head.Tree.N && bytes.HasPrefix(ws.last, head.Note) {
		return ws.last, head.Tree, nil
	}
	// The round's context outlives the answer: witnesses still working
	// once w have cosigned finish (or time out) on their own, so that
	// every reachable witness holds the checkpoint for auditors.
	ctx, cancel := context.WithTimeout(context.Background(), ws.timeout)
	var wg sync.WaitGroup
	defer func() { go func() { wg.Wait(); cancel() }() }()
	type result struct {
		name string
		line []byte
		err  error
	}
	results := make(chan result, len(ws.peers))
	for _, p := range ws.peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			line, err := ws.ask(ctx, p, log, head)
			if err == nil {
				_, err = note.Open(append(bytes.Clone(head.Note), line...), note.VerifierList(p.cosig))
				if err != nil {
					err = fmt.Errorf("its cosignature does not verify with its key from the group file: %v", err)
				}
			}
			results <- result{p.name, line, err}
		}()
	}
	qe := &WitnessQuorumError{Trustee: ws.self, Size: head.Tree.N, Need: ws.quorum, Failed: map[string]string{}}
	out := bytes.Clone(head.Note)
	for range ws.peers {
		if len(qe.Got) >= ws.quorum {
			break // the others finish on their own
		}
		r := <-results
		if r.err != nil {
			qe.Failed[r.name] = r.err.Error()
			continue
		}
		qe.Got = append(qe.Got, r.name)
		out = append(out, r.line...)
	}
	if len(qe.Got) < ws.quorum {
		return nil, tlog.Tree{}, qe
	}
	ws.last, ws.lastN = out, head.Tree.N
	return out, head.Tree, nil
}

// ask sends head to one witness, from the size it last cosigned; a
// witness that knows another size (409) is asked once more from it.
func (ws *Witnesses) ask(ctx context.Context, p witnessPeer, log *AuditLog, head SignedHead) ([]byte, error) {
	ws.mu.Lock()
	old := ws.known[p.name]
	ws.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if old > head.Tree.N {
			return nil, fmt.Errorf("it has cosigned a checkpoint of size %d of this log, larger than the log's %d: this log was rolled back (an old backup restored?); restore the latest backup", old, head.Tree.N)
		}
		proof, err := log.ConsistencyProof(old, head.Tree.N)
		if err != nil {
			return nil, err
		}
		line, err := p.client.AddCheckpoint(ctx, auditlog.FormatAddCheckpoint(old, proof, head.Note))
		var conflict *auditlog.WitnessConflictError
		if errors.As(err, &conflict) && attempt == 0 {
			old = conflict.Known
			continue
		}
		if err != nil {
			return nil, err
		}
		ws.mu.Lock()
		if head.Tree.N > ws.known[p.name] {
			ws.known[p.name] = head.Tree.N
		}
		ws.mu.Unlock()
		return line, nil
	}
}

// SetWitnesses makes the node release shares only under checkpoints ws
// gathered w cosignatures for; nil releases them under the node's own
// signature only (a requester of a group with w ≥ 1 then refuses them).
// A node whose group changes (a reshare) is given the new witnesses.
func (n *Node) SetWitnesses(ws *Witnesses) { n.witnesses.Store(ws) }

// witnessed replaces the answer's checkpoint by one cosigned by w other
// trustees, with the record's inclusion proof in it, or refuses with
// [CodeWitnessQuorum]. The caller releases nothing on a refusal.
func (n *Node) witnessed(ans *Answer) *RefusalError {
	ws := n.witnesses.Load()
	if ws == nil || ws.quorum == 0 {
		return nil
	}
	cosigned, tree, err := ws.cosign(n.log)
	if err != nil {
		if errors.Is(err, ErrAuditFailed) {
			return n.refuse(CodeAuditUnavailable, err)
		}
		return n.refuse(CodeWitnessQuorum, err)
	}
	if tree.N <= ans.RecordIndex {
		return n.refuse(CodeAuditUnavailable, fmt.Errorf("%w: the cosigned checkpoint of size %d does not cover record %d", ErrAuditFailed, tree.N, ans.RecordIndex))
	}
	proof, err := n.log.InclusionProof(ans.RecordIndex, tree.N)
	if err != nil {
		return n.refuse(CodeAuditUnavailable, fmt.Errorf("%w: %w", ErrAuditFailed, err))
	}
	ans.Head, ans.Proof = cosigned, proof
	return nil
}

// ErrTooFewCosignatures: a trustee's answer came under a checkpoint that
// fewer than w other trustees of the group cosigned. The requester does
// not use it: that release could be hidden from auditors by the
// trustee's operator alone (or with fewer than w witnesses).
var ErrTooFewCosignatures = errors.New("trustee: the answer's checkpoint is not cosigned by enough other trustees")

// CosignatureError is the requester's refusal of an answer whose
// checkpoint lacks w valid cosignatures of other trustees.
type CosignatureError struct {
	Trustee string   // whose answer
	Need    int      // w
	Valid   []string // the other trustees whose cosignatures verified
	Bad     string   // a cosignature that names a witness but does not verify, if any
}

func (e *CosignatureError) Error() string {
	msg := fmt.Sprintf("%v: %s's checkpoint carries %d valid cosignatures of other trustees (%s), the group file requires %d; its answer was not used",
		ErrTooFewCosignatures, e.Trustee, len(e.Valid), orNone(e.Valid), e.Need)
	if e.Bad != "" {
		msg += " (" + e.Bad + ")"
	}
	return msg
}

func (e *CosignatureError) Unwrap() error { return ErrTooFewCosignatures }

// CheckCosigned checks that the checkpoint signed, from trustee name of
// group g, carries valid C2SP tlog-cosignatures of at least w other
// trustees of g ([escrow.GroupFile.Witnesses]), checked with their keys
// from the group file. It returns the names of those that verified, or a
// *[CosignatureError]. The log's own signature is checked elsewhere
// ([VerifyHead]).
func CheckCosigned(g *escrow.GroupFile, name string, signed []byte) ([]string, error) {
	var vs []note.Verifier
	member := map[string]string{} // key name -> trustee name
	for _, m := range g.Trustees {
		if m.Name == name || m.LogKey == "" {
			continue
		}
		if v, err := CosignatureVerifier(m); err == nil {
			vs = append(vs, v)
			member[v.Name()] = m.Name
		}
	}
	e := &CosignatureError{Trustee: name, Need: g.Witnesses()}
	n, err := note.Open(signed, note.VerifierList(vs...))
	var invalid *note.InvalidSignatureError
	switch {
	case err == nil:
		for _, s := range n.Sigs {
			e.Valid = append(e.Valid, member[s.Name])
		}
	case errors.As(err, &invalid):
		e.Bad = fmt.Sprintf("the cosignature of %s does not verify", member[invalid.Name])
	}
	sort.Strings(e.Valid)
	e.Valid = slices.Compact(e.Valid)
	if len(e.Valid) < e.Need || e.Bad != "" {
		return e.Valid, e
	}
	return e.Valid, nil
}

// NewGroupWitness returns trustee self's witness for the logs of the
// other trustees of g (their log keys from the group file), cosigning
// with cosigner ([Identity.WitnessCosigner]) and keeping its state in store
// ([Store.WitnessStore] for a node).
func NewGroupWitness(g *escrow.GroupFile, self string, cosigner note.Signer, store auditlog.WitnessStore) (*auditlog.Witness, error) {
	var logs []note.Verifier
	for _, m := range g.Trustees {
		if m.Name == self || m.LogKey == "" {
			continue
		}
		v, err := note.NewVerifier(m.LogKey)
		if err != nil {
			return nil, fmt.Errorf("trustee: %s's log key in the group file: %v", m.Name, err)
		}
		logs = append(logs, v)
	}
	return auditlog.NewWitness(cosigner, logs, store)
}

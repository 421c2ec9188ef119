package trustee

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keyquorum/keyquorum/auditlog"
	"github.com/keyquorum/keyquorum/escrow"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Auditing trustees' logs: an auditor keeps, per trustee, the last signed head it checked (an
// [AuditState]). Each run ([Audit]) fetches every trustee's current head,
// checks its signature with the log key from the group file, asks for a
// consistency proof from the saved head to the new one, and fetches every
// record, recomputing the Merkle tree over them: the records verify against
// the signed head only if each one is exactly what the trustee committed.
// A trustee that rolled back, forked or rewrote its log is caught by the
// first check or the second; the two signed heads, or the head and the
// records, are the evidence.

// Audit outcomes of one trustee.
const (
	// AuditOK: the head verifies, extends the saved one, and every record
	// is included in it.
	AuditOK = "ok"
	// AuditForked: the head is validly signed but does not extend the head
	// saved last time (or is smaller): the trustee rewrote, rolled back or
	// forked its log. Both signed heads are kept as evidence.
	AuditForked = "forked"
	// AuditRewritten: the records the trustee serves are not the ones its
	// signed head commits to.
	AuditRewritten = "rewritten"
	// AuditBadHead: the head is not validly signed by the trustee's log key
	// (or the saved head no longer verifies with it).
	AuditBadHead = "bad-head"
	// AuditBadRecord: a record included in the signed log is malformed.
	AuditBadRecord = "bad-record"
	// AuditUnreachable: the trustee could not be asked.
	AuditUnreachable = "unreachable"
)

// AuditState is what an auditor remembers between runs: the last signed
// head it accepted from each trustee, by trustee name. Its file form is a
// JSON object {"trustee-1": {"size": N, "hash": "<base64>", "note": "<signed
// head>"}, ...}.
type AuditState map[string]SeenHead

// SeenHead is one saved head. Size and Hash repeat what Note says, for
// people reading the file; Note is what is checked.
type SeenHead struct {
	Size int64  `json:"size"`
	Hash string `json:"hash"`
	Note string `json:"note"`
}

// ParseAuditState decodes a state file. It checks that each entry's size
// and hash are the ones its note states; the note's signature is checked
// against the group file's log key by [Audit].
func ParseAuditState(b []byte) (AuditState, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s AuditState
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("trustee: audit state: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trustee: audit state: trailing data after the JSON object")
	}
	if s == nil {
		s = AuditState{}
	}
	for name, h := range s {
		tree, err := headTree([]byte(h.Note))
		if err != nil {
			return nil, fmt.Errorf("trustee: audit state: %s: %w", name, err)
		}
		if tree.N != h.Size || base64.StdEncoding.EncodeToString(tree.Hash[:]) != h.Hash {
			return nil, fmt.Errorf("trustee: audit state: %s: size and hash differ from the signed note's; the file was edited", name)
		}
	}
	return s, nil
}

// Marshal encodes the state as indented JSON, trustees in name order.
func (s AuditState) Marshal() ([]byte, error) {
	if s == nil {
		s = AuditState{}
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// headTree reads the tree a head note describes, without checking its
// signature.
func headTree(signed []byte) (tlog.Tree, error) {
	_, err := note.Open(signed, nil)
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return tlog.Tree{}, fmt.Errorf("%w: %v", ErrMalformedHead, err)
	}
	_, tree, err := auditlog.ParseCheckpointText(unverified.Note.Text)
	return tree, err
}

func seenHead(h []byte, tree tlog.Tree) SeenHead {
	return SeenHead{Size: tree.N, Hash: base64.StdEncoding.EncodeToString(tree.Hash[:]), Note: string(h)}
}

// TrusteeAudit is the outcome of auditing one trustee's log.
type TrusteeAudit struct {
	Index  int    `json:"index"`
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Size is the number of records under the head fetched now.
	Size int64 `json:"size"`
	// Head is the signed head fetched now, and SavedHead the one saved
	// before: for a fork, the two together prove it.
	Head      string `json:"head,omitempty"`
	SavedHead string `json:"saved_head,omitempty"`
	// Rewritten lists records whose inclusion proof fails (a record
	// altered next to another makes the other's proof fail too).
	Rewritten []int64 `json:"rewritten,omitempty"`
	// Witnessed lists, per other trustee's witness, the latest checkpoint
	// of this log it cosigned, each verified; the log's current
	// checkpoint must extend every one.
	Witnessed []WitnessedCheckpoint `json:"witnessed,omitempty"`
	Err       error                 `json:"-"`
}

// VerifiedLog is one trustee's whole log, every record verified against
// the signed head.
type VerifiedLog struct {
	Trustee string
	Index   int
	Tree    tlog.Tree
	Head    []byte
	Records []AuditRecord
	// Witnessed are the other trustees' latest cosigned checkpoints of
	// this log, each verified and extended by Head.
	Witnessed []WitnessedCheckpoint
}

// AuditResult is the outcome of [Audit].
type AuditResult struct {
	// Trustees has one entry per trustee, in roster order.
	Trustees []TrusteeAudit
	// State is the state to save: the new head of every trustee that
	// audited ok, the saved head of every other (so that evidence is not
	// overwritten), and entries for trustees not in the group kept as they
	// were.
	State AuditState
	// Logs are the verified logs of the trustees that audited ok.
	Logs []*VerifiedLog
}

// Failed returns the trustees whose logs are forked, rewritten or
// otherwise fail verification (not the unreachable ones).
func (r *AuditResult) Failed() []TrusteeAudit {
	var out []TrusteeAudit
	for _, t := range r.Trustees {
		if t.Status != AuditOK && t.Status != AuditUnreachable {
			out = append(out, t)
		}
	}
	return out
}

// AuditOptions tunes [Audit].
type AuditOptions struct {
	// Timeout bounds the whole audit of one trustee (default 2 minutes).
	Timeout time.Duration
	// Imported are other parties' states: checkpoints requesters kept
	// ([DecryptResult.Seen]) or witnesses cosigned. Each trustee's current
	// checkpoint must extend every one of them too; one it cannot prove
	// it extends makes the trustee [AuditForked], with that checkpoint as
	// SavedHead. They are not saved into the auditor's state.
	Imported []AuditState
	// NoWitnesses skips asking each trustee's witnesses (the other
	// trustees) for the latest checkpoint of its log they cosigned.
	NoWitnesses bool
}

// Audit checks every trustee's log against the heads in state (which may
// be empty: a first run trusts the heads it sees, then holds the trustees
// to them). clients[i] talks to g.Trustees[i]. Trustees are audited
// concurrently. The error is only for bad input; what the audit found is
// in the result.
func Audit(ctx context.Context, g *escrow.GroupFile, clients []*Client, state AuditState, opts AuditOptions) (*AuditResult, error) {
	if len(clients) != len(g.Trustees) {
		return nil, fmt.Errorf("trustee: %d clients for %d trustees in the group file", len(clients), len(g.Trustees))
	}
	for i, c := range clients {
		if c == nil || c.member.Name != g.Trustees[i].Name || c.member.Index != g.Trustees[i].Index {
			return nil, fmt.Errorf("trustee: client %d does not talk to %s", i, g.Trustees[i].Name)
		}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	res := &AuditResult{Trustees: make([]TrusteeAudit, len(clients)), State: AuditState{}}
	logs := make([]*VerifiedLog, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tctx, cancel := context.WithTimeout(ctx, opts.Timeout)
			defer cancel()
			saved, ok := state[c.member.Name]
			var others []SeenHead
			for _, st := range opts.Imported {
				if h, ok := st[c.member.Name]; ok {
					others = append(others, h)
				}
			}
			// The witnesses first: a checkpoint they cosign after the head
			// is read would be larger than it.
			vk, _ := note.NewVerifier(c.member.LogKey)
			var witnessed []WitnessedCheckpoint
			if vk != nil && !opts.NoWitnesses {
				witnessed, _ = gatherWitnessed(tctx, g, c.member, vk, clients)
			}
			res.Trustees[i], logs[i] = auditOne(tctx, c, saved, ok, others, witnessed)
		}()
	}
	wg.Wait()
	for name, h := range state {
		res.State[name] = h
	}
	for i, t := range res.Trustees {
		if t.Status == AuditOK {
			res.State[t.Name] = seenHead(logs[i].Head, logs[i].Tree)
			res.Logs = append(res.Logs, logs[i])
		}
	}
	return res, nil
}

func auditOne(ctx context.Context, c *Client, saved SeenHead, haveSaved bool, others []SeenHead, witnessed []WitnessedCheckpoint) (TrusteeAudit, *VerifiedLog) {
	m := c.member
	out := TrusteeAudit{Index: m.Index, Name: m.Name}
	if haveSaved {
		out.SavedHead = saved.Note
	}
	fail := func(status string, err error) (TrusteeAudit, *VerifiedLog) {
		out.Status, out.Err, out.Detail = status, err, err.Error()
		return out, nil
	}
	verifier, err := note.NewVerifier(m.LogKey)
	if err != nil {
		return fail(AuditBadHead, fmt.Errorf("the group file's audit log key for %s is missing or malformed: %v", m.Name, err))
	}
	head, err := c.Head(ctx)
	if err != nil {
		return fail(AuditUnreachable, err)
	}
	out.Head = string(head)
	tree, err := VerifyHead(head, verifier)
	if err != nil {
		return fail(AuditBadHead, err)
	}
	out.Size = tree.N
	if haveSaved {
		if err := checkExtends(ctx, c, verifier, []byte(saved.Note), tree); err != nil {
			return fail(extendsStatus(err), err)
		}
	}
	for _, h := range others {
		if err := checkExtends(ctx, c, verifier, []byte(h.Note), tree); err != nil {
			out.SavedHead = h.Note
			return fail(extendsStatus(err), fmt.Errorf("against a checkpoint from an imported state: %w", err))
		}
	}
	out.Witnessed = witnessed
	for _, w := range witnessed {
		if err := checkExtends(ctx, c, verifier, []byte(w.Checkpoint), tree); err != nil {
			out.SavedHead = w.Checkpoint
			return fail(extendsStatus(err), fmt.Errorf("against the checkpoint %s's witness cosigned (size %d): %w", w.Witness, w.Size, err))
		}
	}
	records, err := fetchRecords(ctx, c, tree.N)
	if err != nil {
		return fail(AuditUnreachable, err)
	}
	root, err := rootOf(records)
	if err != nil {
		return fail(AuditRewritten, err)
	}
	if root != tree.Hash {
		bad, err := locateRewritten(ctx, c, tree, records)
		out.Rewritten = bad
		detail := fmt.Errorf("%w: the %d records %s serves do not hash to its signed head of size %d", ErrBadInclusion, len(records), m.Name, tree.N)
		if len(bad) > 0 {
			detail = fmt.Errorf("%w; records failing their inclusion proofs: %s", detail, formatIndexes(bad))
		} else if err != nil {
			detail = fmt.Errorf("%w; locating them failed: %v", detail, err)
		}
		return fail(AuditRewritten, detail)
	}
	vl := &VerifiedLog{Trustee: m.Name, Index: m.Index, Tree: tree, Head: head, Records: make([]AuditRecord, len(records)), Witnessed: witnessed}
	for i, b := range records {
		r, err := ParseAuditRecord(b)
		if err != nil {
			return fail(AuditBadRecord, fmt.Errorf("record %d is signed into the log but malformed: %w", i, err))
		}
		vl.Records[i] = r
	}
	out.Status = AuditOK
	return out, vl
}

func fetchRecords(ctx context.Context, c *Client, n int64) ([][]byte, error) {
	out := make([][]byte, 0, n)
	for start := int64(0); start < n; start += MaxRecordsPerRequest {
		end := min(start+MaxRecordsPerRequest, n)
		rs, err := c.Records(ctx, start, end)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// auditHashes is an in-memory [tlog.HashReader] over hashes computed here.
type auditHashes []tlog.Hash

func (h auditHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(h)) {
			return nil, fmt.Errorf("trustee: hash %d not computed", x)
		}
		out[i] = h[x]
	}
	return out, nil
}

// rootOf computes the Merkle tree hash over records, in linear time.
func rootOf(records [][]byte) (tlog.Hash, error) {
	var hs auditHashes
	for i, r := range records {
		more, err := tlog.StoredHashes(int64(i), r, hs)
		if err != nil {
			return tlog.Hash{}, err
		}
		hs = append(hs, more...)
	}
	return tlog.TreeHash(int64(len(records)), hs)
}

// maxLocated bounds how many rewritten records are located one proof at a
// time.
const maxLocated = 20

// locateRewritten asks for the inclusion proof of each record until it has
// found maxLocated that fail.
func locateRewritten(ctx context.Context, c *Client, tree tlog.Tree, records [][]byte) ([]int64, error) {
	var bad []int64
	for i, r := range records {
		proof, err := c.Inclusion(ctx, int64(i), tree.N)
		if err != nil {
			return bad, err
		}
		if VerifyInclusion(tree, int64(i), r, proof) != nil {
			bad = append(bad, int64(i))
			if len(bad) == maxLocated {
				break
			}
		}
	}
	return bad, nil
}

func formatIndexes(xs []int64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprint(x))
	}
	if len(xs) == maxLocated {
		s = append(s, "...")
	}
	return strings.Join(s, ", ")
}

// DecisionCounts counts decisions in a transparency report.
type DecisionCounts struct {
	Granted int `json:"granted"`
	Refused int `json:"refused"`
	// RefusedByCode splits Refused by refusal code.
	RefusedByCode map[string]int `json:"refused_by_code,omitempty"`
	// SessionsReleased counts the sessions of granted decisions (a session
	// released twice counts twice).
	SessionsReleased int `json:"sessions_released"`
}

func (d *DecisionCounts) add(r AuditRecord) {
	switch r.Decision {
	case AuditGranted:
		d.Granted++
		d.SessionsReleased += len(r.Sessions)
	case AuditRefused:
		d.Refused++
		if d.RefusedByCode == nil {
			d.RefusedByCode = map[string]int{}
		}
		code := "unknown"
		if r.Refusal != nil {
			code = r.Refusal.Code
		}
		d.RefusedByCode[code]++
	}
}

// NoJudge is the judge name a transparency report files a decision under
// when no trusted judge's signature verified (for example a warrant signed
// by an unknown judge).
const NoJudge = "(no trusted judge)"

// TrusteeReport is one trustee's public transparency report.
type TrusteeReport struct {
	Name    string `json:"name"`
	Index   int    `json:"index"`
	Records int64  `json:"records"`
	Head    string `json:"head"`
	// Totals counts every decision in the log.
	Totals DecisionCounts `json:"totals"`
	// ByJudge counts decisions per signing judge (a warrant signed by two
	// judges counts for each), ByMonth per calendar month ("2026-05", UTC).
	ByJudge map[string]*DecisionCounts `json:"by_judge"`
	ByMonth map[string]*DecisionCounts `json:"by_month"`
	// DistinctSessions counts the different sessions ever released.
	DistinctSessions int `json:"distinct_sessions"`
	// EpochsDestroyed lists the epochs whose share the trustee logged
	// destroying.
	EpochsDestroyed []uint64 `json:"epochs_destroyed,omitempty"`
	// Ceremonies lists the key-ceremony events in the log, in order:
	// approvals, completions, aborts and share erasures.
	Ceremonies []CeremonyEvent `json:"ceremonies,omitempty"`
}

// CeremonyEvent is a ceremony record in a transparency report.
type CeremonyEvent struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Ceremony string    `json:"ceremony"`
	Epochs   []uint32  `json:"epochs,omitempty"`
	Group    string    `json:"group,omitempty"`
	Code     string    `json:"code,omitempty"`
}

// TransparencyReport summarises verified audit logs for the public: what
// each trustee decided, for which judges, month by month. It holds no more
// than the logs do: no case text, no plaintext, no key.
type TransparencyReport struct {
	Trustees []TrusteeReport `json:"trustees"`
}

// Report builds the transparency report of verified logs.
func Report(logs []*VerifiedLog) *TransparencyReport {
	rep := &TransparencyReport{Trustees: []TrusteeReport{}}
	for _, l := range logs {
		tr := TrusteeReport{
			Name: l.Trustee, Index: l.Index, Records: l.Tree.N, Head: string(l.Head),
			ByJudge: map[string]*DecisionCounts{}, ByMonth: map[string]*DecisionCounts{},
		}
		distinct := map[string]bool{}
		for _, r := range l.Records {
			switch r.Kind {
			case AuditKindShareDestroyed:
				tr.EpochsDestroyed = append(tr.EpochsDestroyed, r.Epoch)
				continue
			case AuditKindDecision:
			default:
				if c := r.Ceremony; c != nil {
					tr.Ceremonies = append(tr.Ceremonies, CeremonyEvent{Time: r.Time, Kind: r.Kind, Ceremony: c.ID, Epochs: c.Epochs, Group: c.Group, Code: c.Code})
				}
				continue
			}
			tr.Totals.add(r)
			judges := r.Judges
			if len(judges) == 0 {
				judges = []string{NoJudge}
			}
			for _, j := range judges {
				if tr.ByJudge[j] == nil {
					tr.ByJudge[j] = &DecisionCounts{}
				}
				tr.ByJudge[j].add(r)
			}
			month := r.Time.UTC().Format("2006-01")
			if tr.ByMonth[month] == nil {
				tr.ByMonth[month] = &DecisionCounts{}
			}
			tr.ByMonth[month].add(r)
			if r.Decision == AuditGranted {
				for _, s := range r.Sessions {
					distinct[s] = true
				}
			}
		}
		tr.DistinctSessions = len(distinct)
		rep.Trustees = append(rep.Trustees, tr)
	}
	sort.Slice(rep.Trustees, func(i, j int) bool { return rep.Trustees[i].Index < rep.Trustees[j].Index })
	return rep
}

// errSavedHead marks a saved checkpoint that does not verify.
var errSavedHead = errors.New("trustee: saved checkpoint does not verify")

// checkExtends checks that tree, which c's trustee signed just now,
// extends the checkpoint old that someone kept from before (an auditor's
// state, a requester's state file, a witness), asking the trustee for the
// consistency proof. Its error wraps [ErrLogForked] or [ErrLogShrank] for
// a fork, errSavedHead when old does not verify with the trustee's log
// key, and is a transport error otherwise; see extendsStatus.
func checkExtends(ctx context.Context, c *Client, verifier note.Verifier, old []byte, tree tlog.Tree) error {
	m := c.member
	oldTree, err := VerifyHead(old, verifier)
	if err != nil {
		return fmt.Errorf("%w: the checkpoint kept for %s does not verify with its log key in the group file (was the key changed, or the file edited?): %w", errSavedHead, m.Name, err)
	}
	var proof tlog.TreeProof
	if oldTree.N > 0 && oldTree.N <= tree.N {
		if proof, err = c.Consistency(ctx, oldTree.N, tree.N); err != nil {
			var api *APIError
			if errors.As(err, &api) && api.Status < 500 {
				// A trustee that cannot prove its own checkpoint extends
				// the one it signed before has no such proof.
				return fmt.Errorf("%w: %s cannot prove size %d extends size %d: %v", ErrLogForked, m.Name, tree.N, oldTree.N, err)
			}
			return err
		}
	}
	if err := VerifyConsistency(oldTree, tree, proof); err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	return nil
}

// extendsStatus is the audit status for an error of checkExtends.
func extendsStatus(err error) string {
	switch {
	case errors.Is(err, ErrLogForked), errors.Is(err, ErrLogShrank):
		return AuditForked
	case errors.Is(err, errSavedHead):
		return AuditBadHead
	}
	return AuditUnreachable
}

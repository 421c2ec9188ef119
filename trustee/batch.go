package trustee

import (
	"fmt"
	"sort"

	"github.com/keyquorum/keyquorum/escrow"
	"go.dedis.ch/kyber/v3"
)

// epochGroup is the envelopes of a request that are of one epoch, with
// their positions in the request.
type epochGroup struct {
	epoch uint32
	at    []int
	envs  []*escrow.Envelope
}

// byEpoch splits a request's envelopes by epoch, epochs in the order each
// first appears, envelopes in request order: the layout of
// [Answer.Batches].
func byEpoch(envs []*escrow.Envelope) []epochGroup {
	var out []epochGroup
	slot := map[uint32]int{}
	for i, e := range envs {
		k, ok := slot[e.Context.Epoch]
		if !ok {
			k = len(out)
			slot[e.Context.Epoch] = k
			out = append(out, epochGroup{epoch: e.Context.Epoch})
		}
		out[k].at = append(out[k].at, i)
		out[k].envs = append(out[k].envs, e)
	}
	return out
}

// Sessions returns how many sessions the answer's batches cover.
func (a *Answer) Sessions() int {
	n := 0
	for _, b := range a.Batches {
		n += b.Len()
	}
	return n
}

// answer computes the partial decryptions of a logged grant: per epoch,
// one batch of V_j = x_i·(U_j+Q) with one composite DLEQ proof bound to
// this trustee, the request and the epoch ([escrow.PartialDecryptBatch]).
// held is the share of each envelope's epoch, in request order; every
// copy is zeroed before answer returns. It computes nothing until the
// checkpoint covering the grant is cosigned by the group's witness quorum
// ([Node.SetWitnesses]).
func (n *Node) answer(ans *Answer, d *decision, held []kyber.Scalar) (*Answer, error) {
	defer func() {
		for _, s := range held {
			s.Zero()
		}
	}()
	// Nothing leaves before w other trustees cosigned the checkpoint that
	// covers the grant.
	if r := n.witnessed(ans); r != nil {
		return nil, r
	}
	for _, g := range byEpoch(d.envs) {
		k, err := escrow.NewBatchKey(ans.Index, g.epoch, held[g.at[0]])
		if err != nil {
			return nil, n.refuse(CodeBadEnvelope, fmt.Errorf("trustee: epoch %d: %w", g.epoch, err))
		}
		b, err := escrow.PartialDecryptBatch(k, d.id, g.envs, d.warrant.Requester, n.rand)
		if err != nil {
			return nil, n.refuse(CodeBadEnvelope, err)
		}
		ans.Batches = append(ans.Batches, b)
	}
	return ans, nil
}

// checkBatches checks an answer's shape against the request: one batch
// per epoch, each from this trustee, for this request, over that epoch's
// sessions in request order. Its proofs are checked when it is combined.
func (j *decryptJob) checkBatches(ans *Answer) error {
	if len(ans.Batches) != len(j.byEpoch) {
		return fmt.Errorf("%w from %s: %d batches of partial decryptions for the %d epochs of the request", ErrBadAnswer, ans.Trustee, len(ans.Batches), len(j.byEpoch))
	}
	for k, g := range j.byEpoch {
		b := ans.Batches[k]
		switch {
		case b.Trustee != ans.Index || b.Epoch != g.epoch || b.RequestID != j.reqID:
			return fmt.Errorf("%w from %s: batch %d is trustee %d's for epoch %d and request %x; expected trustee %d, epoch %d, request %x",
				ErrBadAnswer, ans.Trustee, k, b.Trustee, b.Epoch, b.RequestID, ans.Index, g.epoch, j.reqID)
		case b.Len() != len(g.envs):
			return fmt.Errorf("%w from %s: batch %d answers %d sessions, the request has %d of epoch %d", ErrBadAnswer, ans.Trustee, k, b.Len(), len(g.envs), g.epoch)
		}
		for x, e := range g.envs {
			if b.Sessions[x] != e.Context.SessionID {
				return fmt.Errorf("%w from %s: batch %d's session %d is %s, expected %s", ErrBadAnswer, ans.Trustee, k, x, b.Sessions[x], e.Context.SessionID)
			}
		}
	}
	return nil
}

// combine decrypts every session from the verified answers, epoch by
// epoch. It checks the batch proofs of the first t answers (in arrival
// order; one multi-scalar multiplication each, in parallel), and more
// only to replace those that fail; then [escrow.Combiner.CombineBatch]
// combines every session from the t proven answers, with one set of
// Lagrange coefficients, and confirms each key by re-deriving its
// envelope. A trustee whose proof fails is named; an answer that was not
// needed is not checked (its entry says Used: false).
func (j *decryptJob) combine(answers []verifiedAnswer) (*DecryptResult, error) {
	res := &DecryptResult{
		Threshold:   j.g.Threshold,
		Trustees:    j.results,
		Keys:        make(map[escrow.SessionID][]byte, len(j.envs)),
		Unrecovered: map[escrow.SessionID]string{},
		Seen:        AuditState{},
	}
	for name, h := range j.opts.Seen {
		res.Seen[name] = h
	}
	for _, t := range j.results {
		// A granted answer's checkpoint verified and extends the one seen
		// before (checked in ask).
		if t.Status == StatusGranted && (res.Seen[t.Name].Note == "" || t.tree.N >= res.Seen[t.Name].Size) {
			res.Seen[t.Name] = seenHead([]byte(t.Head), t.tree)
		}
	}
	slotOf := map[int]int{} // trustee index -> roster slot
	for i, m := range j.g.Trustees {
		slotOf[m.Index] = i
	}
	type badTally struct {
		count  int
		reason string
	}
	bad := map[int]*badTally{} // by roster slot
	fails := make([]string, len(j.envs))
	keys := make([][]byte, len(j.envs))
	total, done := len(j.envs), 0
	for k, g := range j.byEpoch {
		failAll := func(why string) {
			for _, i := range g.at {
				fails[i] = why
			}
		}
		valid, refused := j.proven(k, g, answers)
		for slot, err := range refused {
			t := bad[slot]
			if t == nil {
				t = &badTally{reason: err.Error()}
				bad[slot] = t
			}
			t.count += len(g.envs)
		}
		if len(valid) < j.g.Threshold {
			failAll(fmt.Sprintf("only %d of the %d trustees needed answered validly", len(valid), j.g.Threshold))
			continue
		}
		c, err := escrow.NewCombiner(j.groups[g.epoch], j.key)
		if err != nil {
			failAll(err.Error())
			continue
		}
		batches := make([]*escrow.BatchAnswer, len(valid))
		for x, a := range valid {
			batches[x] = a.ans.Batches[k]
			j.results[a.slot].Used = true
		}
		r, err := c.CombineBatch(j.reqID, g.envs, batches)
		if err != nil {
			failAll(err.Error())
			continue
		}
		for x, i := range g.at {
			if r.Errs[x] != nil {
				fails[i] = r.Errs[x].Error()
			} else {
				keys[i] = r.Keys[x]
			}
		}
		done += len(g.envs)
		if j.opts.Progress != nil {
			j.opts.Progress(done, total)
		}
	}
	for i, e := range j.envs {
		if keys[i] != nil {
			res.Keys[e.Context.SessionID] = keys[i]
		} else {
			res.Unrecovered[e.Context.SessionID] = fails[i]
		}
	}
	slots := make([]int, 0, len(bad))
	for s := range bad {
		slots = append(slots, s)
	}
	sort.Ints(slots)
	usable := len(answers)
	for _, s := range slots {
		t := &res.Trustees[s]
		t.Status, t.Used = StatusCheated, false
		t.BadShares = bad[s].count
		t.Reason = fmt.Sprintf("%d of %d partial decryptions failed their proof (%s); those shares were dropped", t.BadShares, total, bad[s].reason)
		t.Err = &escrow.BadShareError{Trustee: t.Index, Reason: bad[s].reason}
		usable--
	}
	if len(res.Unrecovered) == 0 {
		return res, nil
	}
	refused := 0
	for _, t := range res.Trustees {
		if t.Status == StatusRefused {
			refused++
		}
	}
	return res, &QuorumError{
		Threshold:   j.g.Threshold,
		Usable:      usable,
		Trustees:    res.Trustees,
		Unrecovered: len(res.Unrecovered),
		Sessions:    total,
		Refused:     len(j.g.Trustees)-refused < j.g.Threshold,
	}
}

// proven checks the proofs of batch k of the answers, in arrival order,
// until t hold or none is left: each round checks, in parallel, as many
// as are still missing. It returns the answers whose proofs hold and,
// by roster slot, the error of each whose proof failed.
func (j *decryptJob) proven(k int, g epochGroup, answers []verifiedAnswer) ([]verifiedAnswer, map[int]error) {
	t := j.g.Threshold
	eg := j.groups[g.epoch]
	var valid []verifiedAnswer
	refused := map[int]error{}
	next := 0
	for len(valid) < t && next < len(answers) {
		round := answers[next:min(next+t-len(valid), len(answers))]
		next += len(round)
		errs := make([]error, len(round))
		parallel(len(round), len(round), func(x int) {
			a := round[x].ans
			Xi, ok := eg.PublicShares[a.Index]
			if !ok {
				errs[x] = fmt.Errorf("no public share for trustee %d in epoch %d", a.Index, g.epoch)
				return
			}
			errs[x] = a.Batches[k].Verify(Xi, j.reqID, g.envs, j.key.Public)
		})
		for x, err := range errs {
			if err != nil {
				refused[round[x].slot] = err
			} else {
				valid = append(valid, round[x])
			}
		}
	}
	return valid, refused
}

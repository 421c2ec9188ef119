package ceremony

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/retry"
)

// DKGOptions configures [RunDKG].
type DKGOptions struct {
	// Proposal is the signed proposal the ceremony runs ([SignProposal]);
	// it fixes the kind, roster, threshold, epoch window and deadline, and
	// every trustee takes part only if its operator approved it.
	Proposal []byte
	// Group is the current signed group file for a rotation or a
	// reshare (the one the proposal names); nil for a group's first key.
	Group []byte
	// PhaseTimeout is how long the coordinator keeps trying a trustee in
	// one phase before it counts it as down (default 20 s).
	PhaseTimeout time.Duration
	// Dial returns the transport to one trustee's ceremony API
	// (trustee.CeremonyDialer gives the node's pinned-TLS client).
	Dial  func(escrow.GroupMember) (Caller, error)
	Rand  io.Reader        // ceremony ids; default crypto/rand
	Clock func() time.Time // default time.Now
	// Progress, if set, receives one line per step, for the operator.
	Progress func(line string)
	// Observe, if set, sees every answer the coordinator receives (tests
	// use it to check that a relay learns nothing secret).
	Observe func(trustee, path string, ans *CeremonyAnswer)
	// AfterPhase, if set, runs after each phase ("start", "round N",
	// "finish") and before the next; integration tests use it to kill and
	// restart trustees mid-ceremony.
	AfterPhase func(phase string)
	// afterPhase and dropMessage are test hooks: run after each phase,
	// and drop a message instead of relaying it.
	afterPhase  func(phase string, co *coordinator)
	dropMessage func(m Message) bool
}

// DKGReport is the result of a successful ceremony.
type DKGReport struct {
	CeremonyID string
	Signed     []byte // the group file, signed by every holder
	Group      *escrow.GroupFile
	// Excluded names the trustees that took no part (down at the start, or
	// their operators did not approve), and Disqualified those whose deals did not
	// count; Problems lists what participants reported about others.
	Excluded     []string
	Disqualified []*MisbehaviourReport
	Problems     []string
	Holders      []int
	Took         time.Duration
}

// ErrCeremonyFailed: the ceremony could not make a key; the error says
// why and who. Every participant has been told to forget it.
var ErrCeremonyFailed = errors.New("ceremony: key ceremony failed")

type participant struct {
	m       escrow.GroupMember // how to reach it (its entry in the new roster, or the old one)
	old     int                // index in the old roster (reshare), else = new
	new     int                // index in the new roster, 0 for a trustee that leaves
	c       Caller
	down    error // why it was counted out
	outbox  [][]byte
	sent    map[[32]byte]bool
	outcome *CeremonyOutcome
	signed  []byte
}

type coordinator struct {
	ref     *CeremonyOutcome // the outcome most participants computed
	holders map[uint32][]int // by epoch, new indices
	opts    DKGOptions
	params  CeremonyParams
	ps      []*participant
	rep     DKGReport
	mu      sync.Mutex
}

func (o *DKGOptions) progress(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(fmt.Sprintf(format, args...))
	}
}

// RunDKG runs a dealerless key generation among running trustees: it
// relays their messages (public, or encrypted to their recipient) and
// never holds anything that lets it compute the key. The roster is the
// proposal's: trustees that are down at the start, or whose operators did
// not approve, take part under keys nobody holds (they deal nothing and
// get no share) while the thresholds are still met; trustees that stop
// answering later, or deal badly, are disqualified
// while at least the threshold of deals qualify. The result is a group
// file signed by every trustee that holds a share, installed on each of
// them. On failure every participant forgets the ceremony.
func RunDKG(ctx context.Context, opts DKGOptions) (*DKGReport, error) {
	if opts.Dial == nil {
		return nil, errors.New("ceremony: DKGOptions.Dial is not set: give the transport to the trustees (trustee.CeremonyDialer)")
	}
	if opts.Proposal == nil {
		return nil, fmt.Errorf("%w: no proposal: a ceremony runs only a proposal every operator approved (keyquorum ceremony propose)", ErrCeremonyFailed)
	}
	start := time.Now()
	co := newCoordinator(opts)
	if err := co.setup(); err != nil {
		return nil, err
	}
	co.opts.progress("ceremony %s (%s): asking %d trustees for their keys (threshold %d)", co.params.ID, co.params.Kind, len(co.ps), co.params.Threshold)
	notes, down, err := co.prepare(ctx)
	if err != nil {
		co.abortAll(ctx)
		return nil, err
	}
	if len(down) > 0 {
		// A ceremony keeps the rosters its proposal fixed: trustees that
		// are down, or whose operators did not approve, take part under
		// keys nobody holds: they deal nothing and get nothing.
		var names []string
		for _, p := range down {
			names = append(names, fmt.Sprintf("%s (%v)", p.m.Name, p.down))
		}
		if err := co.enoughUp(); err != nil {
			co.abortAll(ctx)
			return nil, fmt.Errorf("%w: %s did not take part; %v: start them, or have their operators approve the proposal, and run the ceremony again", ErrCeremonyFailed, strings.Join(names, "; "), err)
		}
		co.opts.progress("not taking part, so holding no share of what is made: %s", strings.Join(names, "; "))
		for _, p := range down {
			co.rep.Excluded = append(co.rep.Excluded, p.m.Name)
		}
	}
	return co.run(ctx, notes, start)
}

func newCoordinator(opts DKGOptions) *coordinator {
	if opts.PhaseTimeout <= 0 {
		opts.PhaseTimeout = 20 * time.Second
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &coordinator{opts: opts}
}

func (co *coordinator) setup() error {
	prop, err := peekProposal(co.opts.Proposal)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCeremonyFailed, err)
	}
	if prop.Kind != ProposeDKG && co.opts.Group == nil {
		return fmt.Errorf("%w: a %s proposal needs the current group file it names", ErrCeremonyFailed, prop.Kind)
	}
	co.params = prop.params(string(co.opts.Group))
	co.params.Proposal = string(co.opts.Proposal)
	if prop.Kind == ProposeDKG {
		co.params.Group = ""
	}
	if err := co.params.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrCeremonyFailed, err)
	}
	if co.params.Kind == CeremonyReshare {
		co.params.Epoch, co.params.ValidFrom, co.params.ValidUntil = 0, time.Time{}, time.Time{}
	}
	old, err := co.params.oldGroup()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCeremonyFailed, err)
	}
	co.ps = nil
	for _, m := range co.params.announcers(old) {
		p := &participant{m: m, sent: map[[32]byte]bool{}}
		p.old, p.new = m.Index, m.Index
		if co.params.Kind == CeremonyReshare {
			p.new = 0
			for _, n := range co.params.Roster {
				if n.Name == m.Name {
					p.m, p.new = n, n.Index
				}
			}
			if old.Member(m.Name) == nil {
				p.old = 0
			}
		}
		if p.c, err = co.opts.Dial(p.m); err != nil {
			return err
		}
		co.ps = append(co.ps, p)
	}
	return nil
}

// call makes one call, retrying transport failures until the phase
// timeout, after jittered waits (internal/retry) from 50-100 ms doubling
// up to 0.5-1 s, so the relay's calls to a trustee that is restarting do
// not arrive in lockstep.
func (co *coordinator) call(ctx context.Context, p *participant, path string, call *CeremonyCall) (*CeremonyAnswer, error) {
	pctx, cancel := context.WithTimeout(ctx, co.opts.PhaseTimeout)
	defer cancel()
	var ans *CeremonyAnswer
	backoff := retry.Backoff{Attempts: math.MaxInt, Initial: 100 * time.Millisecond, Max: time.Second}
	_, err := backoff.Do(pctx, nil, func(err error) bool { return errors.Is(err, ErrUnreachable) }, func() error {
		var err error
		ans, err = p.c.Ceremony(pctx, path, call)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if co.opts.Observe != nil {
		co.mu.Lock()
		co.opts.Observe(p.m.Name, path, ans)
		co.mu.Unlock()
	}
	return ans, nil
}

// each calls fn for every live participant in parallel.
func (co *coordinator) each(fn func(p *participant) error) []error {
	errs := make([]error, len(co.ps))
	var wg sync.WaitGroup
	for i, p := range co.ps {
		if p.down != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(p)
		}()
	}
	wg.Wait()
	return errs
}

func isTransport(err error) bool {
	return errors.Is(err, ErrUnreachable) || errors.Is(err, context.DeadlineExceeded)
}

func (co *coordinator) prepare(ctx context.Context) ([]string, []*participant, error) {
	notes := make([]string, len(co.ps))
	errs := co.each(func(p *participant) error {
		ans, err := co.call(ctx, p, PathCeremonyPrepare, &CeremonyCall{ID: co.params.ID, Params: &co.params})
		if err != nil {
			return err
		}
		notes[slices.Index(co.ps, p)] = ans.KeyNote
		return nil
	})
	var down []*participant
	for i, err := range errs {
		switch {
		case err == nil:
		case isTransport(err), errors.Is(err, ErrNotApproved):
			// Down, or its operator did not approve: it takes no part.
			co.ps[i].down = err
			down = append(down, co.ps[i])
		default:
			return nil, nil, fmt.Errorf("%w: %s refused to take part: %v", ErrCeremonyFailed, co.ps[i].m.Name, err)
		}
	}
	return notes, down, nil
}

// enoughUp checks that enough participants answered to go ahead: the new
// threshold of the new roster and, in a reshare, the old threshold of the
// old one.
func (co *coordinator) enoughUp() error {
	newUp, oldUp := 0, 0
	for _, p := range co.ps {
		if p.down != nil {
			continue
		}
		if p.new != 0 {
			newUp++
		}
		if p.old != 0 {
			oldUp++
		}
	}
	if newUp < co.params.Threshold {
		return fmt.Errorf("only %d of the roster's trustees answered, threshold is %d", newUp, co.params.Threshold)
	}
	if co.params.Kind == CeremonyReshare {
		old, _ := co.params.oldGroup()
		if oldUp < old.Threshold {
			return fmt.Errorf("only %d of the current group's trustees answered, its threshold is %d", oldUp, old.Threshold)
		}
	}
	return nil
}

// markDown counts a participant out for the rest of the ceremony.
func (co *coordinator) markDown(p *participant, phase string, err error) {
	p.down = err
	co.opts.progress("%s stopped answering during %s: %v", p.m.Name, phase, err)
}

func (co *coordinator) phaseDone(phase string) {
	if co.opts.afterPhase != nil {
		co.opts.afterPhase(phase, co)
	}
	if co.opts.AfterPhase != nil {
		co.opts.AfterPhase(phase)
	}
}

func (co *coordinator) live() int {
	n := 0
	for _, p := range co.ps {
		if p.down == nil {
			n++
		}
	}
	return n
}

func (co *coordinator) run(ctx context.Context, notes []string, start time.Time) (rep *DKGReport, err error) {
	defer func() {
		if err != nil {
			co.abortAll(ctx)
		}
	}()
	co.rep.CeremonyID = co.params.ID
	// Start: every participant checks every key announcement and deals.
	errs := co.each(func(p *participant) error {
		ans, err := co.call(ctx, p, PathCeremonyStart, &CeremonyCall{ID: co.params.ID, Keys: notes})
		if err == nil {
			p.outbox = ans.Outbox
		}
		return err
	})
	for i, err := range errs {
		if err != nil && !isTransport(err) {
			return nil, fmt.Errorf("%w: %s refused to start: %v", ErrCeremonyFailed, co.ps[i].m.Name, err)
		} else if err != nil {
			co.markDown(co.ps[i], "start", err)
		}
	}
	co.phaseDone("start")
	co.opts.progress("deals made; relaying deals, responses and justifications")
	// Relay until nobody has anything new to say.
	for round := 1; ; round++ {
		pending := co.pending()
		if len(pending) == 0 {
			break
		}
		if round > 10 {
			return nil, fmt.Errorf("%w: messages still flowing after %d rounds", ErrCeremonyFailed, round)
		}
		errs := co.each(func(p *participant) error {
			msgs := pending[p]
			if len(msgs) == 0 {
				return nil
			}
			ans, err := co.call(ctx, p, PathCeremonyDeliver, &CeremonyCall{ID: co.params.ID, Messages: msgs})
			if err != nil {
				return err
			}
			for _, m := range msgs {
				p.sent[sha256.Sum256(m)] = true
			}
			p.outbox = ans.Outbox
			co.mu.Lock()
			for _, pr := range ans.Problems {
				co.rep.Problems = append(co.rep.Problems, p.m.Name+": "+pr)
			}
			co.mu.Unlock()
			return nil
		})
		for i, err := range errs {
			if err != nil {
				co.markDown(co.ps[i], fmt.Sprintf("relay round %d", round), err)
			}
		}
		co.phaseDone(fmt.Sprintf("round %d", round))
	}
	if co.live() < co.params.Threshold {
		return nil, fmt.Errorf("%w: only %d trustees still answer, threshold is %d", ErrCeremonyFailed, co.live(), co.params.Threshold)
	}
	if err := co.finish(ctx); err != nil {
		return nil, err
	}
	co.phaseDone("finish")
	if err := co.signAndCommit(ctx); err != nil {
		return nil, err
	}
	co.rep.Took = time.Since(start)
	co.opts.progress("ceremony %s (%s) done in %s: %d trustees hold shares", co.params.ID, co.params.Kind, co.rep.Took.Round(time.Millisecond), len(co.rep.Holders))
	return &co.rep, nil
}

// pending returns, for every live participant, the messages addressed to
// it that it has not been given yet.
func (co *coordinator) pending() map[*participant][][]byte {
	out := map[*participant][][]byte{}
	for _, from := range co.ps {
		for _, b := range from.outbox {
			m, err := ParseMessage(b)
			sender := from.old
			if m.Kind == KindResponse {
				sender = from.new
			}
			if err != nil || m.From != sender || sender == 0 {
				continue // the node's own problem; it is not relayed
			}
			if co.opts.dropMessage != nil && co.opts.dropMessage(m) {
				continue
			}
			sum := sha256.Sum256(b)
			for _, to := range co.ps {
				if to.down != nil || to == from || to.sent[sum] {
					continue
				}
				if m.To == 0 || (m.Kind == KindDeal && m.To == to.new) {
					out[to] = append(out[to], b)
				}
			}
		}
	}
	return out
}

// finish collects every live participant's outcome, after telling them
// the wait is over if anyone dropped out or some messages never came.
func (co *coordinator) finish(ctx context.Context) error {
	timedOut := false
	for i := range co.ps {
		if co.ps[i].down != nil {
			timedOut = true
		}
	}
	for attempt := 0; attempt < 2; attempt++ {
		if timedOut {
			co.opts.progress("not every participant took part in full; ending the wait")
			errs := co.each(func(p *participant) error {
				_, err := co.call(ctx, p, PathCeremonyTimeout, &CeremonyCall{ID: co.params.ID})
				return err
			})
			for i, err := range errs {
				if err != nil {
					co.markDown(co.ps[i], "timeout", err)
				}
			}
		}
		incomplete := false
		errs := co.each(func(p *participant) error {
			ans, err := co.call(ctx, p, PathCeremonyFinish, &CeremonyCall{ID: co.params.ID})
			if err == nil {
				p.outcome = ans.Outcome
			}
			return err
		})
		for i, err := range errs {
			p := co.ps[i]
			switch {
			case err == nil:
			case errors.Is(err, ErrCeremonyIncomplete) && !timedOut:
				incomplete = true
			case errors.Is(err, ErrCeremonyAborted):
				return fmt.Errorf("%w: %v", ErrCeremonyFailed, err)
			case isTransport(err):
				co.markDown(p, "finish", err)
				incomplete = true
			default:
				return fmt.Errorf("%w: %s: %v", ErrCeremonyFailed, p.m.Name, err)
			}
		}
		if !incomplete {
			break
		}
		if timedOut {
			return fmt.Errorf("%w: participants did not finish after the timeout", ErrCeremonyFailed)
		}
		timedOut = true
	}
	// Every participant should have computed the same public result. A
	// dealer that cheated and withheld its justification counts its own
	// deal in and computes another key: the result most participants
	// computed wins, and whoever disagrees is named and holds nothing. (An
	// old trustee that leaves a reshare holds nothing and may not learn
	// the new commitment; it is not counted.)
	type view struct {
		o     *CeremonyOutcome
		count int
	}
	views := map[string]*view{}
	viewOf := func(o *CeremonyOutcome) string {
		var v []string
		for _, e := range o.Epochs {
			v = append(v, fmt.Sprint(e.Epoch, e.GroupKey, e.Commitment, e.Qualified))
		}
		return strings.Join(v, "|")
	}
	var best *view
	voters := 0
	for _, p := range co.ps {
		if p.down != nil || p.outcome == nil || p.new == 0 {
			continue
		}
		voters++
		k := viewOf(p.outcome)
		if views[k] == nil {
			views[k] = &view{o: p.outcome}
		}
		views[k].count++
		if best == nil || views[k].count > best.count {
			best = views[k]
		}
	}
	if best == nil {
		return fmt.Errorf("%w: no participant finished", ErrCeremonyFailed)
	}
	if len(views) > 1 && 2*best.count <= voters {
		return fmt.Errorf("%w: the participants computed %d different results and none has a majority; the ceremony cannot be trusted", ErrCeremonyFailed, len(views))
	}
	co.ref = best.o
	for _, p := range co.ps {
		if p.down == nil && p.outcome != nil && p.new != 0 && viewOf(p.outcome) != viewOf(co.ref) {
			co.rep.Problems = append(co.rep.Problems, fmt.Sprintf("%s computed a different result from the majority; it is left out", p.m.Name))
			p.outcome = nil
		}
	}
	seen := map[string]bool{}
	for _, e := range co.ref.Epochs {
		for _, d := range e.Disqualified {
			if !seen[d.Name] {
				seen[d.Name] = true
				co.rep.Disqualified = append(co.rep.Disqualified, d)
			}
		}
	}
	co.holders = map[uint32][]int{}
	for _, e := range co.ref.Epochs {
		for _, p := range co.ps {
			if p.down != nil || p.outcome == nil || p.new == 0 {
				continue
			}
			for _, pe := range p.outcome.Epochs {
				if pe.Epoch == e.Epoch && pe.HoldsShare {
					co.holders[e.Epoch] = append(co.holders[e.Epoch], p.new)
				}
			}
		}
		slices.Sort(co.holders[e.Epoch])
		if len(co.holders[e.Epoch]) < co.params.Threshold {
			return fmt.Errorf("%w: only %d trustees hold a share of epoch %d, threshold is %d", ErrCeremonyFailed, len(co.holders[e.Epoch]), e.Epoch, co.params.Threshold)
		}
	}
	co.rep.Holders = co.holders[co.ref.Epochs[len(co.ref.Epochs)-1].Epoch]
	return nil
}

// groupFile builds the group file of the outcome.
func (co *coordinator) groupFile() (*escrow.GroupFile, error) {
	g := &escrow.GroupFile{Version: escrow.GroupFileVersion, KeyGeneration: "dkg", Threshold: co.params.Threshold, Trustees: co.params.Roster, WitnessQuorum: co.params.WitnessQuorum}
	var before []escrow.GroupEpoch
	cur, err := co.params.oldGroup()
	if err != nil {
		return nil, err
	}
	if cur != nil {
		before = cur.Epochs
		if co.params.Kind == CeremonyReshare {
			g.KeyGeneration = cur.KeyGeneration
		}
	}
	made := map[uint32]EpochOutcome{}
	for _, e := range co.ref.Epochs {
		made[e.Epoch] = e
	}
	if !(co.params.Kind == CeremonyReshare) {
		before = append(slices.Clone(before), escrow.GroupEpoch{Epoch: co.params.Epoch, ValidFrom: co.params.ValidFrom, ValidUntil: co.params.ValidUntil})
	}
	for _, e := range before {
		if o, ok := made[e.Epoch]; ok {
			e.Key, e.Commitment, e.Holders = o.GroupKey, o.Commitment, nil
			if h := co.holders[e.Epoch]; len(h) < len(co.params.Roster) {
				e.Holders = h
			}
		}
		g.Epochs = append(g.Epochs, e)
	}
	return g, g.Validate()
}

func (co *coordinator) signAndCommit(ctx context.Context) error {
	g, err := co.groupFile()
	if err != nil {
		return fmt.Errorf("%w: building the group file: %v", ErrCeremonyFailed, err)
	}
	text, err := g.Marshal()
	if err != nil {
		return err
	}
	holders := map[int]bool{} // new indices of the newest epoch's holders
	for _, h := range co.rep.Holders {
		holders[h] = true
	}
	signer := func(p *participant) bool { return p.new != 0 && holders[p.new] && p.outcome != nil }
	errs := co.each(func(p *participant) error {
		if !signer(p) {
			return nil
		}
		ans, err := co.call(ctx, p, PathCeremonySign, &CeremonyCall{ID: co.params.ID, Group: string(text)})
		if err == nil {
			p.signed = []byte(ans.Signed)
		}
		return err
	})
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("%w: %s did not sign the group file: %v", ErrCeremonyFailed, co.ps[i].m.Name, err)
		}
	}
	// Merge the signatures of every holder's signed copy.
	signed := text
	for _, p := range co.ps {
		if !signer(p) {
			continue
		}
		if signed, err = escrow.MergeGroupSignatures(signed, p.signed); err != nil {
			return fmt.Errorf("%w: %s signed another text: %v", ErrCeremonyFailed, p.m.Name, err)
		}
	}
	if _, _, err := escrow.VerifyGroupFile(signed, true); err != nil {
		return fmt.Errorf("%w: the signed group file does not verify: %v", ErrCeremonyFailed, err)
	}
	co.opts.progress("group file signed by %d trustees; installing", len(holders))
	errs = co.each(func(p *participant) error {
		// Holders install their shares; in a reshare every old trustee
		// also commits, to erase its old shares.
		if p.outcome == nil || (p.new != 0 && !signer(p)) {
			_, err := co.call(ctx, p, PathCeremonyAbort, &CeremonyCall{ID: co.params.ID})
			return err
		}
		_, err := co.call(ctx, p, PathCeremonyCommit, &CeremonyCall{ID: co.params.ID, Group: string(signed)})
		return err
	})
	var failed []string
	for i, err := range errs {
		if err != nil && co.ps[i].outcome != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", co.ps[i].m.Name, err))
		}
	}
	if len(failed) > 0 {
		// Some holders installed the key already: the signed file is good,
		// and the others can install it when they are back.
		co.rep.Problems = append(co.rep.Problems, "not installed on: "+strings.Join(failed, "; "))
	}
	co.rep.Signed = signed
	co.rep.Group = g
	return nil
}

// abortAll tells every participant to forget the ceremony (best effort).
func (co *coordinator) abortAll(ctx context.Context) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range co.ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.c.Ceremony(actx, PathCeremonyAbort, &CeremonyCall{ID: co.params.ID})
		}()
	}
	wg.Wait()
}

// nextEpoch returns the epoch after the last one of the signed group
// file: it starts when the last one ends and lasts length (default: as
// long as the last one); if the last one ended more than that ago, it
// still starts at its end, so no time is left without an epoch, and lasts
// until length after now.
func nextEpoch(signed []byte, now time.Time, length time.Duration) (*escrow.GroupFile, escrow.GroupEpoch, error) {
	g, _, err := escrow.VerifyGroupFile(signed, true)
	if err != nil {
		return nil, escrow.GroupEpoch{}, err
	}
	last := g.Epochs[len(g.Epochs)-1]
	if length <= 0 {
		length = last.ValidUntil.Sub(last.ValidFrom)
	}
	from := last.ValidUntil
	until := from.Add(length)
	if !until.After(now) {
		until = now.UTC().Truncate(time.Second).Add(length)
	}
	return g, escrow.GroupEpoch{Epoch: last.Epoch + 1, ValidFrom: from.UTC(), ValidUntil: until.UTC()}, nil
}

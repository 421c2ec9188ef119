package fedrun

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/keyquorum/keyquorum/ceremony"
	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
)

// CeremonyOptions are the knobs of one key ceremony run by a federation.
type CeremonyOptions struct {
	// PhaseTimeout is how long the coordinator keeps trying a trustee in
	// one phase before counting it out (default: ceremony.RunDKG's, 20 s).
	PhaseTimeout time.Duration
	// Progress, if set, receives the coordinator's progress lines.
	Progress func(line string)
	// AfterPhase, if set, runs after each phase of the ceremony ("start",
	// "round N", "finish") and before the next (tests kill and restart
	// trustees there).
	AfterPhase func(phase string)
	// Approvers names the trustees whose operators approve the proposal
	// (nil: every trustee that answers on its control socket). The
	// federation plays every operator: it writes the proposal through
	// the first trustee's control socket and approves it on each.
	Approvers []string
}

// RunDKG makes the group's first epoch key by a dealerless ceremony among
// every trustee (the roster is built from their descriptors, in the order
// of Options.Names), with this process as the coordinator, playing every
// operator (see [Federation.Propose] and [Federation.Approve]). Trustees
// that do not answer at the start stay in the roster holding no share
// (report.Excluded). Epoch e gives the epoch's
// number (0: 1) and window. On success the signed group file is written to
// GroupPath and Group, Members and every trustee's Member, Index and
// Client follow it.
func (f *Federation) RunDKG(ctx context.Context, e escrow.GroupEpoch, o CeremonyOptions) (*ceremony.DKGReport, error) {
	if err := f.dkgMode(); err != nil {
		return nil, err
	}
	if f.Group != nil {
		return nil, errors.New("fedrun: the federation has a group already; make the next epoch with Rotate")
	}
	if e.Epoch == 0 {
		e.Epoch = 1
	}
	var roster []escrow.GroupMember
	for i, t := range f.Trustees {
		roster = append(roster, t.Descriptor.Member(i+1))
	}
	p, err := ceremony.DKGProposal(roster, f.opts.Threshold, e, time.Now().Add(30*time.Minute), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("fedrun: %w", err)
	}
	return f.ceremony(ctx, p, nil, o)
}

// Rotate makes the next epoch's key by a new ceremony among the group's
// roster, as `keyquorum ceremony rotate` does. Epoch e gives the window;
// a zero ValidFrom takes [ceremony.NextEpochOptions]' (from the end of the
// last epoch, or now if that is past, for as long as the last one). A
// window in the past is allowed as long as it starts no earlier than the
// last epoch ends. e.Epoch, if set, must be the next epoch's number.
func (f *Federation) Rotate(ctx context.Context, e escrow.GroupEpoch, o CeremonyOptions) (*ceremony.DKGReport, error) {
	if err := f.dkgMode(); err != nil {
		return nil, err
	}
	if f.Group == nil {
		return nil, errors.New("fedrun: the federation has no group yet; make the first epoch with RunDKG")
	}
	p, err := ceremony.RotationProposal(f.signed, time.Now(), 0, time.Now().Add(30*time.Minute), rand.Reader)
	if err != nil {
		return nil, err
	}
	if e.Epoch != 0 && e.Epoch != p.Epoch {
		return nil, fmt.Errorf("fedrun: the next epoch is %d, not %d", p.Epoch, e.Epoch)
	}
	if !e.ValidFrom.IsZero() {
		p.ValidFrom, p.ValidUntil = e.ValidFrom.UTC().Truncate(time.Second), e.ValidUntil.UTC().Truncate(time.Second)
	}
	return f.ceremony(ctx, p, f.signed, o)
}

// MakeEpochs makes each of epochs by a ceremony, in order: RunDKG for the
// first if the federation has no group yet, Rotate for the others. It
// returns the reports of the ceremonies that succeeded.
func (f *Federation) MakeEpochs(ctx context.Context, epochs []escrow.GroupEpoch, o CeremonyOptions) ([]*ceremony.DKGReport, error) {
	var reps []*ceremony.DKGReport
	for _, e := range epochs {
		run := f.Rotate
		if f.Group == nil {
			run = f.RunDKG
		}
		rep, err := run(ctx, e, o)
		if err != nil {
			return reps, fmt.Errorf("fedrun: epoch %d: %w", e.Epoch, err)
		}
		reps = append(reps, rep)
	}
	return reps, nil
}

func (f *Federation) dkgMode() error {
	if f.opts.KeyGeneration != KeyGenerationDKG {
		return fmt.Errorf("fedrun: the federation was set up in %s mode; ceremonies need %q", f.opts.KeyGeneration, KeyGenerationDKG)
	}
	return nil
}

// Propose has the first running trustee's node sign the proposal, as
// `keyquorum ceremony propose` does, and returns it signed.
func (f *Federation) Propose(p *ceremony.Proposal) ([]byte, error) {
	var errs []error
	for _, t := range f.Trustees {
		signed, err := trustee.NewControlClient(t.Dir).SignProposal(p)
		if err == nil {
			return signed, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("fedrun: no trustee signed the proposal: %w", errors.Join(errs...))
}

// Approve approves a signed proposal on the named trustees (nil: every
// trustee), as each operator would with `keyquorum trustee approve
// --yes`. group is the current group file, for trustees that join by a
// reshare. Trustees that are down are skipped; other refusals are errors.
func (f *Federation) Approve(signed, group []byte, names []string) error {
	for _, t := range f.Trustees {
		if names != nil && !slices.Contains(names, t.Name) {
			continue
		}
		if _, err := trustee.NewControlClient(t.Dir).Approve(signed, group); err != nil {
			if errors.Is(err, trustee.ErrControl) {
				continue // down: it takes no part
			}
			return fmt.Errorf("fedrun: %s did not approve: %w", t.Name, err)
		}
	}
	return nil
}

// ceremony proposes p, approves it on every operator's behalf, runs it
// and adopts its group file.
func (f *Federation) ceremony(ctx context.Context, p *ceremony.Proposal, group []byte, o CeremonyOptions) (*ceremony.DKGReport, error) {
	signed, err := f.Propose(p)
	if err != nil {
		return nil, err
	}
	if err := f.Approve(signed, group, o.Approvers); err != nil {
		return nil, err
	}
	return f.RunProposal(ctx, signed, group, o)
}

// RunProposal runs an approved proposal and adopts its group file.
func (f *Federation) RunProposal(ctx context.Context, signed, group []byte, o CeremonyOptions) (*ceremony.DKGReport, error) {
	opts := ceremony.DKGOptions{Proposal: signed, Group: group}
	opts.PhaseTimeout, opts.Progress, opts.AfterPhase = o.PhaseTimeout, o.Progress, o.AfterPhase
	opts.Dial = trustee.CeremonyDialer()
	rep, err := ceremony.RunDKG(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("fedrun: %w", err)
	}
	if err := f.adopt(rep.Signed); err != nil {
		return nil, err
	}
	return rep, nil
}

// adopt makes signed the federation's group file: it is verified as
// clients verify it, written to GroupPath, and every trustee's entry and
// client follow its roster.
func (f *Federation) adopt(signed []byte) error {
	g, _, err := escrow.VerifyGroupFile(signed, true)
	if err != nil {
		return fmt.Errorf("fedrun: the ceremony's group file: %w", err)
	}
	if err := writeFileAtomic(f.GroupPath, signed, 0o644); err != nil {
		return err
	}
	for _, t := range f.Trustees {
		m := g.Member(t.Name)
		if m == nil {
			t.Index = 0
			continue
		}
		if *m != t.Member {
			c, err := trustee.NewClient(*m)
			if err != nil {
				return err
			}
			t.Client.CloseIdleConnections()
			t.Member, t.Client = *m, c
		}
		t.Index = m.Index
	}
	f.Group, f.signed = g, signed
	return nil
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it into place.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

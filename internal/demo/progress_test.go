package demo

import (
	"context"
	"errors"
	"testing"
)

// TestProgressSectionsInOrder checks that a run reports every section
// once, in order, each complete when reported and the later ones not yet
// begun, with a step before each slow part.
func TestProgressSectionsInOrder(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Trustees, cfg.Threshold, cfg.Users, cfg.Days, cfg.ForgeryTries = 4, 2, 5, 14, 1000
	var done []Section
	steps := 0
	cfg.Progress = func(p Progress) {
		if p.Step != "" {
			steps++
			return
		}
		r := p.Report
		done = append(done, p.Done)
		var complete, notYet bool
		switch p.Done {
		case SectionKeys:
			complete, notYet = len(r.Ceremonies) == r.Epochs && r.Epochs > 0, r.Sessions == 0
		case SectionTraffic:
			complete, notYet = r.Sessions > 0 && r.RejectedSessions == r.RogueSessions, r.Recovered == 0
		case SectionWarrant:
			complete, notYet = r.Recovered == r.InScope && len(r.Sample) > 0, r.Attacks == nil
		case SectionOverreach:
			complete, notYet = len(r.Attacks) == 3, r.ForgedEnvelopes.Attempted == 0
		case SectionForgery:
			complete, notYet = r.ForgedEnvelopes.Attempted == cfg.ForgeryTries && r.LEAFForgeryTries > 0, r.Designs == nil
		case SectionTradeOff:
			complete, notYet = len(r.Designs) == 5 && len(r.RetainedEpochs) > 0, r.Audit == nil
		case SectionAudit:
			complete, notYet = len(r.Audit) == cfg.Trustees, true
		}
		if !complete || !notYet {
			t.Errorf("section %d reported with complete=%v, later sections untouched=%v: %+v", p.Done, complete, notYet, r)
		}
	}
	if _, err := Run(cfg); err != nil {
		t.Fatal(err)
	}
	want := []Section{SectionKeys, SectionTraffic, SectionWarrant, SectionOverreach, SectionForgery, SectionTradeOff, SectionAudit}
	if len(done) != len(want) {
		t.Fatalf("sections %v, want %v", done, want)
	}
	for i := range want {
		if done[i] != want[i] {
			t.Fatalf("sections %v, want %v", done, want)
		}
	}
	if steps < len(want) {
		t.Errorf("only %d steps reported", steps)
	}
}

// TestRunContextStopsWhenCancelled cancels a run after its first section:
// it returns an error saying it was interrupted, and reports no further
// section.
func TestRunContextStopsWhenCancelled(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Trustees, cfg.Threshold, cfg.Users, cfg.Days, cfg.ForgeryTries = 4, 2, 5, 14, 1000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var done []Section
	cfg.Progress = func(p Progress) {
		if p.Done != 0 {
			done = append(done, p.Done)
			cancel()
		}
	}
	_, err := RunContext(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want one wrapping context.Canceled", err)
	}
	if len(done) > 2 {
		t.Errorf("sections %v reported after the cancellation", done)
	}
}

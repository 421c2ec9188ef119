package demo

import (
	"errors"
	"strings"
	"testing"
)

// TestLiveInProcess keeps a small in-process run open and acts on it as
// the web page does: each answer must agree with the report the same run
// measured. (The trustee-process actions are driven through the page by
// cmd/keyquorum's browser test.)
func TestLiveInProcess(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Trustees, cfg.Threshold, cfg.Users, cfg.Days, cfg.ForgeryTries, cfg.EpochDays = 4, 2, 5, 14, 1000, 5
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rep := l.Report()
	rows := map[string]Design{}
	for _, d := range rep.Designs {
		rows[d.Name] = d
	}
	for k := 0; k <= cfg.Trustees; k++ {
		var first []int
		for i := 1; i <= k; i++ {
			first = append(first, i)
		}
		got, err := l.Compromise(first)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			if want := rows[e.Design].ExposedWhenCompromised[k]; e.Exposed != want || len(e.Opened) != want {
				t.Errorf("k=%d %s: exposed %d (%d named), report says %d", k, e.Design, e.Exposed, len(e.Opened), want)
			}
		}
	}
	// Trustees 2 and 4: t of them, not the agency of the master-key design.
	got, err := l.Compromise([]int{2, 4})
	if err != nil {
		t.Fatal(err)
	}
	if got[1].Design != "master-key" || got[1].Exposed != 0 || got[3].Design != "threshold" || got[3].Exposed != rep.Sessions {
		t.Errorf("trustees 2 and 4: %+v", got)
	}
	if _, err := l.Compromise([]int{9}); err == nil {
		t.Error("compromising a trustee that does not exist worked")
	}

	tl := l.Timeline()
	if len(tl.Sessions) != rep.Sessions || len(tl.Users) != cfg.Users || len(tl.Epochs) != rep.Epochs {
		t.Fatalf("timeline has %d sessions, %d users, %d epochs", len(tl.Sessions), len(tl.Users), len(tl.Epochs))
	}
	res, err := l.Warrant(tl.Warrant)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Covered) != rep.InScope || len(res.Recovered) != rep.Recovered || res.Granted != cfg.Trustees {
		t.Errorf("the report's warrant again: covered %d, recovered %d, granted %d; report: %d in scope, %d recovered", len(res.Covered), len(res.Recovered), res.Granted, rep.InScope, rep.Recovered)
	}
	// A judge the trustees do not trust: every trustee names the reason.
	bad := tl.Warrant
	bad.Judge = "unknown"
	if res, err = l.Warrant(bad); err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Trustees {
		if d.Decision != "refused" || d.Code != "unknown-judge" || d.Reason == "" {
			t.Errorf("%s: %+v, want an unknown-judge refusal", d.Name, d)
		}
	}
	if len(res.Recovered) != 0 || !strings.Contains(res.Outcome, "refused (unknown-judge)") {
		t.Errorf("outcome %q, %d recovered", res.Outcome, len(res.Recovered))
	}
	// A cap below what the window covers: every trustee refuses it.
	bad = tl.Warrant
	bad.MaxSessions = 1
	if res, err = l.Warrant(bad); err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Trustees {
		if d.Code != "session-cap" || !strings.Contains(d.Reason, "max-sessions") {
			t.Errorf("%s: %+v, want a session-cap refusal", d.Name, d)
		}
	}
	bad = tl.Warrant
	bad.Target = "nobody"
	if _, err := l.Warrant(bad); !errors.Is(err, ErrBadWarrant) {
		t.Errorf("a warrant for a non-user: %v, want ErrBadWarrant", err)
	}

	eps, err := l.Epochs()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range eps {
		destroyed := len(e.HeldBy) == 0
		if destroyed && e.OpenedByAll != 0 || !destroyed && e.OpenedByAll != e.Sessions {
			t.Errorf("epoch %d (held by %v): all trustees open %d of %d", e.Epoch, e.HeldBy, e.OpenedByAll, e.Sessions)
		}
	}
	race, err := l.Clipper()
	if err != nil {
		t.Fatal(err)
	}
	if race.LEAFTries != rep.LEAFForgeryTries || race.Envelopes != rep.ForgedEnvelopes {
		t.Errorf("first race %+v, report: %d tries, %+v", race, rep.LEAFForgeryTries, rep.ForgedEnvelopes)
	}
	if _, err := l.Trustees(); !errors.Is(err, ErrNoProcesses) {
		t.Errorf("in-process trustees listed as processes: %v", err)
	}
}

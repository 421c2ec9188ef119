package trustee

import (
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Policy is one trustee's own rules. Trustees in a group may hold different
// policies; a request succeeds only where at least t of them grant it.
type Policy struct {
	// Judges are the judges whose signatures this trustee accepts, and
	// JudgesRequired how many distinct trusted judges must sign a warrant.
	Judges         []note.Verifier
	JudgesRequired int
	// MaxWindow bounds a warrant's session window (window-end − window-start).
	MaxWindow time.Duration
	// MaxValidity bounds a warrant's validity (valid-until − valid-from).
	MaxValidity time.Duration
	// MaxSessionsPerWarrant caps the distinct sessions this trustee releases
	// under one warrant id, across all requests, whatever the warrant says.
	MaxSessionsPerWarrant int
	// RateLimit is how many granted requests warrants signed by one judge
	// may make per RatePeriod; 0 means no limit.
	RateLimit  int
	RatePeriod time.Duration
	// RetentionEpochs is how many of the most recent epochs keep their
	// shares; older ones are destroyed by DestroyEpochsBefore. 0 keeps all.
	RetentionEpochs int
	// ProspectiveOnly refuses sessions that started before the warrant's
	// valid-from: a warrant then reaches forward, never into the past.
	ProspectiveOnly bool
}

// DefaultPolicy returns conservative limits with the given judges, one of
// whom must sign.
func DefaultPolicy(judges ...note.Verifier) Policy {
	return Policy{
		Judges:                judges,
		JudgesRequired:        1,
		MaxWindow:             31 * 24 * time.Hour,
		MaxValidity:           31 * 24 * time.Hour,
		MaxSessionsPerWarrant: 1000,
		RateLimit:             100,
		RatePeriod:            24 * time.Hour,
	}
}

// Validate reports the first inconsistency in p.
func (p *Policy) Validate() error {
	switch {
	case len(p.Judges) == 0:
		return fmt.Errorf("trustee: policy trusts no judge; add at least one judge verifier key")
	case p.JudgesRequired < 1 || p.JudgesRequired > len(p.Judges):
		return fmt.Errorf("trustee: policy requires %d judge signatures but trusts %d judges; set judges-required between 1 and %d", p.JudgesRequired, len(p.Judges), len(p.Judges))
	case p.MaxWindow <= 0:
		return fmt.Errorf("trustee: policy max window must be positive")
	case p.MaxValidity <= 0:
		return fmt.Errorf("trustee: policy max validity must be positive")
	case p.MaxSessionsPerWarrant < 1:
		return fmt.Errorf("trustee: policy max sessions per warrant must be at least 1")
	case p.RateLimit < 0 || (p.RateLimit > 0 && p.RatePeriod <= 0):
		return fmt.Errorf("trustee: policy rate limit needs a positive period")
	case p.RetentionEpochs < 0:
		return fmt.Errorf("trustee: policy retention must be 0 (keep all) or a number of epochs")
	}
	seen := map[string]bool{}
	for i, j := range p.Judges {
		if j == nil {
			return fmt.Errorf("trustee: policy judge %d is empty; give a judge verifier key", i+1)
		}
		if seen[j.Name()] {
			return fmt.Errorf("trustee: policy lists judge %q twice; one judge cannot count as two signatures", j.Name())
		}
		seen[j.Name()] = true
	}
	return nil
}

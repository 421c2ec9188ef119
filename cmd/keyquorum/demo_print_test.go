package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/keyquorum/keyquorum/internal/demo"
)

// TestDemoReportFitsAtEveryShape prints every section of a report for the
// largest shape the demo allows, with long names and samples, and checks
// that no line is wider than 100 columns and that the k columns keep
// those around the threshold.
func TestDemoReportFitsAtEveryShape(t *testing.T) {
	for _, shape := range []struct{ n, t int }{{1, 1}, {5, 3}, {12, 7}, {13, 7}, {64, 33}} {
		r := &demo.Report{
			Mode: "processes", KeyGeneration: "dkg", Trustees: shape.n, Threshold: shape.t, Users: 200, Days: 366,
			Epochs: 53, Sessions: 73200, RogueSessions: 366, RejectedSessions: 366, Target: "a-very-long-user-name-indeed",
			WindowStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), WindowEnd: time.Date(2026, 1, 8, 0, 0, 0, 0, time.UTC),
			InScope: 420, Recovered: 420, MessagesRead: 1337,
			Sample:           []string{strings.Repeat("a-very-long-user-name-indeed → ", 2) + `"` + strings.Repeat("words ", 30) + `"`},
			Attacks:          []demo.Attack{{Name: "substitute the requester key to read another session", Outcome: strings.Repeat("refused by 64 trustees (bad-request-signature), ", 3)}},
			Designs:          []demo.Design{{Name: "split-master-key", PartiesToDecrypt: &shape.t}, {Name: "threshold-epochs", PartiesToDecrypt: &shape.t}},
			LEAFForgeryTries: 1 << 24, ForgedEnvelopes: demo.Forgery{Attempted: 1 << 30},
			RetainedEpochs: []uint32{51, 52, 53},
		}
		for i := range r.Designs {
			for k := 0; k <= shape.n; k++ {
				r.Designs[i].ExposedWhenCompromised = append(r.Designs[i].ExposedWhenCompromised, 73200)
				r.Designs[i].RecoverableWithDown = append(r.Designs[i].RecoverableWithDown, 420)
			}
		}
		for i := 1; i <= shape.n; i++ {
			r.Ceremonies = append(r.Ceremonies, demo.Ceremony{Epoch: uint32(i), Took: 1234567 * time.Microsecond})
			r.Audit = append(r.Audit, demo.AuditSummary{Trustee: fmt.Sprintf("trustee-%d", i), Records: 100000 + i, Verified: true, OtherKinds: []string{"share-destroyed"}})
		}
		var out strings.Builder
		for s := demo.SectionKeys; s <= demo.SectionAudit; s++ {
			printSection(&out, s, r)
		}
		for _, l := range strings.Split(out.String(), "\n") {
			if w := utf8.RuneCountInString(l); w > demoWidth {
				t.Errorf("%d-of-%d: a line of %d columns:\n%s", shape.t, shape.n, w, l)
			}
		}
		for _, k := range []int{0, shape.t - 1, shape.t, shape.n} {
			if !strings.Contains(out.String(), fmt.Sprintf(" k=%d ", k)) && !strings.Contains(out.String(), fmt.Sprintf(" k=%d\n", k)) {
				t.Errorf("%d-of-%d: no column k=%d", shape.t, shape.n, k)
			}
		}
	}
}

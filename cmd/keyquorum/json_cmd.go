package main

// The --json outputs. Each is one JSON object whose first field, "schema",
// names a versioned schema documented in doc/json.md; a field is never
// renamed or given another meaning within a schema version (new fields may
// be added). The structs here are the schemas: they copy what they print
// from the library types, so a change in a library type cannot change the
// output silently.

import (
	"errors"
	"io"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/bench"
	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
)

const (
	schemaWarrantVerify = "keyquorum/warrant-verify/v1"
	schemaDecrypt       = "keyquorum/decrypt/v1"
	schemaAuditVerify   = "keyquorum/audit-verify/v1"
	schemaAuditReport   = "keyquorum/audit-report/v1"
	schemaBenchDecrypt  = "keyquorum/bench-decrypt/v1"
	schemaBenchDKG      = "keyquorum/bench-dkg/v1"
)

// errorJSON is printed on stdout, with --json, by a command that fails
// before it has printed its result; the error also goes to stderr and sets
// the exit status as without --json.
type errorJSON struct {
	Schema   string `json:"schema"`
	OK       bool   `json:"ok"`
	Error    string `json:"error"`
	ExitCode int    `json:"exit_code"`
}

// countingWriter counts what goes through it.
type countingWriter struct {
	w io.Writer
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}

// jsonOnError runs action; with --json, an error returned before anything
// was printed is also printed as an [errorJSON] of schema, so that a
// script reading stdout always gets one object.
func jsonOnError(schema string, action cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		if !c.Bool("json") {
			return action(c)
		}
		out := &countingWriter{w: c.App.Writer}
		c.App.Writer = out
		err := action(c)
		c.App.Writer = out.w
		if err != nil && out.n == 0 {
			code := 1
			var ec cli.ExitCoder
			if errors.As(err, &ec) && ec.ExitCode() != 0 {
				code = ec.ExitCode()
			}
			if jerr := writeJSON(c, errorJSON{Schema: schema, Error: cleanError(err.Error()), ExitCode: code}); jerr != nil {
				return jerr
			}
		}
		return err
	}
}

// warrantVerifyJSON is keyquorum/warrant-verify/v1.
type warrantVerifyJSON struct {
	Schema      string    `json:"schema"`
	OK          bool      `json:"ok"`
	VerifiedAt  time.Time `json:"verified_at"`
	ID          string    `json:"id"`
	SHA256      string    `json:"sha256"`
	SignedBy    []string  `json:"signed_by"`
	Required    int       `json:"required"`
	Case        string    `json:"case"`
	Requester   string    `json:"requester"`
	Targets     []string  `json:"targets"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	ValidFrom   time.Time `json:"valid_from"`
	ValidUntil  time.Time `json:"valid_until"`
	MaxSessions int       `json:"max_sessions"`
	Purpose     string    `json:"purpose"`
}

func newWarrantVerifyJSON(vw *escrow.VerifiedWarrant, sha string, at time.Time, required int) warrantVerifyJSON {
	w := vw.Warrant
	return warrantVerifyJSON{
		Schema: schemaWarrantVerify, OK: true, VerifiedAt: at, ID: w.ID, SHA256: sha,
		SignedBy: vw.Judges, Required: required, Case: w.Case, Requester: escrow.FormatRequesterPublic(w.Requester),
		Targets: w.Targets, WindowStart: w.WindowStart, WindowEnd: w.WindowEnd, ValidFrom: w.ValidFrom, ValidUntil: w.ValidUntil,
		MaxSessions: w.MaxSessions, Purpose: w.Purpose,
	}
}

// decryptJSON is keyquorum/decrypt/v1: OUT/summary.json with the schema and
// the output directory.
type decryptJSON struct {
	Schema string `json:"schema"`
	Out    string `json:"out"`
	decryptSummary
}

// auditVerifyJSON is keyquorum/audit-verify/v1.
type auditVerifyJSON struct {
	Schema string `json:"schema"`
	// OK: every trustee's log verified.
	OK        bool               `json:"ok"`
	StateFile string             `json:"state_file,omitempty"`
	FirstRun  bool               `json:"first_run"`
	Trustees  []auditTrusteeJSON `json:"trustees"`
}

type auditTrusteeJSON struct {
	Index     int     `json:"index"`
	Name      string  `json:"name"`
	Status    string  `json:"status"` // ok, forked, rewritten, bad-head, bad-record, unreachable
	Detail    string  `json:"detail,omitempty"`
	Records   int64   `json:"records"`
	Head      string  `json:"head,omitempty"`
	SavedHead string  `json:"saved_head,omitempty"`
	Rewritten []int64 `json:"rewritten,omitempty"`
	// Witnessed: each witness's latest cosigned checkpoint of this log.
	Witnessed []trustee.WitnessedCheckpoint `json:"witnessed,omitempty"`
}

func newAuditVerifyJSON(res *trustee.AuditResult, statePath string, firstRun bool) auditVerifyJSON {
	j := auditVerifyJSON{Schema: schemaAuditVerify, OK: true, StateFile: statePath, FirstRun: firstRun && statePath != "", Trustees: []auditTrusteeJSON{}}
	for _, t := range res.Trustees {
		j.OK = j.OK && t.Status == trustee.AuditOK
		j.Trustees = append(j.Trustees, auditTrusteeJSON{
			Index: t.Index, Name: t.Name, Status: t.Status, Detail: t.Detail, Records: t.Size,
			Head: t.Head, SavedHead: t.SavedHead, Rewritten: t.Rewritten, Witnessed: t.Witnessed,
		})
	}
	return j
}

// auditReportJSON is keyquorum/audit-report/v1: the transparency report of
// the logs that verified, and the trustees left out.
type auditReportJSON struct {
	Schema string `json:"schema"`
	*trustee.TransparencyReport
	Skipped []auditTrusteeJSON `json:"skipped"`
}

func newAuditReportJSON(res *trustee.AuditResult, rep *trustee.TransparencyReport) auditReportJSON {
	j := auditReportJSON{Schema: schemaAuditReport, TransparencyReport: rep, Skipped: []auditTrusteeJSON{}}
	for _, t := range newAuditVerifyJSON(res, "", false).Trustees {
		if t.Status != trustee.AuditOK {
			j.Skipped = append(j.Skipped, t)
		}
	}
	return j
}

// benchDecryptJSON is keyquorum/bench-decrypt/v1 (durations in
// nanoseconds).
type benchDecryptJSON struct {
	Schema    string `json:"schema"`
	Trustees  int    `json:"trustees"`
	Threshold int    `json:"threshold"`
	*bench.DecryptResult
}

// benchDKGJSON is keyquorum/bench-dkg/v1 (durations in nanoseconds).
type benchDKGJSON struct {
	Schema string `json:"schema"`
	*bench.DKGResult
}

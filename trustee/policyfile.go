package trustee

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/keyquorum/keyquorum/escrow"
	"golang.org/x/mod/sumdb/note"
)

// ErrBadPolicyFile is wrapped by every [PolicyFileError].
var ErrBadPolicyFile = errors.New("trustee: bad policy file")

// PolicyFileError lists every problem found in a policy file, each with
// the line it is on where there is one.
type PolicyFileError struct {
	// File names the file in messages; [ParsePolicyFile] sets
	// "policy.toml", a caller that knows the path may replace it.
	File     string
	Problems []PolicyProblem
}

// PolicyProblem is one problem in a policy file. Line is 1-based, or 0
// when the problem has no line (a missing key).
type PolicyProblem struct {
	Line    int
	Key     string
	Message string
}

// Error returns one line per problem, "FILE:LINE: KEY: message", the form
// editors and compilers use.
func (e *PolicyFileError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
		if p.Key != "" {
			b.WriteString(p.Key + ": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrBadPolicyFile) hold.
func (e *PolicyFileError) Unwrap() error { return ErrBadPolicyFile }

// policyKeys are the keys of a policy file, in the order they are written.
var policyKeys = []string{
	"judges", "judges_required", "max_window", "max_validity", "max_sessions_per_warrant",
	"rate_limit", "rate_period", "retention_epochs", "prospective_only",
}

// ParsePolicyFile reads a trustee's policy file (TOML; see
// [MarshalDefaultPolicy] for every key and its meaning) and returns the
// policy. Every key is required and no other key is allowed. Durations
// are strings in Go's syntax ("744h"). On any problem it returns a
// *[PolicyFileError] listing them all with line numbers, for example
//
//	policy.toml:12: max_window: "31 days" is not a duration; write it in hours, like "744h"
//
// A policy without a judge is refused: such a node could grant nothing.
func ParsePolicyFile(b []byte) (Policy, error) {
	pf := &policyFile{src: strings.Split(string(b), "\n"), err: &PolicyFileError{File: "policy.toml"}}
	var raw map[string]any
	if _, err := toml.Decode(string(b), &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			pf.add(pe.Position.Line, "", "%s", pe.Message)
		} else {
			pf.add(0, "", "%v", err)
		}
		return Policy{}, pf.err
	}
	known := map[string]bool{}
	for _, k := range policyKeys {
		known[k] = true
	}
	var unknown []string
	for k := range raw {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		pf.add(pf.keyLine(k), k, "unknown key (a typo? the keys are %s)", strings.Join(policyKeys, ", "))
	}
	p := Policy{}
	p.Judges = pf.judges(raw)
	p.JudgesRequired = pf.integer(raw, "judges_required", 1)
	p.MaxWindow = pf.duration(raw, "max_window", false)
	p.MaxValidity = pf.duration(raw, "max_validity", false)
	p.MaxSessionsPerWarrant = pf.integer(raw, "max_sessions_per_warrant", 1)
	p.RateLimit = pf.integer(raw, "rate_limit", 0)
	p.RatePeriod = pf.duration(raw, "rate_period", true)
	p.RetentionEpochs = pf.integer(raw, "retention_epochs", 0)
	if v, ok := pf.value(raw, "prospective_only"); ok {
		if bv, isBool := v.(bool); isBool {
			p.ProspectiveOnly = bv
		} else {
			pf.add(pf.keyLine("prospective_only"), "prospective_only", "must be true or false, not %s", tomlKind(v))
		}
	}
	// Rules between keys, where both keys are fine on their own.
	if n := len(p.Judges); pf.fine("judges", "judges_required") && p.JudgesRequired > n {
		pf.add(pf.keyLine("judges_required"), "judges_required", "%d judges must sign but the policy trusts only %d; lower it or add judges", p.JudgesRequired, n)
	}
	if pf.fine("rate_limit", "rate_period") && p.RateLimit > 0 && p.RatePeriod <= 0 {
		pf.add(pf.keyLine("rate_period"), "rate_period", "must be positive when rate_limit is set")
	}
	if len(pf.err.Problems) == 0 {
		// The file's rules cover Validate's; this is a backstop.
		if err := p.Validate(); err != nil {
			pf.add(0, "", "%s", strings.TrimPrefix(err.Error(), "trustee: "))
		}
	}
	if len(pf.err.Problems) > 0 {
		// In file order; problems without a line (missing keys) last.
		slices.SortStableFunc(pf.err.Problems, func(a, b PolicyProblem) int {
			return cmp.Compare(lineOrLast(a.Line), lineOrLast(b.Line))
		})
		return Policy{}, pf.err
	}
	return p, nil
}

func lineOrLast(line int) int {
	if line == 0 {
		return math.MaxInt
	}
	return line
}

// policyFile carries the source lines and the problems found so far.
type policyFile struct {
	src []string
	err *PolicyFileError
}

func (pf *policyFile) add(line int, key, format string, args ...any) {
	pf.err.Problems = append(pf.err.Problems, PolicyProblem{Line: line, Key: key, Message: fmt.Sprintf(format, args...)})
}

// fine reports whether no problem was found with any of keys.
func (pf *policyFile) fine(keys ...string) bool {
	for _, p := range pf.err.Problems {
		for _, k := range keys {
			if p.Key == k {
				return false
			}
		}
	}
	return true
}

// keyLine finds the line that defines the top-level key k: "k = ...",
// a quoted or dotted form of it, or a table header "[k]". It returns 0 if
// none does. The TOML decoder keeps key positions to itself, and a policy
// file is flat enough for a line scan to find them.
func (pf *policyFile) keyLine(k string) int {
	for i, l := range pf.src {
		t := strings.TrimLeft(l, " \t")
		t = strings.TrimLeft(t, "[")
		for _, form := range []string{k, `"` + k + `"`, "'" + k + "'"} {
			rest, ok := strings.CutPrefix(t, form)
			if !ok {
				continue
			}
			rest = strings.TrimLeft(rest, " \t")
			if rest != "" && strings.ContainsRune("=.]", rune(rest[0])) {
				return i + 1
			}
		}
	}
	return 0
}

// elementLine finds the line holding the nth (from 1) occurrence of the
// string s at or after the line of key k, falling back to the key's line.
func (pf *policyFile) elementLine(k, s string, nth int) int {
	from := pf.keyLine(k)
	if from == 0 || s == "" {
		return from
	}
	for i := from - 1; i < len(pf.src); i++ {
		nth -= strings.Count(pf.src[i], s)
		if nth <= 0 {
			return i + 1
		}
	}
	return from
}

// value returns the value of key k, recording a problem if it is missing.
func (pf *policyFile) value(raw map[string]any, k string) (any, bool) {
	v, ok := raw[k]
	if !ok {
		pf.add(0, k, "missing; add a line %q (see keyquorum trustee init's default policy)", k+" = "+defaultPolicyValue(k))
	}
	return v, ok
}

func (pf *policyFile) integer(raw map[string]any, k string, min int) int {
	v, ok := pf.value(raw, k)
	if !ok {
		return 0
	}
	n, isInt := v.(int64)
	if !isInt {
		pf.add(pf.keyLine(k), k, "must be a whole number, not %s", tomlKind(v))
		return 0
	}
	if n < int64(min) || n > math.MaxInt32 {
		pf.add(pf.keyLine(k), k, "%d is out of range; use a whole number from %d to %d", n, min, math.MaxInt32)
		return 0
	}
	return int(n)
}

func (pf *policyFile) duration(raw map[string]any, k string, zeroOK bool) time.Duration {
	v, ok := pf.value(raw, k)
	if !ok {
		return 0
	}
	s, isString := v.(string)
	if !isString {
		pf.add(pf.keyLine(k), k, "must be a duration in quotes, like \"744h\", not %s", tomlKind(v))
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		pf.add(pf.keyLine(k), k, "%q is not a duration; write it in hours, minutes or seconds, like \"744h\" (31 days)", s)
		return 0
	}
	if d < 0 || d == 0 && !zeroOK {
		pf.add(pf.keyLine(k), k, "%q must be positive", s)
		return 0
	}
	return d
}

func (pf *policyFile) judges(raw map[string]any) []note.Verifier {
	const k = "judges"
	v, ok := pf.value(raw, k)
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	if !isList {
		pf.add(pf.keyLine(k), k, "must be a list of judge verifier keys in quotes, like [\"judge-hale+1234abcd+AbC...\"], not %s", tomlKind(v))
		return nil
	}
	if len(list) == 0 {
		pf.add(pf.keyLine(k), k, "no judge is trusted, so this node would refuse every warrant; add at least one judge verifier key (name+hash+key, printed by keyquorum keygen judge)")
		return nil
	}
	var out []note.Verifier
	seen := map[string]bool{}
	occurrences := map[string]int{}
	for i, e := range list {
		s, isString := e.(string)
		if !isString {
			pf.add(pf.keyLine(k), k, "entry %d must be a judge verifier key in quotes, not %s", i+1, tomlKind(e))
			continue
		}
		occurrences[s]++
		line := pf.elementLine(k, s, occurrences[s])
		j, err := escrow.ParseJudgeVerifier(s)
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), escrow.ErrBadKeyFile.Error()+": ")
			pf.add(line, k, "entry %d: %s", i+1, msg)
			continue
		}
		if seen[j.Name()] {
			pf.add(line, k, "judge %q is listed twice; one judge cannot count as two signatures", j.Name())
			continue
		}
		seen[j.Name()] = true
		out = append(out, j)
	}
	return out
}

// tomlKind names the TOML type of a decoded value for messages.
func tomlKind(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case int64:
		return fmt.Sprintf("the number %d", x)
	case float64:
		return fmt.Sprintf("the number %v", x)
	case bool:
		return fmt.Sprintf("%v", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// formatPolicyDuration writes d as a policy file does: whole hours as
// "744h", anything else as Go prints it.
func formatPolicyDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

func defaultPolicyValue(k string) string {
	p := DefaultPolicy()
	switch k {
	case "judges":
		return "[]"
	case "judges_required":
		return fmt.Sprint(p.JudgesRequired)
	case "max_window":
		return `"` + formatPolicyDuration(p.MaxWindow) + `"`
	case "max_validity":
		return `"` + formatPolicyDuration(p.MaxValidity) + `"`
	case "max_sessions_per_warrant":
		return fmt.Sprint(p.MaxSessionsPerWarrant)
	case "rate_limit":
		return fmt.Sprint(p.RateLimit)
	case "rate_period":
		return `"` + formatPolicyDuration(p.RatePeriod) + `"`
	case "retention_epochs":
		return fmt.Sprint(p.RetentionEpochs)
	case "prospective_only":
		return fmt.Sprint(p.ProspectiveOnly)
	}
	return ""
}

var defaultPolicyTemplate = template.Must(template.New("policy").Parse(`# keyquorum trustee policy (TOML): this node's own rules for warranted
# decryption. Other trustees may set theirs differently; a request succeeds
# only where at least the group's threshold of trustees grant it, and the
# requester is told each refusal's reason.
# Check this file with: keyquorum trustee policy check --dir DIR
# The node reads it when it starts; restart the node after an edit.

# Judge verifier keys (name+hash+key, as printed by keyquorum keygen judge)
# whose signatures this node accepts on warrants. While the list is empty
# the node can grant nothing, and policy check fails. For example:
#   judges = ["judge-hale+1234abcd+AbC..."]
judges = []

# How many distinct judges from the list must have signed a warrant.
judges_required = {{.JudgesRequired}}

# Longest session window (window-end minus window-start) a warrant may
# cover. Durations are Go durations in quotes: hours, minutes, seconds
# ("744h" is 31 days).
max_window = "{{.MaxWindow}}"

# Longest validity (valid-until minus valid-from) a warrant may have.
max_validity = "{{.MaxValidity}}"

# Most distinct sessions this node releases under one warrant id, counted
# across all its requests, whatever the warrant itself allows.
max_sessions_per_warrant = {{.MaxSessionsPerWarrant}}

# Granted requests allowed per judge within rate_period; 0 means no limit.
rate_limit = {{.RateLimit}}

# The sliding window rate_limit counts over.
rate_period = "{{.RatePeriod}}"

# How many of the most recent epochs keep their shares. Older epoch shares
# are destroyed, and each destruction is logged; after every trustee has
# done so, those sessions are unreadable by anyone. 0 keeps every epoch.
retention_epochs = {{.RetentionEpochs}}

# true: release only sessions that started after the warrant became valid,
# so that a warrant reaches forward in time, never into the past.
prospective_only = {{.ProspectiveOnly}}
`))

// MarshalDefaultPolicy returns the policy file `keyquorum trustee init`
// writes: [DefaultPolicy]'s limits, no judge yet, and a comment on every
// key. [ParsePolicyFile] refuses it until a judge is added.
func MarshalDefaultPolicy() []byte {
	p := DefaultPolicy()
	var b bytes.Buffer
	err := defaultPolicyTemplate.Execute(&b, map[string]any{
		"JudgesRequired":        p.JudgesRequired,
		"MaxWindow":             formatPolicyDuration(p.MaxWindow),
		"MaxValidity":           formatPolicyDuration(p.MaxValidity),
		"MaxSessionsPerWarrant": p.MaxSessionsPerWarrant,
		"RateLimit":             p.RateLimit,
		"RatePeriod":            formatPolicyDuration(p.RatePeriod),
		"RetentionEpochs":       p.RetentionEpochs,
		"ProspectiveOnly":       p.ProspectiveOnly,
	})
	if err != nil {
		panic("trustee: default policy template: " + err.Error()) // a fixed template cannot fail
	}
	return b.Bytes()
}

package trustee

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// policyJudge returns a judge's verifier key and signer key strings.
func policyJudge(t testing.TB, name string, seed byte) (vkey, skey string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 64)), name)
	if err != nil {
		t.Fatal(err)
	}
	return vkey, skey
}

// withJudges is the default policy file with its judges line replaced.
func withJudges(t testing.TB, judgesLine string) string {
	t.Helper()
	def := string(MarshalDefaultPolicy())
	if !strings.Contains(def, "\njudges = []\n") {
		t.Fatal("default policy has no line 'judges = []'")
	}
	return strings.Replace(def, "\njudges = []\n", "\n"+judgesLine+"\n", 1)
}

// lineOf returns the 1-based line of the first line of src starting with
// prefix.
func lineOf(t testing.TB, src, prefix string) int {
	t.Helper()
	for i, l := range strings.Split(src, "\n") {
		if strings.HasPrefix(l, prefix) {
			return i + 1
		}
	}
	t.Fatalf("no line starts with %q", prefix)
	return 0
}

func TestDefaultPolicyFile(t *testing.T) {
	def := string(MarshalDefaultPolicy())
	// Every key is written, and right after a comment.
	lines := strings.Split(def, "\n")
	for _, k := range policyKeys {
		n := lineOf(t, def, k+" = ")
		if !strings.HasPrefix(lines[n-2], "#") {
			t.Errorf("key %s on line %d has no comment above it", k, n)
		}
	}
	// With no judge it is refused, naming the judges line.
	_, err := ParsePolicyFile([]byte(def))
	var pe *PolicyFileError
	if !errors.As(err, &pe) || !errors.Is(err, ErrBadPolicyFile) || len(pe.Problems) != 1 {
		t.Fatalf("err = %v", err)
	}
	if want := "policy.toml:" + strconv.Itoa(lineOf(t, def, "judges = ")) + ": judges: no judge is trusted"; !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "add at least one judge") {
		t.Fatalf("err = %q, want it to start %q", err, want)
	}

	// With a judge it gives DefaultPolicy.
	vkey, _ := policyJudge(t, "judge-hale", 1)
	p, err := ParsePolicyFile([]byte(withJudges(t, `judges = ["`+vkey+`"]`)))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultPolicy()
	if len(p.Judges) != 1 || p.Judges[0].Name() != "judge-hale" {
		t.Fatalf("judges = %v", p.Judges)
	}
	p.Judges = nil
	if p.JudgesRequired != want.JudgesRequired || p.MaxWindow != want.MaxWindow || p.MaxValidity != want.MaxValidity ||
		p.MaxSessionsPerWarrant != want.MaxSessionsPerWarrant || p.RateLimit != want.RateLimit || p.RatePeriod != want.RatePeriod ||
		p.RetentionEpochs != want.RetentionEpochs || p.ProspectiveOnly != want.ProspectiveOnly {
		t.Fatalf("parsed %+v, want %+v", p, want)
	}
}

func TestParsePolicyFileValues(t *testing.T) {
	a, _ := policyJudge(t, "judge-a", 1)
	b, _ := policyJudge(t, "judge-b", 2)
	src := `# two judges, both needed
judges = [
  "` + a + `",
  "` + b + `",
]
judges_required = 2
max_window = "168h"
max_validity = "90m"
max_sessions_per_warrant = 5
rate_limit = 0
rate_period = "0s"
retention_epochs = 3
prospective_only = true
`
	p, err := ParsePolicyFile([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Judges) != 2 || p.JudgesRequired != 2 || p.MaxWindow != 168*time.Hour || p.MaxValidity != 90*time.Minute ||
		p.MaxSessionsPerWarrant != 5 || p.RateLimit != 0 || p.RatePeriod != 0 || p.RetentionEpochs != 3 || !p.ProspectiveOnly {
		t.Fatalf("parsed %+v", p)
	}
}

// TestParsePolicyFileErrors: each mistake is reported on its own line,
// as FILE:LINE: KEY: message.
func TestParsePolicyFileErrors(t *testing.T) {
	a, aSecret := policyJudge(t, "judge-a", 1)
	b, _ := policyJudge(t, "judge-b", 2)
	one := `judges = ["` + a + `"]`
	tests := []struct {
		name string
		src  string
		// line is the prefix of the line the error must name ("" for
		// none), and want a fragment of the message.
		line, want string
	}{
		{"unknown key", withJudges(t, one) + "max_windows = \"24h\"\n", "max_windows", "max_windows: unknown key"},
		{"unknown table", withJudges(t, one) + "[limits]\nmax = 3\n", "[limits]", "limits: unknown key"},
		{"bad duration", strings.Replace(withJudges(t, one), `max_window = "744h"`, `max_window = "31 days"`, 1), "max_window", `max_window: "31 days" is not a duration`},
		{"duration as a number", strings.Replace(withJudges(t, one), `max_validity = "744h"`, `max_validity = 744`, 1), "max_validity", "must be a duration in quotes"},
		{"negative duration", strings.Replace(withJudges(t, one), `rate_period = "24h"`, `rate_period = "-1h"`, 1), "rate_period", "must be positive"},
		{"judges_required above judges", strings.Replace(withJudges(t, one), "judges_required = 1", "judges_required = 2", 1), "judges_required", "2 judges must sign but the policy trusts only 1"},
		{"judges_required zero", strings.Replace(withJudges(t, one), "judges_required = 1", "judges_required = 0", 1), "judges_required", "out of range"},
		{"bad verifier key", withJudges(t, "judges = [\n  \""+a+"\",\n  \"judge-b+0000+AAAA\",\n]"), `  "judge-b+0000+AAAA"`, "judges: entry 2: judge verifier key"},
		{"a signer key instead", withJudges(t, `judges = ["`+aSecret+`"]`), "judges", "secret signer key"},
		{"judge twice", withJudges(t, "judges = [\n  \""+a+"\",\n  \""+b+"\",\n  \""+a+"\", # again\n]"), `  "` + a + `", # again`, `judge "judge-a" is listed twice`},
		{"judges not a list", withJudges(t, `judges = "`+a+`"`), "judges", "must be a list"},
		{"whole number expected", strings.Replace(withJudges(t, one), "rate_limit = 100", "rate_limit = 1.5", 1), "rate_limit", "must be a whole number"},
		{"negative count", strings.Replace(withJudges(t, one), "retention_epochs = 0", "retention_epochs = -1", 1), "retention_epochs", "out of range"},
		{"bool expected", strings.Replace(withJudges(t, one), "prospective_only = false", `prospective_only = "no"`, 1), "prospective_only", "must be true or false"},
		{"syntax error", withJudges(t, one) + "oops\n", "oops", "expected"},
		{"key twice", withJudges(t, one) + "rate_limit = 5\n", "rate_limit = 5", "rate_limit"},
		{"missing key", strings.Replace(withJudges(t, one), "max_sessions_per_warrant = 1000\n", "", 1), "", `max_sessions_per_warrant: missing; add a line "max_sessions_per_warrant = 1000"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicyFile([]byte(tt.src))
			var pe *PolicyFileError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *PolicyFileError", err)
			}
			want := "policy.toml: "
			if tt.line != "" {
				want = "policy.toml:" + strconv.Itoa(lineOf(t, tt.src, tt.line)) + ": "
			}
			for _, l := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(l, want) && strings.Contains(l, tt.want) {
					return
				}
			}
			t.Fatalf("error:\n%v\nhas no line starting %q and containing %q", err, want, tt.want)
		})
	}
}

func TestParsePolicyFileReportsEveryProblem(t *testing.T) {
	src := strings.Replace(string(MarshalDefaultPolicy()), `max_window = "744h"`, `max_window = "soon"`, 1)
	src += "colour = \"blue\"\n"
	_, err := ParsePolicyFile([]byte(src))
	var pe *PolicyFileError
	if !errors.As(err, &pe) || len(pe.Problems) != 3 {
		t.Fatalf("err = %v, want three problems", err)
	}
	pe.File = "/srv/trustee-1/policy.toml"
	if !strings.HasPrefix(pe.Error(), "/srv/trustee-1/policy.toml:") || strings.Count(pe.Error(), "\n") != 2 {
		t.Fatalf("Error() = %q", pe.Error())
	}
}

func FuzzParsePolicyFile(f *testing.F) {
	vkey, _ := policyJudge(f, "judge-a", 1)
	f.Add(MarshalDefaultPolicy())
	f.Add([]byte(withJudges(f, `judges = ["`+vkey+`"]`)))
	f.Add([]byte("[a]\nb = 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicyFile(b)
		if err != nil {
			var pe *PolicyFileError
			if !errors.As(err, &pe) || len(pe.Problems) == 0 {
				t.Fatalf("error without problems: %v", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted a policy that does not validate: %v", err)
		}
	})
}

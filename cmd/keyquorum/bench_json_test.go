package main

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/rogpeppe/go-internal/testscript"
)

// benchDecryptSane is the testscript command `benchjson SESSIONS TRUSTEES`:
// it reads the last command's stdout as keyquorum/bench-decrypt/v1 and
// fails unless every figure of the schema is present and sane: positive
// where it must be, consistent with the others, and within orders of
// magnitude a real run can give.
func benchDecryptSane(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: benchjson SESSIONS TRUSTEES")
	}
	sessions, err1 := strconv.Atoi(args[0])
	trustees, err2 := strconv.Atoi(args[1])
	if err1 != nil || err2 != nil {
		ts.Fatalf("usage: benchjson SESSIONS TRUSTEES")
	}
	var r struct {
		Schema            string  `json:"schema"`
		Sessions          *int    `json:"sessions"`
		BulkNS            int64   `json:"bulk_ns"`
		SessionsPerSecond float64 `json:"sessions_per_second"`
		SingleP50NS       int64   `json:"single_p50_ns"`
		CPUPerSession     float64 `json:"cpu_seconds_per_session"`
		CPUSeconds        *struct {
			Requester *float64  `json:"requester"`
			Trustees  []float64 `json:"trustees"`
		} `json:"cpu_seconds"`
		X25519      float64 `json:"x25519_seconds"`
		RatioX25519 float64 `json:"cpu_per_session_x25519"`
		P50         float64 `json:"p50_single_seconds"`
		P99         float64 `json:"p99_single_seconds"`
		MaxRSS      *struct {
			Requester int64   `json:"requester"`
			Trustees  []int64 `json:"trustees"`
		} `json:"max_rss_bytes"`
	}
	if err := json.Unmarshal([]byte(ts.ReadFile("stdout")), &r); err != nil {
		ts.Fatalf("bench output: %v", err)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(math.Abs(a), math.Abs(b)) }
	check := func(ok bool, format string, a ...any) {
		if !ok {
			ts.Fatalf(format, a...)
		}
	}
	check(r.Schema == "keyquorum/bench-decrypt/v1", "schema %q", r.Schema)
	check(r.Sessions != nil && *r.Sessions == sessions, "sessions %v, want %d", r.Sessions, sessions)
	check(r.BulkNS > 0 && near(r.SessionsPerSecond, float64(sessions)/(float64(r.BulkNS)/1e9)),
		"sessions_per_second %v for %d sessions in %d ns", r.SessionsPerSecond, sessions, r.BulkNS)
	check(r.CPUSeconds != nil && r.CPUSeconds.Requester != nil && len(r.CPUSeconds.Trustees) == trustees, "cpu_seconds %+v", r.CPUSeconds)
	sum := *r.CPUSeconds.Requester
	for _, c := range r.CPUSeconds.Trustees {
		check(c >= 0 && c < 3600, "a trustee's cpu_seconds is %v", c)
		sum += c
	}
	check(r.CPUPerSession > 0 && r.CPUPerSession < 1 && near(r.CPUPerSession, sum/float64(sessions)),
		"cpu_seconds_per_session %v; the processes' CPU adds up to %v s for %d sessions", r.CPUPerSession, sum, sessions)
	check(r.X25519 > 1e-6 && r.X25519 < 1e-2, "x25519_seconds %v", r.X25519)
	check(near(r.RatioX25519, r.CPUPerSession/r.X25519), "cpu_per_session_x25519 %v, want %v", r.RatioX25519, r.CPUPerSession/r.X25519)
	check(r.P50 > 0 && r.P50 <= r.P99 && r.P99 < 60 && near(r.P50, float64(r.SingleP50NS)/1e9), "p50 %v, p99 %v single seconds (single_p50_ns %d)", r.P50, r.P99, r.SingleP50NS)
	check(r.MaxRSS != nil && len(r.MaxRSS.Trustees) == trustees, "max_rss_bytes %+v", r.MaxRSS)
	for _, m := range append([]int64{r.MaxRSS.Requester}, r.MaxRSS.Trustees...) {
		check(m > 1<<20 && m < 1<<36, "max_rss_bytes %+v", r.MaxRSS)
	}
}

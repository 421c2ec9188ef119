package main

import (
	"testing"
	"time"
)

func TestParseTimeAt(t *testing.T) {
	now := time.Date(2026, 11, 22, 15, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"today":                time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
		"-7d":                  time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC),
		"+30d":                 time.Date(2026, 12, 22, 0, 0, 0, 0, time.UTC),
		"2026-03-01":           time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		"2026-03-01T09:30:00Z": time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC),
	} {
		got, err := parseTimeAt("x", in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: got %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "7d", "-d", "+1w", "-99999999d", ""} {
		if _, err := parseTimeAt("x", bad, now); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

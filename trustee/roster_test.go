package trustee

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func rosterFixture(t testing.TB) ([]Descriptor, []byte) {
	t.Helper()
	var ds []Descriptor
	for i, name := range []string{"trustee-a", "trustee-b", "trustee-c"} {
		ds = append(ds, testIdentity(t, name, fmt.Sprintf("10.0.0.%d:7000", i+1)).Descriptor())
	}
	b, err := MarshalRoster(ds)
	if err != nil {
		t.Fatal(err)
	}
	return ds, b
}

func TestRosterRoundTrip(t *testing.T) {
	ds, b := rosterFixture(t)
	ms, err := ParseRoster(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("%d members", len(ms))
	}
	for i, m := range ms {
		if m != ds[i].Member(i+1) {
			t.Fatalf("member %d: %+v, want %+v", i+1, m, ds[i].Member(i+1))
		}
	}
	bad := map[string][]byte{
		"not canonical": bytes.Replace(b, []byte("  "), []byte("   "), 1),
		"trailing":      append(bytes.Clone(b), '{', '}'),
		"version":       bytes.Replace(b, []byte("roster v1"), []byte("roster v2"), 1),
		"unknown field": bytes.Replace(b, []byte(`"version"`), []byte(`"extra": 1, "version"`), 1),
		"one trustee":   mustMarshalRoster(t, ds[:1]),
		"duplicate":     bytes.Replace(b, []byte(ds[1].Name+`"`), []byte(ds[0].Name+`"`), 1),
	}
	for name, in := range bad {
		if _, err := ParseRoster(in); !errors.Is(err, ErrBadRoster) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := MarshalRoster([]Descriptor{ds[0], ds[0]}); err == nil || !strings.Contains(err.Error(), "same name") {
		t.Errorf("a roster listing a trustee twice: %v", err)
	}
}

func mustMarshalRoster(t testing.TB, ds []Descriptor) []byte {
	// MarshalRoster refuses a roster of one, so write it by hand.
	b, err := MarshalRoster(append(slices.Clone(ds), testIdentity(t, "trustee-z", "10.0.0.26:7000").Descriptor()))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(b, []byte(",\n    {"))
	j := bytes.LastIndex(b, []byte("\n  ]"))
	return append(bytes.Clone(b[:i]), b[j:]...)
}

func FuzzParseRoster(f *testing.F) {
	_, b := rosterFixture(f)
	f.Add(b)
	f.Add([]byte(`{"version":"keyquorum roster v1","trustees":[]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		ms, err := ParseRoster(in)
		if err != nil {
			if !errors.Is(err, ErrBadRoster) {
				t.Fatalf("error not wrapping ErrBadRoster: %v", err)
			}
			return
		}
		var ds []Descriptor
		for _, m := range ms {
			ds = append(ds, Descriptor{Name: m.Name, Address: m.Address, IdentityKey: m.IdentityKey, TLSPin: m.TLSPin, LogKey: m.LogKey})
		}
		again, err := MarshalRoster(ds)
		if err != nil || !bytes.Equal(again, in) {
			t.Fatalf("parse then marshal changed the roster: %v", err)
		}
	})
}

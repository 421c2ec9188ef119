package escrow_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	"github.com/keyquorum/keyquorum/shares"
	"golang.org/x/mod/sumdb/note"
)

// dealtFile returns a freshly dealt group file and its canonical encoding.
func dealtFile(t testing.TB) (*escrow.GroupFile, []escrow.DealtShare, []byte) {
	t.Helper()
	names := []string{"trustee-1", "trustee-2", "trustee-3", "trustee-4", "trustee-5"}
	g, dealt, err := escrow.Deal(names, testThreshold, testEpochs, detRand("group file"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range g.Trustees {
		m := &g.Trustees[i]
		_, vkey, err := note.GenerateKey(detRand("log/"+m.Name), m.Name+".log")
		if err != nil {
			t.Fatal(err)
		}
		m.LogKey = vkey
		m.Address = fmt.Sprintf("127.0.0.1:%d", 7000+m.Index)
	}
	b, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return g, dealt, b
}

// encodeUnchecked writes g the way Marshal does but without validating it,
// so a test can hand ParseGroupFile an invalid file in canonical layout.
func encodeUnchecked(t testing.TB, g *escrow.GroupFile) []byte {
	t.Helper()
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// cloneFile deep-copies a group file through its JSON form.
func cloneFile(t testing.TB, g *escrow.GroupFile) *escrow.GroupFile {
	t.Helper()
	var c escrow.GroupFile
	if err := json.Unmarshal(encodeUnchecked(t, g), &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestGroupFileRoundTrip(t *testing.T) {
	g, _, b := dealtFile(t)
	if !bytes.HasPrefix(b, []byte("{\n  \"version\": \""+escrow.GroupFileVersion+"\",\n")) {
		t.Errorf("group file does not start with its version:\n%.80s", b)
	}
	parsed, err := escrow.ParseGroupFile(b)
	if err != nil {
		t.Fatal(err)
	}
	again, err := parsed.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, b) {
		t.Fatalf("marshal(parse(b)) != b:\n%s\n%s", again, b)
	}
	if parsed.Threshold != g.Threshold || len(parsed.Trustees) != len(g.Trustees) || len(parsed.Epochs) != len(g.Epochs) {
		t.Fatalf("parsed file differs: %+v", parsed)
	}
	for i, e := range parsed.Epochs {
		if e.Epoch != g.Epochs[i].Epoch || e.Key != g.Epochs[i].Key || !e.ValidFrom.Equal(g.Epochs[i].ValidFrom) || !e.ValidUntil.Equal(g.Epochs[i].ValidUntil) {
			t.Errorf("epoch %d differs after the round trip", i)
		}
	}
	if parsed.KeyGeneration != "dealer" {
		t.Errorf("key generation %q, want dealer", parsed.KeyGeneration)
	}
	if strings.Contains(string(b), "secret") || strings.Contains(string(b), "share\"") {
		t.Errorf("group file mentions secret material:\n%s", b)
	}
}

func TestParseGroupFileRefusals(t *testing.T) {
	g, _, valid := dealtFile(t)
	other, _, _ := escrow.Deal([]string{"a", "b", "c", "d", "e"}, testThreshold, testEpochs, detRand("another group"))

	b64 := base64.StdEncoding.EncodeToString
	fromHex := func(s string) string {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b64(b)
	}
	torsion := fromHex(torsionPointHex)
	// A point with a torsion component: the epoch key plus the order-8
	// point, not in the prime-order subgroup.
	mixed := func() string {
		k, _ := base64.StdEncoding.DecodeString(g.Epochs[0].Key)
		p, q := group.Point(), group.Point()
		tb, _ := hex.DecodeString(torsionPointHex)
		if err := p.UnmarshalBinary(k); err != nil {
			t.Fatal(err)
		}
		if err := q.UnmarshalBinary(tb); err != nil {
			t.Fatal(err)
		}
		return b64(group.PointBytes(p.Add(p, q)))
	}()
	// y = p, a non-canonical field element.
	nonCanonical := fromHex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	identity := fromHex("0100000000000000000000000000000000000000000000000000000000000000")

	edit := func(f func(g *escrow.GroupFile)) func() []byte {
		return func() []byte {
			c := cloneFile(t, g)
			f(c)
			return encodeUnchecked(t, c)
		}
	}
	text := func(old, new string) func() []byte {
		return func() []byte {
			if !bytes.Contains(valid, []byte(old)) {
				t.Fatalf("group file has no %q", old)
			}
			return bytes.Replace(valid, []byte(old), []byte(new), 1)
		}
	}
	tests := []struct {
		name string
		file func() []byte
	}{
		{"wrong version", edit(func(g *escrow.GroupFile) { g.Version = "keyquorum group v3" })},
		{"no version", edit(func(g *escrow.GroupFile) { g.Version = "" })},
		{"unknown key generation", edit(func(g *escrow.GroupFile) { g.KeyGeneration = "trusted" })},
		{"threshold above n", edit(func(g *escrow.GroupFile) { g.Threshold = 6 })},
		{"threshold zero", edit(func(g *escrow.GroupFile) { g.Threshold = 0 })},
		{"witness quorum of n", edit(func(g *escrow.GroupFile) { five := 5; g.WitnessQuorum = &five })},
		{"negative witness quorum", edit(func(g *escrow.GroupFile) { neg := -1; g.WitnessQuorum = &neg })},
		{"no trustees", edit(func(g *escrow.GroupFile) { g.Trustees = nil })},
		{"indices out of order", edit(func(g *escrow.GroupFile) { g.Trustees[1], g.Trustees[2] = g.Trustees[2], g.Trustees[1] })},
		{"indices from 0", edit(func(g *escrow.GroupFile) {
			for i := range g.Trustees {
				g.Trustees[i].Index = i
			}
		})},
		{"index skipped", edit(func(g *escrow.GroupFile) { g.Trustees[4].Index = 6 })},
		{"bad trustee name", edit(func(g *escrow.GroupFile) { g.Trustees[0].Name = "trustee one" })},
		{"no epochs", edit(func(g *escrow.GroupFile) { g.Epochs = nil })},
		{"trustee name twice", edit(func(g *escrow.GroupFile) { g.Trustees[3].Name = g.Trustees[1].Name })},
		{"overlapping epochs", edit(func(g *escrow.GroupFile) { g.Epochs[1].ValidFrom = g.Epochs[0].ValidUntil.Add(-time.Hour) })},
		{"epoch time not UTC", edit(func(g *escrow.GroupFile) {
			g.Epochs[0].ValidFrom = g.Epochs[0].ValidFrom.In(time.FixedZone("CET", 3600))
		})},
		{"epoch time with fractions", edit(func(g *escrow.GroupFile) { g.Epochs[0].ValidFrom = g.Epochs[0].ValidFrom.Add(time.Millisecond) })},
		{"epochs out of order", edit(func(g *escrow.GroupFile) { g.Epochs[0], g.Epochs[1] = g.Epochs[1], g.Epochs[0] })},
		{"epoch repeated", edit(func(g *escrow.GroupFile) { g.Epochs[1].Epoch = g.Epochs[0].Epoch })},
		{"empty validity", edit(func(g *escrow.GroupFile) { g.Epochs[0].ValidUntil = g.Epochs[0].ValidFrom })},
		{"commitment too short", edit(func(g *escrow.GroupFile) { g.Epochs[0].Commitment = g.Epochs[0].Commitment[:2] })},
		{"commitment too long", edit(func(g *escrow.GroupFile) {
			g.Epochs[0].Commitment = append(g.Epochs[0].Commitment, g.Epochs[1].Commitment[1])
		})},
		{"commitment does not match the key", edit(func(g *escrow.GroupFile) { g.Epochs[0].Key = g.Epochs[1].Key })},
		{"commitment of another group", edit(func(g *escrow.GroupFile) { g.Epochs[0].Commitment = other.Epochs[0].Commitment })},
		{"key is a small-order point", edit(func(g *escrow.GroupFile) { g.Epochs[0].Key = torsion; g.Epochs[0].Commitment[0] = torsion })},
		{"commitment point of small order", edit(func(g *escrow.GroupFile) { g.Epochs[0].Commitment[2] = torsion })},
		{"commitment point with a torsion component", edit(func(g *escrow.GroupFile) { g.Epochs[0].Commitment[1] = mixed })},
		{"non-canonical point", edit(func(g *escrow.GroupFile) { g.Epochs[0].Commitment[1] = nonCanonical })},
		{"identity point", edit(func(g *escrow.GroupFile) { g.Epochs[0].Commitment[1] = identity })},
		{"point not base64", edit(func(g *escrow.GroupFile) { g.Epochs[0].Commitment[1] = "not base64!" })},
		{"point with non-canonical base64", edit(func(g *escrow.GroupFile) {
			c := g.Epochs[0].Commitment[1] // 32 bytes: ends in one "=" with 2 unused bits
			last := strings.IndexByte(base64Alphabet, c[len(c)-2])
			g.Epochs[0].Commitment[1] = c[:len(c)-2] + string(base64Alphabet[last|1]) + "="
		})},
		{"point too short", edit(func(g *escrow.GroupFile) { g.Epochs[0].Commitment[1] = b64(make([]byte, 31)) })},
		{"unknown field", text("  \"threshold\": 3,\n", "  \"threshold\": 3,\n  \"dealer\": \"me\",\n")},
		{"unknown nested field", text("      \"name\": \"trustee-1\",\n", "      \"name\": \"trustee-1\",\n      \"operator\": \"x\",\n")},
		{"extra indentation", text("\n  \"threshold\"", "\n    \"threshold\"")},
		{"tabs", text("\n  \"threshold\"", "\n\t\"threshold\"")},
		{"CRLF", func() []byte { return bytes.ReplaceAll(valid, []byte("\n"), []byte("\r\n")) }},
		{"no final newline", func() []byte { return valid[:len(valid)-1] }},
		{"two final newlines", func() []byte { return append(bytes.Clone(valid), '\n') }},
		{"compact", func() []byte {
			var buf bytes.Buffer
			if err := json.Compact(&buf, valid); err != nil {
				t.Fatal(err)
			}
			return buf.Bytes()
		}},
		{"fields reordered", func() []byte {
			c := cloneFile(t, g)
			m := map[string]any{"version": c.Version, "key_generation": c.KeyGeneration, "threshold": c.Threshold, "trustees": c.Trustees, "epochs": c.Epochs}
			b, err := json.MarshalIndent(m, "", "  ") // map keys sorted: epochs first
			if err != nil {
				t.Fatal(err)
			}
			return append(b, '\n')
		}},
		{"field name case", text("\"threshold\"", "\"Threshold\"")},
		{"duplicate field", text("  \"threshold\": 3,\n", "  \"threshold\": 5,\n  \"threshold\": 3,\n")},
		{"number with exponent", text("\"threshold\": 3,", "\"threshold\": 3e0,")},
		{"escaped string", text("\"dealer\"", "\"\\u0064ealer\"")},
		{"trailing data", func() []byte { return append(bytes.Clone(valid), []byte("{}\n")...) }},
		{"two objects", func() []byte { return append(bytes.Clone(valid), valid...) }},
		{"empty", func() []byte { return nil }},
		{"null", func() []byte { return []byte("null\n") }},
		{"array", func() []byte { return []byte("[]\n") }},
	}
	// For some cases, the reason matters: the file must be refused for
	// what is wrong with it, not only because it is no longer canonical.
	reasons := map[string]string{
		"wrong version":                     "version",
		"threshold above n":                 "threshold 6 with 5 trustees",
		"witness quorum of n":               "witness_quorum 5 with 5 trustees",
		"indices out of order":              "indices run 1..n in order",
		"commitment does not match the key": "does not commit to the epoch key",
		"key is a small-order point":        "small order",
		"commitment point of small order":   "small order",
		"non-canonical point":               "canonical",
		"unknown field":                     "unknown field",
		"unknown nested field":              "unknown field",
		"extra indentation":                 "canonical form",
		"compact":                           "canonical form",
		"trailing data":                     "trailing data",
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.file()
			g, err := escrow.ParseGroupFile(b)
			if !errors.Is(err, escrow.ErrBadGroupFile) {
				t.Fatalf("ParseGroupFile: %v, want ErrBadGroupFile\n%s", err, b)
			}
			if want := reasons[tc.name]; !strings.Contains(err.Error(), want) {
				t.Errorf("ParseGroupFile: %v, want it to say %q", err, want)
			}
			if g != nil {
				t.Errorf("ParseGroupFile returned a file with its error")
			}
		})
	}
}

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestWitnessQuorum: w defaults to t-1 and round-trips when set.
func TestWitnessQuorum(t *testing.T) {
	g, _, _ := dealtFile(t)
	if g.WitnessQuorum != nil || g.Witnesses() != g.Threshold-1 {
		t.Fatalf("default w = %d (field %d), want t-1 = %d", g.Witnesses(), g.WitnessQuorum, g.Threshold-1)
	}
	for _, w := range []int{0, 4} {
		c := cloneFile(t, g)
		c.WitnessQuorum = &w
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := escrow.ParseGroupFile(b)
		if err != nil || back.Witnesses() != w || !bytes.Contains(b, fmt.Appendf(nil, `"witness_quorum": %d`, w)) {
			t.Fatalf("w = %d after a round trip: %v, %v", w, back, err)
		}
	}
}

func TestMarshalRefusesInvalidFile(t *testing.T) {
	g, _, _ := dealtFile(t)
	c := cloneFile(t, g)
	c.Threshold = 9
	if _, err := c.Marshal(); !errors.Is(err, escrow.ErrBadGroupFile) {
		t.Fatalf("Marshal of an invalid file: %v, want ErrBadGroupFile", err)
	}
}

func TestDealRefusals(t *testing.T) {
	names := []string{"trustee-1", "trustee-2", "trustee-3"}
	tests := []struct {
		name   string
		names  []string
		t      int
		epochs []escrow.GroupEpoch
	}{
		{"threshold above n", names, 4, testEpochs},
		{"threshold zero", names, 0, testEpochs},
		{"no trustees", nil, 1, testEpochs},
		{"no epochs", names, 2, nil},
		{"epochs out of order", names, 2, []escrow.GroupEpoch{testEpochs[1], testEpochs[0]}},
		{"bad name", []string{"trustee 1", "trustee-2"}, 2, testEpochs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if g, d, err := escrow.Deal(tc.names, tc.t, tc.epochs, detRand(tc.name)); err == nil {
				t.Fatalf("Deal succeeded: %d trustees, %d shares", len(g.Trustees), len(d))
			}
		})
	}
}

func TestEscrowGroupPublicShares(t *testing.T) {
	g, dealt, _ := dealtFile(t)
	if len(dealt) != testTrustees*len(testEpochs) {
		t.Fatalf("dealt %d shares, want %d", len(dealt), testTrustees*len(testEpochs))
	}
	byEpoch := map[uint32][]shares.Share{}
	for _, d := range dealt {
		eg, err := g.EscrowGroup(d.Epoch)
		if err != nil {
			t.Fatal(err)
		}
		if d.Share.Index != d.Trustee.Index {
			t.Errorf("dealt share index %d handed to trustee %d", d.Share.Index, d.Trustee.Index)
		}
		want := group.Point().Mul(d.Share.Value, nil)
		if !eg.PublicShares[d.Trustee.Index].Equal(want) {
			t.Errorf("epoch %d: public share of trustee %d is not share·G", d.Epoch, d.Trustee.Index)
		}
		byEpoch[d.Epoch] = append(byEpoch[d.Epoch], d.Share)
	}
	for _, e := range g.Epochs {
		eg, err := g.EscrowGroup(e.Epoch)
		if err != nil {
			t.Fatal(err)
		}
		if eg.Epoch != e.Epoch || eg.Threshold != testThreshold || len(eg.PublicShares) != testTrustees {
			t.Errorf("epoch %d: group %d, threshold %d, %d public shares", e.Epoch, eg.Epoch, eg.Threshold, len(eg.PublicShares))
		}
		if b64(group.PointBytes(eg.Key)) != e.Key {
			t.Errorf("epoch %d: group key is not the file's key", e.Epoch)
		}
		// Every t-subset of the dealt shares rebuilds the epoch key.
		for _, sub := range subsets(byEpoch[e.Epoch], testThreshold) {
			x, err := shares.Recover(sub, testThreshold)
			if err != nil {
				t.Fatal(err)
			}
			if !group.Point().Mul(x, nil).Equal(eg.Key) {
				t.Fatalf("epoch %d: shares %d,%d,%d do not rebuild the key", e.Epoch, sub[0].Index, sub[1].Index, sub[2].Index)
			}
		}
		c, err := g.Commitment(e.Epoch)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range byEpoch[e.Epoch] {
			if err := c.Verify(s); err != nil {
				t.Errorf("epoch %d: dealt share %d does not verify against the commitment: %v", e.Epoch, s.Index, err)
			}
		}
	}
	// Different epochs have different keys.
	if g.Epochs[0].Key == g.Epochs[1].Key || g.Epochs[1].Key == g.Epochs[2].Key {
		t.Error("two epochs share a key")
	}
	if _, err := g.EscrowGroup(9); err == nil {
		t.Error("EscrowGroup of an epoch the file does not have succeeded")
	}
	if _, err := g.Commitment(9); err == nil {
		t.Error("Commitment of an epoch the file does not have succeeded")
	}
}

func TestEpochAt(t *testing.T) {
	g, _, _ := dealtFile(t)
	tests := []struct {
		at    time.Time
		epoch uint32 // 0: no epoch
	}{
		{t0.Add(-time.Second), 0},
		{t0, 1},
		{t0.Add(3 * day), 1},
		{t0.Add(7*day - time.Second), 1},
		{t0.Add(7 * day), 2},
		{t0.Add(14*day - time.Nanosecond), 2},
		{t0.Add(14 * day), 3},
		{t0.Add(28*day - time.Second), 3},
		{t0.Add(28 * day), 0},
		{t0.AddDate(1, 0, 0), 0},
		{t0.In(time.FixedZone("UTC+5", 5*3600)).Add(8 * day), 2},
	}
	for _, tc := range tests {
		e, err := g.EpochAt(tc.at)
		switch {
		case tc.epoch == 0 && err == nil:
			t.Errorf("EpochAt(%v) = epoch %d, want an error", tc.at, e.Epoch)
		case tc.epoch == 0:
		case err != nil:
			t.Errorf("EpochAt(%v): %v, want epoch %d", tc.at, err, tc.epoch)
		case e.Epoch != tc.epoch:
			t.Errorf("EpochAt(%v) = epoch %d, want %d", tc.at, e.Epoch, tc.epoch)
		}
	}
	if e, err := g.Epoch(2); err != nil || e.Epoch != 2 {
		t.Errorf("Epoch(2) = %v, %v", e, err)
	}
	if _, err := g.Epoch(4); err == nil {
		t.Error("Epoch(4) succeeded")
	}
}

func FuzzParseGroupFile(f *testing.F) {
	_, _, valid := dealtFile(f)
	f.Add(valid)
	small, _, err := escrow.Deal([]string{"a"}, 1, testEpochs[:1], detRand("small"))
	if err != nil {
		f.Fatal(err)
	}
	sb, err := small.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sb)
	f.Add(bytes.Replace(valid, []byte("\"threshold\": 3"), []byte("\"threshold\": 6"), 1))
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := escrow.ParseGroupFile(b)
		if err != nil {
			if g != nil {
				t.Fatal("a file returned with an error")
			}
			if !errors.Is(err, escrow.ErrBadGroupFile) && !errors.Is(err, escrow.ErrGroupSignature) {
				t.Fatalf("error does not wrap ErrBadGroupFile: %v", err)
			}
			return
		}
		again, err := g.Marshal()
		if err != nil {
			t.Fatalf("parsed file does not marshal: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("marshal(parse(b)) != b:\n%q\n%q", again, b)
		}
		for _, e := range g.Epochs {
			if _, err := g.EscrowGroup(e.Epoch); err != nil {
				t.Fatalf("parsed file's epoch %d has no escrow group: %v", e.Epoch, err)
			}
		}
	})
}

// Fixtures of the group file tests: a 3-of-5 group with three epochs.
const (
	testThreshold = 3
	testTrustees  = 5
	day           = 24 * time.Hour
)

var (
	t0         = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	testEpochs = []escrow.GroupEpoch{
		{Epoch: 1, ValidFrom: t0, ValidUntil: t0.Add(7 * day)},
		{Epoch: 2, ValidFrom: t0.Add(7 * day), ValidUntil: t0.Add(14 * day)},
		{Epoch: 3, ValidFrom: t0.Add(14 * day), ValidUntil: t0.Add(28 * day)},
	}
)

// detRand returns a deterministic randomness source named by seed.
func detRand(seed string) io.Reader {
	return mrand.NewChaCha8(sha256.Sum256([]byte(seed)))
}

// subsets returns every k-element subset of xs, in order.
func subsets[T any](xs []T, k int) [][]T {
	if k == 0 {
		return [][]T{nil}
	}
	var out [][]T
	for i := 0; i+k <= len(xs); i++ {
		for _, rest := range subsets(xs[i+1:], k-1) {
			out = append(out, append([]T{xs[i]}, rest...))
		}
	}
	return out
}

// torsionPointHex encodes a point of order 8 on Ed25519.
const torsionPointHex = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"

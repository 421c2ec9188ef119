package fedrun_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
	"golang.org/x/mod/sumdb/note"
)

// TestDecryptInChunks: a warrant's sessions, more than one request
// carries, are decrypted in several signed requests, each logged as a
// decision of its own by every trustee, with progress reported over the
// whole warrant. A transcript, which holds one request, is refused before
// anything is sent.
//
// Attack (a requester holding a warrant capped at 120 sessions, who
// splits 295 into requests of 50 to stay under each trustee's view of one
// request): the trustees count the warrant's releases across requests,
// grant the first two requests (100 sessions) and refuse the third, so
// the requester stops there with ErrQuorumRefused and gets exactly the
// first 100 keys.
func TestDecryptInChunks(t *testing.T) {
	fx := newFixture(t, fixtureConfig{trustees: 3, threshold: 2, days: 20, perDay: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := len(fx.inScope)
	const size = 50
	chunks := (n + size - 1) / size
	if chunks < 4 {
		t.Fatalf("only %d sessions in scope: too few for this test", n)
	}
	sizes := func() []int64 {
		var out []int64
		for _, tr := range fx.fed.Trustees {
			s, err := logSize(ctx, tr)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	before := sizes()

	_, err := trustee.Decrypt(ctx, fx.fed.Group, fx.fed.Clients(), fx.warrant, fx.requester, envelopes(fx.inScope),
		trustee.DecryptOptions{ChunkSessions: size, Transcript: &trustee.Transcript{}})
	if !errors.Is(err, trustee.ErrChunkedTranscript) {
		t.Fatalf("a transcript over %d requests: %v, want ErrChunkedTranscript", chunks, err)
	}
	for i, s := range sizes() {
		if s != before[i] {
			t.Fatalf("%s logged %d records for a refused transcript: something was sent", fx.fed.Trustees[i].Name, s-before[i])
		}
	}

	var last int
	res, err := trustee.Decrypt(ctx, fx.fed.Group, fx.fed.Clients(), fx.warrant, fx.requester, envelopes(fx.inScope),
		trustee.DecryptOptions{ChunkSessions: size, Progress: func(done, total int) {
			if total != n || done < last || done > n {
				t.Errorf("progress %d of %d after %d", done, total, last)
			}
			last = done
		}})
	if err != nil {
		t.Fatal(err)
	}
	fx.checkRecovered(t, res, fx.inScope)
	if last != n {
		t.Errorf("progress ended at %d of %d", last, n)
	}
	for i, s := range sizes() {
		if s-before[i] != int64(chunks) {
			t.Errorf("%s logged %d decisions for %d requests", fx.fed.Trustees[i].Name, s-before[i], chunks)
		}
		if r := res.Trustees[i]; r.Status != trustee.StatusGranted || r.Attempts != chunks {
			t.Errorf("%s: %s after %d attempts (%s)", r.Name, r.Status, r.Attempts, r.Reason)
		}
	}

	// The capped warrant.
	w, err := escrow.ParseWarrant(mustOpenNote(t, fx.warrant))
	if err != nil {
		t.Fatal(err)
	}
	w.ID, w.MaxSessions = "W-FEDRUN-CAPPED", 120
	body, err := w.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	capped, err := escrow.SignWarrant(body, fx.judge)
	if err != nil {
		t.Fatal(err)
	}
	before = sizes()
	res, err = trustee.Decrypt(ctx, fx.fed.Group, fx.fed.Clients(), capped, fx.requester, envelopes(fx.inScope),
		trustee.DecryptOptions{ChunkSessions: size, Attempts: 1})
	var qe *trustee.QuorumError
	if !errors.Is(err, trustee.ErrQuorumRefused) || !errors.As(err, &qe) {
		t.Fatalf("splitting past the warrant's cap: %v, want ErrQuorumRefused", err)
	}
	if len(res.Keys) != 2*size || qe.Unrecovered != n-2*size || qe.Sessions != n {
		t.Fatalf("%d keys, %d of %d unrecovered; want the first %d only", len(res.Keys), qe.Unrecovered, qe.Sessions, 2*size)
	}
	for _, c := range fx.inScope[:2*size] {
		if _, ok := res.Keys[c.Context.SessionID]; !ok {
			t.Fatalf("no key for session %s of the first two requests", c.Context.SessionID)
		}
	}
	for i, r := range res.Trustees {
		if r.Status != trustee.StatusRefused || r.Code != trustee.CodeSessionCap || !strings.HasPrefix(r.Reason, "request 3 of ") {
			t.Errorf("%s: %s %s: %s; want refused with %s in request 3", r.Name, r.Status, r.Code, r.Reason, trustee.CodeSessionCap)
		}
		// Two grants and one refusal each; the rest was never sent.
		if s := sizes()[i]; s-before[i] != 3 {
			t.Errorf("%s logged %d decisions, want 3", r.Name, s-before[i])
		}
	}
	for _, c := range fx.inScope[3*size:] {
		if why := res.Unrecovered[c.Context.SessionID]; !strings.Contains(why, "not requested") {
			t.Fatalf("session %s after the refusal: %q", c.Context.SessionID, why)
		}
	}
}

// mustOpenNote returns the text of a signed note without checking its
// signatures.
func mustOpenNote(t *testing.T, signed []byte) []byte {
	t.Helper()
	_, err := note.Open(signed, nil)
	var u *note.UnverifiedNoteError
	if !errors.As(err, &u) {
		t.Fatalf("not a signed note: %v", err)
	}
	return []byte(u.Note.Text)
}

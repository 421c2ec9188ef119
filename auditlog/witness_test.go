package auditlog

import (
	"bytes"
	"errors"
	"testing"

	fmtnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// witnessFixture is trustee-1's log witnessed by trustee-2.
type witnessFixture struct {
	log      *Log
	store    *MemStore
	logV     note.Verifier
	wstore   *MemWitnessStore
	w        *Witness
	cosigner note.Verifier
}

func newWitnessFixture(t *testing.T) *witnessFixture {
	t.Helper()
	l, store, v := newTestLog(t)
	wskey, wvkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{9}, 64)), "trustee-2.keyquorum")
	if err != nil {
		t.Fatal(err)
	}
	cosigner, err := fmtnote.NewSignerForCosignatureV1(wskey)
	if err != nil {
		t.Fatal(err)
	}
	cv, err := fmtnote.NewVerifierForCosignatureV1(wvkey)
	if err != nil {
		t.Fatal(err)
	}
	ws := NewMemWitnessStore()
	w, err := NewWitness(cosigner, []note.Verifier{v}, ws)
	if err != nil {
		t.Fatal(err)
	}
	return &witnessFixture{log: l, store: store, logV: v, wstore: ws, w: w, cosigner: cv}
}

// add sends the log's current checkpoint with a proof from oldSize.
func (f *witnessFixture) add(t *testing.T, l *Log, oldSize int64) (SignedCheckpoint, []byte, error) {
	t.Helper()
	h, err := l.Head()
	if err != nil {
		t.Fatal(err)
	}
	proof, err := l.ConsistencyProof(oldSize, h.Tree.N)
	if err != nil {
		t.Fatal(err)
	}
	cosig, err := f.w.AddCheckpoint(FormatAddCheckpoint(oldSize, proof, h.Note))
	return h, cosig, err
}

func TestWitnessCosigns(t *testing.T) {
	f := newWitnessFixture(t)
	appendN(t, f.log, f.logV, 3, "w")
	h, cosig, err := f.add(t, f.log, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The cosignature line, appended to the checkpoint, verifies as a
	// C2SP tlog-cosignature with the witness's key.
	n, err := note.Open(append(bytes.Clone(h.Note), cosig...), note.VerifierList(f.logV, f.cosigner))
	if err != nil || len(n.Sigs) != 2 {
		t.Fatalf("cosigned checkpoint: %v (%d signatures)", err, len(n.Sigs))
	}
	appendN(t, f.log, f.logV, 2, "x")
	if _, _, err := f.add(t, f.log, 3); err != nil {
		t.Fatal(err)
	}
	if latest, _ := f.wstore.Latest(f.log.Origin()); !bytes.HasPrefix(latest, []byte("trustee-1.keyquorum\n5\n")) {
		t.Fatalf("latest kept: %q", latest)
	}
}

// TestWitnessRefusesFork: the log's operator shows the witness a
// checkpoint of a rewritten log (same key). The witness refuses it with
// ErrInconsistent (422) and keeps both checkpoints.
func TestWitnessRefusesFork(t *testing.T) {
	f := newWitnessFixture(t)
	appendN(t, f.log, f.logV, 5, "honest")
	kept, _, err := f.add(t, f.log, 0)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := testLogKey(t, "trustee-1.keyquorum", 1)
	forked, err := New(NewMemStore(), signer, testClock)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, forked, f.logV, 6, "rewritten")
	refused, _, err := f.add(t, forked, 5)
	if !errors.Is(err, ErrInconsistent) || WitnessHTTPStatus(err) != 422 {
		t.Fatalf("forked checkpoint: err = %v (status %d), want ErrInconsistent (422)", err, WitnessHTTPStatus(err))
	}
	ev := f.wstore.Evidence[f.log.Origin()]
	if len(ev) != 1 || !bytes.Equal(ev[0][0], kept.Note) || !bytes.Equal(ev[0][1], refused.Note) {
		t.Fatalf("evidence kept: %q", ev)
	}
	if latest, _ := f.wstore.Latest(f.log.Origin()); !bytes.Equal(latest, kept.Note) {
		t.Fatal("the refused checkpoint replaced the one kept")
	}
}

func TestWitnessRefusals(t *testing.T) {
	f := newWitnessFixture(t)
	appendN(t, f.log, f.logV, 4, "r")
	h, _, err := f.add(t, f.log, 0)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := testLogKey(t, "trustee-9.keyquorum", 7)
	unknown, _ := note.Sign(&note.Note{Text: FormatCheckpoint("trustee-9.keyquorum", h.Tree)}, other)
	impostor, _ := testLogKey(t, "trustee-1.keyquorum", 8)
	forged, _ := note.Sign(&note.Note{Text: FormatCheckpoint("trustee-1.keyquorum", h.Tree)}, impostor)
	var conflict *WitnessConflictError
	for _, tt := range []struct {
		name   string
		body   []byte
		want   error
		status int
	}{
		{"unknown log", FormatAddCheckpoint(0, nil, unknown), ErrUnknownLog, 403},
		{"signed by another key", FormatAddCheckpoint(4, nil, forged), ErrWitnessSignature, 403},
		{"stale old size", FormatAddCheckpoint(2, nil, h.Note), conflict, 409},
		{"old size beyond the checkpoint", FormatAddCheckpoint(9, nil, h.Note), ErrWitnessBadRequest, 400},
		{"no empty line", []byte("old 0\n"), ErrWitnessBadRequest, 400},
		{"bad proof hash", []byte("old 0\nnot-base64\n\n" + string(h.Note)), ErrWitnessBadRequest, 400},
	} {
		_, err := f.w.AddCheckpoint(tt.body)
		if tt.want == conflict {
			if !errors.As(err, &conflict) || conflict.Known != 4 {
				t.Errorf("%s: err = %v, want a conflict at 4", tt.name, err)
			}
		} else if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
		if got := WitnessHTTPStatus(err); got != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.status)
		}
	}
}

func FuzzParseAddCheckpoint(f *testing.F) {
	h := tlog.RecordHash([]byte("x"))
	f.Add(FormatAddCheckpoint(3, tlog.TreeProof{h, h}, []byte("o\n3\nAAAA\n\n— o sig\n")))
	f.Add([]byte("old 0\n\nx"))
	f.Fuzz(func(t *testing.T, body []byte) {
		size, proof, signed, err := ParseAddCheckpoint(body)
		if err != nil {
			if !errors.Is(err, ErrWitnessBadRequest) {
				t.Fatalf("error %v does not wrap ErrWitnessBadRequest", err)
			}
			return
		}
		if again := FormatAddCheckpoint(size, proof, signed); !bytes.Equal(again, body) {
			t.Fatalf("format(parse(b)) = %q, b = %q", again, body)
		}
	})
}

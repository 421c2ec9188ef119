package trustee_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyquorum/keyquorum/trustee"
)

func TestTranscriptRoundTripAndVerify(t *testing.T) {
	f := newNetFed(t, netOptions{n: 3, t: 2})
	var tr trustee.Transcript
	opts := fastOptions()
	opts.Transcript = &tr
	if _, err := trustee.Decrypt(context.Background(), f.group, f.clients(), f.warrant(nil), f.requester, envelopesOf(f.sessions(2, "transcript")), opts); err != nil {
		t.Fatal(err)
	}
	b, err := tr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := trustee.ParseTranscript(b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Marshal()
	if !bytes.Equal(again, b) {
		t.Fatal("marshal(parse(b)) != b")
	}
	check, err := trustee.VerifyTranscript(f.group, back)
	if err != nil {
		t.Fatal(err)
	}
	if check.Sessions != 2 || len(check.Valid) < 2 {
		t.Fatalf("check %+v", check)
	}

	// Each alteration is refused with ErrBadTranscript.
	for name, edit := range map[string]func(*trustee.Transcript){
		"batch from another answer": func(x *trustee.Transcript) { x.Answers[0].Batches[0] = x.Answers[1].Batches[0] },
		"one V altered":             func(x *trustee.Transcript) { x.Answers[0].Batches[0] = shiftBatchV(x.Answers[0].Batches[0], 1) },
		"record index":              func(x *trustee.Transcript) { x.Answers[0].RecordIndex++ },
		"checkpoint of another":     func(x *trustee.Transcript) { x.Answers[0].Checkpoint = x.Answers[1].Checkpoint },
		"too few answers":           func(x *trustee.Transcript) { x.Answers = x.Answers[:1] },
		"answer given twice":        func(x *trustee.Transcript) { x.Answers = append(x.Answers[:1], x.Answers[0]) },
		"request altered":           func(x *trustee.Transcript) { x.Request[len(x.Request)-1] ^= 1 },
		"cosignatures stripped": func(x *trustee.Transcript) {
			for i := range x.Answers {
				text, sigs, _ := strings.Cut(x.Answers[i].Checkpoint, "\n\n")
				own, _, _ := strings.Cut(sigs, "\n")
				x.Answers[i].Checkpoint = text + "\n\n" + own + "\n"
			}
		},
	} {
		x, _ := trustee.ParseTranscript(b)
		edit(x)
		_, err := trustee.VerifyTranscript(f.group, x)
		if !errors.Is(err, trustee.ErrBadTranscript) {
			t.Errorf("%s: err = %v, want ErrBadTranscript", name, err)
		}
		if name == "cosignatures stripped" && !errors.Is(err, trustee.ErrTooFewCosignatures) {
			t.Errorf("%s: err = %v, want ErrTooFewCosignatures", name, err)
		}
	}
}

func FuzzParseTranscript(f *testing.F) {
	tr := trustee.Transcript{Request: []byte("r"), Answers: []trustee.TranscriptAnswer{{Trustee: "trustee-1", Index: 1, Batches: [][]byte{{1}}, Record: []byte("{}"), Checkpoint: "c\n", Proof: [][]byte{{2}}}}}
	b, _ := tr.Marshal()
	f.Add(b)
	f.Add([]byte(`{"version":"keyquorum/v1/decrypt-transcript"}`))
	f.Add([]byte(`{"version":"keyquorum/v2/decrypt-transcript"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := trustee.ParseTranscript(b)
		if err != nil {
			if !errors.Is(err, trustee.ErrBadTranscript) {
				t.Fatalf("error %v does not wrap ErrBadTranscript", err)
			}
			return
		}
		again, err := x.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("marshal(parse(b)) != b")
		}
	})
}

package auditlog

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestCheckpointRoundTrip(t *testing.T) {
	for _, n := range []int64{0, 1, 7, 1 << 40} {
		tree := tlog.Tree{N: n, Hash: tlog.RecordHash([]byte{byte(n)})}
		text := FormatCheckpoint("trustee-1.keyquorum", tree)
		origin, got, err := ParseCheckpointText(text)
		if err != nil || origin != "trustee-1.keyquorum" || got != tree {
			t.Fatalf("size %d: parsed %q %+v, %v", n, origin, got, err)
		}
		if FormatCheckpoint(origin, got) != text {
			t.Fatalf("size %d: format(parse(text)) != text", n)
		}
	}
}

// TestCheckpointIsC2SP pins the text of a checkpoint to the C2SP
// tlog-checkpoint layout: origin, decimal size, base64 root hash, each
// ending in a newline.
func TestCheckpointIsC2SP(t *testing.T) {
	empty, _ := tlog.TreeHash(0, nil)
	got := FormatCheckpoint("trustee-1.keyquorum", tlog.Tree{N: 0, Hash: empty})
	const want = "trustee-1.keyquorum\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
	if got != want {
		t.Fatalf("empty checkpoint %q, want %q", got, want)
	}
}

func TestParseCheckpointTextRefusals(t *testing.T) {
	for name, text := range map[string]string{
		"empty":            "",
		"no origin":        "\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
		"size not decimal": "o\nx\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
		"negative size":    "o\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
		"size too large":   "o\n18446744073709551615\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
		"hash not base64":  "o\n1\n!!!\n",
		"short hash":       "o\n1\nAAAA\n",
		"no final newline": "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
	} {
		if _, _, err := ParseCheckpointText(text); !errors.Is(err, ErrMalformedCheckpoint) {
			t.Errorf("%s: err = %v, want ErrMalformedCheckpoint", name, err)
		}
	}
}

// FuzzVerifyCheckpoint: whatever VerifyCheckpoint accepts starts with the
// canonical text of the tree it returns, so one tree has one signed text
// (extension lines aside), and it never panics.
func FuzzVerifyCheckpoint(f *testing.F) {
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{1}, 64)), "trustee-1.keyquorum")
	if err != nil {
		f.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	empty, _ := tlog.TreeHash(0, nil)
	for _, text := range []string{
		FormatCheckpoint("trustee-1.keyquorum", tlog.Tree{N: 0, Hash: empty}),
		FormatCheckpoint("trustee-1.keyquorum", tlog.Tree{N: 5, Hash: empty}) + "ext\n",
		"trustee-1.keyquorum\n05\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
	} {
		f.Add(text)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if _, _, err := ParseCheckpointText(text); err != nil && !errors.Is(err, ErrMalformedCheckpoint) {
			t.Fatalf("ParseCheckpointText error %v does not wrap ErrMalformedCheckpoint", err)
		}
		msg, err := note.Sign(&note.Note{Text: text}, signer)
		if err != nil {
			return // not a valid note text
		}
		tree, err := VerifyCheckpoint(msg, verifier)
		if err != nil {
			if !errors.Is(err, ErrMalformedCheckpoint) {
				t.Fatalf("error %v for a validly signed note", err)
			}
			return
		}
		if !strings.HasPrefix(text, FormatCheckpoint("trustee-1.keyquorum", tree)) {
			t.Fatalf("accepted %q, which is not the canonical text of %+v", text, tree)
		}
	})
}

package trustee

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keyquorum/keyquorum/escrow"
	"golang.org/x/mod/sumdb/note"
)

// TranscriptVersion is the value of the "version" field that starts an
// encoded [Transcript].
//
// Version 2 holds each answer's batched partial decryptions (one
// [escrow.BatchAnswer] per epoch, with one composite proof) where version
// 1 held one partial decryption and proof per session; this build reads
// version 2 only.
const TranscriptVersion = "keyquorum/v2/decrypt-transcript"

// ErrBadTranscript: the transcript is malformed, or what it holds does not
// verify (a checkpoint, an inclusion proof, a record that does not grant
// the request, a batch's proof). The error says which
// trustee's answer and what.
var ErrBadTranscript = errors.New("trustee: decryption transcript does not verify")

// Transcript is everything an independent party needs to re-check a
// warranted decryption offline, with the group file alone: the signed
// request as sent, and every answer the requester combined, with its
// batches of partial decryptions and their composite DLEQ proofs, the
// decision record, the trustee's
// signed checkpoint and the record's inclusion proof. [Decrypt] fills one
// when [DecryptOptions.Transcript] is set; [VerifyTranscript] checks it.
// It holds no secret: the partial decryptions open nothing without the
// requester's key q.
//
// # Encoding
//
// [Transcript.Marshal] writes indented JSON, fields in this order, []byte
// as standard base64; [ParseTranscript] accepts exactly that encoding.
type Transcript struct {
	Request []byte             `json:"request"`
	Answers []TranscriptAnswer `json:"answers"`
}

// TranscriptAnswer is one trustee's granted answer.
type TranscriptAnswer struct {
	Trustee     string   `json:"trustee"`
	Index       int      `json:"index"`
	Batches     [][]byte `json:"batches"` // escrow.BatchAnswer encodings, one per epoch
	RecordIndex int64    `json:"record_index"`
	Record      []byte   `json:"record"`
	Checkpoint  string   `json:"checkpoint"`
	Proof       [][]byte `json:"proof"`
}

type transcriptJSON struct {
	Version string `json:"version"`
	Transcript
}

// Marshal encodes t (see [Transcript]).
func (t *Transcript) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(transcriptJSON{Version: TranscriptVersion, Transcript: *t}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadTranscript, err)
	}
	return append(b, '\n'), nil
}

// ParseTranscript decodes a transcript written by [Transcript.Marshal],
// refusing any other encoding (unknown fields, another version, another
// layout) with [ErrBadTranscript].
func ParseTranscript(b []byte) (*Transcript, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w transcriptJSON
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadTranscript, err)
	}
	if w.Version != TranscriptVersion {
		return nil, fmt.Errorf("%w: version %q, want %q", ErrBadTranscript, w.Version, TranscriptVersion)
	}
	t := w.Transcript
	again, err := t.Marshal()
	if err != nil || !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not in the canonical encoding", ErrBadTranscript)
	}
	return &t, nil
}

// record adds the answers Decrypt used to t.
func (t *Transcript) record(wire []byte, answers []verifiedAnswer) {
	t.Request = bytes.Clone(wire)
	t.Answers = nil
	for _, va := range answers {
		a := va.ans
		ta := TranscriptAnswer{Trustee: a.Trustee, Index: a.Index, RecordIndex: a.RecordIndex, Record: a.Record, Checkpoint: string(a.Head), Proof: hashesToBytes(a.Proof)}
		for _, b := range a.Batches {
			ta.Batches = append(ta.Batches, b.Marshal())
		}
		t.Answers = append(t.Answers, ta)
	}
}

// TranscriptCheck is what [VerifyTranscript] found.
type TranscriptCheck struct {
	Warrant  string   // the warrant's id
	Sessions int      // sessions requested
	Valid    []string // trustees whose answers verify, in transcript order
}

// VerifyTranscript re-checks a decryption transcript against the group
// file g: the request's signature by the requester key its warrant names;
// for each answer, the trustee's checkpoint with its log key from g, the
// inclusion of its decision record, that the record grants exactly this
// request, and the DLEQ proof of every partial decryption against the
// trustee's public share in g; and that at least t answers verify, so that
// every session was decryptable. It does not check the judges' signatures
// on the warrant (each trustee did, under its own policy; the record names
// the judges it accepted). Any failure is an error wrapping
// [ErrBadTranscript] that names the trustee.
func VerifyTranscript(g *escrow.GroupFile, t *Transcript) (*TranscriptCheck, error) {
	req, err := escrow.ParseDecryptionRequest(t.Request)
	if err != nil {
		return nil, fmt.Errorf("%w: request: %w", ErrBadTranscript, err)
	}
	_, err = note.Open(req.Warrant, nil)
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return nil, fmt.Errorf("%w: the request's warrant is not a signed note", ErrBadTranscript)
	}
	w, err := escrow.ParseWarrant([]byte(unverified.Note.Text))
	if err != nil {
		return nil, fmt.Errorf("%w: warrant: %w", ErrBadTranscript, err)
	}
	if err := req.VerifySignature(w.Requester); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadTranscript, err)
	}
	job, err := newDecryptJob(g, req.Warrant, &escrow.RequesterKey{Public: w.Requester}, req.Envelopes, DecryptOptions{})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadTranscript, err)
	}
	job.requestID, job.reqID = hex.EncodeToString(req.ID[:]), req.ID
	check := &TranscriptCheck{Warrant: w.ID, Sessions: len(req.Envelopes)}
	seen := map[int]bool{}
	for _, ta := range t.Answers {
		if err := job.verifyTranscriptAnswer(ta); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadTranscript, ta.Trustee, err)
		}
		if seen[ta.Index] {
			return nil, fmt.Errorf("%w: %s answers twice", ErrBadTranscript, ta.Trustee)
		}
		seen[ta.Index] = true
		check.Valid = append(check.Valid, ta.Trustee)
	}
	if len(check.Valid) < g.Threshold {
		return nil, fmt.Errorf("%w: %d verified answers, the group's threshold is %d", ErrBadTranscript, len(check.Valid), g.Threshold)
	}
	return check, nil
}

// verifyTranscriptAnswer checks one answer as Decrypt did, and every
// partial decryption's proof.
func (j *decryptJob) verifyTranscriptAnswer(ta TranscriptAnswer) error {
	var m *escrow.GroupMember
	for i := range j.g.Trustees {
		if j.g.Trustees[i].Index == ta.Index && j.g.Trustees[i].Name == ta.Trustee {
			m = &j.g.Trustees[i]
		}
	}
	if m == nil {
		return fmt.Errorf("no trustee %d named %q in the group file", ta.Index, ta.Trustee)
	}
	verifier, err := note.NewVerifier(m.LogKey)
	if err != nil {
		return fmt.Errorf("the group file's log key: %v", err)
	}
	ans := &Answer{Trustee: ta.Trustee, Index: ta.Index, RecordIndex: ta.RecordIndex, Record: ta.Record, Head: []byte(ta.Checkpoint)}
	if ans.Proof, err = bytesToHashes(ta.Proof); err != nil {
		return err
	}
	for i, b := range ta.Batches {
		p, err := escrow.ParseBatchAnswer(b)
		if err != nil {
			return fmt.Errorf("batch %d: %w", i, err)
		}
		ans.Batches = append(ans.Batches, p)
	}
	if _, err := j.verify(ans, verifier); err != nil {
		return err
	}
	if _, err := CheckCosigned(j.g, ta.Trustee, ans.Head); err != nil {
		return err
	}
	for k, g := range j.byEpoch {
		Xi, ok := j.groups[g.epoch].PublicShares[ta.Index]
		if !ok {
			return fmt.Errorf("no public share for trustee %d in epoch %d", ta.Index, g.epoch)
		}
		if err := ans.Batches[k].Verify(Xi, j.reqID, g.envs, j.key.Public); err != nil {
			return fmt.Errorf("batch of epoch %d: %w", g.epoch, err)
		}
	}
	return nil
}

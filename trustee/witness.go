package trustee

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/auditlog"
)

// PathAddCheckpoint is the C2SP tlog-witness endpoint of a trustee that
// witnesses the other trustees' logs ([WithWitness]).
const PathAddCheckpoint = "/add-checkpoint"

// maxAddCheckpointBytes bounds an add-checkpoint body: a checkpoint with
// a few signatures and a proof of at most 63 hashes.
const maxAddCheckpointBytes = 64 << 10

// WithWitness makes the server a C2SP tlog-witness for the logs w knows,
// at [PathAddCheckpoint].
func WithWitness(w *auditlog.Witness) ServerOption { return func(s *Server) { s.witness.Store(w) } }

// SetWitness replaces the server's witness (nil: none), for a node whose
// group changed while it serves.
func (s *Server) SetWitness(w *auditlog.Witness) { s.witness.Store(w) }

// ErrNotWitnessed is returned by [Client.WitnessCheckpoint] when the
// witness has cosigned no checkpoint of the log yet.
var ErrNotWitnessed = auditlog.ErrNotWitnessed

// WitnessCheckpoint returns the latest checkpoint of the log origin that
// the trustee's witness cosigned ([PathWitnessLatest]), with its
// cosignature, unverified; an error wrapping [ErrNotWitnessed] if it
// cosigned none.
func (c *Client) WitnessCheckpoint(ctx context.Context, origin string) ([]byte, error) {
	b, err := c.WitnessLatest(ctx, origin)
	if err == nil && b == nil {
		return nil, fmt.Errorf("%w: %s has cosigned none of %s", ErrNotWitnessed, c.member.Name, origin)
	}
	return b, err
}

// handleAddCheckpoint answers a C2SP tlog-witness add-checkpoint request:
// 200 with the cosignature line, 409 with the size the witness knows, 422
// for a checkpoint that does not extend it (kept as evidence), 403 for an
// unknown log or a bad signature, 400 for a malformed request.
func (s *Server) handleAddCheckpoint(w *statusWriter, r *http.Request) {
	wit := s.witness.Load()
	if wit == nil {
		s.writeError(w, http.StatusNotFound, CodeNotFound, "this trustee does not run a witness")
		return
	}
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.bodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAddCheckpointBytes))
	if err != nil {
		s.writeError(w, http.StatusBadRequest, CodeBadRequest, "reading the request body: "+err.Error())
		return
	}
	cosig, err := wit.AddCheckpoint(body)
	var conflict *auditlog.WitnessConflictError
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		w.Write(cosig)
	case errors.As(err, &conflict):
		w.Header().Set("Content-Type", "text/x.tlog.size")
		w.WriteHeader(http.StatusConflict)
		fmt.Fprintf(w, "%d\n", conflict.Known)
	default:
		if errors.Is(err, auditlog.ErrInconsistent) {
			s.log.Error("witness: a log forked", "error", err.Error())
		}
		s.writeError(w, auditlog.WitnessHTTPStatus(err), CodeWitnessRefused, err.Error())
	}
}

// CodeWitnessRefused is the API error code of a refused add-checkpoint
// request (its HTTP status says why, as C2SP tlog-witness defines).
const CodeWitnessRefused = "witness-refused"

// ErrWitnessRefused is wrapped by [Client.AddCheckpoint] errors for a
// witness that refused the checkpoint; the message carries its status.
var ErrWitnessRefused = errors.New("trustee: the witness refused the checkpoint")

// AddCheckpoint sends a C2SP tlog-witness add-checkpoint request (a body
// from [auditlog.FormatAddCheckpoint]) to the trustee's witness and
// returns its cosignature line. A 409 comes back as an
// *[auditlog.WitnessConflictError] with the size the witness knows.
func (c *Client) AddCheckpoint(ctx context.Context, body []byte) ([]byte, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+PathAddCheckpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("trustee: %s: %w", c.member.Name, err)
	}
	status, answer, err := c.do(hr)
	switch {
	case err != nil:
		return nil, err
	case status == http.StatusOK:
		return answer, nil
	case status == http.StatusConflict:
		known, err := strconv.ParseInt(strings.TrimSpace(string(answer)), 10, 64)
		if err != nil {
			return nil, c.badAnswer("409 without a size: %q", answer)
		}
		return nil, &auditlog.WitnessConflictError{Known: known}
	}
	e := c.apiError(status, answer)
	return nil, fmt.Errorf("%w: %s answered %d: %s", ErrWitnessRefused, c.member.Name, status, e.Message)
}

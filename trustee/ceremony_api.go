package trustee

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/keyquorum/keyquorum/escrow"
)

// The ceremony endpoints of a trustee's API, all POST with a JSON
// [CeremonyCall] body and a JSON [CeremonyAnswer]:
//
//	/v1/ceremony/prepare   params           -> key_note
//	/v1/ceremony/start     id, keys         -> outbox
//	/v1/ceremony/deliver   id, messages     -> outbox, problems
//	/v1/ceremony/timeout   id               -> {}
//	/v1/ceremony/finish    id               -> outcome
//	/v1/ceremony/sign      id, group        -> signed
//	/v1/ceremony/commit    id, group        -> {}
//	/v1/ceremony/abort     id               -> {}
//
// They are served only by a node given a [CeremonyHost]
// ([WithCeremonyHost]).
const (
	PathCeremonyPrepare = "/v1/ceremony/prepare"
	PathCeremonyStart   = "/v1/ceremony/start"
	PathCeremonyDeliver = "/v1/ceremony/deliver"
	PathCeremonyTimeout = "/v1/ceremony/timeout"
	PathCeremonyFinish  = "/v1/ceremony/finish"
	PathCeremonySign    = "/v1/ceremony/sign"
	PathCeremonyCommit  = "/v1/ceremony/commit"
	PathCeremonyAbort   = "/v1/ceremony/abort"
)

// API error codes of the ceremony endpoints.
const (
	CodeCeremonyRefused    = "ceremony-refused"
	CodeCeremonyUnknown    = "ceremony-unknown"
	CodeCeremonyIncomplete = "ceremony-incomplete"
	CodeCeremonyAborted    = "ceremony-aborted"
	CodeCeremonyBadMessage = "ceremony-bad-message"
)

// maxCeremonyBody bounds a ceremony call's body: a deliver call carries
// at most a few messages per participant.
const maxCeremonyBody = 16 << 20

// CeremonyCall is the body of a ceremony call.
type CeremonyCall struct {
	ID       string          `json:"id"`
	Params   *CeremonyParams `json:"params,omitempty"`
	Keys     []string        `json:"keys,omitempty"`
	Messages [][]byte        `json:"messages,omitempty"`
	Group    string          `json:"group,omitempty"`
}

// CeremonyAnswer is the answer to a ceremony call.
type CeremonyAnswer struct {
	KeyNote  string           `json:"key_note,omitempty"`
	Outbox   [][]byte         `json:"outbox,omitempty"`
	Problems []string         `json:"problems,omitempty"`
	Outcome  *CeremonyOutcome `json:"outcome,omitempty"`
	Signed   string           `json:"signed,omitempty"`
}

// WithCeremonyHost serves the ceremony endpoints with h.
func WithCeremonyHost(h *CeremonyHost) ServerOption {
	return func(s *Server) { s.ceremonies = h }
}

func (s *Server) addCeremonyRoutes() {
	for path, name := range map[string]string{
		PathCeremonyPrepare: "ceremony-prepare", PathCeremonyStart: "ceremony-start",
		PathCeremonyDeliver: "ceremony-deliver", PathCeremonyTimeout: "ceremony-timeout",
		PathCeremonyFinish: "ceremony-finish", PathCeremonySign: "ceremony-sign",
		PathCeremonyCommit: "ceremony-commit", PathCeremonyAbort: "ceremony-abort",
	} {
		s.routes[path] = route{http.MethodPost, name, s.handleCeremony}
	}
}

func ceremonyErrorStatus(err error) (int, string) {
	switch {
	case errors.Is(err, ErrNoCeremony):
		return http.StatusNotFound, CodeCeremonyUnknown
	case errors.Is(err, ErrCeremonyIncomplete):
		return http.StatusConflict, CodeCeremonyIncomplete
	case errors.Is(err, ErrCeremonyAborted):
		return http.StatusConflict, CodeCeremonyAborted
	case errors.Is(err, ErrCeremonyRefused), errors.Is(err, escrow.ErrGroupUnsigned), errors.Is(err, escrow.ErrGroupSignature), errors.Is(err, escrow.ErrBadGroupFile):
		return http.StatusForbidden, CodeCeremonyRefused
	case errors.Is(err, ErrBadDKGMessage):
		return http.StatusBadRequest, CodeCeremonyBadMessage
	}
	return http.StatusInternalServerError, CodeInternal
}

func (s *Server) handleCeremony(w *statusWriter, r *http.Request) {
	h := s.ceremonies
	if h == nil {
		s.writeError(w, http.StatusNotFound, CodeNotFound, "this trustee takes no part in key ceremonies (it was started without them)")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCeremonyBody))
	if err != nil {
		s.writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, "ceremony call too large or unreadable: "+err.Error())
		return
	}
	var call CeremonyCall
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&call); err != nil {
		s.writeError(w, http.StatusBadRequest, CodeBadRequest, "the ceremony call is not valid JSON: "+err.Error())
		return
	}
	var ans CeremonyAnswer
	switch r.URL.Path {
	case PathCeremonyPrepare:
		if call.Params == nil {
			err = fmt.Errorf("%w: prepare needs the ceremony's params", ErrCeremonyRefused)
			break
		}
		var kn []byte
		kn, err = h.Prepare(*call.Params)
		ans.KeyNote = string(kn)
	case PathCeremonyStart:
		ans.Outbox, err = h.Start(call.ID, call.Keys)
	case PathCeremonyDeliver:
		ans.Outbox, ans.Problems, err = h.Deliver(call.ID, call.Messages)
	case PathCeremonyTimeout:
		err = h.Timeout(call.ID)
	case PathCeremonyFinish:
		ans.Outcome, err = h.Finish(call.ID)
	case PathCeremonySign:
		var b []byte
		b, err = h.Sign(call.ID, []byte(call.Group))
		ans.Signed = string(b)
	case PathCeremonyCommit:
		err = h.Commit(call.ID, []byte(call.Group))
	case PathCeremonyAbort:
		err = h.Abort(call.ID)
	}
	if err != nil {
		status, code := ceremonyErrorStatus(err)
		if status == http.StatusInternalServerError {
			s.log.Error("ceremony call failed", "path", r.URL.Path, "error", err.Error())
		}
		s.writeError(w, status, code, err.Error())
		return
	}
	s.writeJSON(w, http.StatusOK, ans)
}

// Ceremony makes one ceremony call (path is one of the PathCeremony
// constants). An error answer comes back as an error that wraps the
// sentinel of its code ([ErrCeremonyRefused], [ErrNoCeremony],
// [ErrCeremonyIncomplete], [ErrCeremonyAborted], [ErrBadDKGMessage]) and
// an *[APIError]; a failure to reach the node is a *[TransportError].
func (c *Client) Ceremony(ctx context.Context, path string, call *CeremonyCall) (*CeremonyAnswer, error) {
	b, err := json.Marshal(call)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("trustee: %s: %w", c.member.Name, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	status, body, err := c.do(hr)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		e := c.apiError(status, body)
		sentinel := map[string]error{
			CodeCeremonyRefused: ErrCeremonyRefused, CodeCeremonyUnknown: ErrNoCeremony,
			CodeCeremonyIncomplete: ErrCeremonyIncomplete, CodeCeremonyAborted: ErrCeremonyAborted,
			CodeCeremonyBadMessage: ErrBadDKGMessage,
		}[e.Code]
		if sentinel != nil {
			return nil, &ceremonyAPIError{api: e, sentinel: sentinel}
		}
		return nil, e
	}
	var ans CeremonyAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, c.badAnswer("decoding the ceremony answer: %v", err)
	}
	return &ans, nil
}

// ceremonyAPIError is an API error that also matches its code's sentinel.
type ceremonyAPIError struct {
	api      *APIError
	sentinel error
}

func (e *ceremonyAPIError) Error() string {
	return fmt.Sprintf("%s: %s", e.api.Trustee, e.api.Message)
}

func (e *ceremonyAPIError) Unwrap() []error { return []error{e.sentinel, e.api} }

package ceremony

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
)

// Serve answers one ceremony call (path is one of the PathCeremony
// constants); the HTTP handler and tests call it.
func (h *CeremonyHost) Serve(path string, call *CeremonyCall) (*CeremonyAnswer, error) {
	var ans CeremonyAnswer
	var err error
	switch path {
	case PathCeremonyPrepare:
		if call.Params == nil {
			return nil, refused("prepare needs the ceremony's params")
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
	default:
		return nil, fmt.Errorf("%w: no ceremony call %q", ErrBadDKGMessage, truncateForLog(path))
	}
	if err != nil {
		return nil, err
	}
	return &ans, nil
}

// ErrorStatus maps an error of a ceremony call to its HTTP status and API
// code; 500 and "" for an internal error.
func ErrorStatus(err error) (int, string) {
	switch {
	case errors.Is(err, ErrNoCeremony):
		return http.StatusNotFound, CodeCeremonyUnknown
	case errors.Is(err, ErrCeremonyIncomplete):
		return http.StatusConflict, CodeCeremonyIncomplete
	case errors.Is(err, ErrCeremonyAborted):
		return http.StatusConflict, CodeCeremonyAborted
	case errors.Is(err, ErrNotApproved):
		return http.StatusForbidden, CodeNotApproved
	case errors.Is(err, ErrBadProposal):
		return http.StatusBadRequest, CodeBadProposal
	case errors.Is(err, ErrCeremonyBusy):
		return http.StatusServiceUnavailable, CodeCeremonyBusy
	case errors.Is(err, ErrCeremonyRefused), errors.Is(err, escrow.ErrGroupUnsigned), errors.Is(err, escrow.ErrGroupSignature), errors.Is(err, escrow.ErrBadGroupFile):
		return http.StatusForbidden, CodeCeremonyRefused
	case errors.Is(err, ErrBadDKGMessage):
		return http.StatusBadRequest, CodeCeremonyBadMessage
	}
	return http.StatusInternalServerError, ""
}

// apiError is the JSON body of an error answer: {"error": {"code", "message"}}.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// WriteError writes err as a ceremony API error answer.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	var e apiError
	e.Error.Code, e.Error.Message = code, message
	b, _ := json.Marshal(e)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// HTTPCaller is a [Caller] that posts JSON calls to a trustee's API at
// Base ("https://host:port") with Client, which carries the TLS pinning.
type HTTPCaller struct {
	Name      string // the trustee's name, for errors
	Base      string
	Client    *http.Client
	MaxAnswer int64 // default 64 MiB
}

// CallError is an error answer to a ceremony call. It matches the sentinel
// of its code ([ErrCeremonyRefused], [ErrNoCeremony], ...) with errors.Is.
type CallError struct {
	Trustee string
	Status  int
	Code    string
	Message string
}

func (e *CallError) Error() string { return fmt.Sprintf("%s: %s", e.Trustee, e.Message) }

// Is matches the sentinel of the error's code.
func (e *CallError) Is(target error) bool {
	s := map[string]error{
		CodeCeremonyRefused: ErrCeremonyRefused, CodeCeremonyUnknown: ErrNoCeremony,
		CodeCeremonyIncomplete: ErrCeremonyIncomplete, CodeCeremonyAborted: ErrCeremonyAborted,
		CodeCeremonyBadMessage: ErrBadDKGMessage, CodeCeremonyBusy: ErrCeremonyBusy, CodeNotApproved: ErrNotApproved, CodeBadProposal: ErrBadProposal,
	}[e.Code]
	return s != nil && s == target
}

// Ceremony makes one call. A failure to reach the trustee wraps
// [ErrUnreachable]; an error answer is a [*CallError].
func (c *HTTPCaller) Ceremony(ctx context.Context, path string, call *CeremonyCall) (*CeremonyAnswer, error) {
	b, err := json.Marshal(call)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+path, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("ceremony: %s: %w", c.Name, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := c.Client.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, c.Name, err)
	}
	defer resp.Body.Close()
	limit := c.MaxAnswer
	if limit <= 0 {
		limit = 64 << 20
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: reading the answer: %v", ErrUnreachable, c.Name, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("ceremony: %s answered more than %d bytes", c.Name, limit)
	}
	if resp.StatusCode != http.StatusOK {
		ce := &CallError{Trustee: c.Name, Status: resp.StatusCode, Message: fmt.Sprintf("answered HTTP %d", resp.StatusCode)}
		var e apiError
		if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
			ce.Code, ce.Message = e.Error.Code, e.Error.Message
		}
		return nil, ce
	}
	var ans CeremonyAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("ceremony: %s: the answer does not decode: %v", c.Name, err)
	}
	return &ans, nil
}

// Handler serves the ceremony endpoints of h: POST with a JSON
// [CeremonyCall], at most MaxBody bytes, at most MaxConcurrent calls at
// once (more get 503 busy at once, without reading their bodies).
type Handler struct {
	Host          *CeremonyHost
	MaxBody       int64 // default: Host.MaxCallBody(), by the approved rosters' size
	MaxConcurrent int   // default DefaultMaxConcurrentCalls
	// OnError, if set, sees every internal (500) error.
	OnError func(path string, err error)

	once sync.Once
	sem  chan struct{}
	mux  *http.ServeMux
}

// ceremonyPaths are the endpoints a [Handler] serves.
var ceremonyPaths = []string{
	PathCeremonyPrepare, PathCeremonyStart, PathCeremonyDeliver, PathCeremonyTimeout,
	PathCeremonyFinish, PathCeremonySign, PathCeremonyCommit, PathCeremonyAbort,
}

// Defaults of a [Handler].
const (
	callReadTimeout           = 15 * time.Second
	DefaultMaxConcurrentCalls = 4
)

func (hd *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd.once.Do(func() {
		n := hd.MaxConcurrent
		if n <= 0 {
			n = DefaultMaxConcurrentCalls
		}
		hd.sem = make(chan struct{}, n)
		hd.mux = http.NewServeMux()
		for _, p := range ceremonyPaths {
			hd.mux.HandleFunc("POST "+p, func(w http.ResponseWriter, r *http.Request) { hd.serveCall(w, r, p) })
			hd.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Allow", http.MethodPost)
				WriteError(w, http.StatusMethodNotAllowed, CodeCeremonyBadMessage, "ceremony calls are POST")
			})
		}
		hd.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			WriteError(w, http.StatusNotFound, CodeCeremonyBadMessage, fmt.Sprintf("no ceremony call %q", truncateForLog(r.URL.Path)))
		})
	})
	hd.mux.ServeHTTP(w, r)
}

// serveCall answers one POSTed call to path.
func (hd *Handler) serveCall(w http.ResponseWriter, r *http.Request, path string) {
	select {
	case hd.sem <- struct{}{}:
		defer func() { <-hd.sem }()
	default:
		WriteError(w, http.StatusServiceUnavailable, CodeCeremonyBusy, ErrCeremonyBusy.Error())
		return
	}
	limit := hd.MaxBody
	if limit <= 0 {
		limit = hd.Host.MaxCallBody()
	}
	// A caller that trickles its body cannot hold a slot for long.
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(callReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		WriteError(w, http.StatusRequestEntityTooLarge, CodeCeremonyBadMessage, fmt.Sprintf("ceremony call larger than %d bytes or unreadable", limit))
		return
	}
	var call CeremonyCall
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&call); err != nil {
		WriteError(w, http.StatusBadRequest, CodeCeremonyBadMessage, "the ceremony call is not valid JSON: "+err.Error())
		return
	}
	ans, err := hd.Host.Serve(path, &call)
	if err != nil {
		status, code := ErrorStatus(err)
		if status == http.StatusInternalServerError {
			code = "internal"
			if hd.OnError != nil {
				hd.OnError(path, err)
			}
		}
		WriteError(w, status, code, err.Error())
		return
	}
	b, err := json.Marshal(ans)
	if err != nil {
		WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}

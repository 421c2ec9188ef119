package trustee

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyquorum/keyquorum/auditlog"
	"github.com/keyquorum/keyquorum/ceremony"
	"github.com/keyquorum/keyquorum/internal/group"
)

// The HTTP API of a trustee node. Every body is JSON except the decrypt
// request (the bytes of [escrow.DecryptionRequest.Marshal]), the signed head
// (the note text) and /metrics (Prometheus text).
//
//	POST /v1/decrypt                        -> 200 decryptAnswerJSON
//	GET  /v1/info                           -> 200 NodeInfo
//	GET  /v1/log/head                       -> 200 signed C2SP checkpoint (note)
//	GET  /v1/log/records?start=S&end=E      -> 200 {"records":[base64...]}, records S..E-1, at most MaxRecordsPerRequest
//	GET  /v1/log/inclusion?index=I&size=N   -> 200 {"proof":[base64 hash...]}
//	GET  /v1/log/consistency?old=M&new=N    -> 200 {"proof":[base64 hash...]}
//	GET  /healthz                           -> 200 {"status":"ok"}
//	GET  /metrics                           -> 200 Prometheus text format
//	POST /add-checkpoint                    -> C2SP tlog-witness, with [WithWitness]
//	GET  /v1/witness/latest?origin=O        -> 200 the latest checkpoint of O the witness cosigned, with its cosignature; 404 [CodeNoCheckpoint]
//
// Every error is {"error":{"code":"<stable code>","message":"..."}}: a
// refusal by the node carries the node's refusal code (403, or 429 for
// [CodeRateLimited], 503 for [CodeAuditUnavailable] and
// [CodeWitnessQuorum], 400 for
// [CodeBadRequest]); the API's own errors use the codes below.
//
// A decrypt body must arrive whole within the body timeout (408
// [CodeBodyTimeout]) before the request takes one of the
// [MaxConcurrentDecrypts] slots. A request no trusted judge signed is
// refused without an audit record ([ErrUnauthenticated]), counted in
// /metrics and the operational log, and charged to its client address; a
// client past its allowance gets 429 [CodeUnauthenticatedLimited].
const (
	PathDecrypt     = "/v1/decrypt"
	PathInfo        = "/v1/info"
	PathHead        = "/v1/log/head"
	PathRecords     = "/v1/log/records"
	PathInclusion   = "/v1/log/inclusion"
	PathConsistency = "/v1/log/consistency"
	PathHealth      = "/healthz"
	PathMetrics     = "/metrics"
)

// Error codes of the API itself (refusals by the node use the node's codes,
// such as [CodeWarrantExpired]).
const (
	CodeTooLarge         = "request-too-large"
	CodeMethodNotAllowed = "method-not-allowed"
	CodeNotFound         = "not-found"
	CodeOutOfRange       = "out-of-range"
	CodeAuditCorrupt     = "audit-log-corrupt"
	CodeInternal         = "internal-error"
	// CodeBodyTimeout: the decrypt body did not arrive within the
	// server's body timeout (408).
	CodeBodyTimeout = "body-timeout"
	// CodeUnauthenticatedLimited: the client used up its allowance of
	// unauthenticated requests (429).
	CodeUnauthenticatedLimited = "unauthenticated-rate-limited"
)

// DefaultMaxRequestBytes is the default limit on a decrypt request's body:
// about 60,000 envelopes.
const DefaultMaxRequestBytes = 16 << 20

// MaxRecordsPerRequest is the most audit records one records request returns.
const MaxRecordsPerRequest = 1000

// NodeInfo is what GET /v1/info returns: who the node is, which epochs it
// holds a share of, its public share X_i per epoch (base64 of the point)
// and its audit log's note verifier key.
type NodeInfo struct {
	Name         string             `json:"name"`
	Index        int                `json:"index"`
	Epochs       []uint32           `json:"epochs"`
	PublicShares []EpochPublicShare `json:"public_shares"`
	LogKey       string             `json:"log_key,omitempty"`
}

// EpochPublicShare is a node's public share X_i = x_i·G of one epoch key.
type EpochPublicShare struct {
	Epoch uint32 `json:"epoch"`
	Share string `json:"share"`
}

// decryptAnswerJSON is the wire form of an [Answer]. []byte fields travel
// as standard base64.
//
// Batches replaced the per-session "partials" of earlier builds: a client
// of those finds no partial decryptions in this answer and refuses it.
type decryptAnswerJSON struct {
	Trustee     string   `json:"trustee"`
	Index       int      `json:"index"`
	Batches     [][]byte `json:"batches"` // escrow.BatchAnswer encodings, one per epoch
	RecordIndex int64    `json:"record_index"`
	Record      []byte   `json:"record"`
	Head        string   `json:"head"`
	Proof       [][]byte `json:"proof"`
}

type apiErrorJSON struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type recordsJSON struct {
	Records [][]byte `json:"records"`
}

type proofJSON struct {
	Proof [][]byte `json:"proof"`
}

// Server is the HTTP API over one [Node]. It implements [http.Handler];
// serve it with the *http.Server from [NewHTTPServer].
type Server struct {
	node    *Node
	log     *slog.Logger
	metrics *Metrics
	maxBody int64
	logKey  string
	// mux routes METHOD /path patterns (Go 1.22 http.ServeMux) to the
	// handlers [Server.handle] registered, and every other request to
	// the JSON 404 and 405 answers.
	mux *http.ServeMux
	// ceremonyHandler serves the key-ceremony endpoints; nil: none.
	ceremonyHandler *ceremony.Handler
	// busy holds a token per decryption request in progress; a full
	// channel means the node is at capacity and says so with a 503.
	busy chan struct{}
	// bodyTimeout bounds reading a decrypt body, before it takes a slot.
	bodyTimeout time.Duration
	// unauth limits each client's unauthenticated requests.
	unauth *clientLimiter
	// witness, if set, serves PathAddCheckpoint and PathWitnessCheckpoint.
	witness atomic.Pointer[auditlog.Witness]
}

// MaxConcurrentDecrypts is how many decryption requests a node works on
// at once (each may hold a request body of up to its size limit in
// memory); more get 503 with code "busy" and are retried by requesters.
const MaxConcurrentDecrypts = 16

// CodeBusy is the API error code of a node at capacity.
const CodeBusy = "busy"

// otherRoute is the metrics and log label of a request no endpoint takes.
const otherRoute = "other"

// ServerOption configures a [Server].
type ServerOption func(*Server)

// WithServerLogger sets the structured logger for request logs (default:
// discard). Logs carry method, route, status, refusal code, duration,
// sizes and the client address; never a request body or an answer.
func WithServerLogger(l *slog.Logger) ServerOption { return func(s *Server) { s.log = l } }

// WithServerMetrics sets the metrics the server updates (default: a new
// [Metrics] of its own, served at /metrics).
func WithServerMetrics(m *Metrics) ServerOption { return func(s *Server) { s.metrics = m } }

// WithMaxRequestBytes sets the largest decrypt request body accepted
// (default [DefaultMaxRequestBytes]); larger ones get 413.
func WithMaxRequestBytes(n int64) ServerOption { return func(s *Server) { s.maxBody = n } }

// WithLogKey sets the audit log's note verifier key that /v1/info
// publishes (the node itself holds only the signer).
func WithLogKey(verifierKey string) ServerOption { return func(s *Server) { s.logKey = verifierKey } }

// WithBodyTimeout sets how long a decrypt request's body may take to
// arrive (default [DefaultBodyTimeout]); a slower one gets 408 and never
// takes a decrypt slot.
func WithBodyTimeout(d time.Duration) ServerOption { return func(s *Server) { s.bodyTimeout = d } }

// WithUnauthenticatedLimit sets each client's allowance of decrypt
// requests that no trusted judge signed: burst at once, then one per
// every (defaults [DefaultUnauthenticatedBurst] and
// [DefaultUnauthenticatedEvery]). A client past it gets 429
// [CodeUnauthenticatedLimited] for every decrypt request until its
// allowance refills.
func WithUnauthenticatedLimit(burst int, every time.Duration) ServerOption {
	return func(s *Server) { s.unauth = newClientLimiter(burst, every) }
}

// Defaults of [WithBodyTimeout] and [WithUnauthenticatedLimit].
const (
	DefaultBodyTimeout          = 10 * time.Second
	DefaultUnauthenticatedBurst = 20
	DefaultUnauthenticatedEvery = 3 * time.Second
)

// NewServer returns the HTTP API over node.
func NewServer(node *Node, opts ...ServerOption) *Server {
	s := &Server{node: node, maxBody: DefaultMaxRequestBytes, bodyTimeout: DefaultBodyTimeout}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxRequestBytes
	}
	if s.bodyTimeout <= 0 {
		s.bodyTimeout = DefaultBodyTimeout
	}
	if s.unauth == nil {
		s.unauth = newClientLimiter(DefaultUnauthenticatedBurst, DefaultUnauthenticatedEvery)
	}
	s.busy = make(chan struct{}, MaxConcurrentDecrypts)
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w.(*statusWriter), http.StatusNotFound, CodeNotFound, fmt.Sprintf("no endpoint %s on this trustee; the API lives under /v1/", truncateForLog(r.URL.Path)))
	})
	s.handle(http.MethodPost, PathDecrypt, "decrypt", s.handleDecrypt)
	s.handle(http.MethodGet, PathInfo, "info", s.handleInfo)
	s.handle(http.MethodGet, PathHead, "head", s.handleHead)
	s.handle(http.MethodGet, PathRecords, "records", s.handleRecords)
	s.handle(http.MethodGet, PathInclusion, "inclusion", s.handleInclusion)
	s.handle(http.MethodGet, PathConsistency, "consistency", s.handleConsistency)
	s.handle(http.MethodGet, PathHealth, "health", s.handleHealth)
	s.handle(http.MethodGet, PathMetrics, "metrics", s.handleMetrics)
	// C2SP tlog-witness, for the other trustees' logs.
	s.handle(http.MethodPost, PathAddCheckpoint, "add-checkpoint", s.handleAddCheckpoint)
	s.handle(http.MethodGet, PathWitnessLatest, "witness-latest", s.handleWitnessLatest)
	s.addCeremonyRoutes()
	return s
}

// handle serves method requests for path (a GET endpoint takes HEAD too,
// as http.ServeMux does) with h, labelled name in metrics and logs; any
// other method on path gets the JSON 405 with an Allow header.
func (s *Server) handle(method, path, name string, h func(w *statusWriter, r *http.Request)) {
	s.mux.HandleFunc(method+" "+path, func(rw http.ResponseWriter, r *http.Request) {
		w := rw.(*statusWriter)
		w.route = name
		h(w, r)
	})
	// The pattern without a method is less specific: it takes only the
	// methods the one above does not.
	s.mux.HandleFunc(path, func(rw http.ResponseWriter, r *http.Request) {
		w := rw.(*statusWriter)
		w.route = name
		w.Header().Set("Allow", method)
		s.writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, fmt.Sprintf("%s takes %s, not %s", path, method, truncateForLog(r.Method)))
	})
}

// Metrics returns the metrics the server updates.
func (s *Server) Metrics() *Metrics { return s.metrics }

// statusWriter remembers the status and error code written, for logs and
// metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
	code   string
	bytes  int64
	route  string // the endpoint's label; otherRoute if none took it
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// Unwrap lets [http.ResponseController] reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// ServeHTTP implements [http.Handler].
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.route = otherRoute
	if r.URL.Path == "" || r.URL.Path[0] != '/' || path.Clean(r.URL.Path) != r.URL.Path {
		// http.ServeMux would redirect to the clean path: an API client
		// gets the 404 it would get for any other unknown path.
		s.writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no endpoint %s on this trustee; the API lives under /v1/", truncateForLog(r.URL.Path)))
	} else {
		s.mux.ServeHTTP(w, r)
	}
	name := w.route
	if w.status == 0 {
		w.status = http.StatusOK
	}
	s.metrics.observeRequest(name, w.status)
	level := slog.LevelInfo
	if w.status >= 500 {
		level = slog.LevelError
	}
	logPath := r.URL.Path
	if name == otherRoute {
		logPath = truncateForLog(logPath)
	}
	s.log.LogAttrs(r.Context(), level, "request",
		slog.String("method", truncateForLog(r.Method)),
		slog.String("path", logPath),
		slog.Int("status", w.status),
		slog.String("code", w.code),
		slog.Duration("took", time.Since(start)),
		slog.Int64("bytes_in", max(r.ContentLength, 0)),
		slog.Int64("bytes_out", w.bytes),
		slog.String("remote", r.RemoteAddr),
	)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// truncateForLog shortens a client-chosen string for logs and messages;
// slog and JSON escape what remains.
func truncateForLog(s string) string {
	const limit = 64
	if len(s) > limit {
		return strings.ToValidUTF8(s[:limit], "?") + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

func (s *Server) writeJSON(w *statusWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.writeError(w, http.StatusInternalServerError, CodeInternal, "encoding the answer failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func (s *Server) writeError(w *statusWriter, status int, code, message string) {
	w.code = code
	b, _ := json.Marshal(apiErrorJSON{Error: apiErrorBody{Code: code, Message: message}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// refusalStatus is the HTTP status for a refusal code.
func refusalStatus(code string) int {
	switch code {
	case CodeBadRequest:
		return http.StatusBadRequest
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeAuditUnavailable, CodeWitnessQuorum:
		return http.StatusServiceUnavailable
	}
	return http.StatusForbidden
}

func (s *Server) handleDecrypt(w *statusWriter, r *http.Request) {
	client := clientOf(r)
	if !s.unauth.allowed(client, time.Now()) {
		s.metrics.observeUnauthenticated(CodeUnauthenticatedLimited)
		s.writeError(w, http.StatusTooManyRequests, CodeUnauthenticatedLimited,
			fmt.Sprintf("this client sent more than %d requests that no trusted judge signed; wait %v and send only warranted requests", s.unauth.burst, s.unauth.every))
		return
	}
	// The whole body must arrive within a short deadline before the
	// request takes one of the decrypt slots: a client that trickles its
	// body holds a connection, never a slot.
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.bodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &tooBig):
			s.writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge,
				fmt.Sprintf("request body is larger than the %d bytes this trustee accepts; split the envelopes over several requests", s.maxBody))
		case errors.As(err, &ne) && ne.Timeout():
			s.writeError(w, http.StatusRequestTimeout, CodeBodyTimeout,
				fmt.Sprintf("the request body did not arrive within %v; send it in one go", s.bodyTimeout))
		default:
			s.writeError(w, http.StatusBadRequest, CodeBadRequest, "reading the request body: "+err.Error())
		}
		return
	}
	if len(body) == 0 {
		s.writeError(w, http.StatusBadRequest, CodeBadRequest, "empty body; send an encoded decryption request (application/octet-stream)")
		return
	}
	select {
	case s.busy <- struct{}{}:
		defer func() { <-s.busy }()
	default:
		s.writeError(w, http.StatusServiceUnavailable, CodeBusy,
			fmt.Sprintf("this trustee is already working on %d decryption requests; retry shortly", MaxConcurrentDecrypts))
		return
	}
	start := time.Now()
	ans, err := s.node.Decide(body)
	took := time.Since(start)
	if err != nil {
		var refusal *RefusalError
		if !errors.As(err, &refusal) {
			s.log.Error("decide failed", slog.String("error", err.Error()))
			s.writeError(w, http.StatusInternalServerError, CodeInternal, "the trustee failed to decide the request")
			return
		}
		if errors.Is(err, ErrUnauthenticated) {
			// Not in the audit log: counted, logged here, and charged to
			// the client's allowance.
			s.unauth.charge(client, time.Now())
			s.metrics.observeUnauthenticated(refusal.Code)
			s.log.Warn("unauthenticated decrypt request refused", slog.String("code", refusal.Code), slog.String("client", client))
			s.writeError(w, refusalStatus(refusal.Code), refusal.Code, refusal.Err.Error())
			return
		}
		s.metrics.observeDecision(false, refusal.Code, 0, took)
		s.writeError(w, refusalStatus(refusal.Code), refusal.Code, refusal.Err.Error())
		return
	}
	s.metrics.observeDecision(true, "", ans.Sessions(), took)
	out := decryptAnswerJSON{
		Trustee:     ans.Trustee,
		Index:       ans.Index,
		Batches:     make([][]byte, len(ans.Batches)),
		RecordIndex: ans.RecordIndex,
		Record:      ans.Record,
		Head:        string(ans.Head),
		Proof:       hashesToBytes(ans.Proof),
	}
	for i, b := range ans.Batches {
		out.Batches[i] = b.Marshal()
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleInfo(w *statusWriter, r *http.Request) {
	info := NodeInfo{Name: s.node.Name(), Index: s.node.Index(), Epochs: s.node.Epochs(), LogKey: s.logKey, PublicShares: []EpochPublicShare{}}
	if info.Epochs == nil {
		info.Epochs = []uint32{}
	}
	for _, p := range s.node.PublicShares() {
		info.PublicShares = append(info.PublicShares, EpochPublicShare{Epoch: p.Epoch, Share: b64(group.PointBytes(p.Key))})
	}
	s.writeJSON(w, http.StatusOK, info)
}

func (s *Server) handleHead(w *statusWriter, r *http.Request) {
	h, err := s.node.AuditLog().Head()
	if err != nil {
		s.auditError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(h.Note)
}

func (s *Server) handleRecords(w *statusWriter, r *http.Request) {
	q, ok := s.intParams(w, r, "start", "end")
	if !ok {
		return
	}
	start, end := q[0], q[1]
	if start < 0 || end <= start || end-start > MaxRecordsPerRequest {
		s.writeError(w, http.StatusBadRequest, CodeOutOfRange, fmt.Sprintf("ask for records start..end-1 with 0 <= start < end and at most %d at a time", MaxRecordsPerRequest))
		return
	}
	out := recordsJSON{Records: make([][]byte, 0, end-start)}
	for i := start; i < end; i++ {
		_, data, err := s.node.AuditLog().Record(i)
		if err != nil {
			s.auditError(w, err)
			return
		}
		out.Records = append(out.Records, data)
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleInclusion(w *statusWriter, r *http.Request) {
	q, ok := s.intParams(w, r, "index", "size")
	if !ok {
		return
	}
	p, err := s.node.AuditLog().InclusionProof(q[0], q[1])
	if err != nil {
		s.auditError(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, proofJSON{Proof: hashesToBytes(p)})
}

func (s *Server) handleConsistency(w *statusWriter, r *http.Request) {
	q, ok := s.intParams(w, r, "old", "new")
	if !ok {
		return
	}
	p, err := s.node.AuditLog().ConsistencyProof(q[0], q[1])
	if err != nil {
		s.auditError(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, proofJSON{Proof: hashesToBytes(p)})
}

func (s *Server) handleHealth(w *statusWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "name": s.node.Name()})
}

func (s *Server) handleMetrics(w *statusWriter, r *http.Request) {
	s.metrics.Handler().ServeHTTP(w, r)
}

// intParams reads the named decimal query parameters, writing a 400 and
// returning false if one is missing or malformed.
func (s *Server) intParams(w *statusWriter, r *http.Request, names ...string) ([]int64, bool) {
	q := r.URL.Query()
	out := make([]int64, len(names))
	for i, name := range names {
		v := q.Get(name)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("query parameter %q must be a non-negative decimal integer", name))
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// auditError answers an error from the audit log.
func (s *Server) auditError(w *statusWriter, err error) {
	switch {
	case errors.Is(err, ErrAuditOutOfRange):
		s.writeError(w, http.StatusBadRequest, CodeOutOfRange, err.Error())
	case errors.Is(err, ErrAuditStoreCorrupt):
		s.log.Error("audit log corrupt", slog.String("error", err.Error()))
		s.writeError(w, http.StatusInternalServerError, CodeAuditCorrupt, err.Error())
	default:
		s.log.Error("audit log unavailable", slog.String("error", err.Error()))
		s.writeError(w, http.StatusServiceUnavailable, CodeAuditUnavailable, "the audit log cannot be read right now; retry later")
	}
}

func hashesToBytes[H ~[32]byte](hs []H) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// Timeouts and limits of [NewHTTPServer].
const (
	// ServerReadHeaderTimeout bounds the TLS handshake and reading the
	// request headers: a client that sends its headers byte by byte is cut
	// off after this long.
	ServerReadHeaderTimeout = 5 * time.Second
	// ServerReadTimeout bounds reading a whole request, body included
	// (16 MiB in a minute is about 280 KB/s).
	ServerReadTimeout = time.Minute
	// ServerWriteTimeout bounds deciding and writing the answer; a request
	// of tens of thousands of sessions takes seconds to answer.
	ServerWriteTimeout = 2 * time.Minute
	// ServerIdleTimeout closes kept-alive connections left idle.
	ServerIdleTimeout = 2 * time.Minute
	// ServerMaxHeaderBytes limits request headers.
	ServerMaxHeaderBytes = 16 << 10
)

// NewHTTPServer returns an *http.Server for handler with every timeout and
// header limit set, so that slow or stalled clients are cut off while the
// node keeps serving the others. Its error log goes to logger at warning
// level. Set TLSConfig (from [ServerTLSConfig]) and Addr before serving.
func NewHTTPServer(handler http.Handler, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: ServerReadHeaderTimeout,
		ReadTimeout:       ServerReadTimeout,
		WriteTimeout:      ServerWriteTimeout,
		IdleTimeout:       ServerIdleTimeout,
		MaxHeaderBytes:    ServerMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// ServerTLSConfig returns the TLS configuration a trustee serves with: TLS
// 1.3 only, presenting cert. Clients do not check the certificate against
// any CA; they compare its public key with the pin in the group file.
func ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
	}
}

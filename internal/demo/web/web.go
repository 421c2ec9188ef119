// Package web serves the page of `keyquorum demo --web`: one explorable
// page over a running demo ([demo.Live]), and the small JSON API every
// control on it calls. The page computes nothing it shows: each number
// comes from the API, which runs real code (the attacker's code over
// stolen stored shares, warranted requests to the trustee processes,
// reads of their audit logs, forgeries) when asked.
//
// # The page
//
// The page and its assets are embedded (static/): plain HTML, CSS, SVG
// drawn by a small script, no third-party code and no build step. It
// loads nothing from another origin (the Content-Security-Policy says
// so). Its audit-log check does not trust this server: it verifies the
// trustee's signed head (Ed25519, the note format of
// golang.org/x/mod/sumdb/note) and the record's inclusion proof
// (RFC 6962 hashing, as golang.org/x/mod/sumdb/tlog computes it) with the
// browser's WebCrypto, and shows the server's own verdict beside it.
//
// # The API
//
//	GET  /api/state                     readiness, the configuration and the demo's report
//	GET  /api/timeline                  users, epochs and sessions of the simulated month
//	POST /api/compromise                {"trustees":[1,2]}: sessions exposed per design
//	POST /api/warrant                   a warrant to sign and send to the trustees
//	GET  /api/trustees                  the trustee processes
//	POST /api/trustees/{i}/kill         SIGKILL trustee i
//	POST /api/trustees/{i}/restart      start trustee i again
//	GET  /api/epochs                    each epoch as the trustees' disks hold it now
//	GET  /api/audit                     every trustee's signed head and records
//	GET  /api/audit/{i}/inclusion/{r}   record r of trustee i with its inclusion proof
//	POST /api/clipper                   one Clipper race
//
// POST bodies must be JSON (Content-Type application/json), which a page
// from another origin cannot send without the browser asking first, and
// requests must name the server by IP address or as localhost, so that a
// page cannot reach the API through a name of its own pointed here (DNS
// rebinding).
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyquorum/keyquorum/internal/demo"
)

//go:embed static
var static embed.FS

// Server is the page and its API. It answers before the demo is ready
// (the page shows that it is starting) and after [Server.Ready].
type Server struct {
	cfg demo.Config
	mux *http.ServeMux

	mu   sync.Mutex
	live *demo.Live
	err  error
}

// New returns a server for a demo run with cfg, not ready yet.
func New(cfg demo.Config) *Server {
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	files, _ := fs.Sub(static, "static") // the directory is embedded
	s.mux.Handle("GET /", http.FileServerFS(files))
	s.mux.HandleFunc("GET /api/state", s.state)
	s.handle("GET /api/timeline", func(l *demo.Live, r *http.Request) (any, error) { return l.Timeline(), nil })
	s.handle("POST /api/compromise", func(l *demo.Live, r *http.Request) (any, error) {
		var body struct {
			Trustees []int `json:"trustees"`
		}
		if err := decode(r, &body); err != nil {
			return nil, err
		}
		return l.Compromise(body.Trustees)
	})
	s.handle("POST /api/warrant", func(l *demo.Live, r *http.Request) (any, error) {
		var body demo.WarrantRequest
		if err := decode(r, &body); err != nil {
			return nil, err
		}
		res, err := l.Warrant(body)
		if errors.Is(err, demo.ErrBadWarrant) {
			return nil, badRequest{err}
		}
		return res, err
	})
	s.handle("GET /api/trustees", func(l *demo.Live, r *http.Request) (any, error) { return l.Trustees() })
	s.handle("POST /api/trustees/{i}/kill", func(l *demo.Live, r *http.Request) (any, error) {
		i, err := pathInt(r, "i")
		if err == nil {
			err = l.Kill(int(i))
		}
		if err != nil {
			return nil, err
		}
		return l.Trustees()
	})
	s.handle("POST /api/trustees/{i}/restart", func(l *demo.Live, r *http.Request) (any, error) {
		i, err := pathInt(r, "i")
		if err == nil {
			err = l.Restart(r.Context(), int(i))
		}
		if err != nil {
			return nil, err
		}
		return l.Trustees()
	})
	s.handle("GET /api/epochs", func(l *demo.Live, r *http.Request) (any, error) { return l.Epochs() })
	s.handle("GET /api/audit", func(l *demo.Live, r *http.Request) (any, error) { return l.AuditLogs(r.Context()), nil })
	s.handle("GET /api/audit/{i}/inclusion/{r}", func(l *demo.Live, r *http.Request) (any, error) {
		i, err := pathInt(r, "i")
		if err != nil {
			return nil, err
		}
		rec, err := pathInt(r, "r")
		if err != nil {
			return nil, err
		}
		return l.Inclusion(r.Context(), int(i), rec)
	})
	s.handle("POST /api/clipper", func(l *demo.Live, r *http.Request) (any, error) { return l.Clipper() })
	return s
}

// Ready makes the API answer from l, or report err if the demo could not
// start.
func (s *Server) Ready(l *demo.Live, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live, s.err = l, err
}

// ServeHTTP serves the page and the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	// A page elsewhere could point a name it controls at this address
	// (DNS rebinding) and then call the API as if it were this page: only
	// an IP address or localhost is served.
	host := r.Host
	if name, _, err := net.SplitHostPort(host); err == nil {
		host = name
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err != nil && host != "localhost" {
		writeError(w, http.StatusMisdirectedRequest, errors.New("use the address keyquorum demo --web printed (an IP address or localhost)"))
		return
	}
	s.mux.ServeHTTP(w, r)
}

type stateJSON struct {
	Ready     bool         `json:"ready"`
	Error     string       `json:"error,omitempty"`
	Trustees  int          `json:"trustees"`
	Threshold int          `json:"threshold"`
	Users     int          `json:"users"`
	Days      int          `json:"days"`
	Seed      uint64       `json:"seed"`
	Report    *demo.Report `json:"report,omitempty"`
}

func (s *Server) state(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	live, err := s.live, s.err
	s.mu.Unlock()
	st := stateJSON{Trustees: s.cfg.Trustees, Threshold: s.cfg.Threshold, Users: s.cfg.Users, Days: s.cfg.Days, Seed: s.cfg.Seed}
	if err != nil {
		st.Error = err.Error()
	}
	if live != nil {
		st.Ready, st.Report = true, live.Report()
	}
	writeJSON(w, http.StatusOK, st)
}

// handle registers an API call that needs the running demo.
func (s *Server) handle(pattern string, fn func(*demo.Live, *http.Request) (any, error)) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		live := s.live
		s.mu.Unlock()
		if live == nil {
			writeError(w, http.StatusServiceUnavailable, errors.New("the demo is still starting its trustees; try again in a few seconds"))
			return
		}
		if r.Method == http.MethodPost && r.Header.Get("Content-Type") != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, errors.New("send a JSON body with Content-Type application/json"))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
		defer cancel()
		v, err := fn(live, r.WithContext(ctx))
		var bad badRequest
		switch {
		case errors.As(err, &bad):
			writeError(w, http.StatusBadRequest, bad.err)
		case err != nil:
			writeError(w, http.StatusInternalServerError, err)
		default:
			writeJSON(w, http.StatusOK, v)
		}
	})
}

// badRequest marks an error as the caller's.
type badRequest struct{ err error }

func (b badRequest) Error() string { return b.err.Error() }

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest{err}
	}
	return nil
}

func pathInt(r *http.Request, name string) (int64, error) {
	i, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil {
		return 0, badRequest{errors.New(name + " must be a number")}
	}
	return i, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

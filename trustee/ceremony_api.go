package trustee

import (
	"net/http"

	"github.com/keyquorum/keyquorum/ceremony"
	"github.com/keyquorum/keyquorum/escrow"
)

// WithCeremonyHost serves the ceremony endpoints with h.
func WithCeremonyHost(h *ceremony.CeremonyHost) ServerOption {
	return func(s *Server) {
		s.ceremonyHandler = &ceremony.Handler{Host: h, OnError: func(path string, err error) {
			s.log.Error("ceremony call failed", "path", path, "error", err.Error())
		}}
	}
}

func (s *Server) addCeremonyRoutes() {
	for path, name := range map[string]string{
		ceremony.PathCeremonyPrepare: "ceremony-prepare", ceremony.PathCeremonyStart: "ceremony-start",
		ceremony.PathCeremonyDeliver: "ceremony-deliver", ceremony.PathCeremonyTimeout: "ceremony-timeout",
		ceremony.PathCeremonyFinish: "ceremony-finish", ceremony.PathCeremonySign: "ceremony-sign",
		ceremony.PathCeremonyCommit: "ceremony-commit", ceremony.PathCeremonyAbort: "ceremony-abort",
	} {
		s.handle(http.MethodPost, path, name, s.handleCeremony)
	}
}

func (s *Server) handleCeremony(w *statusWriter, r *http.Request) {
	if s.ceremonyHandler == nil {
		s.writeError(w, http.StatusNotFound, CodeNotFound, "this trustee takes no part in key ceremonies (it was started without them)")
		return
	}
	s.ceremonyHandler.ServeHTTP(w, r)
}

// CeremonyDialer returns the [ceremony.DKGOptions] Dial function that
// reaches each trustee with a [Client] made with opts.
func CeremonyDialer(opts ...ClientOption) func(escrow.GroupMember) (ceremony.Caller, error) {
	return func(m escrow.GroupMember) (ceremony.Caller, error) {
		c, err := NewClient(m, opts...)
		if err != nil {
			return nil, err
		}
		return &ceremony.HTTPCaller{Name: m.Name, Base: c.base, Client: c.hc, MaxAnswer: c.maxAnswer}, nil
	}
}

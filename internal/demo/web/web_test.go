package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyquorum/keyquorum/internal/demo"
)

func get(t *testing.T, h http.Handler, method, path, contentType, body string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Host = "127.0.0.1:8080"
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Result(), string(b)
}

// TestServerBeforeReady: the page and its assets are served at once, from
// this origin only; the API says the demo is starting until it is ready,
// and then says why it failed if it did.
func TestServerBeforeReady(t *testing.T) {
	s := New(demo.DefaultConfig())
	for _, path := range []string{"/", "/app.js", "/style.css"} {
		resp, body := get(t, s, "GET", path, "", "")
		if resp.StatusCode != 200 || len(body) < 100 {
			t.Errorf("GET %s: %s, %d bytes", path, resp.Status, len(body))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
	}
	_, page := get(t, s, "GET", "/", "", "")
	for _, external := range []string{"http://", "https://", "//cdn"} {
		if strings.Contains(page, "src=\""+external) || strings.Contains(page, "href=\""+external) {
			t.Errorf("the page loads something from another origin (%s)", external)
		}
	}

	resp, body := get(t, s, "GET", "/api/state", "", "")
	var st stateJSON
	if err := json.Unmarshal([]byte(body), &st); err != nil || resp.StatusCode != 200 || st.Ready || st.Trustees != 5 || st.Threshold != 3 {
		t.Errorf("state before ready: %s %s", resp.Status, body)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/timeline"}, {"POST", "/api/compromise"}, {"POST", "/api/warrant"}, {"GET", "/api/trustees"},
		{"POST", "/api/trustees/1/kill"}, {"GET", "/api/epochs"}, {"GET", "/api/audit"}, {"POST", "/api/clipper"},
	} {
		if resp, body := get(t, s, c.method, c.path, "application/json", "{}"); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "still starting") {
			t.Errorf("%s %s before ready: %s %s", c.method, c.path, resp.Status, body)
		}
	}
	if resp, _ := get(t, s, "GET", "/api/clipper", "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of a POST call: %s, want 404 (the page's files have no such path)", resp.Status)
	}

	s.Ready(nil, errors.New("demo: starting the trustees: boom"))
	_, body = get(t, s, "GET", "/api/state", "", "")
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Ready || !strings.Contains(st.Error, "boom") {
		t.Errorf("state after a failed start: %s", body)
	}
}

// TestServerRefusesOtherNames: a name other than localhost pointed at the
// server (DNS rebinding) gets nothing.
func TestServerRefusesOtherNames(t *testing.T) {
	s := New(demo.DefaultConfig())
	for host, want := range map[string]int{
		"127.0.0.1:8080": 200, "localhost:8080": 200, "[::1]:8080": 200, "192.0.2.7:80": 200,
		"attacker.example:8080": http.StatusMisdirectedRequest, "attacker.example": http.StatusMisdirectedRequest,
	} {
		req := httptest.NewRequest("GET", "/api/state", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %s: %d, want %d", host, rec.Code, want)
		}
	}
}

// TestServerRefusesNonJSONPosts: a page from another origin can post a
// form without asking; the API takes only JSON, which it cannot.
func TestServerRefusesNonJSONPosts(t *testing.T) {
	cfg := demo.DefaultConfig()
	cfg.Trustees, cfg.Threshold, cfg.Users, cfg.Days, cfg.ForgeryTries = 3, 2, 3, 7, 10
	l, err := demo.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := New(cfg)
	s.Ready(l, nil)
	if resp, _ := get(t, s, "POST", "/api/compromise", "application/x-www-form-urlencoded", "trustees=1"); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("form post: %s", resp.Status)
	}
	if resp, body := get(t, s, "POST", "/api/compromise", "application/json", `{"trustees":[1,2]}`); resp.StatusCode != 200 || !strings.Contains(body, `"design":"threshold"`) {
		t.Errorf("JSON post: %s %s", resp.Status, body)
	}
	if resp, body := get(t, s, "POST", "/api/compromise", "application/json", `{"trustees":[1], "extra":1}`); resp.StatusCode != 400 {
		t.Errorf("unknown field: %s %s", resp.Status, body)
	}
	if resp, body := get(t, s, "POST", "/api/warrant", "application/json", `{"target":"nobody","from":"2026-10-01T00:00:00Z","to":"2026-10-02T00:00:00Z","max_sessions":1}`); resp.StatusCode != 400 || !strings.Contains(body, "not a user") {
		t.Errorf("bad warrant: %s %s", resp.Status, body)
	}
	if resp, body := get(t, s, "POST", "/api/trustees/1/kill", "application/json", `{}`); resp.StatusCode != 500 || !strings.Contains(body, "not processes") {
		t.Errorf("killing an in-process trustee: %s %s", resp.Status, body)
	}
}

package trustee

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// TestDecryptBusy: with MaxConcurrentDecrypts requests in progress, the
// next gets 503 with code "busy" and is not read or decided.
func TestDecryptBusy(t *testing.T) {
	skey, _, _ := note.GenerateKey(nil, "busy.log")
	signer, _ := note.NewSigner(skey)
	_, jv, _ := note.GenerateKey(nil, "judge-busy")
	judge, _ := note.NewVerifier(jv)
	n, err := New("t1", 1, DefaultPolicy(judge), NewMemAuditStore(), signer)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(n)
	for i := 0; i < MaxConcurrentDecrypts; i++ {
		s.busy <- struct{}{}
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, PathDecrypt, strings.NewReader("junk")))
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusServiceUnavailable || body.Error.Code != CodeBusy {
		t.Fatalf("got %d %s, want 503 busy", rec.Code, rec.Body.String())
	}
	if size, _ := n.log.Head(); size.Tree.N != 0 {
		t.Fatal("a request turned away as busy was decided")
	}
	<-s.busy
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, PathDecrypt, strings.NewReader("junk")))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("with a free slot: got %d %s, want 400 for the junk body", rec.Code, rec.Body.String())
	}
}

package trustee

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/ceremony"
	"github.com/keyquorum/keyquorum/escrow"
	"golang.org/x/mod/sumdb/note"
)

// # The control channel
//
// A node's operator acts on it through a Unix socket in the node's
// directory (ControlSocketName), created owner-only (mode 0600 in a
// directory the node refuses to use if others can write to it), which the
// public API cannot reach: to approve a ceremony proposal, to sign one it
// proposes, to sign a group file (after checking it as [SignGroupAsNode]
// does), and to read the node's status. Whoever can connect to it is
// the operator, as whoever can read the store and the passphrase is.

// ControlSocketName is the control socket's file name in the node's
// directory.
const ControlSocketName = "control.sock"

// maxSockPath is the longest socket path every platform binds (sun_path
// holds 104 bytes on the BSDs and macOS, 108 on Linux, with the NUL).
const maxSockPath = 100

// Control endpoints (HTTP over the Unix socket).
const (
	pathControlReview  = "/v1/proposal/review"
	pathControlApprove = "/v1/proposal/approve"
	pathControlSign    = "/v1/proposal/sign"
	pathControlStatus  = "/v1/status"
	pathControlBackup  = "/v1/backup"
	pathControlGroup   = "/v1/group/sign"
)

// ErrControl: the control socket could not be reached or refused the
// call; the error says why and what to do.
var ErrControl = errors.New("trustee: control channel")

// ControlConfig is what the control channel serves.
type ControlConfig struct {
	Host      *ceremony.CeremonyHost
	LogSigner note.Signer // signs proposals this node's operator writes
	// Status returns the node's status (a JSON-encodable value).
	Status func() (any, error)
	// Backup writes a backup of the node ([WriteBackup]); nil: the
	// node takes none.
	Backup func(w io.Writer) error
	// SignGroup, if set, checks a group file and returns it with this
	// node's signature added ([SignGroupAsNode]); its errors are the
	// caller's bad input.
	SignGroup func(groupFile []byte) ([]byte, error)
}

// controlCall is the body of a control call.
type controlCall struct {
	Proposal string `json:"proposal,omitempty"` // signed proposal (review, approve) or its text (sign)
	Group    string `json:"group,omitempty"`
}

// ControlAnswer is the answer to a review, approve or sign call.
type ControlAnswer struct {
	Ceremony string `json:"ceremony,omitempty"`
	Kind     string `json:"kind,omitempty"`
	Hash     string `json:"hash,omitempty"`
	Summary  string `json:"summary,omitempty"`
	Signed   string `json:"signed,omitempty"`
	Approved bool   `json:"approved"`
	Trustee  string `json:"trustee,omitempty"` // the node that signed a group file
}

// ListenControl creates the control socket in dir, owner-only. A stale
// socket left by a node that died is replaced; one a running node
// answers on is an error.
func ListenControl(dir string) (net.Listener, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrControl, err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("%w: %s can be written by others (mode %v); chmod 700 it", ErrControl, dir, fi.Mode().Perm())
	}
	path := filepath.Join(dir, ControlSocketName)
	addr, done, err := socketAddr(dir, ControlSocketName)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrControl, err)
	}
	defer done()
	if c, err := dialControl(dir); err == nil {
		c.Close()
		return nil, fmt.Errorf("%w: another node is serving %s; stop it first", ErrControl, path)
	}
	os.Remove(path)
	old := umask(0o177)
	l, err := net.Listen("unix", addr)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrControl, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("%w: %v", ErrControl, err)
	}
	return l, nil
}

// ControlHandler returns the control channel's HTTP handler.
func ControlHandler(cfg ControlConfig) http.Handler {
	mux := http.NewServeMux()
	decode := func(w http.ResponseWriter, r *http.Request) (*controlCall, bool) {
		var c controlCall
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			ceremony.WriteError(w, http.StatusBadRequest, CodeBadRequest, "control call: "+err.Error())
			return nil, false
		}
		return &c, true
	}
	fail := func(w http.ResponseWriter, err error) {
		status, code := ceremony.ErrorStatus(err)
		if code == "" {
			code = CodeInternal
		}
		ceremony.WriteError(w, status, code, err.Error())
	}
	reviewOrApprove := func(approve bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c, ok := decode(w, r)
			if !ok {
				return
			}
			do := cfg.Host.Review
			if approve {
				do = cfg.Host.Approve
			}
			var group []byte
			if c.Group != "" {
				group = []byte(c.Group)
			}
			p, summary, err := do([]byte(c.Proposal), group)
			if err != nil {
				fail(w, err)
				return
			}
			writeControlJSON(w, ControlAnswer{Ceremony: p.ID, Kind: p.Kind, Hash: p.Hash(), Summary: summary, Approved: approve})
		}
	}
	mux.HandleFunc("POST "+pathControlReview, reviewOrApprove(false))
	mux.HandleFunc("POST "+pathControlApprove, reviewOrApprove(true))
	mux.HandleFunc("POST "+pathControlSign, func(w http.ResponseWriter, r *http.Request) {
		c, ok := decode(w, r)
		if !ok {
			return
		}
		p, err := ceremony.ParseProposalText(c.Proposal)
		if err != nil {
			fail(w, err)
			return
		}
		signed, err := ceremony.SignProposal(p, cfg.LogSigner)
		if err != nil {
			fail(w, err)
			return
		}
		writeControlJSON(w, ControlAnswer{Ceremony: p.ID, Kind: p.Kind, Hash: p.Hash(), Signed: string(signed)})
	})
	if cfg.SignGroup != nil {
		mux.HandleFunc("POST "+pathControlGroup, func(w http.ResponseWriter, r *http.Request) {
			c, ok := decode(w, r)
			if !ok {
				return
			}
			signed, err := cfg.SignGroup([]byte(c.Group))
			if err != nil {
				ceremony.WriteError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
				return
			}
			writeControlJSON(w, ControlAnswer{Signed: string(signed), Trustee: strings.TrimSuffix(cfg.LogSigner.Name(), escrow.LogKeyName(""))})
		})
	}
	mux.HandleFunc("GET "+pathControlStatus, func(w http.ResponseWriter, r *http.Request) {
		st, err := cfg.Status()
		if err != nil {
			fail(w, err)
			return
		}
		writeControlJSON(w, st)
	})
	mux.HandleFunc("GET "+pathControlBackup, func(w http.ResponseWriter, r *http.Request) {
		if cfg.Backup == nil {
			ceremony.WriteError(w, http.StatusNotFound, CodeNotFound, "this node takes no backups over its control socket")
			return
		}
		// A failure part way ends the body without its checksum line,
		// which the client and every restore refuse; one before the first
		// byte is answered as an error.
		cw := &countingWriter{w: w}
		if err := cfg.Backup(cw); err != nil && cw.n == 0 {
			fail(w, err)
		}
	})
	return mux
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// dialControl connects to the control socket in dir.
func dialControl(dir string) (net.Conn, error) {
	addr, done, err := socketAddr(dir, ControlSocketName)
	if err != nil {
		return nil, err
	}
	defer done()
	return net.DialTimeout("unix", addr, time.Second)
}

func writeControlJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		ceremony.WriteError(w, http.StatusInternalServerError, CodeInternal, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

// ControlClient talks to a running node's control socket.
type ControlClient struct {
	dir string
	hc  *http.Client
}

// NewControlClient returns a client of the control socket in dir.
func NewControlClient(dir string) *ControlClient {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		addr, done, err := socketAddr(dir, ControlSocketName)
		if err != nil {
			return nil, err
		}
		defer done()
		var d net.Dialer
		return d.DialContext(ctx, "unix", addr)
	}}
	return &ControlClient{dir: dir, hc: &http.Client{Transport: tr, Timeout: time.Minute}}
}

func (c *ControlClient) do(method, path string, body any, out any) error {
	resp, err := c.send(method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrControl, err)
	}
	return json.Unmarshal(b, out)
}

// send makes a control call and returns the answer of a 200, or the
// node's error.
func (c *ControlClient) send(method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://control"+path, rd)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: no node answers on %s (%v); start it with keyquorum trustee serve --dir %s", ErrControl, filepath.Join(c.dir, ControlSocketName), errors.Unwrap(err), c.dir)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.Unmarshal(b, &e)
		return nil, &ceremony.CallError{Trustee: c.dir, Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	return resp, nil
}

// Backup has the running node write a backup of itself ([WriteBackup])
// to w. The caller checks what it wrote (the last line is the checksum;
// [RestoreBackup] and [VerifyBackup] refuse a backup cut short).
func (c *ControlClient) Backup(w io.Writer) error {
	// A large store takes longer than the other calls' minute.
	slow := &ControlClient{dir: c.dir, hc: &http.Client{Transport: c.hc.Transport}}
	resp, err := slow.send(http.MethodGet, pathControlBackup, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("%w: reading the backup: %v", ErrControl, err)
	}
	return nil
}

// Review asks the node to check a signed proposal and summarise it,
// approving nothing. group is the current group file, needed only by a
// node that has none yet (one that joins by a reshare).
func (c *ControlClient) Review(signed, group []byte) (*ControlAnswer, error) {
	var a ControlAnswer
	return &a, c.do(http.MethodPost, pathControlReview, controlCall{Proposal: string(signed), Group: string(group)}, &a)
}

// Approve approves a signed proposal on the node.
func (c *ControlClient) Approve(signed, group []byte) (*ControlAnswer, error) {
	var a ControlAnswer
	return &a, c.do(http.MethodPost, pathControlApprove, controlCall{Proposal: string(signed), Group: string(group)}, &a)
}

// SignProposal has the node sign a proposal's text with its log key.
func (c *ControlClient) SignProposal(p *ceremony.Proposal) ([]byte, error) {
	var a ControlAnswer
	if err := c.do(http.MethodPost, pathControlSign, controlCall{Proposal: p.Text()}, &a); err != nil {
		return nil, err
	}
	return []byte(a.Signed), nil
}

// SignGroup has the running node check a group file and add its
// signature ([ControlConfig.SignGroup]); it returns the signed file and
// the name of the key that signed.
func (c *ControlClient) SignGroup(groupFile []byte) ([]byte, string, error) {
	var a ControlAnswer
	if err := c.do(http.MethodPost, pathControlGroup, controlCall{Group: string(groupFile)}, &a); err != nil {
		return nil, "", err
	}
	return []byte(a.Signed), a.Trustee, nil
}

// Status returns the node's status as JSON.
func (c *ControlClient) Status() (json.RawMessage, error) {
	var raw json.RawMessage
	return raw, c.do(http.MethodGet, pathControlStatus, nil, &raw)
}

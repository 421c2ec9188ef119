package trustee

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"golang.org/x/mod/sumdb/tlog"
)

// Errors from [NewClient] and the [Client] methods.
var (
	// ErrPinMismatch: the trustee presented a TLS certificate whose public
	// key is not the one its group-file entry pins. Either the group file
	// is out of date (the trustee rotated its key) or someone else is
	// answering at that address. Nothing was sent.
	ErrPinMismatch = errors.New("trustee: TLS certificate does not match the pin in the group file")
	// ErrInsecureTransport: the group file gives no TLS pin for a trustee
	// whose address is not loopback; plain HTTP is only for demos on one
	// machine.
	ErrInsecureTransport = errors.New("trustee: refusing plain HTTP to a non-loopback address")
	// ErrBadAnswer: the trustee's answer is malformed: not the JSON the API
	// defines, partial decryptions that do not parse, or an answer that
	// claims to come from another trustee.
	ErrBadAnswer = errors.New("trustee: malformed answer")
)

// TLSPinPrefix starts every TLS pin: "sha256/" + standard base64 of the
// SHA-256 of the certificate's SubjectPublicKeyInfo (DER).
const TLSPinPrefix = "sha256/"

// APIError is an error answer of a trustee's API that is not a refusal of
// a decryption request (for example 413 or 500), or a refusal answer to a
// non-decrypt call.
type APIError struct {
	Trustee string
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("trustee: %s answered HTTP %d", e.Trustee, e.Status)
	}
	return fmt.Sprintf("trustee: %s answered HTTP %d (%s): %s", e.Trustee, e.Status, e.Code, e.Message)
}

// TransportError is a failure to exchange a request and answer with a
// trustee at all: connection refused or reset, a timeout, a TLS handshake
// failure (including [ErrPinMismatch], which it wraps).
type TransportError struct {
	Trustee string
	Address string
	Err     error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("trustee: %s at %s: %v", e.Trustee, e.Address, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Client talks to one trustee's API, over TLS with the certificate pinned
// by the group file, or over plain HTTP to a loopback address when the
// group file pins nothing. It is safe for concurrent use.
type Client struct {
	member    escrow.GroupMember
	base      string
	hc        *http.Client
	maxAnswer int64
}

// ClientOption configures a [Client].
type ClientOption func(*clientConfig)

type clientConfig struct {
	timeout   time.Duration
	maxAnswer int64
}

// WithClientTimeout bounds every call of the client, whatever its context
// says (default 5 minutes; pass a context with a deadline for tighter
// per-call limits).
func WithClientTimeout(d time.Duration) ClientOption {
	return func(c *clientConfig) { c.timeout = d }
}

// WithMaxAnswerBytes bounds how much of an answer the client reads
// (default 256 MiB, enough for the largest request a trustee accepts).
func WithMaxAnswerBytes(n int64) ClientOption {
	return func(c *clientConfig) { c.maxAnswer = n }
}

// NewClient returns a client for trustee m of a group file. It refuses a
// member without an address, a malformed pin, and plain HTTP (no pin) to
// an address whose host is not loopback (127.0.0.0/8, ::1 or "localhost").
func NewClient(m escrow.GroupMember, opts ...ClientOption) (*Client, error) {
	cfg := clientConfig{timeout: 5 * time.Minute, maxAnswer: 256 << 20}
	for _, o := range opts {
		o(&cfg)
	}
	if m.Address == "" {
		return nil, fmt.Errorf("trustee: %s has no address in the group file; add its host:port", m.Name)
	}
	host, port, err := net.SplitHostPort(m.Address)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("trustee: %s address %q in the group file is not host:port", m.Name, m.Address)
	}
	transport := &http.Transport{
		Proxy:                 nil, // trustees are reached directly
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	c := &Client{member: m, maxAnswer: cfg.maxAnswer}
	if m.TLSPin == "" {
		if !IsLoopbackHost(host) {
			return nil, fmt.Errorf("%w: %s at %s has no TLS pin in the group file; add the pin from its descriptor (plain HTTP is allowed only to 127.0.0.1, ::1 or localhost)", ErrInsecureTransport, m.Name, m.Address)
		}
		c.base = "http://" + m.Address
	} else {
		want, err := parseTLSPin(m.TLSPin)
		if err != nil {
			return nil, fmt.Errorf("trustee: %s in the group file: %w", m.Name, err)
		}
		transport.TLSClientConfig = &tls.Config{
			MinVersion: tls.VersionTLS13,
			// No CA vouches for a trustee: the pin is the whole check, done
			// in VerifyConnection, which runs on every handshake, resumed
			// or not.
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return fmt.Errorf("%w: %s at %s presented no certificate", ErrPinMismatch, m.Name, m.Address)
				}
				got := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
				if subtle.ConstantTimeCompare(got[:], want) != 1 {
					return fmt.Errorf("%w: the certificate of %s at %s does not match its pin in the group file (presented %s%s, pinned %s); update the group file if the trustee changed its key, otherwise someone else is answering at that address",
						ErrPinMismatch, m.Name, m.Address, TLSPinPrefix, base64.StdEncoding.EncodeToString(got[:]), m.TLSPin)
				}
				return nil
			},
		}
		c.base = "https://" + m.Address
	}
	c.hc = &http.Client{
		Transport: transport,
		Timeout:   cfg.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a trustee never redirects
		},
	}
	return c, nil
}

func parseTLSPin(pin string) ([]byte, error) {
	rest, ok := strings.CutPrefix(pin, TLSPinPrefix)
	if !ok {
		return nil, fmt.Errorf("TLS pin %q does not start with %q", pin, TLSPinPrefix)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("TLS pin %q is not %s followed by the base64 of a SHA-256 hash", pin, TLSPinPrefix)
	}
	return b, nil
}

// Member returns the group-file entry the client talks to.
func (c *Client) Member() escrow.GroupMember { return c.member }

// CloseIdleConnections closes the client's idle connections.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Decrypt sends an encoded decryption request and returns the trustee's
// answer, with its partial decryptions parsed. A refusal comes back as a
// *[RefusalError] with the trustee's code and reason (and, with
// [errors.Is], the sentinel that code stands for, such as
// [escrow.ErrWarrantExpired]). Other HTTP errors are *[APIError];
// malformed answers wrap [ErrBadAnswer]. Decrypt verifies nothing about the
// answer's audit evidence or proofs: [Decrypt] (the package function) does.
func (c *Client) Decrypt(ctx context.Context, req []byte) (*Answer, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+PathDecrypt, bytes.NewReader(req))
	if err != nil {
		return nil, fmt.Errorf("trustee: %s: %w", c.member.Name, err)
	}
	hr.Header.Set("Content-Type", "application/octet-stream")
	hr.Header.Set("Accept", "application/json")
	status, body, err := c.do(hr)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		// A refusal is a 403, or any answer carrying one of the node's
		// refusal codes (400 bad-request, 429 rate-limited, 503
		// audit-unavailable); other errors are the API's own.
		e := c.apiError(status, body)
		if sentinel := refusalSentinel(e.Code); e.Code != "" && (sentinel != nil || status == http.StatusForbidden) {
			return nil, &RefusalError{Trustee: c.member.Name, Code: e.Code, Err: &remoteReason{msg: e.Message, sentinel: sentinel}}
		}
		return nil, e
	}
	var w decryptAnswerJSON
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, c.badAnswer("decoding the answer: %v", err)
	}
	if w.Trustee != c.member.Name || w.Index != c.member.Index {
		return nil, c.badAnswer("the answer says it comes from %s (index %d)", strconv.Quote(w.Trustee), w.Index)
	}
	ans := &Answer{Trustee: w.Trustee, Index: w.Index, RecordIndex: w.RecordIndex, Record: w.Record, Head: []byte(w.Head)}
	if ans.Proof, err = bytesToHashes(w.Proof); err != nil {
		return nil, c.badAnswer("inclusion proof: %v", err)
	}
	if len(w.Batches) == 0 {
		return nil, c.badAnswer("no batch of partial decryptions (a trustee of an older build sends another format)")
	}
	ans.Batches = make([]*escrow.BatchAnswer, len(w.Batches))
	for i, b := range w.Batches {
		p, err := escrow.ParseBatchAnswer(b)
		if err != nil {
			return nil, c.badAnswer("batch %d: %v", i, err)
		}
		ans.Batches[i] = p
	}
	return ans, nil
}

// Info returns the trustee's self-description.
func (c *Client) Info(ctx context.Context) (*NodeInfo, error) {
	var info NodeInfo
	if err := c.getJSON(ctx, PathInfo, nil, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// Head returns the trustee's current signed tree head, unverified; check it
// with [VerifyHead].
func (c *Client) Head(ctx context.Context) ([]byte, error) {
	return c.get(ctx, PathHead, nil)
}

// Records returns the encoded audit records start..end-1 (at most
// [MaxRecordsPerRequest]).
func (c *Client) Records(ctx context.Context, start, end int64) ([][]byte, error) {
	var out recordsJSON
	q := url.Values{"start": {strconv.FormatInt(start, 10)}, "end": {strconv.FormatInt(end, 10)}}
	if err := c.getJSON(ctx, PathRecords, q, &out); err != nil {
		return nil, err
	}
	if int64(len(out.Records)) != end-start {
		return nil, c.badAnswer("asked for %d records, got %d", end-start, len(out.Records))
	}
	return out.Records, nil
}

// Inclusion returns the proof that record index is in the tree of size
// size.
func (c *Client) Inclusion(ctx context.Context, index, size int64) (tlog.RecordProof, error) {
	var out proofJSON
	q := url.Values{"index": {strconv.FormatInt(index, 10)}, "size": {strconv.FormatInt(size, 10)}}
	if err := c.getJSON(ctx, PathInclusion, q, &out); err != nil {
		return nil, err
	}
	p, err := bytesToHashes(out.Proof)
	if err != nil {
		return nil, c.badAnswer("inclusion proof: %v", err)
	}
	return p, nil
}

// Consistency returns the proof that the tree of size newSize extends the
// tree of size oldSize.
func (c *Client) Consistency(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error) {
	var out proofJSON
	q := url.Values{"old": {strconv.FormatInt(oldSize, 10)}, "new": {strconv.FormatInt(newSize, 10)}}
	if err := c.getJSON(ctx, PathConsistency, q, &out); err != nil {
		return nil, err
	}
	p, err := bytesToHashes(out.Proof)
	if err != nil {
		return nil, c.badAnswer("consistency proof: %v", err)
	}
	return p, nil
}

func (c *Client) get(ctx context.Context, path string, q url.Values) ([]byte, error) {
	u := c.base + path
	if q != nil {
		u += "?" + q.Encode()
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("trustee: %s: %w", c.member.Name, err)
	}
	status, body, err := c.do(hr)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, c.apiError(status, body)
	}
	return body, nil
}

func (c *Client) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	body, err := c.get(ctx, path, q)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return c.badAnswer("decoding %s: %v", path, err)
	}
	return nil
}

// do sends hr and reads the whole answer, up to the client's limit.
// Transport errors are wrapped with the trustee's name and address.
func (c *Client) do(hr *http.Request) (int, []byte, error) {
	resp, err := c.hc.Do(hr)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, &TransportError{Trustee: c.member.Name, Address: c.member.Address, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxAnswer+1))
	if err != nil {
		return 0, nil, fmt.Errorf("trustee: %s at %s: reading the answer: %w", c.member.Name, c.member.Address, err)
	}
	if int64(len(body)) > c.maxAnswer {
		return 0, nil, c.badAnswer("the answer is larger than %d bytes", c.maxAnswer)
	}
	return resp.StatusCode, body, nil
}

// apiError decodes an error answer; a body that is not the API's error
// JSON still gives an error with the status.
func (c *Client) apiError(status int, body []byte) *APIError {
	e := &APIError{Trustee: c.member.Name, Status: status}
	var w apiErrorJSON
	if json.Unmarshal(body, &w) == nil {
		e.Code, e.Message = w.Error.Code, w.Error.Message
	}
	return e
}

func (c *Client) badAnswer(format string, args ...any) error {
	return fmt.Errorf("%w from %s: %s", ErrBadAnswer, c.member.Name, fmt.Sprintf(format, args...))
}

func bytesToHashes(bs [][]byte) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(bs))
	for i, b := range bs {
		if len(b) != len(tlog.Hash{}) {
			return nil, fmt.Errorf("hash %d is %d bytes, want %d", i, len(b), len(tlog.Hash{}))
		}
		copy(out[i][:], b)
	}
	return out, nil
}

// remoteReason is the reason a remote trustee gave for a refusal. It
// unwraps to the sentinel the refusal code stands for, so errors.Is works
// on the requester's side as it does next to the node.
type remoteReason struct {
	msg      string
	sentinel error
}

func (e *remoteReason) Error() string { return e.msg }
func (e *remoteReason) Unwrap() error { return e.sentinel }

// refusalSentinel is the sentinel error a refusal code stands for.
func refusalSentinel(code string) error {
	switch code {
	case CodeBadRequest:
		return escrow.ErrBadRequest
	case CodeBadWarrant:
		return escrow.ErrBadWarrant
	case CodeWarrantExpired:
		return escrow.ErrWarrantExpired
	case CodeNotYetValid:
		return escrow.ErrWarrantNotYetValid
	case CodeUnknownJudge:
		return escrow.ErrUnknownJudge
	case CodeTooFewJudges:
		return escrow.ErrTooFewJudges
	case CodeBadSignature:
		return escrow.ErrBadRequestSignature
	case CodePolicyLimit:
		return ErrPolicyLimit
	case CodeRateLimited:
		return ErrRateLimited
	case CodeBadEnvelope:
		return escrow.ErrBadEnvelope
	case CodeUnknownEpoch:
		return ErrUnknownEpoch
	case CodeEpochDestroyed:
		return ErrEpochDestroyed
	case CodeOutOfScope:
		return escrow.ErrOutOfScope
	case CodeProspectiveOnly:
		return ErrProspectiveOnly
	case CodeSessionCap:
		return ErrSessionCap
	case CodeAuditUnavailable:
		return ErrAuditFailed
	case CodeWitnessQuorum:
		return ErrWitnessQuorum
	}
	return nil
}

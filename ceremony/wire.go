package ceremony

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
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
	CodeCeremonyBusy       = "ceremony-busy"
)

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

// Caller makes one call to one trustee's ceremony API; trustee.Client is
// one. A failure to reach the trustee at all must wrap [ErrUnreachable],
// so the coordinator retries it within the phase.
type Caller interface {
	Ceremony(ctx context.Context, path string, call *CeremonyCall) (*CeremonyAnswer, error)
}

// ErrUnreachable marks a failure to exchange a call and its answer with a
// trustee (connection refused, timeout, TLS failure), as opposed to an
// answer that refuses.
var ErrUnreachable = errors.New("ceremony: trustee unreachable")

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// truncateForLog shortens a caller-chosen string for messages.
func truncateForLog(s string) string {
	const limit = 64
	if len(s) > limit {
		return strings.ToValidUTF8(s[:limit], "?") + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

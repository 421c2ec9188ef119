package trustee

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyquorum/keyquorum/escrow"
)

// DefaultChunkSessions is how many sessions [Decrypt] puts in one request
// when [DecryptOptions.ChunkSessions] is zero: about 2.6 MB of request and
// 2 MB of answer per trustee, well under a trustee's request cap
// ([DefaultMaxRequestBytes], about 60,000 envelopes) and a client's
// answer cap, so that a warrant over 100,000 sessions is decrypted in ten
// requests with the requester holding one request's answers at a time.
const DefaultChunkSessions = 10000

// ErrChunkedTranscript: a transcript ([DecryptOptions.Transcript]) holds
// one request, and the sessions asked for take several.
var ErrChunkedTranscript = errors.New("trustee: a transcript holds one request")

// decryptChunked is [Decrypt] for more sessions than one request
// carries: it checks every envelope first (so that bad input is found
// before anything is sent), then sends one signed request per chunk of
// opts.ChunkSessions sessions, in order, each verified and combined as
// Decrypt does before the next is sent, and merges the outcomes. The
// checkpoints each trustee shows must extend from chunk to chunk, as
// across runs ([DecryptOptions.Seen]). After a chunk that too many
// trustees refused, the rest are not sent: refusals are final.
func decryptChunked(ctx context.Context, g *escrow.GroupFile, clients []*Client, warrant []byte, key *escrow.RequesterKey, envelopes [][]byte, opts DecryptOptions) (*DecryptResult, error) {
	total, size := len(envelopes), opts.ChunkSessions
	chunks := (total + size - 1) / size
	if opts.Transcript != nil {
		return nil, fmt.Errorf("%w, and %d sessions take %d requests of at most %d; ask for fewer sessions, or leave the transcript out", ErrChunkedTranscript, total, chunks, size)
	}
	if err := checkEnvelopes(g, envelopes, opts.Workers); err != nil {
		return nil, err
	}
	merged := &DecryptResult{
		Threshold:   g.Threshold,
		Keys:        make(map[escrow.SessionID][]byte, total),
		Unrecovered: map[escrow.SessionID]string{},
		Seen:        opts.Seen,
	}
	refused := false
	progress := opts.Progress
	for c := range chunks {
		start, end := c*size, min((c+1)*size, total)
		o := opts
		o.Seen = merged.Seen
		if progress != nil {
			o.Progress = func(done, _ int) { progress(start+done, total) }
		}
		res, err := decryptOne(ctx, g, clients, warrant, key, envelopes[start:end], o)
		if res == nil {
			return nil, fmt.Errorf("trustee: request %d of %d (sessions %d to %d): %w", c+1, chunks, start+1, end, err)
		}
		mergeChunk(merged, res, c, chunks)
		var qe *QuorumError
		switch {
		case err == nil:
		case errors.Is(err, ErrQuorumRefused):
			refused = true
			for _, b := range envelopes[end:] {
				if e, perr := escrow.ParseEnvelope(b); perr == nil {
					merged.Unrecovered[e.Context.SessionID] = fmt.Sprintf("not requested: too many trustees refused request %d of %d", c+1, chunks)
				}
			}
		case errors.As(err, &qe):
		default:
			return merged, err
		}
		if refused {
			break
		}
	}
	if len(merged.Unrecovered) == 0 {
		return merged, nil
	}
	usable := 0
	for _, t := range merged.Trustees {
		if t.Status == StatusGranted {
			usable++
		}
	}
	return merged, &QuorumError{
		Threshold:   g.Threshold,
		Usable:      usable,
		Trustees:    merged.Trustees,
		Unrecovered: len(merged.Unrecovered),
		Sessions:    total,
		Refused:     refused,
	}
}

// mergeChunk adds the outcome of request c (of n) to m. A trustee's entry
// is its first failure, if it had one, saying which request it was in;
// else its last grant. Attempts and bad shares add up.
func mergeChunk(m, res *DecryptResult, c, n int) {
	for sid, k := range res.Keys {
		m.Keys[sid] = k
	}
	for sid, why := range res.Unrecovered {
		m.Unrecovered[sid] = fmt.Sprintf("request %d of %d: %s", c+1, n, why)
	}
	m.Seen = res.Seen
	if m.Trustees == nil {
		m.Trustees = make([]TrusteeResult, len(res.Trustees))
	}
	for i, r := range res.Trustees {
		prev := m.Trustees[i]
		attempts, bad := prev.Attempts+r.Attempts, prev.BadShares+r.BadShares
		if c == 0 || prev.Status == StatusGranted {
			m.Trustees[i] = r
			if r.Status != StatusGranted {
				m.Trustees[i].Reason = fmt.Sprintf("request %d of %d: %s", c+1, n, r.Reason)
			}
		}
		m.Trustees[i].Attempts, m.Trustees[i].BadShares = attempts, bad
	}
}

// checkEnvelopes parses every envelope, on all cores, and checks what
// [Decrypt] refuses before sending: an envelope that does not parse, a
// session repeated, an epoch g lacks. It keeps nothing but the session
// ids.
func checkEnvelopes(g *escrow.GroupFile, envelopes [][]byte, workers int) error {
	sids := make([]escrow.SessionID, len(envelopes))
	epochs := make([]uint32, len(envelopes))
	errs := make([]error, len(envelopes))
	parallel(len(envelopes), workers, func(i int) {
		e, err := escrow.ParseEnvelope(envelopes[i])
		if err != nil {
			errs[i] = err
			return
		}
		sids[i], epochs[i] = e.Context.SessionID, e.Context.Epoch
	})
	seen := make(map[escrow.SessionID]bool, len(envelopes))
	known := map[uint32]bool{}
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("trustee: envelope %d: %w", i, err)
		}
		if seen[sids[i]] {
			return fmt.Errorf("trustee: envelope %d repeats session %s", i, sids[i])
		}
		seen[sids[i]] = true
		if !known[epochs[i]] {
			if _, err := g.EscrowGroup(epochs[i]); err != nil {
				return fmt.Errorf("trustee: session %s: %w", sids[i], err)
			}
			known[epochs[i]] = true
		}
	}
	return nil
}

package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/sim"
	"github.com/keyquorum/keyquorum/trustee"
	"github.com/urfave/cli/v2"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/term"
)

// Exit codes of `keyquorum decrypt` (and of `audit verify`, which uses 4
// for trustees it could not reach).
const (
	exitBadInput = 2 // a file or flag is wrong; nothing was sent
	exitRefused  = 3 // trustees refused, so the quorum could not be reached
	exitNoQuorum = 4 // too few valid answers: trustees unreachable or cheating
)

// progressMinSessions is the request size from which decrypt draws a
// progress bar (on a terminal only).
const progressMinSessions = 1000

func decryptCommand() *cli.Command {
	return &cli.Command{
		Name:      "decrypt",
		Usage:     "request a warranted decryption from the trustees and read the captured sessions it covers",
		ArgsUsage: " ",
		Description: "First checks, without contacting any trustee, the warrant's validity dates (and its judges'\n" +
			"signatures, given --judge or --judges), that the capture was escrowed to this group, and that\n" +
			"the warrant covers some captured session. Running it again with the same --out moves the\n" +
			"earlier results to OUT.1 (OUT.2, ...). With --json it prints summary.json (schema in doc/json.md).\n\n" +
			"Selects the sessions of the capture that the warrant covers (and whose escrow field is intact),\n" +
			"sends one signed request to every trustee at once, verifies each answer's signed log head,\n" +
			"inclusion proof and DLEQ proofs, combines the first t valid answers per session, and writes\n" +
			"OUT/sessions/<session id>.txt (one \"from: text\" line per message, signatures checked) and\n" +
			"OUT/summary.json. Every trustee that refused, cheated or could not be reached is named.\n\n" +
			"Exit status: 0 every requested session decrypted; 2 bad input (nothing sent);\n" +
			"3 trustees refused, so no quorum was possible; 4 too few valid answers (unreachable or cheating trustees).",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "group", Required: true, Usage: "group `FILE` naming the trustees, their addresses, TLS pins and log keys, signed by every trustee (keyquorum trustee sign-group)", EnvVars: envVar("group")},
			&cli.StringFlag{Name: "warrant", Required: true, Usage: "signed warrant `FILE`", EnvVars: envVar("warrant")},
			&cli.StringFlag{Name: "key", Required: true, Usage: "requester key `FILE` (the key the warrant names)", EnvVars: envVar("key")},
			&cli.StringFlag{Name: "capture", Required: true, Usage: "capture `FILE` (from keyquorum simulate)", EnvVars: envVar("capture")},
			&cli.StringFlag{Name: "out", Required: true, Usage: "`DIR` to write the sessions and summary.json into (new or empty)", EnvVars: envVar("out")},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "time allowed for each attempt at each trustee", EnvVars: envVar("timeout")},
			&cli.IntFlag{Name: "chunk", Value: trustee.DefaultChunkSessions, Usage: "most sessions per request: more are asked for in several signed requests, one after another, each logged by every trustee (and each counted against a judge's rate limit)", EnvVars: envVar("chunk")},
			keyPassphraseFileFlag(),
			jsonFlag(),
			&cli.StringFlag{Name: "state", Usage: "`FILE` of the checkpoints each trustee showed this requester (created on the first run, updated after each); a trustee whose log forked since is named and its answer not used", EnvVars: envVar("state")},
			&cli.StringFlag{Name: "transcript", Usage: "write `FILE` (new) with everything needed to re-check this decryption offline: the request, each answer's partial decryptions and proofs, checkpoints and inclusion proofs (keyquorum transcript verify)", EnvVars: envVar("transcript")},
		}, judgeFlags()...),
		Action: jsonOnError(schemaDecrypt, decryptAction),
	}
}

func decryptBadInput(format string, args ...any) error {
	return cli.Exit("decrypt: "+fmt.Sprintf(format, args...), exitBadInput)
}

// loadSignedGroup reads the group file a client (sender, requester or
// auditor) acts on and accepts it only signed by every trustee that holds
// a share of its newest epoch ([escrow.VerifyGroupFile]): an unsigned
// file, a missing signature or a bad one is refused, naming the trustee
// and the fix.
func loadSignedGroup(path string) (*escrow.GroupFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	g, _, err := escrow.VerifyGroupFile(b, true)
	switch {
	case err == nil:
		return g, nil
	case errors.Is(err, escrow.ErrGroupUnsigned):
		// A roster without log keys (group deal without descriptors)
		// can never be signed: say so rather than ask for signatures.
		if _, rerr := escrow.ReadGroupFile(b); rerr != nil {
			return nil, fmt.Errorf("group file %s: %w; no trustee can sign it, so clients cannot use it: give the group file the trustees signed, which keyquorum ceremony dkg --roster ROSTER --out FILE makes (a roster is not a group file); in dealer mode, deal to the trustees' descriptors (keyquorum group deal --descriptor) and have each sign the result", path, rerr)
		}
		return nil, fmt.Errorf("group file %s: %w (keyquorum trustee sign-group --dir DIR --group %s --out %s, one trustee after another), then use the file they signed", path, err, path, path)
	case errors.Is(err, escrow.ErrGroupSignature):
		return nil, fmt.Errorf("group file %s: %w", path, err)
	default:
		return nil, fmt.Errorf("%s: %w", path, err)
	}
}

// clientsForGroup makes a pinned client for every trustee of g.
func clientsForGroup(g *escrow.GroupFile, groupPath string) ([]*trustee.Client, error) {
	var cs []*trustee.Client
	for _, m := range g.Trustees {
		c, err := trustee.NewClient(m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", groupPath, err)
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// warrantBodyOf returns the body of a signed warrant note without checking the
// judges' signatures: the requester only needs to know what it covers;
// each trustee checks the signatures against its own policy.
func warrantBodyOf(signed []byte) (*escrow.Warrant, error) {
	_, err := note.Open(signed, nil) // no verifiers: every signature is "unverified"
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return nil, errors.New("not a signed warrant (a judge must sign it first with keyquorum warrant sign)")
	}
	return escrow.ParseWarrant([]byte(unverified.Note.Text))
}

// decryptSelection is what decrypt chose to send from a capture.
type decryptSelection struct {
	sessions []*sim.CaptureSession // requested, capture order
	envs     []*escrow.Envelope
	covered  int
	stripped int // covered, but no escrow field
	invalid  int // covered, but the field does not verify
	overCap  int // covered and valid, beyond the warrant's max-sessions
}

// selectWarrantedSessions picks the sessions of c that w covers and whose envelope
// verifies under the group's key for its epoch, in capture order, up to
// the warrant's cap. A trustee refuses a whole request for one bad
// envelope, so they are left out here and counted.
func selectWarrantedSessions(c *sim.Capture, w *escrow.Warrant, g *escrow.GroupFile) *decryptSelection {
	sel := &decryptSelection{}
	var cand []*sim.CaptureSession
	for i := range c.Sessions {
		s := &c.Sessions[i]
		ctx, err := escrow.ParseContext(s.Context)
		if err != nil || w.Covers(ctx) != nil {
			continue
		}
		sel.covered++
		if len(s.Envelope) == 0 {
			sel.stripped++
			continue
		}
		cand = append(cand, s)
	}
	envs := make([]*escrow.Envelope, len(cand))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				envs[i] = intactEnvelope(cand[i], g)
			}
		}()
	}
	for i := range cand {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, s := range cand {
		if envs[i] == nil {
			sel.invalid++
			continue
		}
		if len(sel.sessions) >= min(w.MaxSessions, escrow.MaxRequestSessions) {
			sel.overCap++
			continue
		}
		sel.sessions = append(sel.sessions, s)
		sel.envs = append(sel.envs, envs[i])
	}
	return sel
}

// intactEnvelope returns the session's envelope if it parses, carries the
// session's own context and verifies under the group key of its epoch.
func intactEnvelope(s *sim.CaptureSession, g *escrow.GroupFile) *escrow.Envelope {
	env, err := escrow.ParseEnvelope(s.Envelope)
	if err != nil || !bytes.Equal(env.ContextBytes(), s.Context) {
		return nil
	}
	eg, err := g.EscrowGroup(env.Context.Epoch)
	if err != nil || env.Verify(eg.EpochKey()) != nil {
		return nil
	}
	return env
}

// decryptSummary is OUT/summary.json.
type decryptSummary struct {
	Outcome           string                  `json:"outcome"` // "ok", "refused", "insufficient-quorum"
	Warrant           string                  `json:"warrant"`
	WarrantSHA256     string                  `json:"warrant_sha256"`
	Threshold         int                     `json:"threshold"`
	Trustees          []trustee.TrusteeResult `json:"trustees"`
	SessionsInCapture int                     `json:"sessions_in_capture"`
	SessionsCovered   int                     `json:"sessions_covered"`
	SkippedStripped   int                     `json:"skipped_no_escrow_field"`
	SkippedInvalid    int                     `json:"skipped_invalid_escrow_field"`
	SkippedOverCap    int                     `json:"skipped_over_max_sessions"`
	SessionsRequested int                     `json:"sessions_requested"`
	SessionsRecovered int                     `json:"sessions_recovered"`
	MessagesRead      int                     `json:"messages_read"`
	MessagesBad       int                     `json:"messages_failed_verification"`
	Refusals          []refusalSummary        `json:"refusals"`
	Unrecovered       []unrecoveredSummary    `json:"unrecovered,omitempty"`
}

type refusalSummary struct {
	Trustee string `json:"trustee"`
	Code    string `json:"code"`
	Reason  string `json:"reason"`
}

type unrecoveredSummary struct {
	Session string `json:"session"`
	Reason  string `json:"reason"`
}

func decryptAction(c *cli.Context) error {
	if c.Args().Present() {
		return decryptBadInput("unexpected argument %q (every input is a flag)", c.Args().First())
	}
	g, err := loadSignedGroup(c.String("group"))
	if err != nil {
		return decryptBadInput("%v", err)
	}
	warrantBytes, err := os.ReadFile(c.String("warrant"))
	if err != nil {
		return decryptBadInput("%v", err)
	}
	w, err := warrantBodyOf(warrantBytes)
	if err != nil {
		return decryptBadInput("%s: %v", c.String("warrant"), err)
	}
	keyBytes, err := readKeyFile(c, c.String("key"), "requester")
	if err != nil {
		return decryptBadInput("%v", err)
	}
	key, err := escrow.ParseRequesterKey(keyBytes)
	if err != nil {
		return decryptBadInput("%s: %v", c.String("key"), err)
	}
	if !key.Public.Equal(w.Requester) {
		return decryptBadInput("%s is not the requester key warrant %s names; use the key the warrant was drafted for", c.String("key"), w.ID)
	}
	capture, err := readCaptureForDecrypt(c.String("capture"))
	if err != nil {
		return decryptBadInput("%v", err)
	}
	if err := checkDecryptLocally(c, g, warrantBytes, w, capture, time.Now()); err != nil {
		return err
	}
	clients, err := clientsForGroup(g, c.String("group"))
	if err != nil {
		return decryptBadInput("%v", err)
	}
	if c.Duration("timeout") <= 0 {
		return decryptBadInput("--timeout must be positive")
	}
	if n := c.Int("chunk"); n < 1 || n > escrow.MaxRequestSessions {
		return decryptBadInput("--chunk %d: give 1 to %d sessions per request", n, escrow.MaxRequestSessions)
	}
	sel := selectWarrantedSessions(capture, w, g)
	if len(sel.sessions) == 0 {
		return noSessionsError(c.String("capture"), capture, w, sel)
	}
	out := c.String("out")
	if prev, err := movePreviousDecryption(out); err != nil {
		return decryptBadInput("%v", err)
	} else if prev != "" {
		fmt.Fprintf(c.App.ErrWriter, "keyquorum: %s held an earlier decryption; it is now %s\n", out, prev)
	}
	sessionsDir, err := prepareDecryptDir(out)
	if err != nil {
		return decryptBadInput("%v", err)
	}
	if sel.overCap > 0 {
		fmt.Fprintf(c.App.ErrWriter, "keyquorum: warrant %s allows %d sessions; %d more covered sessions are left out\n", w.ID, w.MaxSessions, sel.overCap)
	}

	envs := make([][]byte, len(sel.sessions))
	for i, s := range sel.sessions {
		envs[i] = s.Envelope
	}
	opts := trustee.DecryptOptions{Timeout: c.Duration("timeout"), ChunkSessions: c.Int("chunk")}
	statePath := c.String("state")
	if statePath != "" {
		if opts.Seen, _, err = readStateFile(statePath); err != nil {
			return decryptBadInput("%v", err)
		}
	}
	var transcript *trustee.Transcript
	if path := c.String("transcript"); path != "" {
		if _, err := os.Lstat(path); err == nil {
			return decryptBadInput("%s exists; choose a new file for the transcript", path)
		}
		transcript = &trustee.Transcript{}
		opts.Transcript = transcript
	}
	bar := newCombineProgress(c.App.ErrWriter, len(envs))
	if bar != nil {
		opts.Progress = bar.update
		requests := (len(envs) + opts.ChunkSessions - 1) / opts.ChunkSessions
		fmt.Fprintf(c.App.ErrWriter, "asking %d trustees about %d sessions in %d request(s)...\n", len(g.Trustees), len(envs), requests)
	}
	res, derr := trustee.Decrypt(c.Context, g, clients, warrantBytes, key, envs, opts)
	bar.finish()
	if res == nil {
		return decryptBadInput("%v", derr)
	}

	if statePath != "" {
		b, err := res.Seen.Marshal()
		if err == nil {
			err = replaceStateFile(statePath, b, 0o644)
		}
		if err != nil {
			return err
		}
	}
	if transcript != nil {
		b, err := transcript.Marshal()
		if err == nil {
			err = writeNewFile(c.String("transcript"), b, 0o644)
		}
		if err != nil {
			return err
		}
	}
	for _, t := range res.Trustees {
		if t.Status == trustee.StatusForked {
			fmt.Fprintf(c.App.ErrWriter, "keyquorum: %s's log FORKED: its checkpoint does not extend the one it showed this requester before; its answer was not used, and %s keeps the earlier checkpoint as evidence against %s\n", t.Name, statePath, t.Name)
		}
	}

	wh := sha256.Sum256(warrantBytes)
	sum := decryptSummary{
		Outcome: "ok", Warrant: w.ID, WarrantSHA256: hex.EncodeToString(wh[:]), Threshold: g.Threshold,
		Trustees: res.Trustees, SessionsInCapture: len(capture.Sessions), SessionsCovered: sel.covered,
		SkippedStripped: sel.stripped, SkippedInvalid: sel.invalid, SkippedOverCap: sel.overCap,
		SessionsRequested: len(sel.sessions), Refusals: []refusalSummary{},
	}
	for _, t := range res.Trustees {
		if t.Status == trustee.StatusRefused {
			sum.Refusals = append(sum.Refusals, refusalSummary{Trustee: t.Name, Code: t.Code, Reason: t.Reason})
		}
	}
	for i, s := range sel.sessions {
		sid := sel.envs[i].Context.SessionID
		K, ok := res.Keys[sid]
		if !ok {
			sum.Unrecovered = append(sum.Unrecovered, unrecoveredSummary{Session: sid.String(), Reason: res.Unrecovered[sid]})
			continue
		}
		read, bad, err := writeSessionFile(sessionsDir, sel.envs[i], K, s, capture.Users)
		if err != nil {
			return err
		}
		sum.SessionsRecovered++
		sum.MessagesRead += read
		sum.MessagesBad += bad
	}
	code := 0
	var qe *trustee.QuorumError
	switch {
	case derr == nil:
	case errors.Is(derr, trustee.ErrQuorumRefused):
		sum.Outcome, code = "refused", exitRefused
	case errors.As(derr, &qe):
		sum.Outcome, code = "insufficient-quorum", exitNoQuorum
	default:
		return derr
	}
	sj, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return err
	}
	if err := writeSecretFile(filepath.Join(out, "summary.json"), append(sj, '\n')); err != nil {
		return err
	}
	if c.Bool("json") {
		if err := writeJSON(c, decryptJSON{Schema: schemaDecrypt, Out: out, decryptSummary: sum}); err != nil {
			return err
		}
	} else {
		printDecryptSummary(c.App.Writer, &sum, out)
	}
	if code != 0 {
		return cli.Exit("decrypt: "+decryptFailure(derr), code)
	}
	return nil
}

func readCaptureForDecrypt(path string) (*sim.Capture, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := sim.ReadCapture(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// prepareDecryptDir creates out (mode 0700: it will hold plaintext) and
// out/sessions, refusing a directory that already holds anything, so that
// one decryption's results are never mixed with another's.
func prepareDecryptDir(out string) (string, error) {
	if err := os.MkdirAll(out, 0o700); err != nil {
		return "", err
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return "", err
	}
	if len(entries) > 0 {
		return "", fmt.Errorf("%s is not empty; choose a new directory for this decryption", out)
	}
	dir := filepath.Join(out, "sessions")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}

// writeSessionFile opens every message of s with the recovered key K, checks
// each author's signature with the capture's public keys, and writes
// dir/<session id>.txt: one "from: text" line per message, or a line saying
// why a message could not be read. It returns the messages read and
// failed.
func writeSessionFile(dir string, env *escrow.Envelope, K []byte, s *sim.CaptureSession, users map[string]*escrow.UserPublic) (read, bad int, err error) {
	keys, err := escrow.KeysFromRecovered(env, K)
	if err != nil {
		return 0, 0, err
	}
	var b strings.Builder
	for _, m := range s.Messages {
		pt, err := keys.Open(m, users)
		if err != nil {
			bad++
			fmt.Fprintf(&b, "[message %d not shown: %v]\n", m.Seq, err)
			continue
		}
		read++
		fmt.Fprintf(&b, "%s: %s\n", pt.From, strings.ReplaceAll(pt.Text, "\n", "\n  "))
	}
	path := filepath.Join(dir, env.Context.SessionID.String()+".txt")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, 0, err
	}
	if _, err := io.WriteString(f, b.String()); err != nil {
		f.Close()
		return 0, 0, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return 0, 0, fmt.Errorf("writing %s: %w", path, err)
	}
	return read, bad, nil
}

func printDecryptSummary(w io.Writer, s *decryptSummary, out string) {
	fmt.Fprintf(w, "warrant %s: %d sessions covered in the capture, %d requested, %d decrypted (threshold %d of %d trustees)\n",
		s.Warrant, s.SessionsCovered, s.SessionsRequested, s.SessionsRecovered, s.Threshold, len(s.Trustees))
	if n := s.SkippedStripped + s.SkippedInvalid; n > 0 {
		fmt.Fprintf(w, "left out: %d covered sessions without an escrow field, %d with one that does not verify\n", s.SkippedStripped, s.SkippedInvalid)
	}
	if s.SkippedOverCap > 0 {
		fmt.Fprintf(w, "left out: %d covered sessions beyond the warrant's max-sessions\n", s.SkippedOverCap)
	}
	printTrusteeOutcomes(w, s.Trustees)
	fmt.Fprintf(w, "wrote %d session files (%d messages read", s.SessionsRecovered, s.MessagesRead)
	if s.MessagesBad > 0 {
		fmt.Fprintf(w, ", %d failed their signature check", s.MessagesBad)
	}
	fmt.Fprintf(w, ") under %s and %s\n", filepath.Join(out, "sessions"), filepath.Join(out, "summary.json"))
}

// combineProgress draws on a terminal; it is nil (and every method a no-op)
// otherwise, or for small requests.
type combineProgress struct {
	w     io.Writer
	total int
	last  time.Time
	drawn bool
}

func newCombineProgress(w io.Writer, total int) *combineProgress {
	if total <= progressMinSessions || !writerIsTerminal(w) {
		return nil
	}
	return &combineProgress{w: w, total: total}
}

func writerIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (p *combineProgress) update(done, total int) {
	if p == nil || (done < total && time.Since(p.last) < 100*time.Millisecond) {
		return
	}
	p.last = time.Now()
	const width = 40
	filled := width * done / max(total, 1)
	fmt.Fprintf(p.w, "\rdecrypting [%s%s] %d/%d sessions", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, total)
	p.drawn = true
}

func (p *combineProgress) finish() {
	if p != nil && p.drawn {
		fmt.Fprintln(p.w)
	}
}

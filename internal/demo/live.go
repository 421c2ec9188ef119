package demo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/fedrun"
	"github.com/keyquorum/keyquorum/internal/sim"
	"github.com/keyquorum/keyquorum/shares"
	"github.com/keyquorum/keyquorum/trustee"
	"go.dedis.ch/kyber/v3"
	"golang.org/x/mod/sumdb/note"
)

// Live is a demo run kept running so that a reader can act on it (the
// page of `keyquorum demo --web`): the same world [Run] measures, with its
// trustee processes still up. Every method runs real code on demand: the
// attacker's code over stolen stored shares, warranted requests to the
// trustee processes, reads of their audit logs, forgery attempts. Methods
// are serialised; a Live is safe for concurrent use.
type Live struct {
	mu       sync.Mutex
	w        *world
	report   *Report
	plain    []*sim.Captured // the honest sessions without their escrow field (no-escrow)
	rogue    note.Signer     // a judge no trustee trusts
	warrants int             // warrants issued from the page
	clipper  int             // Clipper races run
}

// Open runs the demo as [Run] does and keeps its world running. The
// caller must Close it. Killing and restarting trustees needs trustee
// processes that made their keys by DKG (the default of `keyquorum demo`).
func Open(cfg Config) (*Live, error) {
	var w *world
	rep, err := run(cfg, func(kept *world) { w = kept })
	if err != nil {
		return nil, err
	}
	l := &Live{w: w, report: rep, plain: withoutEscrow(w.honest)}
	skey, _, err := escrow.NewJudgeKey("judge-unknown", sim.NewRand(cfg.Seed, "web/unknown judge"))
	if err == nil {
		l.rogue, err = note.NewSigner(skey)
	}
	if err != nil {
		w.close()
		return nil, err
	}
	return l, nil
}

// Close stops every trustee process.
func (l *Live) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.close()
}

// Report is what the run measured: the same report [Run] returns.
func (l *Live) Report() *Report { return l.report }

// Timeline is the simulated month: users, epochs and honest sessions, with
// the demo's own warrant as the starting point of an edit.
type Timeline struct {
	Start    time.Time        `json:"start"` // the first epoch's start
	End      time.Time        `json:"end"`   // the last epoch's end
	Users    []string         `json:"users"`
	Epochs   []TimelineEpoch  `json:"epochs"`
	Sessions []SessionSummary `json:"sessions"`
	Warrant  WarrantRequest   `json:"warrant"`
}

// TimelineEpoch is one key epoch; Destroyed says the trustees destroyed
// their shares of it under retention (as the run left them).
type TimelineEpoch struct {
	Epoch     uint32    `json:"epoch"`
	From      time.Time `json:"from"`
	Until     time.Time `json:"until"`
	Destroyed bool      `json:"destroyed"`
}

// SessionSummary is one honest session as the timeline shows it: no
// content, only what its escrow context says.
type SessionSummary struct {
	Index     int       `json:"index"`
	ID        string    `json:"id"`
	Sender    string    `json:"sender"`
	Recipient string    `json:"recipient"`
	Start     time.Time `json:"start"`
	Epoch     uint32    `json:"epoch"`
}

// Timeline returns the simulated month.
func (l *Live) Timeline() *Timeline {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.w
	tl := &Timeline{Warrant: WarrantRequest{Target: w.w.Targets[0], From: w.w.WindowStart, To: w.w.WindowEnd, MaxSessions: w.w.MaxSessions, Judge: "trusted"}}
	for _, u := range w.traffic.Users {
		tl.Users = append(tl.Users, u.Name)
	}
	for _, e := range w.group.Epochs {
		tl.Epochs = append(tl.Epochs, TimelineEpoch{Epoch: e.Epoch, From: e.ValidFrom, Until: e.ValidUntil, Destroyed: !slices.Contains(l.report.RetainedEpochs, e.Epoch)})
	}
	for i, c := range w.honest {
		tl.Sessions = append(tl.Sessions, SessionSummary{Index: i, ID: c.Context.SessionID.String(), Sender: c.Context.Sender, Recipient: c.Context.Recipient, Start: c.Context.Start, Epoch: c.Context.Epoch})
	}
	tl.Start, tl.End = tl.Epochs[0].From, tl.Epochs[len(tl.Epochs)-1].Until
	return tl
}

// Exposure is what an attacker's code opened for one design.
type Exposure struct {
	Design  string `json:"design"`
	Exposed int    `json:"exposed"`
	Opened  []int  `json:"opened"` // session indices, as in [Timeline]
}

// Compromise hands an attacker the stored secrets of the given key holders
// (1-based trustee indices; in the master-key design, holder 1 is the
// agency holding the master key) and counts, per design, the sessions its
// code opens. Compromising holders 1..k gives the report's
// exposed_when_compromised[k].
func (l *Live) Compromise(holders []int) ([]Exposure, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.w
	for _, h := range holders {
		if h < 1 || h > w.cfg.Trustees {
			return nil, fmt.Errorf("demo: there is no trustee %d; trustees are 1 to %d", h, w.cfg.Trustees)
		}
	}
	take := func(i int) bool { return slices.Contains(holders, i) }
	stolen := interpolate(heldShares(w, take))
	master := map[uint32]kyber.Scalar{}
	if take(1) {
		master = interpolate(heldShares(w, func(int) bool { return true }))
	}
	out := []Exposure{
		exposure("no-escrow", openedWithSecrets(w, l.plain, stolen)),
		exposure("master-key", openedWithSecrets(w, w.honest, master)),
		exposure("split-master-key", openedWithSecrets(w, w.honest, stolen)),
	}
	for _, name := range []string{"threshold", "threshold-epochs"} {
		held, err := w.feds[name].storedShares(take)
		if err != nil {
			return nil, err
		}
		out = append(out, exposure(name, openedWithSecrets(w, w.honest, interpolate(held))))
	}
	return out, nil
}

func exposure(design string, opened []int) Exposure {
	if opened == nil {
		opened = []int{}
	}
	return Exposure{Design: design, Exposed: len(opened), Opened: opened}
}

// WarrantRequest is a warrant as the page edits it.
type WarrantRequest struct {
	Target      string    `json:"target"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	MaxSessions int       `json:"max_sessions"`
	// Judge is "trusted" (the judge every trustee trusts signs) or
	// "unknown" (a judge no trustee trusts signs).
	Judge string `json:"judge"`
}

// WarrantResult is what happened to one warranted request.
type WarrantResult struct {
	Warrant   string             `json:"warrant"` // the signed warrant note
	Covered   []int              `json:"covered"` // sessions the warrant covers, which the investigator sent
	Trustees  []TrusteeDecision  `json:"trustees"`
	Granted   int                `json:"granted"`
	Threshold int                `json:"threshold"`
	Recovered []RecoveredSession `json:"recovered"`
	// Outcome is one sentence: what the investigator got, or why not.
	Outcome string `json:"outcome"`
}

// TrusteeDecision is one trustee's answer to a request.
type TrusteeDecision struct {
	Index    int    `json:"index"`
	Name     string `json:"name"`
	Decision string `json:"decision"` // "granted", "refused" or "unreachable"
	Code     string `json:"code,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// RecoveredSession is a session the investigator read, with its messages.
type RecoveredSession struct {
	Index    int      `json:"index"`
	Messages []string `json:"messages"`
}

// ErrBadWarrant is returned by [Live.Warrant] for a warrant the judge
// would not sign as given (an unknown target, an empty window).
var ErrBadWarrant = errors.New("demo: bad warrant")

// Warrant has the judge sign the warrant, sends it with the envelopes of
// every session it covers to the trustee processes, and combines what they
// answer. Trustees that are not running count as unreachable.
func (l *Live) Warrant(req WarrantRequest) (*WarrantResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.w
	if !slices.ContainsFunc(w.traffic.Users, func(u *escrow.UserKey) bool { return u.Name == req.Target }) {
		return nil, fmt.Errorf("%w: %q is not a user of the simulation", ErrBadWarrant, req.Target)
	}
	if !req.From.Before(req.To) {
		return nil, fmt.Errorf("%w: the window must end after it starts", ErrBadWarrant)
	}
	signer := w.judgeSign
	switch req.Judge {
	case "", "trusted":
	case "unknown":
		signer = l.rogue
	default:
		return nil, fmt.Errorf("%w: judge must be trusted or unknown, got %q", ErrBadWarrant, req.Judge)
	}
	l.warrants++
	wr := *w.w
	wr.ID = fmt.Sprintf("W-WEB-%04d", l.warrants)
	wr.Targets = []string{req.Target}
	wr.WindowStart, wr.WindowEnd = req.From.UTC().Truncate(time.Second), req.To.UTC().Truncate(time.Second)
	wr.MaxSessions = req.MaxSessions
	body, err := wr.MarshalText()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadWarrant, err)
	}
	signed, err := escrow.SignWarrant(body, signer)
	if err != nil {
		return nil, err
	}
	res := &WarrantResult{Warrant: string(signed), Covered: []int{}, Recovered: []RecoveredSession{}, Threshold: w.cfg.Threshold}
	var covered []*sim.Captured
	for i, c := range w.honest {
		if wr.Covers(c.Context) == nil {
			covered = append(covered, c)
			res.Covered = append(res.Covered, i)
		}
	}
	if len(covered) == 0 {
		res.Outcome = "The warrant covers no session, so the investigator has nothing to send."
		return res, nil
	}
	d, err := w.feds["threshold"].request(w, signed, w.requester, envelopesOf(covered), nil)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, a := range d.answers {
		td := TrusteeDecision{Index: a.index, Name: a.name, Decision: "granted"}
		var r *trustee.RefusalError
		switch {
		case a.err == nil:
			res.Granted++
		case errors.As(a.err, &r):
			td.Decision, td.Code, td.Reason = "refused", r.Code, r.Err.Error()
			missing = append(missing, fmt.Sprintf("%s refused (%s)", a.name, r.Code))
		default:
			td.Decision, td.Reason = "unreachable", a.err.Error()
			missing = append(missing, a.name+" is not answering")
		}
		res.Trustees = append(res.Trustees, td)
	}
	for k, c := range covered {
		if texts, ok := d.read(w, c); ok {
			res.Recovered = append(res.Recovered, RecoveredSession{Index: res.Covered[k], Messages: texts})
		}
	}
	switch {
	case len(res.Recovered) == len(covered):
		res.Outcome = fmt.Sprintf("%d of %d trustees granted; the investigator combined their answers and read all %d covered sessions.", res.Granted, len(d.answers), len(covered))
	case res.Granted < w.cfg.Threshold:
		res.Outcome = fmt.Sprintf("Decryption failed: %d trustees granted, %d are needed; %s.", res.Granted, w.cfg.Threshold, strings.Join(missing, ", "))
	default:
		res.Outcome = fmt.Sprintf("%d trustees granted, but only %d of %d covered sessions could be read.", res.Granted, len(res.Recovered), len(covered))
	}
	return res, nil
}

// TrusteeStatus is one trustee process.
type TrusteeStatus struct {
	Index   int    `json:"index"`
	Name    string `json:"name"`
	Addr    string `json:"addr"`
	PID     int    `json:"pid"`
	Running bool   `json:"running"`
}

// ErrNoProcesses is returned when the trustees are not processes this
// Live can stop and start.
var ErrNoProcesses = errors.New("demo: the trustees are not processes made by a DKG; start the demo with trustee processes (the default)")

// Trustees lists the trustee processes.
func (l *Live) Trustees() ([]TrusteeStatus, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w.procs == nil {
		return nil, ErrNoProcesses
	}
	var out []TrusteeStatus
	for _, t := range l.w.procs.Members() {
		out = append(out, TrusteeStatus{Index: t.Index, Name: t.Name, Addr: t.Addr, PID: t.PID(), Running: t.Running()})
	}
	return out, nil
}

func (l *Live) process(index int) (*fedrun.Trustee, error) {
	if l.w.procs == nil {
		return nil, ErrNoProcesses
	}
	for _, t := range l.w.procs.Members() {
		if t.Index == index {
			return t, nil
		}
	}
	return nil, fmt.Errorf("demo: there is no trustee %d", index)
}

// Kill kills trustee index's process (SIGKILL).
func (l *Live) Kill(index int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, err := l.process(index)
	if err != nil {
		return err
	}
	return t.Kill()
}

// Restart starts trustee index's process again, if it is not running.
func (l *Live) Restart(ctx context.Context, index int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, err := l.process(index)
	if err != nil {
		return err
	}
	if t.Running() {
		return nil
	}
	return t.Start(ctx)
}

// EpochStatus is one epoch as the trustees' disks hold it now.
type EpochStatus struct {
	Epoch    uint32    `json:"epoch"`
	From     time.Time `json:"from"`
	Until    time.Time `json:"until"`
	Sessions int       `json:"sessions"`
	HeldBy   []string  `json:"held_by"` // trustees whose store still has a share
	// OpenedByAll is how many of the epoch's sessions an attacker holding
	// every trustee's stored shares opens: all of them while t trustees
	// keep a share, none once the epoch is destroyed.
	OpenedByAll int `json:"opened_by_all"`
}

// Epochs reads every trustee's store from disk now (as an attacker who
// copied every disk and learned every passphrase would), then runs the
// attacker's code over each epoch's sessions with everything it found.
func (l *Live) Epochs() ([]EpochStatus, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.w
	held := map[uint32][]shares.Share{}
	holders := map[uint32][]string{}
	for _, m := range w.feds["threshold-epochs"].members {
		ss, err := m.storedShares()
		if err != nil {
			return nil, fmt.Errorf("demo: reading %s's store: %w", m.name(), err)
		}
		for _, s := range ss {
			held[s.Epoch] = append(held[s.Epoch], shares.Share{Index: s.Index, Value: s.Share})
			holders[s.Epoch] = append(holders[s.Epoch], m.name())
		}
	}
	secrets := interpolate(held)
	var out []EpochStatus
	for _, e := range w.group.Epochs {
		var in []*sim.Captured
		for _, c := range w.honest {
			if c.Context.Epoch == e.Epoch {
				in = append(in, c)
			}
		}
		hb := holders[e.Epoch]
		if hb == nil {
			hb = []string{}
		}
		out = append(out, EpochStatus{Epoch: e.Epoch, From: e.ValidFrom, Until: e.ValidUntil, Sessions: len(in), HeldBy: hb, OpenedByAll: openWithSecrets(w, in, secrets)})
	}
	return out, nil
}

// AuditLog is one trustee's audit log as read over its API, unverified:
// the page verifies it.
type AuditLog struct {
	Index   int      `json:"index"`
	Trustee string   `json:"trustee"`
	LogKey  string   `json:"log_key"` // the note verifier key from the group file
	Head    string   `json:"head"`    // the signed tree head note
	Size    int64    `json:"size"`
	Records [][]byte `json:"records"` // every record, in order (base64 in JSON)
	Error   string   `json:"error,omitempty"`
}

// AuditLogs reads every trustee's signed head and records over its API.
// A trustee that does not answer is listed with the error.
func (l *Live) AuditLogs(ctx context.Context) []AuditLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []AuditLog
	for _, m := range l.members() {
		al := AuditLog{Index: m.t.Index, Trustee: m.t.Name, LogKey: m.t.Member.LogKey, Records: [][]byte{}}
		if err := readLog(ctx, m, &al); err != nil {
			al.Error = err.Error()
		}
		out = append(out, al)
	}
	return out
}

func (l *Live) members() []procMember {
	var out []procMember
	for _, m := range l.w.feds["threshold"].members {
		if p, ok := m.(procMember); ok {
			out = append(out, p)
		}
	}
	return out
}

func readLog(ctx context.Context, m procMember, al *AuditLog) error {
	head, err := m.t.Client.Head(ctx)
	if err != nil {
		return err
	}
	al.Head = string(head)
	tree, err := trustee.VerifyHead(head, m.key)
	if err != nil {
		return err
	}
	al.Size = tree.N
	for start := int64(0); start < tree.N; start += trustee.MaxRecordsPerRequest {
		recs, err := m.t.Client.Records(ctx, start, min(tree.N, start+trustee.MaxRecordsPerRequest))
		if err != nil {
			return err
		}
		al.Records = append(al.Records, recs...)
	}
	return nil
}

// Inclusion is a trustee's proof that one record is in the tree its
// signed head describes, as the trustee gave it.
type Inclusion struct {
	Trustee string   `json:"trustee"`
	LogKey  string   `json:"log_key"`
	Head    string   `json:"head"`
	Size    int64    `json:"size"`
	Index   int64    `json:"index"`
	Record  []byte   `json:"record"`
	Proof   [][]byte `json:"proof"`
	// ServerCheck is this program's own verdict ([trustee.VerifyHead] and
	// [trustee.VerifyInclusion]): "ok" or the error.
	ServerCheck string `json:"server_check"`
}

// Inclusion fetches record index of trustee's log, its signed head and
// the inclusion proof, and checks them itself too.
func (l *Live) Inclusion(ctx context.Context, index int, record int64) (*Inclusion, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.members() {
		if m.t.Index != index {
			continue
		}
		head, err := m.t.Client.Head(ctx)
		if err != nil {
			return nil, err
		}
		tree, err := trustee.VerifyHead(head, m.key)
		if err != nil {
			return nil, err
		}
		if record < 0 || record >= tree.N {
			return nil, fmt.Errorf("demo: %s's log has records 0 to %d", m.t.Name, tree.N-1)
		}
		recs, err := m.t.Client.Records(ctx, record, record+1)
		if err != nil {
			return nil, err
		}
		proof, err := m.t.Client.Inclusion(ctx, record, tree.N)
		if err != nil {
			return nil, err
		}
		inc := &Inclusion{Trustee: m.t.Name, LogKey: m.t.Member.LogKey, Head: string(head), Size: tree.N, Index: record, Record: recs[0], Proof: [][]byte{}, ServerCheck: "ok"}
		for _, h := range proof {
			inc.Proof = append(inc.Proof, h[:])
		}
		if err := trustee.VerifyInclusion(tree, record, recs[0], proof); err != nil {
			inc.ServerCheck = err.Error()
		}
		return inc, nil
	}
	return nil, fmt.Errorf("demo: there is no trustee %d", index)
}

// ClipperRace is one run of the two forgeries side by side.
type ClipperRace struct {
	Run int `json:"run"`
	// LEAFTries is how many random 128-bit LEAFs the rogue sender tried
	// before a Clipper receiver accepted one (its 16-bit checksum
	// matched).
	LEAFTries int `json:"leaf_tries"`
	// Envelopes counts random keyquorum escrow fields tried against an
	// honest recipient's check, and how many it accepted.
	Envelopes Forgery `json:"envelopes"`
}

// Clipper runs the race again: the first run is the report's; each later
// one forges a fresh LEAF from new randomness.
func (l *Live) Clipper() (*ClipperRace, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.w
	race := &ClipperRace{Run: l.clipper + 1}
	var err error
	if l.clipper == 0 {
		race.LEAFTries, err = forgeClipper(w)
	} else {
		race.LEAFTries, err = forgeClipperFrom(sim.NewRand(w.cfg.Seed, fmt.Sprintf("clipper/run %d", l.clipper+1)))
	}
	if err != nil {
		return nil, err
	}
	if race.Envelopes, err = forgeEnvelopes(w); err != nil {
		return nil, err
	}
	l.clipper++
	return race, nil
}

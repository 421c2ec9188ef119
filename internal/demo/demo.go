// Package demo runs keyquorum's whole story in one process and measures it:
// a trustee federation, users chatting with escrowed sessions, a rogue
// client, a judge, a warrant and an investigator, then the trade-off table
// in which every cell is counted by running attacker or requester code over
// the simulated state. Nothing in the table is typed in by hand.
//
// # The designs compared
//
// All five designs carry the same simulated sessions; they differ in who
// holds what.
//
//   - no-escrow: plain end-to-end encryption; sessions carry no escrow field.
//   - master-key: one agency holds every epoch's group secret x_e.
//   - split-master-key: the trustees hold Shamir shares of the master key;
//     for each warrant a combiner collects t shares, rebuilds the key and
//     decrypts. Afterwards the combiner holds the master key.
//   - threshold: keyquorum. Trustees answer per envelope with partial
//     decryptions re-encrypted to the requester; nobody rebuilds x_e.
//   - threshold-epochs: keyquorum with retention: trustees destroy shares
//     of epochs older than their retention window.
//
// # Where the keys come from
//
// By default every epoch's key is made by a dealerless DKG (Pedersen's,
// see [ceremony.Ceremony]): with trustee processes, a first ceremony and
// then one rotation per further epoch, run among the processes over TLS
// by [fedrun.Federation.RunDKG] and [fedrun.Federation.Rotate], so that no
// machine ever holds a key; in-process, the same ceremony with all its
// participants inside the demo's process ([fedrun.LocalDKG]), which
// therefore sees every share. Config.KeyGeneration "dealer" deals the keys
// instead, for comparison: the dealer sees them whole.
//
// With trustee processes and a DKG the two keyquorum rows are measured on
// the same trustee processes and keys: first as they are (threshold), then
// after every trustee is restarted with a policy keeping RetentionEpochs
// epochs (threshold-epochs), so the shares of older epochs are destroyed,
// and the destruction logged, by the trustees themselves. The master-key
// and split-master-key rows describe designs in which some party holds
// x_e; with a DKG nobody does, so the demo measures them with x_e rebuilt
// from every trustee's stored shares: what n compromised trustees would
// hand an attacker (the threshold row's last compromise column does the
// same).
//
// # The columns
//
//   - parties_to_decrypt: how many key holders must take part (null: nobody
//     can).
//   - exposed_by_one_warrant: after serving one warrant, how many sessions
//     can the parties who served it (requester, combiner or agency) open
//     with what they then hold.
//   - exposed_when_compromised[k]: hand an attacker the stored secrets of k
//     key holders and count the sessions its code opens.
//   - recoverable_with_down[f]: with f key holders offline, how many of the
//     warrant's sessions the warranted decryption still recovers.
//   - forged_field_detected: whether honest recipients rejected every
//     session whose escrow field the rogue client stripped or forged.
//   - uses_logged: whether every warranted decryption appears in a
//     tamper-evident audit log (checked by reading the logs).
package demo

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/fedrun"
	"github.com/keyquorum/keyquorum/internal/sim"
	"github.com/keyquorum/keyquorum/shares"
	"github.com/keyquorum/keyquorum/trustee"
	"go.dedis.ch/kyber/v3"
	"golang.org/x/mod/sumdb/note"
)

// Config says what to run.
type Config struct {
	Trustees        int
	Threshold       int
	Users           int
	Days            int
	Seed            uint64
	EpochDays       int // length of an epoch
	RetentionEpochs int // for threshold-epochs
	ForgeryTries    int // random escrow fields tried against a recipient
	Start           time.Time
	// KeyGeneration is "dkg" (dealerless ceremonies among the trustees;
	// needs a threshold of at least 2) or "dealer".
	KeyGeneration string

	// Processes runs every trustee as its own process of Binary (the
	// keyquorum executable) under WorkDir, over TLS on loopback, on the
	// real clock: the simulated days then end today. Otherwise trustees
	// are in-process nodes on a simulated clock.
	Processes bool
	Binary    string
	WorkDir   string

	// Progress, if set, is told what the run is doing as it goes: each
	// step as it starts and each section of the report as it completes.
	// Run calls it on its own goroutine, one call at a time.
	Progress func(Progress)
}

// Section names a part of the [Report], in the order a run completes them.
type Section int

// The sections of a report, and the fields each completes.
const (
	SectionKeys      Section = iota + 1 // Mode, KeyGeneration, KeyGenerationNote, Ceremonies, Epochs, Trustees, Threshold
	SectionTraffic                      // Users, Days, Sessions, RogueSessions, RejectedSessions
	SectionWarrant                      // Target, WindowStart, WindowEnd, InScope, Recovered, MessagesRead, Sample
	SectionOverreach                    // Attacks, OutOfScopeTried, OutOfScopeRecov
	SectionForgery                      // ForgedEnvelopes, LEAFForgeryTries
	SectionTradeOff                     // Designs, RetainedEpochs
	SectionAudit                        // AuditRecords, Audit
)

// Progress is one report of a run's progress to Config.Progress: a step
// starting (Step set) or a section completed (Done set).
type Progress struct {
	// Step says what the run starts doing now, as a short phrase
	// ("starting 5 trustee processes").
	Step string
	// Done is the section just completed: its fields in Report are final.
	Done Section
	// Report is the report so far; the caller must not change it.
	Report *Report
}

// DefaultConfig is the demo's default: 5 trustees, t = 3, 8 users, 30 days.
func DefaultConfig() Config {
	return Config{
		Trustees: 5, Threshold: 3, Users: 8, Days: 30, Seed: 1,
		EpochDays: 7, RetentionEpochs: 2, ForgeryTries: 1 << 16,
		Start:         time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC),
		KeyGeneration: "dkg",
	}
}

// Validate checks the configuration and says how to fix it.
func (c *Config) Validate() error {
	switch {
	case c.Trustees < 1 || c.Trustees > 64:
		return fmt.Errorf("demo: trustees must be 1 to 64, got %d", c.Trustees)
	case c.Threshold < 1 || c.Threshold > c.Trustees:
		return fmt.Errorf("demo: threshold must be between 1 and the number of trustees (%d), got %d", c.Trustees, c.Threshold)
	case c.KeyGeneration != "dkg" && c.KeyGeneration != "dealer":
		return fmt.Errorf("demo: key generation must be dkg or dealer, got %q", c.KeyGeneration)
	case c.KeyGeneration == "dkg" && c.Threshold < 2:
		return fmt.Errorf("demo: a dealerless key generation needs a threshold of at least 2, got %d; with t = 1 the keys must be dealt (keyquorum demo --dealer)", c.Threshold)
	case c.Users < 3 || c.Users > 200:
		return fmt.Errorf("demo: users must be 3 to 200, got %d", c.Users)
	case c.Days < 7 || c.Days > 366:
		return fmt.Errorf("demo: days must be 7 to 366 (the warrant covers one week), got %d", c.Days)
	case c.EpochDays < 1:
		return fmt.Errorf("demo: epoch length must be at least one day")
	case c.RetentionEpochs < 1:
		return fmt.Errorf("demo: retention must keep at least one epoch")
	case c.ForgeryTries < 1:
		return fmt.Errorf("demo: forgery tries must be at least 1")
	case c.Processes && (c.Binary == "" || c.WorkDir == ""):
		return fmt.Errorf("demo: running trustees as processes needs the keyquorum binary and a work directory")
	}
	return nil
}

// Report is everything the demo measured. Its JSON form is the demo's
// --json output.
type Report struct {
	Mode          string `json:"mode"`
	KeyGeneration string `json:"key_generation"` // "dkg" or "dealer"
	// KeyGenerationNote says who could have seen the keys.
	KeyGenerationNote string `json:"key_generation_note"`
	// Ceremonies are the key ceremonies that made the epochs, in order
	// (none with a dealer).
	Ceremonies       []Ceremony     `json:"ceremonies"`
	Trustees         int            `json:"trustees"`
	Threshold        int            `json:"threshold"`
	Users            int            `json:"users"`
	Days             int            `json:"days"`
	Epochs           int            `json:"epochs"`
	RetainedEpochs   []uint32       `json:"retained_epochs"`
	Sessions         int            `json:"sessions"`
	RogueSessions    int            `json:"rogue_sessions"`
	RejectedSessions int            `json:"rejected_sessions"`
	Target           string         `json:"target"`
	WindowStart      time.Time      `json:"window_start"`
	WindowEnd        time.Time      `json:"window_end"`
	InScope          int            `json:"in_scope"`
	Recovered        int            `json:"recovered"`
	MessagesRead     int            `json:"messages_read"`
	OutOfScopeTried  int            `json:"out_of_scope_tried"`
	OutOfScopeRecov  int            `json:"out_of_scope_recovered"`
	ForgedEnvelopes  Forgery        `json:"forged_envelopes"`
	LEAFForgeryTries int            `json:"leaf_forgery_tries"`
	Attacks          []Attack       `json:"attacks"`
	AuditRecords     map[string]int `json:"audit_records"`
	Audit            []AuditSummary `json:"audit"`
	Designs          []Design       `json:"designs"`
	Sample           []string       `json:"sample_messages"`
}

// Ceremony is one key ceremony that made an epoch's key.
type Ceremony struct {
	Epoch   uint32        `json:"epoch"`
	Kind    string        `json:"kind"` // "dkg" (the first) or "rotation"
	ID      string        `json:"id,omitempty"`
	Took    time.Duration `json:"took_ns"`
	Holders int           `json:"holders"` // trustees holding a share
}

// AuditSummary is one trustee's audit log after the demo, as an auditor
// read it: every record verified against the signed head.
type AuditSummary struct {
	Trustee  string `json:"trustee"`
	Records  int    `json:"records"`
	Verified bool   `json:"verified"`
	// Granted and Refused count the decision records; Other the rest
	// (such as shares erased past retention), of the kinds OtherKinds.
	Granted    int      `json:"granted"`
	Refused    int      `json:"refused"`
	Other      int      `json:"other"`
	OtherKinds []string `json:"other_kinds"`
	// Checkpoint is the trustee's signed checkpoint the records were
	// verified against. Cosignatures are the other trustees' witnesses'
	// latest cosigned checkpoints of this log (empty with in-process
	// trustees, which run without witnesses).
	Checkpoint   string        `json:"checkpoint"`
	Cosignatures []Cosignature `json:"cosignatures"`
}

// Cosignature is one witness's latest cosigned checkpoint of a trustee's
// log, as the auditor found it: the log's signature and the witness's
// C2SP tlog-cosignature verified with their keys from the group file, and
// the trustee's current checkpoint proved to extend it.
type Cosignature struct {
	Witness  string `json:"witness"`
	Size     int64  `json:"size"`
	Verified bool   `json:"verified"`
}

// Forgery counts random escrow fields tried against an honest recipient.
type Forgery struct {
	Attempted int `json:"attempted"`
	Accepted  int `json:"accepted"`
}

// Attack is one attempt to get more than a warrant allows, and its outcome.
type Attack struct {
	Name      string `json:"name"`
	Succeeded bool   `json:"succeeded"`
	Outcome   string `json:"outcome"`
}

// Design is one row of the trade-off table.
type Design struct {
	Name                   string `json:"name"`
	PartiesToDecrypt       *int   `json:"parties_to_decrypt"`
	ExposedByOneWarrant    int    `json:"exposed_by_one_warrant"`
	ExposedWhenCompromised []int  `json:"exposed_when_compromised"`
	RecoverableWithDown    []int  `json:"recoverable_with_down"`
	ForgedFieldDetected    bool   `json:"forged_field_detected"`
	UsesLogged             bool   `json:"uses_logged"`
}

// world is the simulated state every measurement runs over.
type world struct {
	cfg          Config
	now          time.Time
	group        *escrow.GroupFile
	held         []escrow.DealtShare // every trustee's share of every epoch, as the measurements see them
	ceremonies   []Ceremony
	procs        *fedrun.Federation // the trustee processes that made the keys by DKG; nil otherwise
	requester    *escrow.RequesterKey
	judge        note.Verifier
	judgeKey     string // the judge's verifier key
	judgeSign    note.Signer
	currentEpoch uint32
	warrant      []byte
	w            *escrow.Warrant
	traffic      *sim.Traffic
	pubs         map[string]*escrow.UserPublic
	honest       []*sim.Captured
	inScope      []*sim.Captured
	rogue        []*sim.Captured
	feds         map[string]*federation                // "threshold", "threshold-epochs"
	groups       map[uint32]*escrow.Group              // public view of each epoch
	envs         map[escrow.SessionID]*escrow.Envelope // parsed once
	ctx          context.Context                       // cancelled: stop and clean up
	rep          *Report                               // filled section by section
	opened       map[openedKey]bool                    // openWithSecrets' answers
}

// step tells Config.Progress that a step starts.
func (w *world) step(format string, a ...any) {
	if w.cfg.Progress != nil {
		w.cfg.Progress(Progress{Step: fmt.Sprintf(format, a...), Report: w.rep})
	}
}

// done tells Config.Progress that a section of the report is complete.
func (w *world) done(s Section) {
	if w.cfg.Progress != nil {
		w.cfg.Progress(Progress{Done: s, Report: w.rep})
	}
}

// Run runs the demo.
func Run(cfg Config) (*Report, error) {
	return RunContext(context.Background(), cfg)
}

// RunContext runs the demo until it is done or ctx is cancelled. Either
// way, every trustee process it started is stopped before it returns; the
// caller removes Config.WorkDir.
func RunContext(ctx context.Context, cfg Config) (*Report, error) {
	return runKeep(ctx, cfg, nil)
}

// runKeep runs the demo. If keep is set and the run succeeds, the world
// is handed to keep, still running, instead of being closed ([Open]).
func runKeep(ctx context.Context, cfg Config, keep func(*world)) (_ *Report, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mode := "in-process"
	if cfg.Processes {
		mode = "processes"
	}
	rep := &Report{
		Mode: mode, KeyGeneration: cfg.KeyGeneration, KeyGenerationNote: keyGenerationNote(cfg),
		Trustees: cfg.Trustees, Threshold: cfg.Threshold, Users: cfg.Users, Days: cfg.Days,
		AuditRecords: map[string]int{},
	}
	w := &world{cfg: cfg, ctx: ctx, rep: rep, feds: map[string]*federation{}, groups: map[uint32]*escrow.Group{}, envs: map[escrow.SessionID]*escrow.Envelope{}}
	defer func() {
		if keep != nil && err == nil {
			keep(w)
			return
		}
		w.close()
	}()
	rep, err = w.run()
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("demo: interrupted: %w", context.Cause(ctx))
	}
	return rep, err
}

// run runs the demo's steps in order, telling Config.Progress as it goes.
func (w *world) run() (*Report, error) {
	rep := w.rep
	if err := w.build(); err != nil {
		return nil, err
	}
	// The rogue client's sessions and the honest recipients' checks are
	// in the traffic build made.
	for _, c := range w.rogue {
		if !c.Accepted {
			rep.RejectedSessions++
		}
	}
	rep.Sessions, rep.RogueSessions = len(w.honest), len(w.rogue)
	w.done(SectionTraffic)
	if err := w.startFederations(); err != nil {
		return nil, err
	}
	rep.Target, rep.WindowStart, rep.WindowEnd = w.w.Targets[0], w.w.WindowStart, w.w.WindowEnd
	rep.InScope = len(w.inScope)
	// The warranted decryption, through the keyquorum federation.
	w.step("the warranted decryption of %d sessions", len(w.inScope))
	fed := w.feds["threshold"]
	got, err := fed.decrypt(w, envelopesOf(w.inScope), nil)
	if err != nil {
		return nil, fmt.Errorf("demo: warranted decryption failed: %w", err)
	}
	for _, c := range w.inScope {
		texts, ok := got.read(w, c)
		if ok {
			rep.Recovered++
			rep.MessagesRead += len(texts)
			if len(rep.Sample) < 3 {
				rep.Sample = append(rep.Sample, fmt.Sprintf("%s → %s: %q", c.Context.Sender, c.Context.Recipient, texts[0]))
			}
		}
	}
	w.done(SectionWarrant)
	w.step("the investigator's attempts to read more")
	if rep.Attacks, rep.OutOfScopeTried, rep.OutOfScopeRecov, err = runAttacks(w); err != nil {
		return nil, err
	}
	w.done(SectionOverreach)
	w.step("forging escrow fields: %d random ones, then a Clipper LEAF by brute force", w.cfg.ForgeryTries)
	if rep.ForgedEnvelopes, err = forgeEnvelopes(w); err != nil {
		return nil, err
	}
	if rep.LEAFForgeryTries, err = forgeClipper(w); err != nil {
		return nil, err
	}
	w.done(SectionForgery)
	if rep.Designs, err = measureDesigns(w); err != nil {
		return nil, err
	}
	ep, err := w.federation("threshold-epochs")
	if err != nil {
		return nil, err
	}
	kept, err := ep.members[0].storedShares()
	if err != nil {
		return nil, err
	}
	for _, s := range kept {
		rep.RetainedEpochs = append(rep.RetainedEpochs, s.Epoch)
	}
	slices.Sort(rep.RetainedEpochs)
	w.done(SectionTradeOff)
	w.step("an auditor reading back every trustee's audit log")
	logs, err := fed.auditLogs(w)
	if err != nil {
		return nil, err
	}
	for _, l := range logs {
		rep.AuditRecords[l.Trustee] = int(l.Tree.N)
		a := AuditSummary{Trustee: l.Trustee, Records: len(l.Records), Verified: len(l.Records) == int(l.Tree.N), OtherKinds: []string{},
			Checkpoint: string(l.Head), Cosignatures: []Cosignature{}}
		for _, c := range l.Witnessed {
			// Audit keeps only checkpoints whose signatures verified and
			// that the log's checkpoint extends.
			a.Cosignatures = append(a.Cosignatures, Cosignature{Witness: c.Witness, Size: c.Size, Verified: true})
		}
		for _, rec := range l.Records {
			switch {
			case rec.Kind == trustee.AuditKindDecision && rec.Decision == trustee.AuditGranted:
				a.Granted++
			case rec.Kind == trustee.AuditKindDecision:
				a.Refused++
			default:
				a.Other++
				if !slices.Contains(a.OtherKinds, rec.Kind) {
					a.OtherKinds = append(a.OtherKinds, rec.Kind)
				}
			}
		}
		rep.Audit = append(rep.Audit, a)
	}
	w.done(SectionAudit)
	return rep, nil
}

// keyGenerationNote says, for the report, who could have seen the keys.
func keyGenerationNote(cfg Config) string {
	switch {
	case cfg.KeyGeneration == "dealer":
		return "a dealer made every epoch key and saw it whole, then split it among the trustees"
	case cfg.Processes:
		return "dealerless: every epoch key was made by a DKG among the trustee processes over TLS; the demo only relayed their messages, and no machine ever held a key; the demo played every trustee's operator, writing each ceremony's proposal and approving it on each node"
	}
	return "dealerless DKG, but in-process: every participant ran inside the demo's process, which saw every share; run with trustee processes for ceremonies in which no machine holds the key"
}

// close stops every trustee process.
func (w *world) close() {
	for _, f := range w.feds {
		f.close()
	}
	if w.procs != nil {
		w.procs.Close()
	}
}

// build makes the judge, requester and epoch keys, then the users,
// traffic and warrant.
func (w *world) build() error {
	cfg := w.cfg
	setup := sim.NewRand(cfg.Seed, "setup")
	start := cfg.Start.UTC().Truncate(24 * time.Hour)
	end := start.AddDate(0, 0, cfg.Days)
	w.now = end.Add(time.Hour)
	if cfg.Processes {
		// Trustee processes run on the real clock: the month ends today.
		w.now = time.Now().UTC()
		end = w.now.Truncate(24 * time.Hour)
		start = end.AddDate(0, 0, -cfg.Days)
	}

	// Epochs cover the simulated days and now.
	var epochs []escrow.GroupEpoch
	for i := 0; i*cfg.EpochDays <= cfg.Days; i++ {
		from := start.AddDate(0, 0, i*cfg.EpochDays)
		epochs = append(epochs, escrow.GroupEpoch{Epoch: uint32(i + 1), ValidFrom: from, ValidUntil: from.AddDate(0, 0, cfg.EpochDays)})
	}
	skey, vkey, err := escrow.NewJudgeKey("judge-hale", setup)
	if err != nil {
		return err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return err
	}
	w.judgeSign, w.judgeKey = signer, vkey
	if w.judge, err = note.NewVerifier(vkey); err != nil {
		return err
	}
	if w.requester, err = escrow.GenerateRequesterKey(setup); err != nil {
		return err
	}
	if err := w.makeKeys(epochs); err != nil {
		return err
	}
	w.rep.KeyGeneration, w.rep.Epochs = w.group.KeyGeneration, len(w.group.Epochs)
	w.rep.Ceremonies = append([]Ceremony{}, w.ceremonies...)
	w.done(SectionKeys)

	w.step("%d users chatting for %d days", cfg.Users, cfg.Days)
	users, err := sim.GenerateUsers(cfg.Users, cfg.Seed)
	if err != nil {
		return err
	}
	for _, e := range w.group.Epochs {
		if w.groups[e.Epoch], err = w.group.EscrowGroup(e.Epoch); err != nil {
			return err
		}
	}
	keyAt := func(t time.Time) (uint32, kyber.Point, error) {
		e, err := w.group.EpochAt(t)
		if err != nil {
			return 0, nil, err
		}
		return e.Epoch, w.groups[e.Epoch].Key, nil
	}
	w.traffic, err = sim.Generate(sim.Config{Users: cfg.Users, Days: cfg.Days, Seed: cfg.Seed, Start: start, SessionsPerUserDay: 1}, users, keyAt)
	if err != nil {
		return err
	}
	w.pubs = map[string]*escrow.UserPublic{}
	for _, u := range users {
		w.pubs[u.Name] = u.Public()
	}
	for _, c := range w.traffic.Sessions {
		if c.Tampering != sim.Honest {
			w.rogue = append(w.rogue, c)
		} else if c.Accepted {
			w.honest = append(w.honest, c)
			if w.envs[c.Context.SessionID], err = escrow.ParseEnvelope(c.Session.Envelope); err != nil {
				return err
			}
		} else {
			return fmt.Errorf("demo: an honest session was rejected: %v", c.Rejection)
		}
	}

	// The warrant: the first user, the last week of the month.
	wr := &escrow.Warrant{
		ID: "W-2026-0042", Case: "case 2026/117: threats against a public official",
		Requester: w.requester.Public, Targets: []string{users[0].Name},
		WindowStart: end.AddDate(0, 0, -7), WindowEnd: end,
		ValidFrom: end, ValidUntil: end.AddDate(0, 0, 7), MaxSessions: 200,
		Purpose: "read the target's conversations in the week before the incident",
	}
	body, err := wr.MarshalText()
	if err != nil {
		return err
	}
	if w.warrant, err = escrow.SignWarrant(body, signer); err != nil {
		return err
	}
	w.w = wr
	for _, c := range w.honest {
		if wr.Covers(c.Context) == nil {
			w.inScope = append(w.inScope, c)
		}
	}
	if len(w.inScope) == 0 {
		return errors.New("demo: the warrant covers no session; simulate more users or days")
	}

	cur, err := w.group.EpochAt(w.now)
	if err != nil {
		return err
	}
	w.currentEpoch = cur.Epoch
	return nil
}

// startFederations starts the two keyquorum federations, in-process or as
// processes: "threshold" keeps every epoch, "threshold-epochs" applies
// retention. With processes that made their keys by DKG, both are the same
// processes, and "threshold-epochs" turns retention on when first used
// (see [world.federation]).
func (w *world) startFederations() error {
	for _, name := range []string{"threshold", "threshold-epochs"} {
		retention := 0
		if name == "threshold-epochs" {
			retention = w.cfg.RetentionEpochs
		}
		rand := sim.NewRand(w.cfg.Seed, "federation/"+name)
		var f *federation
		var err error
		switch {
		case w.procs != nil:
			f, err = procsFederation(w.procs, rand)
			if retention > 0 {
				f.enter = func() error {
					w.step("restarting the trustees with a retention policy of %d epochs", retention)
					return w.procs.SetRetention(w.ctx, retention)
				}
			}
		case w.cfg.Processes:
			w.step("setting up and starting %d trustee processes for the %s design", w.cfg.Trustees, name)
			f, err = newProcessFederation(w.ctx, w, filepath.Join(w.cfg.WorkDir, name), retention, rand)
		default:
			f, err = newFederation(w, retention, rand)
		}
		if err != nil {
			return fmt.Errorf("demo: starting the %s federation: %w", name, err)
		}
		w.feds[name] = f
	}
	if w.procs != nil {
		w.step("reading every trustee's stored shares, as an attacker who breaks in would")
		// The rows of designs in which someone holds x_e need it; nobody
		// does, so read what every trustee stores.
		stolen, err := w.feds["threshold"].storedShares(func(int) bool { return true })
		if err != nil {
			return err
		}
		for e, ss := range stolen {
			for _, s := range ss {
				w.held = append(w.held, escrow.DealtShare{Trustee: w.group.Trustees[s.Index-1], Epoch: e, Share: s})
			}
		}
	}
	return nil
}

// federation returns the named federation, first putting it in the state
// its design needs (turning retention on) if it is not yet.
func (w *world) federation(name string) (*federation, error) {
	f := w.feds[name]
	if f.enter != nil {
		enter := f.enter
		f.enter = nil
		if err := enter(); err != nil {
			return nil, fmt.Errorf("demo: preparing the %s federation: %w", name, err)
		}
	}
	return f, nil
}

// envelope returns the parsed envelope of a captured session, or nil if it
// has none (a stripped or no-escrow session).
func (w *world) envelope(c *sim.Captured) *escrow.Envelope {
	if len(c.Session.Envelope) == 0 {
		return nil
	}
	if e, ok := w.envs[c.Context.SessionID]; ok {
		return e
	}
	e, err := escrow.ParseEnvelope(c.Session.Envelope)
	if err != nil {
		return nil
	}
	return e
}

func envelopesOf(cs []*sim.Captured) [][]byte {
	var out [][]byte
	for _, c := range cs {
		out = append(out, c.Session.Envelope)
	}
	return out
}

// readSession opens a session's messages with K and checks them against the
// simulation's ground truth: a "recovered" session is one whose every
// message decrypted, verified and matched.
func readSession(w *world, c *sim.Captured, K []byte) ([]string, bool) {
	env := w.envelope(c)
	if env == nil {
		return nil, false
	}
	keys, err := escrow.KeysFromRecovered(env, K)
	if err != nil {
		return nil, false
	}
	var texts []string
	for i, m := range c.Session.Messages {
		pt, err := keys.Open(m, w.pubs)
		if err != nil || pt.Text != c.Plain[i] {
			return nil, false
		}
		texts = append(texts, pt.Text)
	}
	return texts, true
}

// openWithSecrets is the attacker's code for anyone holding epoch secrets
// (or guesses of them): try every session and count those it reads. The
// table asks the same question (this session, this secret) many times, so
// each answer is computed once and remembered.
func openWithSecrets(w *world, sessions []*sim.Captured, secrets map[uint32]kyber.Scalar) int {
	return len(openedWithSecrets(w, sessions, secrets))
}

// openedWithSecrets is openWithSecrets naming what it opened: the
// positions in sessions of the sessions it read.
func openedWithSecrets(w *world, sessions []*sim.Captured, secrets map[uint32]kyber.Scalar) []int {
	var opened []int
	for i, c := range sessions {
		x, ok := secrets[c.Context.Epoch]
		if !ok || len(c.Session.Envelope) == 0 {
			continue
		}
		env := w.envelope(c)
		if env == nil {
			continue
		}
		xb, err := x.MarshalBinary()
		if err != nil {
			continue
		}
		key := openedKey{session: c.Context.SessionID, secret: string(xb)}
		read, known := w.opened[key]
		if !known {
			if K, err := escrow.OpenWithGroupSecret(env, x); err == nil {
				_, read = readSession(w, c, K)
			}
			if w.opened == nil {
				w.opened = map[openedKey]bool{}
			}
			w.opened[key] = read
		}
		if read {
			opened = append(opened, i)
		}
	}
	return opened
}

// openedKey names one attempt of openWithSecrets: a session and a secret.
type openedKey struct {
	session escrow.SessionID
	secret  string
}

// interpolate is what an attacker holding some shares does: Lagrange at 0
// over whatever shares it has, per epoch. With fewer than t shares the
// result is a wrong secret, and openWithSecrets finds it opens nothing.
func interpolate(held map[uint32][]shares.Share) map[uint32]kyber.Scalar {
	out := map[uint32]kyber.Scalar{}
	for e, ss := range held {
		if len(ss) == 0 {
			continue
		}
		x, err := shares.Recover(ss, len(ss))
		if err == nil {
			out[e] = x
		}
	}
	return out
}

// heldShares returns the shares trustees 1..k (or the online trustees)
// hold, by epoch: dealt to them, or made by the ceremonies.
func heldShares(w *world, take func(index int) bool) map[uint32][]shares.Share {
	out := map[uint32][]shares.Share{}
	for _, d := range w.held {
		if take(d.Trustee.Index) {
			out[d.Epoch] = append(out[d.Epoch], d.Share)
		}
	}
	return out
}

func intp(i int) *int { return &i }

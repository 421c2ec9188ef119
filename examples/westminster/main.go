// Command westminster replays the 2017 argument on a small scale. After
// the Westminster attack (22 March 2017) the UK Home Secretary asked for a
// way into end-to-end encrypted chats; the answer was that any such way is a
// master key for everyone's locks. Here five people chat for four weeks
// with escrowed sessions. A judge then signs a warrant for one person's
// week of chats: five trustees, any three of whom must agree, open exactly
// those sessions and refuse the rest. The same captured traffic under one
// master key shows what a single stolen key opens: everything.
//
// It uses only keyquorum's public packages (escrow, trustee) and a seeded
// random source, so every run prints the same story.
package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/shares"
	"github.com/keyquorum/keyquorum/trustee"
	"golang.org/x/mod/sumdb/note"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "westminster:", err)
		os.Exit(1)
	}
}

// captured is one session as the provider stores it, with what was said
// (to check what a decryption reads).
type captured struct {
	session *escrow.Session
	ctx     *escrow.Context
	text    string
}

func run(out io.Writer) error {
	rnd := rand.NewChaCha8([32]byte{'w', 'e', 's', 't', 'm', 'i', 'n', 's', 't', 'e', 'r'})
	month := time.Date(2017, 2, 22, 0, 0, 0, 0, time.UTC) // four weeks up to the attack
	attack := month.AddDate(0, 0, 28)
	now := attack.Add(12 * time.Hour)

	// Five trustees hold 3-of-5 shares of the group key. (A dealer makes
	// it here, for brevity; keyquorum's trustees make it by a DKG.)
	names := []string{"trustee-1", "trustee-2", "trustee-3", "trustee-4", "trustee-5"}
	group, dealt, err := escrow.Deal(names, 3, []escrow.GroupEpoch{{Epoch: 1, ValidFrom: month, ValidUntil: attack.AddDate(0, 0, 7)}}, rnd)
	if err != nil {
		return err
	}
	g, err := group.EscrowGroup(1)
	if err != nil {
		return err
	}
	epochKey, err := group.EpochKey(1)
	if err != nil {
		return err
	}

	// Five people chat every day; each session key is escrowed.
	people := []string{"sam", "alice", "bob", "carol", "dave"}
	keys := map[string]*escrow.UserKey{}
	authors := map[string]*escrow.UserPublic{} // who signed what
	for _, p := range people {
		if keys[p], err = escrow.GenerateUserKey(p, rnd); err != nil {
			return err
		}
		authors[p] = keys[p].Public()
	}
	lines := []string{"see you at the station", "running late", "did you get the tickets?", "call me tonight", "the usual place"}
	var capture []captured
	for day := 0; day < 28; day++ {
		for i, from := range people {
			to := people[(i+1+int(rnd.Uint64()%4))%len(people)]
			start := month.AddDate(0, 0, day).Add(time.Duration(9+i) * time.Hour)
			sk, s, err := escrow.StartSession(keys[from], keys[to].Public(), 1, epochKey, start, rnd)
			if err != nil {
				return err
			}
			text := lines[(day+i)%len(lines)]
			m, err := sk.Seal(keys[from], 1, text)
			if err != nil {
				return err
			}
			s.Messages = append(s.Messages, m)
			capture = append(capture, captured{session: s, ctx: sk.Context, text: text})
		}
	}
	fmt.Fprintf(out, "Four weeks of chats among %d people: %d sessions, each session key escrowed\n", len(people), len(capture))
	fmt.Fprintf(out, "to %d trustees, any %d of whom can decrypt.\n\n", len(names), g.Threshold)

	// A judge signs a warrant for sam's last week; the investigator's key is named in it.
	jskey, jvkey, err := escrow.NewJudgeKey("judge-hale", rnd)
	if err != nil {
		return err
	}
	judgeSigner, err := note.NewSigner(jskey)
	if err != nil {
		return err
	}
	judge, err := note.NewVerifier(jvkey)
	if err != nil {
		return err
	}
	investigator, err := escrow.GenerateRequesterKey(rnd)
	if err != nil {
		return err
	}
	w := &escrow.Warrant{
		ID: "W-2017-0322", Case: "Westminster, 22 March 2017", Requester: investigator.Public,
		Targets: []string{"sam"}, WindowStart: attack.AddDate(0, 0, -7), WindowEnd: attack,
		ValidFrom: attack, ValidUntil: attack.AddDate(0, 0, 7), MaxSessions: 50,
		Purpose: "sam's conversations in the week before the attack",
	}
	body, err := w.MarshalText()
	if err != nil {
		return err
	}
	warrant, err := escrow.SignWarrant(body, judgeSigner)
	if err != nil {
		return err
	}

	// The trustees: each its own node, policy and audit log.
	var nodes []*trustee.Node
	for i, name := range names {
		skey, _, err := note.GenerateKey(rnd, escrow.LogKeyName(name))
		if err != nil {
			return err
		}
		logSigner, err := note.NewSigner(skey)
		if err != nil {
			return err
		}
		n, err := trustee.New(name, i+1, trustee.DefaultPolicy(judge), trustee.NewMemAuditStore(), logSigner,
			trustee.WithClock(func() time.Time { return now }), trustee.WithRandom(rnd))
		if err != nil {
			return err
		}
		for _, d := range dealt {
			if d.Trustee.Index == i+1 {
				es := &escrow.EpochShare{Epoch: d.Epoch, Index: d.Share.Index, Share: d.Share.Value, GroupKey: g.Key}
				if err := n.AddEpochShare(es, g.PublicShares[i+1]); err != nil {
					return err
				}
			}
		}
		nodes = append(nodes, n)
	}

	// The investigator asks for the covered sessions, then for the rest.
	var inScope, outside []captured
	for _, c := range capture {
		if w.Covers(c.ctx) == nil {
			inScope = append(inScope, c)
		} else {
			outside = append(outside, c)
		}
	}
	fmt.Fprintf(out, "Warrant %s: sam's sessions from %s to %s, %d sessions.\n",
		w.ID, w.WindowStart.Format("2 Jan"), w.WindowEnd.Format("2 Jan"), len(inScope))
	read, refusals, err := request(nodes, g, warrant, investigator, inScope, authors, now, rnd)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  granted by %d of %d trustees; the investigator read %d of %d, e.g. %s → %s: %q\n",
		len(nodes)-len(refusals), len(nodes), read, len(inScope), inScope[0].ctx.Sender, inScope[0].ctx.Recipient, inScope[0].text)
	read, refusals, err = request(nodes, g, warrant, investigator, outside, authors, now, rnd)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  the same warrant for the other %d sessions: read %d; refused by %d of %d trustees (%s)\n",
		len(outside), read, len(refusals), len(nodes), strings.Join(slices.Compact(refusals), ", "))
	logged := 0
	for _, n := range nodes {
		if h, err := n.AuditLog().Head(); err == nil && h.Tree.N == 2 {
			logged++
		}
	}
	fmt.Fprintf(out, "  %d of %d trustees' signed audit logs hold both decisions\n\n", logged, len(nodes))

	// The same capture under one master key: whoever holds (or steals) it
	// reads everything, with no warrant and no log.
	var all []shares.Share
	for _, d := range dealt {
		all = append(all, d.Share)
	}
	master, err := shares.Recover(all, g.Threshold)
	if err != nil {
		return err
	}
	opened := 0
	for _, c := range capture {
		env, err := escrow.ParseEnvelope(c.session.Envelope)
		if err != nil {
			return err
		}
		if K, err := escrow.OpenWithGroupSecret(env, master); err == nil && readsAs(env, K, c, authors) {
			opened++
		}
	}
	fmt.Fprintf(out, "One master key instead: stolen once, it opens %d of %d sessions,\n", opened, len(capture))
	fmt.Fprintln(out, "everyone's, every week, with no warrant and no log.")
	return nil
}

// request sends one warranted decryption request to every node, combines
// what the granting trustees answer, and returns how many sessions read as
// sent and each refusal's code.
func request(nodes []*trustee.Node, g *escrow.Group, warrant []byte, req *escrow.RequesterKey, sessions []captured,
	authors map[string]*escrow.UserPublic, now time.Time, rnd io.Reader) (int, []string, error) {
	var envs [][]byte
	for _, c := range sessions {
		envs = append(envs, c.session.Envelope)
	}
	r, err := escrow.NewDecryptionRequest(warrant, envs, req, now, rnd)
	if err != nil {
		return 0, nil, err
	}
	var batches []*escrow.BatchAnswer // one per granting trustee: every session is of epoch g
	var refusals []string
	for _, n := range nodes {
		ans, err := n.Decide(r.Marshal())
		if re, ok := err.(*trustee.RefusalError); ok {
			refusals = append(refusals, re.Code)
			continue
		} else if err != nil {
			return 0, nil, err
		}
		batches = append(batches, ans.Batches...)
	}
	parsed := make([]*escrow.Envelope, len(sessions))
	for i, c := range sessions {
		if parsed[i], err = escrow.ParseEnvelope(c.session.Envelope); err != nil {
			return 0, nil, err
		}
	}
	read := 0
	c, err := escrow.NewCombiner(g, req)
	if err != nil {
		return 0, nil, err
	}
	res, err := c.CombineBatch(r.ID, parsed, batches)
	if err != nil {
		return 0, refusals, nil // too few trustees granted: nothing opens
	}
	for i, c := range sessions {
		if res.Errs[i] == nil && readsAs(parsed[i], res.Keys[i], c, authors) {
			read++
		}
	}
	return read, refusals, nil
}

// readsAs reports whether K opens the session's message, signed by its
// author, and it reads as sent.
func readsAs(env *escrow.Envelope, K []byte, c captured, authors map[string]*escrow.UserPublic) bool {
	sk, err := escrow.KeysFromRecovered(env, K)
	if err != nil {
		return false
	}
	pt, err := sk.Open(c.session.Messages[0], authors)
	return err == nil && pt.Text == c.text
}

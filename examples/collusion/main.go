// Command collusion shows what a threshold cannot buy. Five trustees hold
// shares of each week's key; any three can decrypt. Three of them decide
// to pool the shares they store: with no warrant, no judge and no request,
// their nodes log nothing, and they read every session of every week. Two
// of them alone read nothing. Then the trustees apply retention (keep the
// last two weeks' shares, erase the rest): the same collusion, even of all
// five, no longer reads the older weeks. That is all retention buys: a
// trustee that copied its shares before erasing them still reads them.
//
// It uses only keyquorum's public packages (escrow, shares, trustee) and a
// seeded random source, so every run prints the same story.
package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/shares"
	"github.com/keyquorum/keyquorum/trustee"
	"go.dedis.ch/kyber/v3"
	"golang.org/x/mod/sumdb/note"
)

const (
	trustees  = 5
	threshold = 3
	weeks     = 4 // one key epoch per week
	retention = 2 // epochs whose shares the trustees keep
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "collusion:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	rnd := rand.NewChaCha8([32]byte{'c', 'o', 'l', 'l', 'u', 's', 'i', 'o', 'n'})
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	now := start.AddDate(0, 0, 7*weeks-1)

	// The group: one key per week, 3-of-5 shares (dealt here for
	// brevity; keyquorum's trustees make them by a DKG).
	var names []string
	for i := 1; i <= trustees; i++ {
		names = append(names, fmt.Sprintf("trustee-%d", i))
	}
	var epochs []escrow.GroupEpoch
	for e := range weeks {
		from := start.AddDate(0, 0, 7*e)
		epochs = append(epochs, escrow.GroupEpoch{Epoch: uint32(e + 1), ValidFrom: from, ValidUntil: from.AddDate(0, 0, 7)})
	}
	group, dealt, err := escrow.Deal(names, threshold, epochs, rnd)
	if err != nil {
		return err
	}

	// Each trustee's node, with a retention policy it has not applied yet.
	_, jvkey, err := escrow.NewJudgeKey("judge-hale", rnd)
	if err != nil {
		return err
	}
	judge, err := note.NewVerifier(jvkey)
	if err != nil {
		return err
	}
	policy := trustee.DefaultPolicy(judge)
	policy.RetentionEpochs = retention
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
		n, err := trustee.New(name, i+1, policy, trustee.NewMemAuditStore(), logSigner,
			trustee.WithClock(func() time.Time { return now }), trustee.WithRandom(rnd))
		if err != nil {
			return err
		}
		for _, d := range dealt {
			if d.Trustee.Index != i+1 {
				continue
			}
			pub, err := group.PublicShare(d.Epoch, i+1)
			if err != nil {
				return err
			}
			g, err := group.EscrowGroup(d.Epoch)
			if err != nil {
				return err
			}
			if err := n.AddEpochShare(&escrow.EpochShare{Epoch: d.Epoch, Index: i + 1, Share: d.Share.Value, GroupKey: g.Key}, pub); err != nil {
				return err
			}
		}
		nodes = append(nodes, n)
	}

	// Four weeks of sessions, each escrowed under its week's key.
	alice, err := escrow.GenerateUserKey("alice", rnd)
	if err != nil {
		return err
	}
	bob, err := escrow.GenerateUserKey("bob", rnd)
	if err != nil {
		return err
	}
	var envelopes []*escrow.Envelope
	for day := range 7 * weeks {
		at := start.AddDate(0, 0, day).Add(10 * time.Hour)
		e, err := group.EpochAt(at)
		if err != nil {
			return err
		}
		epochKey, err := group.EpochKey(e.Epoch)
		if err != nil {
			return err
		}
		for range 3 {
			_, s, err := escrow.StartSession(alice, bob.Public(), e.Epoch, epochKey, at, rnd)
			if err != nil {
				return err
			}
			env, err := escrow.ParseEnvelope(s.Envelope)
			if err != nil {
				return err
			}
			envelopes = append(envelopes, env)
		}
	}
	fmt.Fprintf(out, "%d trustees, any %d of whom can decrypt; %d weeks of sessions, one key per week: %d sessions.\n\n",
		trustees, threshold, weeks, len(envelopes))

	before := logSizes(nodes)
	fmt.Fprintln(out, "No warrant, no judge, no request: trustees pool the shares they store.")
	for _, k := range []int{threshold - 1, threshold} {
		fmt.Fprintf(out, "  %d trustees (%s) read %d of %d sessions\n", k, strings.Join(names[:k], ", "), readable(nodes[:k], envelopes), len(envelopes))
	}
	fmt.Fprintf(out, "  records their audit logs gained: %d (nothing asked their nodes for anything)\n\n", sum(logSizes(nodes))-sum(before))

	fmt.Fprintf(out, "Retention: every trustee keeps the last %d weeks' shares and erases the rest.\n", retention)
	var copied []escrow.EpochShare // what the first t trustees copy beforehand
	for _, n := range nodes[:threshold] {
		copied = append(copied, n.StoredShares()...)
	}
	before = logSizes(nodes)
	var destroyed []uint32
	for _, n := range nodes {
		if destroyed, err = n.DestroyEpochsBefore(uint32(weeks)); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "  each erased its shares of epochs %v and logged it: %d records in all\n", destroyed, sum(logSizes(nodes))-sum(before))
	last := 0
	for _, env := range envelopes {
		if env.Context.Epoch > uint32(weeks-retention) {
			last++
		}
	}
	fmt.Fprintf(out, "  %d trustees now read %d of %d sessions: only the last %d weeks' %d\n", threshold, readable(nodes[:threshold], envelopes), len(envelopes), retention, last)
	fmt.Fprintf(out, "  all %d together read %d: the older weeks are gone for everyone\n\n", trustees, readable(nodes, envelopes))
	fmt.Fprintf(out, "What retention cannot do: %d trustees who copied their shares before erasing them\n", threshold)
	fmt.Fprintf(out, "still read %d of %d sessions with the copies.\n", open(copied, envelopes), len(envelopes))
	return nil
}

// readable counts the sessions the pooled stored shares of nodes open.
func readable(nodes []*trustee.Node, envelopes []*escrow.Envelope) int {
	var stored []escrow.EpochShare
	for _, n := range nodes {
		stored = append(stored, n.StoredShares()...)
	}
	return open(stored, envelopes)
}

// open counts the sessions some pooled shares open: per epoch, Lagrange
// interpolation of whatever shares there are, then each envelope opened
// with the result (a wrong key opens nothing).
func open(stored []escrow.EpochShare, envelopes []*escrow.Envelope) int {
	pooled := map[uint32][]shares.Share{}
	for _, s := range stored {
		pooled[s.Epoch] = append(pooled[s.Epoch], shares.Share{Index: s.Index, Value: s.Share})
	}
	keys := map[uint32]kyber.Scalar{}
	for e, ss := range pooled {
		if x, err := shares.Recover(ss, len(ss)); err == nil {
			keys[e] = x
		}
	}
	opened := 0
	for _, env := range envelopes {
		if x, ok := keys[env.Context.Epoch]; ok {
			if _, err := escrow.OpenWithGroupSecret(env, x); err == nil {
				opened++
			}
		}
	}
	return opened
}

func logSizes(nodes []*trustee.Node) []int64 {
	var out []int64
	for _, n := range nodes {
		h, err := n.AuditLog().Head()
		if err != nil {
			out = append(out, -1)
			continue
		}
		out = append(out, h.Tree.N)
	}
	return out
}

func sum(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
}

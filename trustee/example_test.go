package trustee_test

import (
	"fmt"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
	"golang.org/x/mod/sumdb/note"
)

// A warranted decryption from start to end: a 2-of-3 group, a session, a
// judge-signed warrant, a signed request, two trustees' answers, and the
// investigator reading the message.
func ExampleNode_Decide() {
	rand := detRand("example")
	now := time.Date(2026, 4, 10, 9, 0, 0, 0, time.UTC)
	epoch := escrow.GroupEpoch{Epoch: 1, ValidFrom: now.AddDate(0, 0, -30), ValidUntil: now.AddDate(0, 0, 30)}
	g, dealt, _ := escrow.Deal([]string{"tr-a", "tr-b", "tr-c"}, 2, []escrow.GroupEpoch{epoch}, rand)
	eg, _ := g.EscrowGroup(1)

	// Alice talks to Bob; the session key is escrowed to the group.
	alice, _ := escrow.GenerateUserKey("alice", rand)
	bob, _ := escrow.GenerateUserKey("bob", rand)
	keys, session, _ := escrow.StartSession(alice, bob.Public(), 1, eg.EpochKey(), now.Add(-2*time.Hour), rand)
	msg, _ := keys.Seal(alice, 0, "meet at noon")
	session.Messages = append(session.Messages, msg)

	// A judge signs a warrant for Alice's sessions of the last day.
	requester, _ := escrow.GenerateRequesterKey(rand)
	jskey, jvkey, _ := escrow.NewJudgeKey("judge-ng", rand)
	judgeSigner, _ := note.NewSigner(jskey)
	judge, _ := note.NewVerifier(jvkey)
	w := &escrow.Warrant{ID: "W-1", Case: "example case", Requester: requester.Public, Targets: []string{"alice"},
		WindowStart: now.AddDate(0, 0, -1), WindowEnd: now, ValidFrom: now.Add(-time.Hour), ValidUntil: now.AddDate(0, 0, 7),
		MaxSessions: 10, Purpose: "example"}
	body, _ := w.MarshalText()
	signed, _ := escrow.SignWarrant(body, judgeSigner)
	req, _ := escrow.NewDecryptionRequest(signed, [][]byte{session.Envelope}, requester, now, rand)

	// Two of the three trustees answer.
	var batches []*escrow.BatchAnswer
	for _, m := range g.Trustees[:2] {
		lskey, _, _ := note.GenerateKey(rand, m.Name+".log")
		logSigner, _ := note.NewSigner(lskey)
		node, _ := trustee.New(m.Name, m.Index, trustee.DefaultPolicy(judge), trustee.NewMemAuditStore(), logSigner,
			trustee.WithClock(func() time.Time { return now }), trustee.WithRandom(rand))
		for _, d := range dealt {
			if d.Trustee.Index == m.Index {
				_ = node.AddEpochShare(&escrow.EpochShare{Epoch: 1, Index: m.Index, Share: d.Share.Value, GroupKey: eg.Key}, eg.PublicShares[m.Index])
			}
		}
		ans, err := node.Decide(req.Marshal())
		if err != nil {
			fmt.Println(err)
			return
		}
		rec, _, _ := node.AuditLog().Record(ans.RecordIndex)
		fmt.Printf("%s: %s, logged as record %d\n", m.Name, rec.Decision, ans.RecordIndex)
		batches = append(batches, ans.Batches...) // one epoch: one batch each
	}

	env, _ := escrow.ParseEnvelope(session.Envelope)
	c, _ := escrow.NewCombiner(eg, requester)
	res, err := c.CombineBatch(req.ID, []*escrow.Envelope{env}, batches)
	if err != nil {
		fmt.Println(err)
		return
	}
	read, _ := escrow.KeysFromRecovered(env, res.Keys[0])
	pt, _ := read.Open(session.Messages[0], map[string]*escrow.UserPublic{"alice": alice.Public(), "bob": bob.Public()})
	fmt.Printf("combined answers of trustees %v; %s wrote %q\n", res.Used, pt.From, pt.Text)
	// Output:
	// tr-a: granted, logged as record 0
	// tr-b: granted, logged as record 0
	// combined answers of trustees [1 2]; alice wrote "meet at noon"
}

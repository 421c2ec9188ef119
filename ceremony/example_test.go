package ceremony_test

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/keyquorum/keyquorum/ceremony"
	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
	"golang.org/x/mod/sumdb/note"
)

// exampleNode is a trustee node whose ceremony results are kept in memory.
type exampleNode struct {
	mu     sync.Mutex
	node   *trustee.Node
	group  []byte
	member escrow.GroupMember
}

func (n *exampleNode) install(signed []byte, g *escrow.GroupFile, ss []*escrow.EpochShare, _ bool) error {
	for _, s := range ss {
		pub, err := g.PublicShare(s.Epoch, s.Index)
		if err != nil {
			return err
		}
		if err := n.node.AddEpochShare(s, pub); err != nil {
			return err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = signed
	return nil
}

// Three trustee nodes serve their APIs on loopback and make a 2-of-3
// group key with a DKG that this process only relays. The first trustee
// signs the proposal and every operator approves it (here directly on
// each host; a real node takes approvals only on its control socket).
// Every node ends up with its own share and the same group file, signed
// by all three, and an audit record of each step.
func ExampleRunDKG() {
	rand := mrand.NewChaCha8([32]byte{'k', 'q'})
	_, judgeKey, _ := note.GenerateKey(rand, "judge")
	judge, _ := note.NewVerifier(judgeKey)
	var nodes []*exampleNode
	var hosts []*ceremony.CeremonyHost
	var signers []note.Signer
	var roster []escrow.GroupMember
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("tr-%d", i)
		skey, vkey, _ := note.GenerateKey(rand, escrow.LogKeyName(name))
		signer, _ := note.NewSigner(skey)
		n := &exampleNode{}
		// Index 0: the node takes its index from the ceremony.
		n.node, _ = trustee.New(name, 0, trustee.DefaultPolicy(judge), trustee.NewMemAuditStore(), signer)
		host, _ := ceremony.NewCeremonyHost(ceremony.CeremonyHostConfig{
			Name: name, LogSigner: signer, Store: &ceremony.MemCeremonyStore{}, Install: n.install, Share: n.node.Share,
			Record: n.node.RecordCeremony,
			Group:  func() []byte { n.mu.Lock(); defer n.mu.Unlock(); return n.group },
		})
		srv := httptest.NewServer(trustee.NewServer(n.node, trustee.WithCeremonyHost(host)))
		defer srv.Close()
		n.member = escrow.GroupMember{Index: i, Name: name, Address: strings.TrimPrefix(srv.URL, "http://"), LogKey: vkey}
		nodes, hosts, signers = append(nodes, n), append(hosts, host), append(signers, signer)
		roster = append(roster, n.member)
	}

	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	p, _ := ceremony.DKGProposal(roster, 2, escrow.GroupEpoch{Epoch: 1, ValidFrom: start, ValidUntil: start.AddDate(0, 0, 30)}, time.Now().Add(10*time.Minute), rand)
	proposal, _ := ceremony.SignProposal(p, signers[0])
	for _, h := range hosts {
		if _, _, err := h.Approve(proposal, nil); err != nil {
			fmt.Println(err)
			return
		}
	}

	rep, err := ceremony.RunDKG(context.Background(), ceremony.DKGOptions{Proposal: proposal, Dial: trustee.CeremonyDialer()})
	if err != nil {
		fmt.Println(err)
		return
	}
	g, _, err := escrow.VerifyGroupFile(rep.Signed, true)
	fmt.Println("signed by every holder:", err == nil, "holders:", rep.Holders, "threshold:", g.Threshold)
	for _, n := range nodes {
		st, _ := n.node.Status(rep.Group, nil)
		fmt.Println(n.node.Name(), "index", n.node.Index(), "epochs", n.node.Epochs(), "same group file:", string(n.group) == string(rep.Signed), "audit records:", st.AuditSize)
	}
	// Output:
	// signed by every holder: true holders: [1 2 3] threshold: 2
	// tr-1 index 1 epochs [1] same group file: true audit records: 2
	// tr-2 index 2 epochs [1] same group file: true audit records: 2
	// tr-3 index 3 epochs [1] same group file: true audit records: 2
}

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
// group key with a DKG that this process only relays. Every node ends up
// with its own share and the same group file, signed by all three.
func ExampleRunDKG() {
	rand := mrand.NewChaCha8([32]byte{'k', 'q'})
	_, judgeKey, _ := note.GenerateKey(rand, "judge")
	judge, _ := note.NewVerifier(judgeKey)
	var nodes []*exampleNode
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
			Group: func() []byte { n.mu.Lock(); defer n.mu.Unlock(); return n.group },
		})
		srv := httptest.NewServer(trustee.NewServer(n.node, trustee.WithCeremonyHost(host)))
		defer srv.Close()
		n.member = escrow.GroupMember{Index: i, Name: name, Address: strings.TrimPrefix(srv.URL, "http://"), LogKey: vkey}
		nodes = append(nodes, n)
		roster = append(roster, n.member)
	}

	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rep, err := ceremony.RunDKG(context.Background(), ceremony.DKGOptions{
		Roster: roster, Threshold: 2, Epoch: 1, ValidFrom: start, ValidUntil: start.AddDate(0, 0, 30),
		Dial: trustee.CeremonyDialer(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	g, _, err := escrow.VerifyGroupFile(rep.Signed, true)
	fmt.Println("signed by every holder:", err == nil, "holders:", rep.Holders, "threshold:", g.Threshold)
	for _, n := range nodes {
		fmt.Println(n.node.Name(), "index", n.node.Index(), "epochs", n.node.Epochs(), "same group file:", string(n.group) == string(rep.Signed))
	}
	// Output:
	// signed by every holder: true holders: [1 2 3] threshold: 2
	// tr-1 index 1 epochs [1] same group file: true
	// tr-2 index 2 epochs [1] same group file: true
	// tr-3 index 3 epochs [1] same group file: true
}

package fedrun_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/ceremony"
	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/fedrun"
	"github.com/keyquorum/keyquorum/internal/sim"
	"github.com/keyquorum/keyquorum/trustee"
	"golang.org/x/mod/sumdb/note"
)

// nodeState is what an attack must leave unchanged on a trustee: its
// group file, the epochs it holds, its ceremonies and its audit log.
type nodeState struct {
	group  []byte
	status trustee.NodeStatus
}

func snapshot(t *testing.T, fed *fedrun.Federation) map[string]nodeState {
	t.Helper()
	out := map[string]nodeState{}
	for _, tr := range fed.Trustees {
		g, _ := os.ReadFile(filepath.Join(tr.Dir, "group.json"))
		out[tr.Name] = nodeState{group: g, status: nodeStatus(t, tr.Dir)}
	}
	return out
}

func nodeStatus(t *testing.T, dir string) trustee.NodeStatus {
	t.Helper()
	raw, err := trustee.NewControlClient(dir).Status()
	if err != nil {
		t.Fatal(err)
	}
	var st trustee.NodeStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func checkUnchanged(t *testing.T, what string, before, after map[string]nodeState) {
	t.Helper()
	for name, b := range before {
		a := after[name]
		bs, _ := json.Marshal(b.status)
		as, _ := json.Marshal(a.status)
		if !bytes.Equal(a.group, b.group) || !bytes.Equal(as, bs) {
			t.Errorf("%s changed %s:\nbefore %s\nafter  %s", what, name, bs, as)
		}
	}
}

// outsiderNodes starts n trustee processes of the attacker's own, with
// no group, whose operator (the attacker) approves whatever it likes.
func outsiderNodes(t *testing.T, prefix string, n int) *fedrun.Federation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, vkey, err := escrow.NewJudgeKey("judge-evil", sim.NewRand(99, "evil judge"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("%s-%d", prefix, i))
	}
	fed, err := fedrun.Setup(ctx, fedrun.Options{
		Binary: keyquorumBin, Dir: filepath.Join(t.TempDir(), prefix), Names: names, Threshold: n,
		Judges: []string{vkey}, Passphrase: testPassphrase, KeyGeneration: fedrun.KeyGenerationDKG,
		KDFMemoryMiB: testKDFMemoryMiB, KDFPasses: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fed.Close)
	if err := fed.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	return fed
}

func roster(fed *fedrun.Federation) []escrow.GroupMember {
	var ms []escrow.GroupMember
	for i, tr := range fed.Trustees {
		ms = append(ms, tr.Descriptor.Member(i+1))
	}
	return ms
}

// TestCeremonyAttacksByAnOutsider: the attacker holds the public group
// file, reaches every trustee's API and runs two trustee nodes of its
// own. Every way it tries to make or move a key is refused, and no
// honest trustee's group file, shares, ceremonies or audit log changes.
func TestCeremonyAttacksByAnOutsider(t *testing.T) {
	fx := newFixture(t, fixtureConfig{trustees: 5, threshold: 3, dkg: true})
	honest := fx.fed
	evil := outsiderNodes(t, "evil", 2)
	group, err := os.ReadFile(honest.GroupPath)
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, honest)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := func(signed, group []byte) error {
		_, err := ceremony.RunDKG(ctx, ceremony.DKGOptions{Proposal: signed, Group: group, Dial: trustee.CeremonyDialer(), PhaseTimeout: 2 * time.Second})
		return err
	}

	t.Run("reshare to the outsider's nodes", func(t *testing.T) {
		p, err := ceremony.ReshareProposal(group, roster(evil), 2, time.Now().Add(10*time.Minute), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		// Signed with a key the outsider made under trustee-1's name: the
		// outsider's own nodes, which it controls, take part whatever
		// they are told; the honest ones check.
		skey, _, _ := note.GenerateKey(rand.Reader, escrow.LogKeyName("trustee-1"))
		forger, _ := note.NewSigner(skey)
		signed, err := ceremony.SignProposal(p, forger)
		if err != nil {
			t.Fatal(err)
		}
		err = run(signed, group)
		if !errors.Is(err, ceremony.ErrCeremonyFailed) || !strings.Contains(err.Error(), "not approved by this trustee's operator") {
			t.Fatalf("reshare hijack: %v", err)
		}
		// Straight to one honest node's API, with the parameters the
		// proposal fixes: refused before anything is stored.
		params := proposalParams(t, signed, group)
		c, _ := trustee.CeremonyDialer()(honest.Trustees[0].Member)
		if _, err := c.Ceremony(ctx, ceremony.PathCeremonyPrepare, &ceremony.CeremonyCall{ID: params.ID, Params: &params}); !errors.Is(err, ceremony.ErrNotApproved) {
			t.Fatalf("prepare on an honest node: %v", err)
		}
		// And an honest operator cannot approve it by mistake: no trustee
		// of the group proposed it.
		if _, err := trustee.NewControlClient(honest.Trustees[0].Dir).Approve(signed, nil); !errors.Is(err, ceremony.ErrBadProposal) || !strings.Contains(err.Error(), "not signed by a trustee of the current group") {
			t.Fatalf("honest approval of the hijack: %v", err)
		}
	})

	t.Run("rotation with a century-long epoch", func(t *testing.T) {
		p, err := ceremony.RotationProposal(group, time.Now(), 0, time.Now().Add(10*time.Minute), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		p.ValidFrom = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		p.ValidUntil = time.Date(2127, 1, 1, 0, 0, 0, 0, time.UTC)
		// Signed by an evil node: no honest node takes part.
		skey, _, _ := note.GenerateKey(rand.Reader, escrow.LogKeyName("trustee-1"))
		forger, _ := note.NewSigner(skey)
		forged, err := ceremony.SignProposal(p, forger)
		if err != nil {
			t.Fatal(err)
		}
		if err := run(forged, group); !errors.Is(err, ceremony.ErrCeremonyFailed) || !strings.Contains(err.Error(), "not approved") {
			t.Fatalf("outsider's rotation: %v", err)
		}
		// Even trustee-1's own node signing it does not get it past the
		// other operators' policy: an epoch of a century is refused.
		signed, err := honest.Propose(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = trustee.NewControlClient(honest.Trustees[1].Dir).Approve(signed, nil)
		if !errors.Is(err, ceremony.ErrCeremonyRefused) || !strings.Contains(err.Error(), "more than this node's limit") {
			t.Fatalf("approving a century-long epoch: %v", err)
		}
	})

	t.Run("first DKG on a fresh node", func(t *testing.T) {
		fresh := outsiderNodes(t, "fresh", 2) // set up like any node waiting for its first ceremony
		r := append(roster(fresh)[:1], roster(evil)...)
		for i := range r {
			r[i].Index = i + 1
		}
		p, err := ceremony.DKGProposal(r, 2, escrow.GroupEpoch{Epoch: 1, ValidFrom: time.Now(), ValidUntil: time.Now().Add(24 * time.Hour)}, time.Now().Add(10*time.Minute), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		signed, err := evil.Propose(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := evil.Approve(signed, nil, nil); err != nil {
			t.Fatal(err)
		}
		rep, err := ceremony.RunDKG(ctx, ceremony.DKGOptions{Proposal: signed, Dial: trustee.CeremonyDialer(), PhaseTimeout: 2 * time.Second})
		// 2-of-3 goes ahead without the fresh node (it holds nothing),
		// or fails; either way the fresh node took no part.
		if err == nil && !strings.Contains(strings.Join(rep.Excluded, ","), fresh.Trustees[0].Descriptor.Name) {
			t.Fatalf("the fresh node took part: holders %v excluded %v", rep.Holders, rep.Excluded)
		}
		st := nodeStatus(t, fresh.Trustees[0].Dir)
		if len(st.Epochs) != 0 || st.Index != 0 || len(st.Ceremonies.InProgress) != 0 || st.AuditSize != 0 {
			t.Fatalf("the fresh node changed: %+v", st)
		}
	})

	t.Run("slot filling and flooding", func(t *testing.T) {
		tr := honest.Trustees[0]
		c, _ := trustee.CeremonyDialer()(tr.Member)
		dbBefore := fileSize(t, filepath.Join(tr.Dir, "node.db"))
		start := time.Now()
		const calls = 300
		for i := 0; i < calls; i++ {
			p, _ := ceremony.DKGProposal(roster(evil), 2, escrow.GroupEpoch{Epoch: 1, ValidFrom: time.Now(), ValidUntil: time.Now().Add(time.Hour)}, time.Now().Add(time.Minute), rand.Reader)
			p.Roster = append(p.Roster, tr.Member)
			p.Roster[2].Index = 3
			forged, _ := ceremony.SignProposal(p, mustSigner(t))
			params := ceremony.CeremonyParams{Version: ceremony.CeremonyParamsVersion, ID: p.ID, Kind: ceremony.CeremonyDKG, Epoch: 1, Threshold: 2,
				Roster: p.Roster, ValidFrom: p.ValidFrom, ValidUntil: p.ValidUntil, Deadline: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), Proposal: string(forged)}
			if _, err := c.Ceremony(ctx, ceremony.PathCeremonyPrepare, &ceremony.CeremonyCall{ID: p.ID, Params: &params}); !errors.Is(err, ceremony.ErrNotApproved) {
				t.Fatalf("prepare %d: %v", i, err)
			}
		}
		rate := float64(calls) / time.Since(start).Seconds()
		// Junk messages for a ceremony the node does not run.
		junk := make([][]byte, 2000)
		for i := range junk {
			junk[i] = []byte(`{"version":"keyquorum dkg message v1","epoch":1,"kind":"deal","from":` + strconv.Itoa(i) + `}`)
		}
		for i := 0; i < 6; i++ {
			if _, err := c.Ceremony(ctx, ceremony.PathCeremonyDeliver, &ceremony.CeremonyCall{ID: "0123456789abcdef0123456789abcdef", Messages: junk}); !errors.Is(err, ceremony.ErrNoCeremony) {
				t.Fatalf("flood: %v", err)
			}
		}
		st := nodeStatus(t, tr.Dir)
		if len(st.Ceremonies.InProgress) != 0 {
			t.Fatalf("unapproved calls hold slots: %v", st.Ceremonies.InProgress)
		}
		growth := fileSize(t, filepath.Join(tr.Dir, "node.db")) - dbBefore
		if growth > 1<<20 {
			t.Fatalf("the store grew by %d bytes under unapproved calls", growth)
		}
		t.Logf("refused %d unapproved prepares at %.0f per second from one client; store grew %d bytes", calls, rate, growth)
	})

	t.Run("maximum-size concurrent calls", func(t *testing.T) {
		tr := honest.Trustees[1]
		rssBefore := rss(t, tr.PID())
		body := bytes.Repeat([]byte("x"), 14<<20)
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		for i := 0; i < 24; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code := postRaw(ctx, tr.Member, ceremony.PathCeremonyDeliver, body)
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		after := rss(t, tr.PID())
		t.Logf("24 concurrent 14 MiB bodies: answers %v; RSS %d MiB -> %d MiB", codes, rssBefore>>20, after>>20)
		if codes[http.StatusOK] != 0 {
			t.Fatalf("a junk body was accepted: %v", codes)
		}
		if after-rssBefore > 128<<20 {
			t.Fatalf("RSS grew from %d MiB to %d MiB", rssBefore>>20, after>>20)
		}
	})

	checkUnchanged(t, "an outsider's attacks", before, snapshot(t, honest))

	// The operators' own rotation still runs, and every trustee logs its
	// approval and completion.
	rep, err := honest.Rotate(ctx, escrow.GroupEpoch{}, fedrun.CeremonyOptions{PhaseTimeout: 3 * time.Second})
	if err != nil {
		t.Fatalf("the operators' rotation after the attacks: %v", err)
	}
	for _, tr := range honest.Trustees {
		st := nodeStatus(t, tr.Dir)
		if got := st.AuditSize - before[tr.Name].status.AuditSize; got != 2 {
			t.Errorf("%s: %d new audit records for an approved and completed rotation, want 2", tr.Name, got)
		}
	}
	t.Logf("rotation %s after the attacks: %d holders", rep.CeremonyID, len(rep.Holders))
}

func proposalParams(t *testing.T, signed, group []byte) ceremony.CeremonyParams {
	t.Helper()
	text, _, _ := strings.Cut(string(signed), "\n\n")
	p, err := ceremony.ParseProposalText(text + "\n")
	if err != nil {
		t.Fatal(err)
	}
	kind := ceremony.CeremonyDKG
	if p.Kind == ceremony.ProposeReshare {
		kind = ceremony.CeremonyReshare
	}
	return ceremony.CeremonyParams{Version: ceremony.CeremonyParamsVersion, ID: p.ID, Kind: kind, Epoch: p.Epoch, Threshold: p.Threshold,
		Roster: p.Roster, ValidFrom: p.ValidFrom, ValidUntil: p.ValidUntil, Deadline: p.Deadline, Group: string(group), Proposal: string(signed)}
}

func mustSigner(t *testing.T) note.Signer {
	skey, _, err := note.GenerateKey(rand.Reader, escrow.LogKeyName("evil-1"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// rss reads a process's resident set size from /proc.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// postRaw posts body to a trustee's API and returns the status (0 if the
// connection failed, as when the node closes it on an oversized body).
func postRaw(ctx context.Context, m escrow.GroupMember, path string, body []byte) int {
	c, err := trustee.CeremonyDialer()(m)
	if err != nil {
		return 0
	}
	hc := c.(*ceremony.HTTPCaller)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hc.Base+path, bytes.NewReader(body))
	resp, err := hc.Client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

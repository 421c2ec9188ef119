package fedrun_test

// Integration tests of dealerless key generation among real trustee
// processes: this test process only coordinates (ceremony.RunDKG relays the
// trustees' messages over TLS); every trustee makes, checks and installs
// its own share.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/fedrun"
	"github.com/keyquorum/keyquorum/internal/sim"
	"github.com/keyquorum/keyquorum/trustee"
)

// checkInstalled asserts that every member of the group installed the
// group file clients got, and that the group was made by a DKG.
func checkInstalled(t *testing.T, fed *fedrun.Federation) {
	t.Helper()
	if fed.Group.KeyGeneration != "dkg" {
		t.Errorf("key generation %q", fed.Group.KeyGeneration)
	}
	want, err := os.ReadFile(fed.GroupPath)
	if err != nil {
		t.Fatal(err)
	}
	holders := fed.Group.HolderIndices(fed.Group.Epochs[0])
	for _, tr := range fed.Members() {
		if !slices.Contains(holders, tr.Index) {
			continue // it took no part in the first ceremony, so has no file
		}
		got, err := os.ReadFile(filepath.Join(tr.Dir, "group.json"))
		if err != nil {
			t.Fatalf("%s: %v", tr.Name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s installed another group file than %s", tr.Name, fed.GroupPath)
		}
	}
}

// TestDKGOneTrusteeDown: trustee-3 of five is not running when the
// ceremony starts. The roster is the one every operator approved, so
// trustee-3 stays in it under a key nobody holds: the other four make the
// 3-of-5 key, trustee-3 holds no share of it, and a warrant decrypts its
// sessions with that group.
func TestDKGOneTrusteeDown(t *testing.T) {
	fx := newFixture(t, fixtureConfig{trustees: 5, threshold: 3, dkg: true, down: []int{3}, timeout: 2 * time.Second})
	rep := fx.reports[0]
	if !slices.Equal(rep.Excluded, []string{"trustee-3"}) || !slices.Equal(rep.Holders, []int{1, 2, 4, 5}) {
		t.Fatalf("excluded %v, holders %v", rep.Excluded, rep.Holders)
	}
	for _, d := range rep.Disqualified {
		if d.Name != "trustee-3" {
			t.Fatalf("disqualified %s: %s", d.Name, d.Reason)
		}
	}
	g := fx.fed.Group
	var names []string
	for _, m := range g.Trustees {
		names = append(names, m.Name)
	}
	if !slices.Equal(names, []string{"trustee-1", "trustee-2", "trustee-3", "trustee-4", "trustee-5"}) || g.Threshold != 3 ||
		!slices.Equal(g.Epochs[0].Holders, []int{1, 2, 4, 5}) {
		t.Fatalf("roster %v, threshold %d, holders %v", names, g.Threshold, g.Epochs[0].Holders)
	}
	checkInstalled(t, fx.fed)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := fx.decrypt(ctx, g, fx.fed.Clients(), fx.inScope)
	if err != nil {
		t.Fatal(err)
	}
	fx.checkRecovered(t, res, fx.inScope)
	granted := 0
	for _, r := range res.Trustees {
		if r.Status == trustee.StatusGranted {
			granted++
		}
	}
	if granted < 3 {
		t.Fatalf("%d trustees granted: %+v", granted, res.Trustees)
	}

	// The trustee that was down comes back with no group and no share: the
	// key was made without it.
	if err := fx.fed.Trustees[2].Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(fx.fed.Trustees[2].Dir, "group.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("trustee-3 has a group file: %v", err)
	}
	held, err := fx.fed.Trustees[2].StoredShares(testPassphrase)
	if err != nil || len(held) != 0 {
		t.Errorf("trustee-3 stores %d shares (%v)", len(held), err)
	}
}

// TestDKGTrusteeRestartedMidCeremony: right after the deals are made,
// trustee-2 is killed with SIGKILL and started again from the same data
// directory. Its ceremony state, sealed in its store, lets it carry on: the
// ceremony ends with all five holding a share, and the key decrypts.
func TestDKGTrusteeRestartedMidCeremony(t *testing.T) {
	restarted := false
	var oldPID int
	hook := func(fed *fedrun.Federation, phase string) {
		if phase != "start" || restarted {
			return
		}
		restarted = true
		tr := fed.Trustees[1]
		oldPID = tr.PID()
		if err := tr.Kill(); err != nil {
			t.Error(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := tr.Start(ctx); err != nil {
			t.Error(err)
		}
	}
	fx := newFixture(t, fixtureConfig{trustees: 5, threshold: 3, dkg: true, hook: hook})
	if !restarted {
		t.Fatal("the ceremony never reached the start phase hook")
	}
	if pid := fx.fed.Trustees[1].PID(); pid == oldPID || pid == 0 {
		t.Fatalf("trustee-2 was not restarted (pid %d, before %d)", pid, oldPID)
	}
	rep := fx.reports[0]
	if len(rep.Holders) != 5 || len(rep.Excluded) != 0 || len(rep.Disqualified) != 0 {
		t.Fatalf("holders %v, excluded %v, disqualified %v, problems %v", rep.Holders, rep.Excluded, rep.Disqualified, rep.Problems)
	}
	checkInstalled(t, fx.fed)
	log, err := os.ReadFile(filepath.Join(fx.fed.Trustees[1].Dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "resume") {
		t.Errorf("trustee-2's log does not show it resumed a ceremony:\n%s", log)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// trustee-2's share is needed: decrypt with it and two others only.
	clients := fx.fed.Clients()
	for _, i := range []int{3, 4} {
		fx.fed.Trustees[i].Stop(5 * time.Second)
	}
	res, err := fx.decrypt(ctx, fx.fed.Group, clients, fx.inScope)
	if err != nil {
		t.Fatal(err)
	}
	fx.checkRecovered(t, res, fx.inScope)
}

// TestDKGRotationRetention: a first DKG makes epoch 1, two rotations make
// epochs 2 and 3, all with windows in the past but the last, and every
// trustee keeps 2 epochs. Each trustee destroys its epoch-1 share by
// itself when the later epochs are installed and logs it; epoch-1 sessions
// are then out of reach even with every trustee cooperating, while epoch-2
// and epoch-3 sessions decrypt.
func TestDKGRotationRetention(t *testing.T) {
	fx := newFixture(t, fixtureConfig{trustees: 5, threshold: 3, dkg: true, epochs: 3, epochDays: 7, retention: 2})
	g := fx.fed.Group
	if len(g.Epochs) != 3 || len(fx.reports) != 3 {
		t.Fatalf("%d epochs from %d ceremonies", len(g.Epochs), len(fx.reports))
	}
	for i, rep := range fx.reports {
		if len(rep.Holders) != 5 {
			t.Errorf("ceremony %d: holders %v", i+1, rep.Holders)
		}
	}
	checkInstalled(t, fx.fed)
	now := time.Now()
	if e, err := g.EpochAt(now); err != nil || e.Epoch != 3 || !g.Epochs[1].ValidUntil.Before(now) {
		t.Fatalf("epoch at now: %v %v; epochs %+v", e, err, g.Epochs)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Every trustee logged the destruction of epoch 1, and of no other.
	ar, err := trustee.Audit(ctx, g, fx.fed.Clients(), nil, trustee.AuditOptions{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(ar.Logs) != 5 {
		t.Fatalf("%d logs verified: %+v", len(ar.Logs), ar.Trustees)
	}
	for _, l := range ar.Logs {
		var destroyed []uint64
		for _, rec := range l.Records {
			if rec.Kind == trustee.AuditKindShareDestroyed {
				destroyed = append(destroyed, rec.Epoch)
			}
		}
		if !slices.Equal(destroyed, []uint64{1}) {
			t.Errorf("%s logged destroying epochs %v, want [1]", l.Trustee, destroyed)
		}
	}
	// What every trustee's disk still holds.
	for _, tr := range fx.fed.Trustees {
		held, err := tr.StoredShares(testPassphrase)
		if err != nil {
			t.Fatal(err)
		}
		var epochs []uint32
		for _, s := range held {
			epochs = append(epochs, s.Epoch)
		}
		slices.Sort(epochs)
		if !slices.Equal(epochs, []uint32{2, 3}) {
			t.Errorf("%s stores epochs %v, want [2 3]", tr.Name, epochs)
		}
	}

	var old, kept []*sim.Captured
	for _, c := range fx.inScope {
		if c.Context.Epoch == 1 {
			old = append(old, c)
		} else {
			kept = append(kept, c)
		}
	}
	if len(old) == 0 || len(kept) == 0 || !slices.ContainsFunc(kept, func(c *sim.Captured) bool { return c.Context.Epoch == 2 }) {
		t.Fatalf("in scope: %d sessions of epoch 1, %d of epochs 2 and 3", len(old), len(kept))
	}
	res, err := fx.decrypt(ctx, g, fx.fed.Clients(), kept)
	if err != nil {
		t.Fatal(err)
	}
	fx.checkRecovered(t, res, kept)

	_, err = fx.decrypt(ctx, g, fx.fed.Clients(), old)
	var qe *trustee.QuorumError
	if !errors.As(err, &qe) || qe.Unrecovered != len(old) || !qe.Refused {
		t.Fatalf("epoch-1 sessions: %v", err)
	}
	for _, r := range qe.Trustees {
		if r.Status != trustee.StatusRefused || r.Code != trustee.CodeEpochDestroyed {
			t.Errorf("%s: %s (%s): %s", r.Name, r.Status, r.Code, r.Reason)
		}
	}
}

package fedrun_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
)

// TestTLSRotation rotates a running trustee's TLS key as its operator
// would (stop, keyquorum trustee tls rotate, start), against real
// processes: a client pinned to the old key is refused by the restarted
// node with ErrPinMismatch, the signed pin update checks against the
// group file clients hold, the next group file made from it is signed by
// every running trustee over its control socket, and a client pinned to
// the new key connects.
func TestTLSRotation(t *testing.T) {
	fx := newFixture(t, fixtureConfig{trustees: 3, threshold: 2})
	fed := fx.fed
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t1 := fed.Trustees[0]
	oldMember := t1.Member
	if _, err := t1.Client.Info(ctx); err != nil {
		t.Fatalf("before the rotation: %v", err)
	}
	passFile := filepath.Join(fed.Dir, "passphrase")
	keyquorum := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, keyquorumBin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("keyquorum %v: %v\n%s", args, err, out)
		}
		return string(out)
	}

	if err := t1.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	update := filepath.Join(fed.Dir, "trustee-1.pin-update")
	keyquorum("trustee", "tls", "rotate", "--dir", t1.Dir, "--passphrase-file", passFile, "--out", update)
	ub, err := os.ReadFile(update)
	if err != nil {
		t.Fatal(err)
	}
	// A client checks the update against the group file it trusts.
	u, err := trustee.OpenPinUpdate(ub, fed.Group)
	if err != nil {
		t.Fatal(err)
	}
	if u.OldPin != oldMember.TLSPin || u.NewPin == u.OldPin {
		t.Fatalf("update %+v, old member pin %s", u, oldMember.TLSPin)
	}
	newMember := oldMember
	newMember.TLSPin = u.NewPin
	t1.Member = newMember
	if t1.Client, err = trustee.NewClient(newMember); err != nil {
		t.Fatal(err)
	}
	if err := t1.Start(ctx); err != nil { // waits until the new pin answers
		t.Fatal(err)
	}

	// The old pin is refused.
	oldClient, err := trustee.NewClient(oldMember)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oldClient.Info(ctx); !errors.Is(err, trustee.ErrPinMismatch) {
		t.Fatalf("client pinned to the old key: %v, want ErrPinMismatch", err)
	}
	info, err := t1.Client.Info(ctx)
	if err != nil {
		t.Fatalf("client pinned to the new key: %v", err)
	}
	if info.Name != "trustee-1" {
		t.Fatalf("info names %q", info.Name)
	}

	// The running trustee-1 refuses, over its control socket, to sign
	// the old group file, which pins its old key.
	out, err := exec.CommandContext(ctx, keyquorumBin, "trustee", "sign-group", "--dir", t1.Dir, "--group", fed.GroupPath, "--out", filepath.Join(fed.Dir, "x")).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "with TLS pin") {
		t.Fatalf("signing the old group file after the rotation: %v\n%s", err, out)
	}

	// The next group file, signed by every trustee while it serves (over
	// its control socket: no passphrase, no restart), verifies with the
	// new pin and nothing else changed.
	next := filepath.Join(fed.Dir, "group.next")
	keyquorum("group", "apply-pin-update", "--group", fed.GroupPath, "--update", update, "--out", next)
	for _, tr := range fed.Trustees {
		out := keyquorum("trustee", "sign-group", "--dir", tr.Dir, "--group", next, "--out", next)
		if !strings.Contains(out, tr.Name+" signed "+next) {
			t.Fatalf("sign-group over %s's control socket: %s", tr.Name, out)
		}
		if !tr.Running() {
			t.Fatalf("%s stopped", tr.Name)
		}
	}
	nb, err := os.ReadFile(next)
	if err != nil {
		t.Fatal(err)
	}
	ng, _, err := escrow.VerifyGroupFile(nb, true)
	if err != nil {
		t.Fatal(err)
	}
	if ng.Trustees[0].TLSPin != u.NewPin || ng.Trustees[1] != fed.Group.Trustees[1] || ng.Trustees[2] != fed.Group.Trustees[2] {
		t.Fatal("the next group file is not the old one with trustee-1's new pin")
	}
	for _, m := range ng.Trustees {
		c, err := trustee.NewClient(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Info(ctx); err != nil {
			t.Fatalf("%s pinned by the next group file: %v", m.Name, err)
		}
	}
	// The update does not apply twice.
	if _, err := trustee.OpenPinUpdate(ub, ng); !errors.Is(err, trustee.ErrBadPinUpdate) {
		t.Fatalf("the update against the next group file: %v", err)
	}
}

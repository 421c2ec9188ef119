package fedrun_test

// Federations at a distance: every trustee process on a network stack of
// its own (a Linux network namespace), each link 25 ms one way and lossy,
// as five organisations on five machines far apart would be. See package
// netlab for how the links are made.

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/fedrun"
	"github.com/keyquorum/keyquorum/internal/netlab"
	"github.com/keyquorum/keyquorum/trustee"
)

// distance is each trustee link's one-way delay: 50 ms round trips
// between the requester (or coordinator) and a trustee.
const distance = 25 * time.Millisecond

// distantLab skips the test where namespaces cannot be made, saying why,
// and returns the links' configuration.
func distantLab(t *testing.T) *netlab.Config {
	t.Helper()
	if keyquorumBin == "" {
		t.Skip("integration test with trustee processes; skipped in -short mode")
	}
	if err := netlab.Available(); err != nil {
		t.Skipf("federation at a distance: %v; run the tests as root on Linux (CI does) to include it", err)
	}
	return &netlab.Config{Delay: distance, Loss: 0.005}
}

// TestFederationAtADistance: five trustee processes, each in a network
// namespace of its own behind a link of 25 ms each way and 0.5% loss each
// way, make a 3-of-5 key by DKG and serve warranted decryptions. A
// decryption of every session in scope succeeds; two trustees killed with
// SIGKILL while a request is in flight are named unreachable and the other
// three decrypt every session; with a third killed, the requester fails
// with ErrInsufficientQuorum naming the three unreachable trustees.
func TestFederationAtADistance(t *testing.T) {
	lab := distantLab(t)
	fx := newFixture(t, fixtureConfig{trustees: 5, threshold: 3, dkg: true, lab: lab, days: 20, perDay: 3, timeout: 10 * time.Second})
	if ns := fx.fed.Trustees[0].Namespace(); ns == "" || ns == fx.fed.Trustees[1].Namespace() {
		t.Fatalf("trustees are not in namespaces of their own: %q, %q", ns, fx.fed.Trustees[1].Namespace())
	}
	t.Logf("DKG of 3-of-5 at %v one way: %v", distance, fx.reports[0].Took.Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t0 := time.Now()
	res, err := fx.decrypt(ctx, fx.fed.Group, fx.fed.Clients(), fx.inScope)
	if err != nil {
		t.Fatal(err)
	}
	fx.checkRecovered(t, res, fx.inScope)
	t.Logf("3-of-5 warranted decryption of %d sessions: %v", len(fx.inScope), time.Since(t0).Round(time.Millisecond))
	var lat []time.Duration
	for _, c := range fx.inScope[:5] {
		t0 := time.Now()
		res, err := fx.decrypt(ctx, fx.fed.Group, fx.fed.Clients(), fx.inScope[:1])
		if err != nil {
			t.Fatalf("single session %s: %v", c.Context.SessionID, err)
		}
		fx.checkRecovered(t, res, fx.inScope[:1])
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("single-session warrants at %v round trip: %v", 2*distance, lat)

	// Two trustees killed mid-request: each connection is warm (the
	// decryptions above), so the request leaves at once; the kill comes
	// 1.5 one-way delays later, when the request has had time to arrive
	// and no answer can have come back (that takes a round trip).
	victims := []*fedrun.Trustee{fx.fed.Trustees[1], fx.fed.Trustees[3]}
	done := make(chan struct{})
	t0 = time.Now()
	go func() {
		defer close(done)
		res, err = fx.decrypt(ctx, fx.fed.Group, fx.fed.Clients(), fx.inScope)
	}()
	time.Sleep(distance * 3 / 2)
	select {
	case <-done:
		t.Fatal("the request was over before the kill")
	default:
	}
	for _, v := range victims {
		if err := v.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	if err != nil {
		t.Fatalf("decryption with two of five trustees killed mid-request: %v", err)
	}
	t.Logf("the same with two trustees killed %v into it: %v", distance*3/2, time.Since(t0).Round(time.Millisecond))
	fx.checkRecovered(t, res, fx.inScope)
	for i, r := range res.Trustees {
		want := trustee.StatusGranted
		if i == 1 || i == 3 {
			want = trustee.StatusUnreachable
		}
		if r.Status != want {
			t.Errorf("%s: %s (%s), want %s", r.Name, r.Status, r.Reason, want)
		}
	}

	// A third down: the two left cannot make a quorum of three, and
	// neither even answers: each reaches one of the w = 2 witnesses its
	// release needs, so it refuses with witness-quorum and releases nothing.
	if err := fx.fed.Trustees[0].Kill(); err != nil {
		t.Fatal(err)
	}
	res, err = fx.decrypt(ctx, fx.fed.Group, fx.fed.Clients(), fx.inScope[:3])
	var qe *trustee.QuorumError
	if !errors.Is(err, trustee.ErrInsufficientQuorum) || !errors.As(err, &qe) || errors.Is(err, trustee.ErrQuorumRefused) {
		t.Fatalf("with three of five down: %v, want a *QuorumError for ErrInsufficientQuorum", err)
	}
	if qe.Usable != 0 || qe.Threshold != 3 || qe.Unrecovered != 3 || len(res.Keys) != 0 {
		t.Errorf("quorum error: usable %d, threshold %d, %d unrecovered, %d keys", qe.Usable, qe.Threshold, qe.Unrecovered, len(res.Keys))
	}
	for _, i := range []int{2, 4} {
		if r := res.Trustees[i]; r.Code != trustee.CodeWitnessQuorum {
			t.Errorf("%s: %s %q (%s), want a %s refusal", r.Name, r.Status, r.Code, r.Reason, trustee.CodeWitnessQuorum)
		}
	}
	for _, name := range []string{"trustee-1", "trustee-2", "trustee-4"} {
		if !strings.Contains(err.Error(), name+" unreachable") {
			t.Errorf("the error does not name %s unreachable: %v", name, err)
		}
	}
}

// TestDKGAtADistance16: sixteen trustee processes, each in a namespace of
// its own behind a link of 25 ms each way and 0.5% loss, make a 9-of-16
// key by DKG with this process coordinating; every one of them holds a
// share and installed the group file. (`keyquorum bench dkg --netem 25ms`
// reports the time; the goal is under 10 s.)
func TestDKGAtADistance16(t *testing.T) {
	lab := distantLab(t)
	fx := newFixture(t, fixtureConfig{trustees: 16, threshold: 9, dkg: true, lab: lab, timeout: 10 * time.Second})
	rep := fx.reports[0]
	t.Logf("DKG of 9-of-16 at %v one way: %v", distance, rep.Took.Round(time.Millisecond))
	want := make([]int, 16)
	for i := range want {
		want[i] = i + 1
	}
	if !slices.Equal(rep.Holders, want) || len(rep.Excluded) != 0 || fx.fed.Group.Threshold != 9 {
		t.Fatalf("holders %v, excluded %v, threshold %d", rep.Holders, rep.Excluded, fx.fed.Group.Threshold)
	}
	checkInstalled(t, fx.fed)
}

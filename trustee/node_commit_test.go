package trustee_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/trustee"
	"golang.org/x/mod/sumdb/tlog"
)

// slowCountingStore is a memory store whose commits take a while, as a
// synced disk write does, and are counted.
type slowCountingStore struct {
	*trustee.MemAuditStore
	delay   time.Duration
	commits atomic.Int64
}

func (s *slowCountingStore) Append(start int64, records [][]byte, hashes []tlog.Hash, checkpoint []byte) error {
	time.Sleep(s.delay)
	s.commits.Add(1)
	return s.MemAuditStore.Append(start, records, hashes, checkpoint)
}

// TestConcurrentGrantsShareCommits: grants decided at once by one node are
// logged in shared commits (the node does not hold its lock across the
// log's append), and each is still answered only with its record in the
// checkpoint it comes with.
func TestConcurrentGrantsShareCommits(t *testing.T) {
	w := newWorld(t)
	store := &slowCountingStore{MemAuditStore: trustee.NewMemAuditStore(), delay: 3 * time.Millisecond}
	p := w.policy()
	const grants = 32
	p.RateLimit = 0
	p.MaxSessionsPerWarrant = grants
	n := w.node(t, 1, p, store)
	base := store.commits.Load()
	warrant := w.warrant(t, func(wr *escrow.Warrant) { wr.MaxSessions = grants })
	reqs := make([][]byte, grants)
	for i := range reqs {
		reqs[i] = w.request(t, warrant, w.requester, w.session(t, "alice", "bob", t0.Add(15*day)))
	}
	answers := make([]*trustee.Answer, grants)
	errs := make([]error, grants)
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Go(func() { answers[i], errs[i] = n.Decide(reqs[i]) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("grant %d: %v", i, err)
		}
		tree, err := trustee.VerifyHead(answers[i].Head, n.logKey)
		if err != nil || answers[i].RecordIndex >= tree.N {
			t.Fatalf("grant %d: record %d under head %+v (%v)", i, answers[i].RecordIndex, tree, err)
		}
	}
	commits := store.commits.Load() - base
	if size, _ := store.Size(); size != grants {
		t.Fatalf("log holds %d records, want %d", size, grants)
	}
	if commits > grants/2 {
		t.Errorf("%d grants took %d commits; concurrent grants should share them", grants, commits)
	}
	t.Logf("%d concurrent grants in %d commits", grants, commits)
}

// TestUnloggedGrantIsNotCounted: a grant reserved against the session cap
// and the rate limit but then not logged (the store failed) is rolled
// back, so it neither uses up the warrant's sessions nor the judge's rate.
func TestUnloggedGrantIsNotCounted(t *testing.T) {
	w := newWorld(t)
	store := &failingStore{MemAuditStore: trustee.NewMemAuditStore()}
	p := w.policy()
	p.RateLimit = 1
	n := w.node(t, 1, p, store)
	warrant := w.warrant(t, func(wr *escrow.Warrant) { wr.MaxSessions = 1 })
	a := w.session(t, "alice", "bob", t0.Add(15*day))
	b := w.session(t, "alice", "bob", t0.Add(16*day))

	store.setFail(true)
	_, err := n.Decide(w.request(t, warrant, w.requester, a))
	var re *trustee.RefusalError
	if !errors.As(err, &re) || re.Code != trustee.CodeAuditUnavailable || !errors.Is(err, errStoreDown) {
		t.Fatalf("with the store down: %v, want %s", err, trustee.CodeAuditUnavailable)
	}
	store.setFail(false)
	// Had the failed grant been counted, this would be refused with
	// rate-limited (1 per period) or session-cap (1 session).
	grant(t, n, w.request(t, warrant, w.requester, b))
	if size, _ := store.Size(); size != 1 {
		t.Fatalf("log holds %d records, want the 1 grant", size)
	}
	// And the cap still holds for the grant that was logged.
	p.RateLimit = 0
	if err := n.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	refuse(t, n, w.request(t, warrant, w.requester, a), trustee.CodeSessionCap, trustee.ErrSessionCap)
}

// TestConcurrentCopiesLoggedOnce: copies of one request decided at once
// (a requester retrying, or an attacker replaying it in parallel) make one
// grant record; every copy gets the grant's record.
func TestConcurrentCopiesLoggedOnce(t *testing.T) {
	w := newWorld(t)
	store := &slowCountingStore{MemAuditStore: trustee.NewMemAuditStore(), delay: 3 * time.Millisecond}
	n := w.node(t, 1, w.policy(), store)
	req := w.request(t, w.warrant(t, nil), w.requester, w.session(t, "alice", "bob", t0.Add(15*day)))
	const copies = 16
	answers := make([]*trustee.Answer, copies)
	errs := make([]error, copies)
	var wg sync.WaitGroup
	for i := range copies {
		wg.Go(func() { answers[i], errs[i] = n.Decide(req) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("copy %d: %v", i, err)
		}
		if answers[i].RecordIndex != answers[0].RecordIndex {
			t.Errorf("copy %d under record %d, copy 0 under %d", i, answers[i].RecordIndex, answers[0].RecordIndex)
		}
	}
	if size, _ := store.Size(); size != 1 {
		t.Fatalf("%d copies made %d records, want 1", copies, size)
	}
}

package auditlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// testLogKey returns a deterministic note key pair for name, different for
// each seed byte.
func testLogKey(t testing.TB, name string, seed byte) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 64)), name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

var testEpoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testClock() time.Time { return testEpoch }

func hexOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// testRecord returns a valid record that differs for every i and tag.
func testRecord(i int, tag string) Record {
	base := Record{
		Time:        testEpoch.Add(time.Duration(i) * time.Second),
		Epoch:       uint64(i/5) + 1,
		WarrantID:   fmt.Sprintf("W-%s-%d", tag, i),
		WarrantHash: hexOf("warrant " + tag + fmt.Sprint(i)),
		Judges:      []string{"judge-a.example"},
		Requester:   hexOf("requester"),
		CaseRefHash: hexOf("case reference " + tag),
	}
	switch i % 3 {
	case 0:
		base.Kind, base.Decision = KindDecision, Granted
		base.Sessions = []string{fmt.Sprintf("session-%d", i), fmt.Sprintf("session-%d", i+1)}
		base.Epochs = []uint64{1, uint64(i) + 2}
	case 1:
		base.Kind, base.Decision = KindDecision, Refused
		base.Refusal = &Refusal{Code: "out-of-scope"}
	default:
		return Record{Time: base.Time, Kind: KindShareDestroyed, Epoch: uint64(i)}
	}
	return base
}

func newTestLog(t testing.TB) (*Log, *MemStore, note.Verifier) {
	t.Helper()
	signer, verifier := testLogKey(t, "trustee-1.keyquorum", 1)
	store := NewMemStore()
	l, err := New(store, signer, testClock)
	if err != nil {
		t.Fatal(err)
	}
	return l, store, verifier
}

// appendN appends n records tagged tag and returns the verified head after
// each size, heads[0] being the empty log's.
func appendN(t testing.TB, l *Log, v note.Verifier, n int, tag string) []tlog.Tree {
	t.Helper()
	h, err := l.Head()
	if err != nil {
		t.Fatal(err)
	}
	tree, err := VerifyCheckpoint(h.Note, v)
	if err != nil {
		t.Fatal(err)
	}
	heads := []tlog.Tree{tree}
	for i := range n {
		rec := testRecord(i, tag)
		idx, head, proof, err := l.Append(rec)
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		tree, err := VerifyCheckpoint(head.Note, v)
		if err != nil {
			t.Fatalf("append %d: head: %v", i, err)
		}
		if tree != head.Tree || tree.N != idx+1 {
			t.Fatalf("append %d: index %d, head %+v, signed tree %+v", i, idx, head.Tree, tree)
		}
		data, err := rec.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(tree, idx, data, proof); err != nil {
			t.Fatalf("append %d: proof returned by Append: %v", i, err)
		}
		heads = append(heads, tree)
	}
	return heads
}

// rfc6962Root computes the Merkle tree hash of RFC 6962, section 2.1,
// directly from its recursive definition, independently of tlog.
func rfc6962Root(leaves [][]byte) tlog.Hash {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, leaves[0]...))
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := rfc6962Root(leaves[:k]), rfc6962Root(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

// rfc9162CheckInclusion verifies an audit path with the algorithm of RFC
// 9162, section 2.1.3.2, independently of tlog.
func rfc9162CheckInclusion(index, size int64, leaf []byte, path []tlog.Hash, root tlog.Hash) bool {
	if index >= size {
		return false
	}
	fn, sn := index, size-1
	r := sha256.Sum256(append([]byte{0}, leaf...))
	node := func(a, b tlog.Hash) tlog.Hash {
		return sha256.Sum256(append(append([]byte{1}, a[:]...), b[:]...))
	}
	for _, p := range path {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			r = node(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = node(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	return sn == 0 && r == root
}

func TestAuditLogInclusionEveryHead(t *testing.T) {
	l, store, v := newTestLog(t)
	const n = 33
	heads := appendN(t, l, v, n, "a")

	var records [][]byte
	for i := range int64(n) {
		rec, data, err := l.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		want := testRecord(int(i), "a")
		if !recordsEqual(rec, want) {
			t.Fatalf("record %d = %+v, want %+v", i, rec, want)
		}
		raw, _ := store.ReadRecord(i)
		if !bytes.Equal(raw, data) {
			t.Fatalf("record %d: Record bytes differ from stored bytes", i)
		}
		records = append(records, data)
	}
	for k := int64(0); k <= n; k++ {
		if got, want := heads[k].Hash, rfc6962Root(records[:k]); got != want {
			t.Fatalf("head %d: hash %v, RFC 6962 says %v", k, got, want)
		}
		for i := range k {
			proof, err := l.InclusionProof(i, k)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(heads[k], i, records[i], proof); err != nil {
				t.Errorf("record %d in head %d: %v", i, k, err)
			}
			if !rfc9162CheckInclusion(i, k, records[i], proof, heads[k].Hash) {
				t.Errorf("record %d in head %d: RFC 9162 check refuses tlog's proof", i, k)
			}
		}
	}
}

func TestAuditLogConsistencyEveryPair(t *testing.T) {
	l, _, v := newTestLog(t)
	const n = 13
	heads := appendN(t, l, v, n, "c")
	for a := int64(0); a <= n; a++ {
		for b := a; b <= n; b++ {
			proof, err := l.ConsistencyProof(a, b)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(heads[a], heads[b], proof); err != nil {
				t.Errorf("%d -> %d: %v", a, b, err)
			}
			if a == 0 {
				continue
			}
			// The same proof must not connect altered heads.
			oldBad, newBad := heads[a], heads[b]
			oldBad.Hash[0] ^= 1
			newBad.Hash[31] ^= 1
			if err := VerifyConsistency(oldBad, heads[b], proof); !errors.Is(err, ErrForked) {
				t.Errorf("%d -> %d with altered old hash: err = %v, want ErrForked", a, b, err)
			}
			if err := VerifyConsistency(heads[a], newBad, proof); !errors.Is(err, ErrForked) {
				t.Errorf("%d -> %d with altered new hash: err = %v, want ErrForked", a, b, err)
			}
			if len(proof) > 0 {
				if err := VerifyConsistency(heads[a], heads[b], proof[:len(proof)-1]); !errors.Is(err, ErrForked) {
					t.Errorf("%d -> %d with truncated proof: err = %v, want ErrForked", a, b, err)
				}
			}
			if err := VerifyConsistency(heads[b], heads[a], proof); a != b && !errors.Is(err, ErrShrank) {
				t.Errorf("%d -> %d reversed: err = %v, want ErrShrank", a, b, err)
			}
		}
	}
}

// replaceStore rebuilds s from records, recomputing every hash, as someone
// with write access to the trustee's disk and no signing key could.
func replaceStore(t *testing.T, s *MemStore, records [][]byte) {
	t.Helper()
	fresh := NewMemStore()
	for i, r := range records {
		hs, err := tlog.StoredHashes(int64(i), r, fresh)
		if err != nil {
			t.Fatal(err)
		}
		if err := fresh.Append(int64(i), [][]byte{r}, hs, nil); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	s.records, s.hashes = fresh.records, fresh.hashes
	s.mu.Unlock()
}

func TestAuditLogDetectsRewrite(t *testing.T) {
	const n, victim = 8, 3
	forged, err := Record{Time: testEpoch, Kind: KindShareDestroyed, Epoch: 99}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// tamper alters the store and returns what the rewritten record
		// now reads as.
		tamper func(t *testing.T, s *MemStore, records [][]byte)
		// recordErr is what the running trustee's Record(victim) returns.
		recordErr error
		// headErr is what the running trustee's Head returns, and
		// restartErr what New returns over the store after a restart:
		// the log refuses to sign a fork either way.
		headErr    error
		restartErr error
	}{
		{
			name: "record bytes rewritten",
			tamper: func(t *testing.T, s *MemStore, _ [][]byte) {
				s.records[victim] = forged
			},
			recordErr: ErrStoreCorrupt,
		},
		{
			name: "record and its leaf hash rewritten",
			tamper: func(t *testing.T, s *MemStore, _ [][]byte) {
				s.records[victim] = forged
				s.hashes[tlog.StoredHashIndex(0, victim)] = tlog.RecordHash(forged)
			},
			// The stored interior hashes, which the root is read from,
			// are unchanged: auditors' inclusion proofs fail instead,
			// and a node's bbolt store recomputes every hash when it
			// opens (see trustee.Store).
		},
		{
			name: "neighbouring leaf hash rewritten",
			tamper: func(t *testing.T, s *MemStore, _ [][]byte) {
				s.hashes[tlog.StoredHashIndex(0, victim-1)][0] ^= 1
			},
			// The stored interior hashes, which the root is read from,
			// are unchanged: auditors' inclusion proofs fail instead,
			// and a node's bbolt store recomputes every hash when it
			// opens (see trustee.Store).
		},
		{
			name: "whole tree rebuilt around a rewritten record",
			tamper: func(t *testing.T, s *MemStore, records [][]byte) {
				rs := append([][]byte(nil), records...)
				rs[victim] = forged
				replaceStore(t, s, rs)
			},
			headErr:    ErrWouldFork,
			restartErr: ErrWouldFork,
		},
		{
			name: "log truncated",
			tamper: func(t *testing.T, s *MemStore, records [][]byte) {
				replaceStore(t, s, records[:victim])
			},
			headErr:    ErrWouldFork,
			restartErr: ErrWouldFork,
		},
		{
			name: "log truncated and regrown to the same size",
			tamper: func(t *testing.T, s *MemStore, records [][]byte) {
				rs := append([][]byte(nil), records[:victim]...)
				for len(rs) < n {
					rs = append(rs, forged)
				}
				replaceStore(t, s, rs)
			},
			headErr:    ErrWouldFork,
			restartErr: ErrWouldFork,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, store, v := newTestLog(t)
			heads := appendN(t, l, v, n, "r")
			before := heads[n]
			var records [][]byte
			for i := range int64(n) {
				_, data, err := l.Record(i)
				if err != nil {
					t.Fatal(err)
				}
				records = append(records, data)
			}
			// Proofs an auditor fetched before the rewrite still hold.
			proof, err := l.InclusionProof(victim, n)
			if err != nil {
				t.Fatal(err)
			}

			tt.tamper(t, store, records)

			// The running trustee.
			_, _, err = l.Record(victim)
			if tt.recordErr != nil && !errors.Is(err, tt.recordErr) {
				t.Errorf("Record(%d): err = %v, want %v", victim, err, tt.recordErr)
			}
			_, err = l.Head()
			if tt.headErr == nil && err != nil || tt.headErr != nil && !errors.Is(err, tt.headErr) {
				t.Errorf("Head: err = %v, want %v", err, tt.headErr)
			}

			// An auditor who holds the old head: the rewritten record, with
			// the old proof or with one fetched now, is not in it.
			if size, _ := store.Size(); size > victim {
				tampered, _ := store.ReadRecord(victim)
				if err := VerifyInclusion(before, victim, tampered, proof); !bytes.Equal(tampered, records[victim]) && !errors.Is(err, ErrBadInclusion) {
					t.Errorf("rewritten record with old proof: err = %v, want ErrBadInclusion", err)
				}
				if size >= n {
					now, err := l.InclusionProof(victim, n)
					if err != nil {
						t.Fatal(err)
					}
					if err := VerifyInclusion(before, victim, tampered, now); !errors.Is(err, ErrBadInclusion) {
						t.Errorf("rewritten record with new proof: err = %v, want ErrBadInclusion", err)
					}
				}
			}
			if tt.name == "neighbouring leaf hash rewritten" {
				now, err := l.InclusionProof(victim, n)
				if err != nil {
					t.Fatal(err)
				}
				if err := VerifyInclusion(before, victim, records[victim], now); !errors.Is(err, ErrBadInclusion) {
					t.Errorf("genuine record with proof over altered hash: err = %v, want ErrBadInclusion", err)
				}
			}

			// A restarted trustee (the store is kept, checkpoint and all)
			// refuses to sign a rewritten log.
			signer, _ := testLogKey(t, "trustee-1.keyquorum", 1)
			restarted, err := New(store, signer, testClock)
			if tt.restartErr == nil && err != nil || tt.restartErr != nil && !errors.Is(err, tt.restartErr) {
				t.Fatalf("restart: err = %v, want %v", err, tt.restartErr)
			}
			if err == nil {
				h, err := restarted.Head()
				if err != nil || h.Tree != before {
					t.Fatalf("restarted head %+v, %v; want %+v", h.Tree, err, before)
				}
			}
		})
	}
}

func TestAuditLogForkedHeads(t *testing.T) {
	signer, v := testLogKey(t, "trustee-1.keyquorum", 1)
	newLog := func() *Log {
		l, err := New(NewMemStore(), signer, testClock)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b := newLog(), newLog()
	common := 5
	for i := range common {
		if _, _, _, err := a.Append(testRecord(i, "x")); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := b.Append(testRecord(i, "x")); err != nil {
			t.Fatal(err)
		}
	}
	// The two logs diverge: one shown to the requester, one to an auditor.
	// (testRecord(common+1, tag) depends on tag.)
	_, headA, _, err := a.Append(testRecord(common+1, "shown-to-requester"))
	if err != nil {
		t.Fatal(err)
	}
	var headB6 SignedCheckpoint
	for i := common; i < 9; i++ {
		_, h, _, err := b.Append(testRecord(i+1, "shown-to-auditor"))
		if err != nil {
			t.Fatal(err)
		}
		if i == common {
			headB6 = h
		}
	}
	headB, err := b.Head()
	if err != nil {
		t.Fatal(err)
	}
	treeA, err := VerifyCheckpoint(headA.Note, v)
	if err != nil {
		t.Fatal(err)
	}
	treeB6, err := VerifyCheckpoint(headB6.Note, v)
	if err != nil {
		t.Fatal(err)
	}
	treeB, err := VerifyCheckpoint(headB.Note, v)
	if err != nil {
		t.Fatal(err)
	}
	proofB, err := b.ConsistencyProof(treeA.N, treeB.N)
	if err != nil {
		t.Fatal(err)
	}
	proofB6, err := b.ConsistencyProof(treeA.N, treeB6.N)
	if err != nil {
		t.Fatal(err)
	}
	proofA5to6, err := a.ConsistencyProof(int64(common), treeA.N)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		old, new tlog.Tree
		proof    tlog.TreeProof
		want     error
	}{
		{"same size, different hashes", treeA, treeB6, proofB6, ErrForked},
		{"same size, different hashes, no proof", treeA, treeB6, nil, ErrForked},
		{"larger head does not extend the other log's head", treeA, treeB, proofB, ErrForked},
		{"the other log's proof over the common prefix", tlog.Tree{N: int64(common), Hash: mustTreeHash(t, b, int64(common))}, treeA, proofA5to6, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyConsistency(tt.old, tt.new, tt.proof)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func mustTreeHash(t *testing.T, l *Log, n int64) tlog.Hash {
	t.Helper()
	h, err := tlog.TreeHash(n, l.store)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestVerifyHeadRefusals(t *testing.T) {
	l, _, v := newTestLog(t)
	appendN(t, l, v, 8, "h")
	head, err := l.Head()
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := testLogKey(t, "trustee-1.keyquorum", 1)
	_, otherV := testLogKey(t, "trustee-2.keyquorum", 2)
	witness, _ := testLogKey(t, "witness.example", 3)
	_, sameNameOtherKey := testLogKey(t, "trustee-1.keyquorum", 4)
	sign := func(text string, signers ...note.Signer) []byte {
		msg, err := note.Sign(&note.Note{Text: text}, signers...)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	body := FormatCheckpoint("trustee-1.keyquorum", head.Tree)
	sigLine := string(head.Note[len(body)+1:])
	// flip changes the base64 character at offset i of s to another valid one.
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	hashLine := strings.Split(body, "\n")[2]

	tests := []struct {
		name     string
		msg      []byte
		verifier note.Verifier
		want     error
	}{
		{"genuine", head.Note, v, nil},
		{"genuine with a witness cosignature", sign(body, signer, witness), v, nil},
		{"another trustee's key", head.Note, otherV, ErrWrongKey},
		{"same key name, different key", head.Note, sameNameOtherKey, ErrWrongKey},
		{"signed only by someone else", sign(body, witness), v, ErrWrongKey},
		{"size changed", []byte(strings.Replace(string(head.Note), "\n8\n", "\n9\n", 1)), v, ErrBadSignature},
		{"root hash changed", []byte(strings.Replace(string(head.Note), hashLine, flip(hashLine, 0), 1)), v, ErrBadSignature},
		{"signature changed", []byte(body + "\n" + flip(sigLine, len("— trustee-1.keyquorum ")+12)), v, ErrBadSignature},
		{"extension line (C2SP allows them)", sign(body+"time 2026-03-01T12:00:00Z\n", signer), v, nil},
		{"another log's origin", sign(strings.Replace(body, "trustee-1.keyquorum", "trustee-2.keyquorum", 1), signer), v, ErrMalformedCheckpoint},
		{"the go.sum origin of keyquorum before C2SP", sign(string(tlog.FormatTree(head.Tree)), signer), v, ErrMalformedCheckpoint},
		{"root hash of 31 bytes", sign("trustee-1.keyquorum\n8\n"+base64.StdEncoding.EncodeToString(head.Tree.Hash[:31])+"\n", signer), v, ErrMalformedCheckpoint},
		{"signed text is not a tree", sign("hello\n", signer), v, ErrMalformedCheckpoint},
		{"size with a leading zero", sign(strings.Replace(body, "\n8\n", "\n08\n", 1), signer), v, ErrMalformedCheckpoint},
		{"signature block cut off", head.Note[:len(body)], v, ErrMalformedCheckpoint},
		{"empty", nil, v, ErrMalformedCheckpoint},
		{"not a note", []byte("trustee-1.keyquorum\n8\n"), v, ErrMalformedCheckpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree, err := VerifyCheckpoint(tt.msg, tt.verifier)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if tree != head.Tree {
					t.Fatalf("tree = %+v, want %+v", tree, head.Tree)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "auditlog: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	if _, err := VerifyCheckpoint(head.Note, nil); err == nil {
		t.Error("VerifyCheckpoint with no verifier: no error")
	}
}

func TestVerifyInclusionRefusals(t *testing.T) {
	l, _, v := newTestLog(t)
	heads := appendN(t, l, v, 10, "i")
	tree := heads[10]
	const idx = 6
	_, data, err := l.Record(idx)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := l.Record(idx + 1)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := l.InclusionProof(idx, tree.N)
	if err != nil {
		t.Fatal(err)
	}
	altered := append(tlog.RecordProof(nil), proof...)
	altered[1][5] ^= 0x80

	tests := []struct {
		name  string
		tree  tlog.Tree
		index int64
		data  []byte
		proof tlog.RecordProof
		want  error
	}{
		{"genuine", tree, idx, data, proof, nil},
		{"other record's bytes", tree, idx, other, proof, ErrBadInclusion},
		{"record altered by one byte", tree, idx, append(append([]byte(nil), data[:len(data)-2]...), 'X', '}'), proof, ErrBadInclusion},
		{"wrong index", tree, idx - 2, data, proof, ErrBadInclusion},
		{"negative index", tree, -1, data, proof, ErrBadInclusion},
		{"index beyond the tree", tree, tree.N, data, proof, ErrBadInclusion},
		{"altered proof hash", tree, idx, data, altered, ErrBadInclusion},
		{"truncated proof", tree, idx, data, proof[:len(proof)-1], ErrBadInclusion},
		{"padded proof", tree, idx, data, append(append(tlog.RecordProof(nil), proof...), proof[0]), ErrBadInclusion},
		{"no proof", tree, idx, data, nil, ErrBadInclusion},
		{"proof for a different head", heads[9], idx, data, proof, ErrBadInclusion},
		{"empty tree", heads[0], 0, data, nil, ErrBadInclusion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyInclusion(tt.tree, tt.index, tt.data, tt.proof)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyConsistencyRefusals(t *testing.T) {
	l, _, v := newTestLog(t)
	heads := appendN(t, l, v, 7, "k")
	proof, err := l.ConsistencyProof(3, 7)
	if err != nil {
		t.Fatal(err)
	}
	altered := append(tlog.TreeProof(nil), proof...)
	altered[0][0] ^= 1
	notEmpty := heads[0]
	notEmpty.Hash[0] ^= 1

	tests := []struct {
		name     string
		old, new tlog.Tree
		proof    tlog.TreeProof
		want     error
	}{
		{"genuine", heads[3], heads[7], proof, nil},
		{"from the empty tree", heads[0], heads[7], nil, nil},
		{"same head", heads[7], heads[7], nil, nil},
		{"old larger than new", heads[7], heads[3], proof, ErrShrank},
		{"altered proof", heads[3], heads[7], altered, ErrForked},
		{"proof for other sizes", heads[2], heads[7], proof, ErrForked},
		{"no proof", heads[3], heads[7], nil, ErrForked},
		{"same head with a proof attached", heads[7], heads[7], proof, ErrForked},
		{"size 0 with a non-empty hash", notEmpty, heads[7], nil, ErrForked},
		{"from the empty tree with a proof attached", heads[0], heads[7], proof, ErrForked},
		{"negative size", tlog.Tree{N: -1}, heads[7], nil, ErrMalformedCheckpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyConsistency(tt.old, tt.new, tt.proof)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAuditLogOutOfRange(t *testing.T) {
	l, _, v := newTestLog(t)
	appendN(t, l, v, 4, "o")
	tests := []struct {
		name string
		call func() error
	}{
		{"Record(-1)", func() error { _, _, err := l.Record(-1); return err }},
		{"Record(size)", func() error { _, _, err := l.Record(4); return err }},
		{"InclusionProof(-1, 1)", func() error { _, err := l.InclusionProof(-1, 1); return err }},
		{"InclusionProof(0, 0)", func() error { _, err := l.InclusionProof(0, 0); return err }},
		{"InclusionProof(2, 2)", func() error { _, err := l.InclusionProof(2, 2); return err }},
		{"InclusionProof(0, size+1)", func() error { _, err := l.InclusionProof(0, 5); return err }},
		{"ConsistencyProof(-1, 2)", func() error { _, err := l.ConsistencyProof(-1, 2); return err }},
		{"ConsistencyProof(3, 2)", func() error { _, err := l.ConsistencyProof(3, 2); return err }},
		{"ConsistencyProof(0, size+1)", func() error { _, err := l.ConsistencyProof(0, 5); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("err = %v, want ErrOutOfRange", err)
			}
		})
	}
}

// failingStore is a MemStore whose Append fails, or whose Size lies.
type failingStore struct {
	*MemStore
	appendErr error
	sizeDelta int64
}

func (s *failingStore) Append(start int64, records [][]byte, hashes []tlog.Hash, checkpoint []byte) error {
	if s.appendErr != nil {
		return s.appendErr
	}
	return s.MemStore.Append(start, records, hashes, checkpoint)
}

func (s *failingStore) Size() (int64, error) {
	n, err := s.MemStore.Size()
	return n + s.sizeDelta, err
}

func TestAuditLogFailsClosed(t *testing.T) {
	signer, _ := testLogKey(t, "trustee-1.keyquorum", 1)
	diskFull := errors.New("disk full")
	tests := []struct {
		name  string
		store *failingStore
		rec   Record
		want  error
	}{
		{"store refuses the write", &failingStore{MemStore: NewMemStore(), appendErr: diskFull}, testRecord(0, "f"), diskFull},
		// The store says it holds fewer records than the checkpoint it
		// keeps covers: the log refuses to open over it.
		{"store moved underneath", &failingStore{MemStore: NewMemStore(), sizeDelta: -1}, testRecord(0, "f"), ErrWouldFork},
		{"invalid record", &failingStore{MemStore: NewMemStore()}, Record{Kind: "decision", Decision: "maybe"}, ErrBadRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Put one record in first, so the conflicting Size is valid.
			first, err := New(tt.store.MemStore, signer, testClock)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := first.Append(testRecord(1, "f")); err != nil {
				t.Fatal(err)
			}
			l, err := New(tt.store, signer, testClock)
			if err != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("New: err = %v, want %v", err, tt.want)
				}
				return
			}
			idx, head, proof, err := l.Append(tt.rec)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if idx != -1 || head.Note != nil || proof != nil {
				t.Errorf("failed Append returned index %d, head %q, proof %v", idx, head.Note, proof)
			}
			if n, _ := tt.store.MemStore.Size(); n != 1 {
				t.Errorf("store holds %d records after a failed append, want 1", n)
			}
		})
	}
}

func TestMemAuditStoreAppendIsAllOrNothing(t *testing.T) {
	s := NewMemStore()
	rec := []byte("r0")
	good := []tlog.Hash{tlog.RecordHash(rec)}
	tests := []struct {
		name    string
		start   int64
		records [][]byte
		hashes  []tlog.Hash
		want    error
	}{
		{"wrong start", 1, [][]byte{rec}, good, ErrStoreConflict},
		{"too few hashes", 0, [][]byte{rec}, nil, errAny},
		{"too many hashes", 0, [][]byte{rec}, append(good, good...), errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Append(tt.start, tt.records, tt.hashes, nil)
			if err == nil || tt.want != errAny && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if n, _ := s.Size(); n != 0 || len(s.hashes) != 0 {
				t.Fatalf("store holds %d records, %d hashes after a refused append", n, len(s.hashes))
			}
		})
	}
	// Two records in one call, and the store keeps its own copy.
	buf := []byte("r1")
	h0 := tlog.RecordHash(rec)
	h1 := tlog.RecordHash(buf)
	if err := s.Append(0, [][]byte{rec, buf}, []tlog.Hash{h0, h1, tlog.NodeHash(h0, h1)}, nil); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'X'
	if got, _ := s.ReadRecord(1); string(got) != "r1" {
		t.Fatalf("record 1 = %q after the caller changed its buffer", got)
	}
	if _, err := s.ReadHashes([]int64{3}); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("ReadHashes beyond the end: err = %v", err)
	}
}

var errAny = errors.New("any error")

func TestAuditLogConcurrentAppend(t *testing.T) {
	l, _, v := newTestLog(t)
	const workers, each = 8, 25
	type result struct {
		idx   int64
		data  []byte
		tree  tlog.Tree
		proof tlog.RecordProof
	}
	results := make(chan result, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				rec := testRecord(i, fmt.Sprintf("w%d", w))
				data, err := rec.Marshal()
				if err != nil {
					t.Error(err)
					return
				}
				idx, head, proof, err := l.Append(rec)
				if err != nil {
					t.Error(err)
					return
				}
				results <- result{idx, data, head.Tree, proof}
			}
		})
	}
	wg.Wait()
	close(results)
	final, err := l.Head()
	if err != nil {
		t.Fatal(err)
	}
	finalTree, err := VerifyCheckpoint(final.Note, v)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[int64]bool)
	for r := range results {
		if seen[r.idx] {
			t.Fatalf("index %d handed out twice", r.idx)
		}
		seen[r.idx] = true
		if err := VerifyInclusion(r.tree, r.idx, r.data, r.proof); err != nil {
			t.Fatal(err)
		}
		p, err := l.InclusionProof(r.idx, finalTree.N)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(finalTree, r.idx, r.data, p); err != nil {
			t.Fatal(err)
		}
		cp, err := l.ConsistencyProof(r.tree.N, finalTree.N)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyConsistency(r.tree, finalTree, cp); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != workers*each || finalTree.N != workers*each {
		t.Fatalf("%d distinct indexes, final size %d, want %d", len(seen), finalTree.N, workers*each)
	}
}

func TestAuditLogStampsTime(t *testing.T) {
	l, _, _ := newTestLog(t)
	rec := testRecord(0, "t")
	rec.Time = time.Time{}
	idx, _, _, err := l.Append(rec)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := l.Record(idx)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(testEpoch) {
		t.Fatalf("time = %v, want the log clock's %v", got.Time, testEpoch)
	}
	// An explicit time is kept, in UTC.
	rec.Time = time.Date(2026, 2, 1, 9, 30, 0, 5, time.FixedZone("CET", 3600))
	idx, _, _, err = l.Append(rec)
	if err != nil {
		t.Fatal(err)
	}
	got, data, err := l.Record(idx)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(rec.Time) || got.Time.Location() != time.UTC {
		t.Fatalf("time = %v, want %v in UTC", got.Time, rec.Time)
	}
	if !bytes.Contains(data, []byte(`"time":"2026-02-01T08:30:00.000000005Z"`)) {
		t.Fatalf("encoded time not canonical UTC: %s", data)
	}
}

func TestNewAuditLogNeedsEverything(t *testing.T) {
	signer, _ := testLogKey(t, "trustee-1.keyquorum", 1)
	store := NewMemStore()
	for _, tt := range []struct {
		name   string
		store  Store
		signer note.Signer
		now    func() time.Time
	}{
		{"no store", nil, signer, testClock},
		{"no signer", store, nil, testClock},
		{"no clock", store, signer, nil},
	} {
		if _, err := New(tt.store, tt.signer, tt.now); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

// recordsEqual compares records by time instant and all other fields.
func recordsEqual(a, b Record) bool {
	if !a.Time.Equal(b.Time) {
		return false
	}
	a.Time, b.Time = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func TestAuditRecordEncoding(t *testing.T) {
	rec := Record{
		Time:        time.Date(2026, 3, 1, 12, 0, 0, 250_000_000, time.UTC),
		Kind:        KindDecision,
		Epoch:       3,
		Decision:    Refused,
		WarrantID:   "W-2026-0042",
		WarrantHash: strings.Repeat("ab", 32),
		Judges:      []string{"judge-a.example", "judge-b.example"},
		Requester:   strings.Repeat("01", 32),
		CaseRefHash: strings.Repeat("cd", 32),
		Refusal:     &Refusal{Code: "expired"},
	}
	const want = `{"version":"keyquorum/v2/audit-record","time":"2026-03-01T12:00:00.25Z","kind":"decision","epoch":3,"decision":"refused","warrant_id":"W-2026-0042","warrant_hash":"abababababababababababababababababababababababababababababababab","judges":["judge-a.example","judge-b.example"],"requester":"0101010101010101010101010101010101010101010101010101010101010101","case_ref_hash":"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd","refusal":{"code":"expired"}}`
	got, err := rec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("encoding:\n got %s\nwant %s", got, want)
	}
	for i := range 6 {
		rec := testRecord(i, "e")
		b, err := rec.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseRecord(b)
		if err != nil {
			t.Fatalf("record %d: %v\n%s", i, err, b)
		}
		if !recordsEqual(back, rec) {
			t.Fatalf("record %d: parsed %+v, want %+v", i, back, rec)
		}
	}
}

func TestAuditRecordRefusals(t *testing.T) {
	ok := testRecord(0, "v")
	with := func(f func(r *Record)) Record {
		r := ok
		r.Judges = append([]string(nil), ok.Judges...)
		f(&r)
		return r
	}
	tests := []struct {
		name string
		rec  Record
	}{
		{"no time", with(func(r *Record) { r.Time = time.Time{} })},
		{"year 10000", with(func(r *Record) { r.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) })},
		{"no kind", with(func(r *Record) { r.Kind = "" })},
		{"kind with capitals", with(func(r *Record) { r.Kind = "Decision" })},
		{"kind with a space", with(func(r *Record) { r.Kind = "share destroyed" })},
		{"kind starting with a digit", with(func(r *Record) { r.Kind = "1decision" })},
		{"decision record without a decision", with(func(r *Record) { r.Decision = "" })},
		{"unknown decision", with(func(r *Record) { r.Decision = "maybe" })},
		{"refused without a reason", with(func(r *Record) { r.Decision = Refused })},
		{"granted with a reason", with(func(r *Record) { r.Refusal = &Refusal{Code: "x"} })},
		{"reason without a code", with(func(r *Record) { r.Decision, r.Refusal = Refused, &Refusal{} })},
		{"case reference in clear", with(func(r *Record) { r.CaseRefHash = "case 2026/17, J. Smith" })},
		{"warrant hash in capitals", with(func(r *Record) { r.WarrantHash = strings.ToUpper(ok.WarrantHash) })},
		{"warrant hash too short", with(func(r *Record) { r.WarrantHash = ok.WarrantHash[:62] })},
		{"requester not hex", with(func(r *Record) { r.Requester = strings.Repeat("zz", 32) })},
		{"warrant id not UTF-8", with(func(r *Record) { r.WarrantID = "W-\xff" })},
		{"warrant id too long", with(func(r *Record) { r.WarrantID = strings.Repeat("w", 257) })},
		{"warrant id with free text", with(func(r *Record) { r.WarrantID = "W-1 (targets: alice)" })},
		{"request hash not hex", with(func(r *Record) { r.RequestHash = "targets: alice" })},
		{"epochs not ascending", with(func(r *Record) { r.Epochs = []uint64{2, 1} })},
		{"epochs repeated", with(func(r *Record) { r.Epochs = []uint64{1, 1} })},
		{"session id with a space", with(func(r *Record) { r.Sessions = []string{"carol dave"} })},
		{"control character in a judge name", with(func(r *Record) { r.Judges[0] = "judge\nb" })},
		{"empty session id", with(func(r *Record) { r.Sessions = []string{"s1", ""} })},
		{"refusal code with free text", with(func(r *Record) {
			r.Decision, r.Refusal = Refused, &Refusal{Code: "out-of-scope (targets: alice)"}
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.rec.Marshal(); !errors.Is(err, ErrBadRecord) {
				t.Fatalf("err = %v, want ErrBadRecord", err)
			}
		})
	}
}

func TestParseAuditRecordRefusals(t *testing.T) {
	canon, err := testRecord(0, "p").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c := string(canon)
	bare, err := testRecord(2, "p").Marshal() // no optional fields
	if err != nil {
		t.Fatal(err)
	}
	b := string(bare)
	repl := func(old, new string) string {
		if !strings.Contains(c, old) {
			t.Fatalf("test bug: %q not in %s", old, c)
		}
		return strings.Replace(c, old, new, 1)
	}
	tests := []struct {
		name string
		in   string
	}{
		{"leading space", " " + c},
		{"trailing newline", c + "\n"},
		{"space after a colon", repl(`"kind":`, `"kind": `)},
		{"fields reordered", repl(`"kind":"decision","epoch":1`, `"epoch":1,"kind":"decision"`)},
		{"key in capitals", repl(`"kind"`, `"KIND"`)},
		{"duplicate key", repl(`"kind":"decision"`, `"kind":"share-destroyed","kind":"decision"`)},
		{"unknown field", repl(`"epoch":1`, `"epoch":1,"plaintext":"secret"`)},
		{"escaped letter", repl(`"decision":"granted"`, `"decision":"gr\u0061nted"`)},
		{"escaped slash", repl(`"version":"keyquorum/v2/audit-record"`, `"version":"keyquorum\/v2\/audit-record"`)},
		{"null list", b[:len(b)-1] + `,"judges":null}`},
		{"empty list", b[:len(b)-1] + `,"judges":[]}`},
		{"null refusal", c[:len(c)-1] + `,"refusal":null}`},
		{"empty refusal", c[:len(c)-1] + `,"refusal":{}}`},
		{"other version", repl("keyquorum/v2/audit-record", "keyquorum/v1/audit-record")},
		{"no version", repl(`"version":"keyquorum/v2/audit-record",`, ``)},
		{"time with an offset", repl(`"2026-03-01T12:00:00Z"`, `"2026-03-01T13:00:00+01:00"`)},
		{"time with trailing zeros", repl(`"2026-03-01T12:00:00Z"`, `"2026-03-01T12:00:00.000Z"`)},
		{"time not RFC 3339", repl(`"2026-03-01T12:00:00Z"`, `"1 March 2026"`)},
		{"epoch as a float", repl(`"epoch":1`, `"epoch":1.0`)},
		{"epoch as a string", repl(`"epoch":1`, `"epoch":"1"`)},
		{"negative epoch", repl(`"epoch":1`, `"epoch":-1`)},
		{"trailing data", c + `{}`},
		{"refusal message (version 1 logged free text)", repl(`"decision":"granted"`, `"decision":"refused","refusal":{"code":"out-of-scope","message":"targets: alice"}`)},
		{"epochs out of order", repl(`"epochs":[1,2]`, `"epochs":[2,1]`)},
		{"two records", c + c},
		{"not an object", `["decision"]`},
		{"empty", ``},
		{"invalid UTF-8 in a string", repl(`"W-p-0"`, "\"W-p-\xff\"")},
		{"oversized", c[:len(c)-1] + `,"x":"` + strings.Repeat("a", maxRecordSize) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseRecord([]byte(tt.in)); !errors.Is(err, ErrBadRecord) {
				t.Fatalf("err = %v, want ErrBadRecord", err)
			}
		})
	}
}

func FuzzParseAuditRecord(f *testing.F) {
	for i := range 6 {
		b, err := testRecord(i, "fuzz").Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(append(b, '\n'))
		f.Add(bytes.Replace(b, []byte(`"kind"`), []byte(`"Kind"`), 1))
	}
	f.Add([]byte(`{"version":"keyquorum/v1/audit-record","time":"0001-01-01T00:00:00.000000001Z","kind":"a","epoch":18446744073709551615}`))
	f.Add([]byte(`{"version":"keyquorum/v1/audit-record","time":"2026-03-01T12:00:00Z","kind":"x","epoch":1,"warrant_id":"\u2028\"\\é"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := ParseRecord(b)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error %v does not wrap ErrBadRecord", err)
			}
			return
		}
		again, err := rec.Marshal()
		if err != nil {
			t.Fatalf("parsed record does not marshal: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("marshal(parse(b)) != b:\n%q\n%q", b, again)
		}
		back, err := ParseRecord(again)
		if err != nil || !reflect.DeepEqual(back, rec) {
			t.Fatalf("parse(marshal(x)) = %+v, %v; want %+v", back, err, rec)
		}
	})
}

func FuzzAuditRecordRoundTrip(f *testing.F) {
	f.Add(int64(1772366400), int64(0), "decision", uint64(3), "granted", "W-1", "judge-a\njudge-b", "s1\ns2", "", "", byte(1))
	f.Add(int64(1772366400), int64(999999999), "decision", uint64(0), "refused", "W-\u00e9<&>", "judge", "", "expired", "ask \"the judge\"\u2028", byte(2))
	f.Add(int64(-62135596800), int64(1), "share-destroyed", uint64(1<<63), "", "", "", "", "", "", byte(0))
	f.Add(int64(253402300800), int64(0), "x", uint64(0), "", "", "", "", "", "", byte(0))
	f.Fuzz(func(t *testing.T, sec, nsec int64, kind string, epoch uint64, decision, warrantID, judges, sessions, code, msg string, hashes byte) {
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, "\n")
		}
		rec := Record{
			Time:      time.Unix(sec, nsec).UTC(),
			Kind:      kind,
			Epoch:     epoch,
			Decision:  decision,
			WarrantID: warrantID,
			Judges:    split(judges),
			Sessions:  split(sessions),
		}
		if hashes&1 != 0 {
			rec.WarrantHash = hexOf(warrantID)
			rec.CaseRefHash = hexOf(kind)
		}
		if hashes&2 != 0 {
			rec.Requester = hexOf(msg)
		}
		if code != "" || msg != "" {
			rec.Refusal = &Refusal{Code: code}
		}
		b, err := rec.Marshal()
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error %v does not wrap ErrBadRecord", err)
			}
			return
		}
		back, err := ParseRecord(b)
		if err != nil {
			t.Fatalf("parse(marshal(x)): %v\n%s", err, b)
		}
		if !reflect.DeepEqual(back, rec) {
			t.Fatalf("parse(marshal(x)) = %+v, want %+v", back, rec)
		}
		again, err := back.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("marshal(parse(b)) = %s, %v; want %s", again, err, b)
		}
	})
}

func BenchmarkAuditLogAppend(b *testing.B) {
	l, _, _ := newTestLog(b)
	rec := testRecord(0, "bench")
	for b.Loop() {
		if _, _, _, err := l.Append(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// A trustee logs a decision and hands the requester the head and proof; the
// requester, holding only the trustee's verifier key, checks both, and later
// checks that the log only grew.
func ExampleLog() {
	seed := bytes.NewReader(bytes.Repeat([]byte{7}, 32))
	skey, vkey, _ := note.GenerateKey(seed, "trustee-1.keyquorum")
	signer, _ := note.NewSigner(skey)
	clock := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	log, _ := New(NewMemStore(), signer, clock)

	idx, head, proof, err := log.Append(Record{
		Kind:     KindDecision,
		Epoch:    1,
		Decision: Refused,
		Refusal:  &Refusal{Code: "no-judge"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, recordBytes, _ := log.Record(idx)

	// The requester's side.
	verifier, _ := note.NewVerifier(vkey)
	tree, err := VerifyCheckpoint(head.Note, verifier)
	fmt.Println("head:", tree.N, "record(s),", err)
	fmt.Println("inclusion:", VerifyInclusion(tree, idx, recordBytes, proof))
	fmt.Printf("record: %s\n", recordBytes)

	// Later, an auditor fetches a newer head and a consistency proof.
	log.Append(Record{Kind: KindShareDestroyed, Epoch: 0})
	newer, _ := log.Head()
	newTree, _ := VerifyCheckpoint(newer.Note, verifier)
	cp, _ := log.ConsistencyProof(tree.N, newTree.N)
	fmt.Println("consistency:", VerifyConsistency(tree, newTree, cp))
	// Output:
	// head: 1 record(s), <nil>
	// inclusion: <nil>
	// record: {"version":"keyquorum/v2/audit-record","time":"2026-03-01T12:00:00Z","kind":"decision","epoch":1,"decision":"refused","refusal":{"code":"no-judge"}}
	// consistency: <nil>
}

// slowStore is a MemStore whose Append takes a while (as an fsync does)
// and counts its calls, checking that each stores the checkpoint of the
// tree its records end.
type slowStore struct {
	*MemStore
	delay   time.Duration
	fail    error
	mu      sync.Mutex
	commits int
	sizes   []int // records per commit
}

func (s *slowStore) Append(start int64, records [][]byte, hashes []tlog.Hash, checkpoint []byte) error {
	time.Sleep(s.delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if _, tree, err := ParseCheckpointText(string(checkpoint)); err != nil || tree.N != start+int64(len(records)) {
		return fmt.Errorf("checkpoint %q does not end the %d records from %d: %v", checkpoint, len(records), start, err)
	}
	s.commits++
	s.sizes = append(s.sizes, len(records))
	return s.MemStore.Append(start, records, hashes, checkpoint)
}

// appendAll appends n records from n goroutines at once and returns the
// errors.
func appendAll(l *Log, n int, tag string) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			idx, head, _, err := l.Append(testRecord(i, tag))
			if err == nil && (idx < 0 || idx >= head.Tree.N) {
				err = fmt.Errorf("index %d outside its checkpoint of size %d", idx, head.Tree.N)
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// TestAuditLogGroupCommit: concurrent appends share commits (fewer store
// Appends than records, each storing the checkpoint of its own records);
// with a batch of 1 every record has its own commit; a failed commit
// fails every caller in it and stores nothing, and the log goes on.
func TestAuditLogGroupCommit(t *testing.T) {
	signer, v := testLogKey(t, "trustee-1.keyquorum", 1)
	s := &slowStore{MemStore: NewMemStore(), delay: 2 * time.Millisecond}
	l, err := New(s, signer, testClock)
	if err != nil {
		t.Fatal(err)
	}
	const n = 64
	for _, err := range appendAll(l, n, "group") {
		if err != nil {
			t.Fatal(err)
		}
	}
	if size, _ := s.Size(); size != n || s.commits >= n/2 {
		t.Fatalf("%d records in %d commits (%v); want %d records in fewer than %d commits", size, s.commits, s.sizes, n, n/2)
	}
	stored, _ := s.Checkpoint()
	if tree, err := VerifyCheckpoint(stored, v); err != nil || tree.N != n {
		t.Fatalf("stored checkpoint: %+v, %v", tree, err)
	}

	l.SetMaxBatch(1)
	before := s.commits
	for _, err := range appendAll(l, 8, "alone") {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.commits-before != 8 {
		t.Fatalf("batch of 1: %d commits for 8 records", s.commits-before)
	}

	l.SetMaxBatch(DefaultMaxBatch)
	diskFull := errors.New("disk full")
	s.mu.Lock()
	s.fail = diskFull
	s.mu.Unlock()
	for i, err := range appendAll(l, 16, "fail") {
		if !errors.Is(err, diskFull) {
			t.Fatalf("caller %d of a failed commit: %v", i, err)
		}
	}
	if size, _ := s.Size(); size != n+8 {
		t.Fatalf("a failed commit left %d records, want %d", size, n+8)
	}
	s.mu.Lock()
	s.fail = nil
	s.mu.Unlock()
	if _, _, _, err := l.Append(testRecord(0, "after")); err != nil {
		t.Fatalf("append after a failed commit: %v", err)
	}
}

package escrow_test

import (
	"bytes"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/group/edwards25519"
	"go.dedis.ch/kyber/v3/share"
	"go.dedis.ch/kyber/v3/util/random"
)

// exampleRand is a fixed, deterministic randomness source so the examples
// print the same output on every run. Real callers pass crypto/rand.Reader.
func exampleRand() io.Reader {
	return mrand.NewChaCha8([32]byte{'k', 'e', 'y', 'q', 'u', 'o', 'r', 'u', 'm'})
}

// The sender seals the session key K to the trustee group; the recipient,
// who received K through HPKE, re-derives the envelope and compares bytes,
// and a trustee checks the proof that binds U to the context.
func ExampleSealEnvelope() {
	rand := exampleRand()
	// The epoch's group key as a group file publishes it (made by a DKG in
	// practice; escrow.GroupFile.EpochKey reads it from a verified file).
	x := suite.Scalar().Pick(random.New(rand))
	published, _ := suite.Point().Mul(x, nil).MarshalBinary()
	groupKey, err := escrow.ParseEpochKey(published)
	if err != nil {
		fmt.Println(err)
		return
	}

	K := make([]byte, escrow.KeySize)
	io.ReadFull(rand, K)
	ctx := &escrow.Context{
		Epoch:      1,
		GroupKeyID: groupKey.ID(),
		Sender:     "alice",
		Recipient:  "bob",
		Start:      time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC),
	}
	io.ReadFull(rand, ctx.SessionID[:])

	env, err := escrow.SealEnvelope(K, ctx, groupKey)
	if err != nil {
		fmt.Println(err)
		return
	}
	wire := env.Marshal()

	// The recipient's check.
	if err := escrow.CheckEnvelope(K, ctx, groupKey, wire); err != nil {
		fmt.Println(err)
		return
	}
	// A trustee's check, from the bytes alone.
	parsed, err := escrow.ParseEnvelope(wire)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := parsed.Verify(groupKey); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("envelope verified")
	fmt.Println("envelope size:", len(wire), "bytes")
	// Output:
	// envelope verified
	// envelope size: 194 bytes
}

// Five trustees hold shares of the group key, three are needed. Three
// answer a warranted request, each re-encrypting to the requester's key
// with a proof; the requester combines them and gets K, checked against
// the envelope.
func ExampleCombine() {
	rand := exampleRand()
	const t, n = 3, 5

	// Deal the shares (a DKG does this without a dealer in practice).
	// kyber's PriShare.I is 0-based; the trustee index is I+1.
	x := suite.Scalar().Pick(random.New(rand))
	poly := share.NewPriPoly(suite, t, x, random.New(rand))
	shares := map[int]kyber.Scalar{}
	g := &escrow.Group{Epoch: 1, Key: suite.Point().Mul(x, nil), Threshold: t, PublicShares: map[int]kyber.Point{}}
	for _, s := range poly.Shares(n) {
		shares[s.I+1] = s.V
		g.PublicShares[s.I+1] = suite.Point().Mul(s.V, nil)
	}

	// A session's envelope.
	K := make([]byte, escrow.KeySize)
	io.ReadFull(rand, K)
	ctx := &escrow.Context{Epoch: 1, GroupKeyID: escrow.KeyIDOf(g.Key), Sender: "alice", Recipient: "bob",
		Start: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)}
	env, err := escrow.SealEnvelope(K, ctx, g.EpochKey())
	if err != nil {
		fmt.Println(err)
		return
	}

	// The requester's key, named in the warrant.
	req, _ := escrow.GenerateRequesterKey(rand)

	// Trustees 1, 3 and 5 answer.
	var answers []*escrow.PartialDecryption
	for _, i := range []int{5, 1, 3} {
		p, err := escrow.PartialDecrypt(i, shares[i], env, req.Public, rand)
		if err != nil {
			fmt.Println(err)
			return
		}
		answers = append(answers, p)
	}

	res, err := escrow.Combine(g, env, req, answers)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("combined answers from trustees", res.Used)
	fmt.Println("recovered K matches the session key:", bytes.Equal(res.Key, K))
	// Output:
	// combined answers from trustees [1 3 5]
	// recovered K matches the session key: true
}

// A request of many sessions: each trustee answers all of them with one
// composite proof, and the requester combines them in one pass, checking
// proofs only if some session fails to open.
func ExampleCombiner_CombineBatch() {
	rand := exampleRand()
	const t, n = 2, 3
	x := suite.Scalar().Pick(random.New(rand))
	poly := share.NewPriPoly(suite, t, x, random.New(rand))
	g := &escrow.Group{Epoch: 7, Key: suite.Point().Mul(x, nil), Threshold: t, PublicShares: map[int]kyber.Point{}}
	keys := map[int]*escrow.BatchKey{}
	for _, s := range poly.Shares(n) {
		g.PublicShares[s.I+1] = suite.Point().Mul(s.V, nil)
		keys[s.I+1], _ = escrow.NewBatchKey(s.I+1, g.Epoch, s.V) // once per epoch, on each trustee
	}
	epochKey := g.EpochKey()

	var envs []*escrow.Envelope
	var sent [][]byte
	for i := 0; i < 100; i++ {
		K := make([]byte, escrow.KeySize)
		io.ReadFull(rand, K)
		ctx := &escrow.Context{Epoch: g.Epoch, GroupKeyID: epochKey.ID(), Sender: "alice", Recipient: "bob",
			Start: time.Date(2026, 1, 1, 9, 0, i, 0, time.UTC)}
		io.ReadFull(rand, ctx.SessionID[:])
		env, err := escrow.SealEnvelope(K, ctx, epochKey)
		if err != nil {
			fmt.Println(err)
			return
		}
		envs, sent = append(envs, env), append(sent, K)
	}
	req, _ := escrow.GenerateRequesterKey(rand)
	var requestID [16]byte
	io.ReadFull(rand, requestID[:])

	// Trustees 3 and 2 answer the whole request, over the wire.
	var answers []*escrow.BatchAnswer
	for _, i := range []int{3, 2} {
		a, err := escrow.PartialDecryptBatch(keys[i], requestID, envs, req.Public, rand)
		if err != nil {
			fmt.Println(err)
			return
		}
		parsed, err := escrow.ParseBatchAnswer(a.Marshal())
		if err != nil {
			fmt.Println(err)
			return
		}
		answers = append(answers, parsed)
	}

	c, err := escrow.NewCombiner(g, req) // once per epoch
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := c.CombineBatch(requestID, envs, answers)
	if err != nil {
		fmt.Println(err)
		return
	}
	opened := 0
	for j, K := range res.Keys {
		if res.Errs[j] == nil && bytes.Equal(K, sent[j]) {
			opened++
		}
	}
	fmt.Println("combined answers from trustees", res.Used)
	fmt.Println("sessions opened:", opened, "of", len(envs))
	// Output:
	// combined answers from trustees [2 3]
	// sessions opened: 100 of 100
}

// suite is the Ed25519 group keyquorum computes in, from kyber's public
// packages: what code outside this module uses.
var suite = edwards25519.NewBlakeSHA256Ed25519()

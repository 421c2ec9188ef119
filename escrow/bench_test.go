package escrow

import (
	"crypto/ecdh"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// Every benchmark reports its cost as a multiple of X25519 key agreements
// measured in the same loop ("x25519" metric): after each operation the
// loop runs as many X25519 agreements as the operation covers sessions,
// with the benchmark timer stopped, and the ratio is the operation's CPU
// time over theirs. Both are the benchmark thread's own CPU time (on
// Linux), not wall-clock time: the machine is shared, and time spent
// descheduled would otherwise land on whichever figure it interrupted.
// Per-session figures of batch benchmarks are reported as "cpu-ns/session"
// and their ratio as "x25519/session".

// loopWithRatio runs op in the benchmark loop, op covering perOp sessions,
// and reports the ratio to X25519.
func loopWithRatio(b *testing.B, perOp int, op func() error) {
	b.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	priv, pub := x25519Pair()
	var opTime, xTime time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := threadCPU()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		t1 := threadCPU()
		b.StopTimer() // reads memory statistics: not part of either figure
		t2 := threadCPU()
		for i := 0; i < perOp; i++ {
			if _, err := priv.ECDH(pub); err != nil {
				b.Fatal(err)
			}
		}
		t3 := threadCPU()
		b.StartTimer()
		opTime += t1 - t0
		xTime += t3 - t2
	}
	ratio := float64(opTime) / float64(xTime)
	b.ReportMetric(float64(xTime.Nanoseconds())/float64(b.N*perOp), "cpu-ns/x25519")
	if perOp > 1 {
		b.ReportMetric(float64(opTime.Nanoseconds())/float64(b.N*perOp), "cpu-ns/session")
		b.ReportMetric(ratio, "x25519/session")
		return
	}
	b.ReportMetric(float64(opTime.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(ratio, "x25519")
}

func x25519Pair() (*ecdh.PrivateKey, *ecdh.PublicKey) {
	rand := detReader("bench x25519")
	var seed [32]byte
	rand.Read(seed[:])
	priv, err := ecdh.X25519().NewPrivateKey(seed[:])
	if err != nil {
		panic(err)
	}
	rand.Read(seed[:])
	peer, err := ecdh.X25519().NewPrivateKey(seed[:])
	if err != nil {
		panic(err)
	}
	return priv, peer.PublicKey()
}

func BenchmarkEnvelopeSeal(b *testing.B) {
	f := newCombineFixture(b, 3, 5, "bench") // seals once: the epoch key's table is built
	ctx := f.env.Context
	loopWithRatio(b, 1, func() error {
		_, err := SealEnvelope(f.K, ctx, f.tg.EK)
		return err
	})
}

// BenchmarkEnvelopeVerify is the trustee-side proof check of a parsed
// envelope.
func BenchmarkEnvelopeVerify(b *testing.B) {
	f := newCombineFixture(b, 3, 5, "bench")
	loopWithRatio(b, 1, func() error { return f.env.Verify(f.tg.EK) })
}

// BenchmarkEnvelopeParseVerify is the trustee's whole check of one
// envelope from its bytes: the strict parse (canonical point, subgroup
// check of U) and the proof.
func BenchmarkEnvelopeParseVerify(b *testing.B) {
	f := newCombineFixture(b, 3, 5, "bench")
	enc := f.env.Marshal()
	loopWithRatio(b, 1, func() error {
		e, err := ParseEnvelope(enc)
		if err != nil {
			return err
		}
		return e.Verify(f.tg.EK)
	})
}

// BenchmarkCheckEnvelope is the recipient's re-derivation and comparison.
func BenchmarkCheckEnvelope(b *testing.B) {
	f := newCombineFixture(b, 3, 5, "bench")
	enc := f.env.Marshal()
	loopWithRatio(b, 1, func() error { return CheckEnvelope(f.K, f.env.Context, f.tg.EK, enc) })
}

// BenchmarkPartialDecrypt is one trustee's answer with its DLEQ proof,
// through the per-session API.
func BenchmarkPartialDecrypt(b *testing.B) {
	f := newCombineFixture(b, 3, 5, "bench")
	rand := detReader("bench partial")
	loopWithRatio(b, 1, func() error {
		_, err := PartialDecrypt(1, f.tg.Shares[1], f.env, f.req.Public, rand)
		return err
	})
}

// BenchmarkPartialVerify is the requester's check of one answer.
func BenchmarkPartialVerify(b *testing.B) {
	f := newCombineFixture(b, 3, 5, "bench")
	p := f.answers[1]
	loopWithRatio(b, 1, func() error { return p.Verify(f.tg.PublicShares[1], f.env, f.req.Public) })
}

// BenchmarkCombine3of5 is the requester's whole last step for one
// envelope through the per-session API: the envelope proof, three answer
// proofs, interpolation, opening and re-derivation.
func BenchmarkCombine3of5(b *testing.B) {
	f := newCombineFixture(b, 3, 5, "bench")
	ps := answersOf(f.answers, []int{1, 3, 5})
	loopWithRatio(b, 1, func() error {
		_, err := Combine(f.tg.Group, f.env, f.req, ps)
		return err
	})
}

// BenchmarkCombinerCombine3of5 is the same step with a Combiner (q·X_e
// and Lagrange coefficients cached for the epoch), optimistic: no proof is
// checked when the envelope opens.
func BenchmarkCombinerCombine3of5(b *testing.B) {
	f := newCombineFixture(b, 3, 5, "bench")
	ps := answersOf(f.answers, []int{1, 3, 5})
	c, err := NewCombiner(f.tg.Group, f.req)
	if err != nil {
		b.Fatal(err)
	}
	loopWithRatio(b, 1, func() error {
		_, err := c.Combine(f.env, ps)
		return err
	})
}

// batchSizes are the request sizes of the batch benchmarks.
var batchSizes = []int{100, 1000}

var benchBatches = map[int]*batchFixture{}

func benchBatch(b *testing.B, m int) *batchFixture {
	b.Helper()
	if f := benchBatches[m]; f != nil {
		return f
	}
	f := newBatchFixture(b, 3, 5, m, fmt.Sprint("bench batch ", m))
	benchBatches[m] = f
	return f
}

// BenchmarkEnvelopeVerifyBatch is the trustee's proof check of every
// envelope of a request, per session: the envelope format's proofs (c, z)
// leave nothing to batch, so it is m single checks.
func BenchmarkEnvelopeVerifyBatch(b *testing.B) {
	f := benchBatch(b, 100)
	loopWithRatio(b, len(f.envs), func() error {
		for _, e := range f.envs {
			if err := e.Verify(f.tg.EK); err != nil {
				return err
			}
		}
		return nil
	})
}

// BenchmarkPartialDecryptBatch is one trustee's answer to a request of m
// sessions: m values V_j and one composite proof.
func BenchmarkPartialDecryptBatch(b *testing.B) {
	for _, m := range batchSizes {
		b.Run(fmt.Sprint("sessions=", m), func(b *testing.B) {
			f := benchBatch(b, m)
			k, err := NewBatchKey(1, f.tg.Epoch, f.tg.Shares[1])
			if err != nil {
				b.Fatal(err)
			}
			rand := detReader("bench batch nonce")
			loopWithRatio(b, m, func() error {
				_, err := PartialDecryptBatch(k, f.id, f.envs, f.req.Public, rand)
				return err
			})
		})
	}
}

// BenchmarkBatchVerify is the requester's check of one trustee's batch
// answer: two multi-scalar multiplications of m points by 128-bit weights.
func BenchmarkBatchVerify(b *testing.B) {
	for _, m := range batchSizes {
		b.Run(fmt.Sprint("sessions=", m), func(b *testing.B) {
			f := benchBatch(b, m)
			a := f.answers[2]
			loopWithRatio(b, m, func() error { return a.Verify(f.tg.PublicShares[2], f.id, f.envs, f.req.Public) })
		})
	}
}

// BenchmarkCombineBatch3of5 is the requester's last step for a request of
// m sessions from three answers: honest (no proof is checked), and with a
// cheater among the first three (every proof is checked, the cheater named,
// the failed session combined again).
func BenchmarkCombineBatch3of5(b *testing.B) {
	for _, m := range batchSizes {
		f := benchBatch(b, m)
		cheat := cloneAnswer(b, f.answers[3])
		cheat.v[0], cheat.vb[0] = f.answers[3].v[1], f.answers[3].vb[1]
		for _, c := range []struct {
			name    string
			answers []*BatchAnswer
		}{
			{"honest", f.pick(1, 3, 5)},
			{"one-cheater", []*BatchAnswer{f.answers[1], cheat, f.answers[5], f.answers[2]}},
		} {
			b.Run(fmt.Sprintf("%s/sessions=%d", c.name, m), func(b *testing.B) {
				comb := f.combiner(b)
				loopWithRatio(b, m, func() error {
					res, err := comb.CombineBatch(f.id, f.envs, c.answers)
					if err != nil {
						return err
					}
					return res.Errs[0]
				})
			})
		}
	}
}

// BenchmarkX25519 is one X25519 key agreement, the cost of the session's
// own HPKE key exchange: the baseline the escrow costs are compared with.
func BenchmarkX25519(b *testing.B) {
	priv, pub := x25519Pair()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := priv.ECDH(pub); err != nil {
			b.Fatal(err)
		}
	}
}

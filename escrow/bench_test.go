package escrow

import (
	"crypto/ecdh"
	"testing"
)

func BenchmarkEnvelopeSeal(b *testing.B) {
	f := newCombineFixture(b, 3, 5, "bench")
	ctx := f.env.Context
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SealEnvelope(f.K, ctx, f.tg.EK); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnvelopeVerify is the trustee-side proof check.
func BenchmarkEnvelopeVerify(b *testing.B) {
	f := newCombineFixture(b, 3, 5, "bench")
	b.ReportAllocs()
	for b.Loop() {
		if err := f.env.Verify(f.tg.EK); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckEnvelope is the recipient's re-derivation and comparison.
func BenchmarkCheckEnvelope(b *testing.B) {
	f := newCombineFixture(b, 3, 5, "bench")
	enc := f.env.Marshal()
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckEnvelope(f.K, f.env.Context, f.tg.EK, enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPartialDecrypt is one trustee's answer with its DLEQ proof.
func BenchmarkPartialDecrypt(b *testing.B) {
	f := newCombineFixture(b, 3, 5, "bench")
	rand := detReader("bench partial")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PartialDecrypt(1, f.tg.Shares[1], f.env, f.req.Public, rand); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPartialVerify is the requester's check of one answer.
func BenchmarkPartialVerify(b *testing.B) {
	f := newCombineFixture(b, 3, 5, "bench")
	p := f.answers[1]
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Verify(f.tg.PublicShares[1], f.env, f.req.Public); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCombine3of5 is the requester's whole last step: the envelope
// proof, three answer proofs, interpolation, opening and re-derivation.
func BenchmarkCombine3of5(b *testing.B) {
	f := newCombineFixture(b, 3, 5, "bench")
	ps := answersOf(f.answers, []int{1, 3, 5})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Combine(f.tg.Group, f.env, f.req, ps); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkX25519 is one X25519 key agreement, the cost of the session's
// own HPKE key exchange: the baseline the escrow costs are compared with.
func BenchmarkX25519(b *testing.B) {
	rand := detReader("bench x25519")
	var seed [32]byte
	rand.Read(seed[:])
	priv, err := ecdh.X25519().NewPrivateKey(seed[:])
	if err != nil {
		b.Fatal(err)
	}
	rand.Read(seed[:])
	peer, err := ecdh.X25519().NewPrivateKey(seed[:])
	if err != nil {
		b.Fatal(err)
	}
	pub := peer.PublicKey()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := priv.ECDH(pub); err != nil {
			b.Fatal(err)
		}
	}
}

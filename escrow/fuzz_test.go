package escrow

import (
	"bytes"
	"testing"
)

// fuzzSeeds builds valid encodings of every wire object from a fixed seed.
type fuzzSeeds struct {
	contexts, envelopes, partials, requests [][]byte
}

func newFuzzSeeds(tb testing.TB) *fuzzSeeds {
	tb.Helper()
	rand := detReader("fuzz seeds")
	tg := dealTestGroup(tb, 2, 3, 5, rand)
	s := &fuzzSeeds{}
	req, err := GenerateRequesterKey(rand)
	if err != nil {
		tb.Fatal(err)
	}
	for i, names := range [][2]string{{"alice", "bob"}, {"x", "y"}, {"long.name+tag@example.org", "B_2-c"}} {
		ctx := makeContext(tg, names[0], names[1], byte(i))
		cb, err := ctx.Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		s.contexts = append(s.contexts, cb)
		env := mustSeal(tb, tg, randomSessionKey(tb, rand), ctx)
		s.envelopes = append(s.envelopes, env.Marshal())
		for _, p := range partialsFor(tb, tg, env, req.Public, []int{1, 3}, rand) {
			s.partials = append(s.partials, p.Marshal())
		}
	}
	for _, envs := range [][][]byte{s.envelopes[:1], s.envelopes} {
		r, err := NewDecryptionRequest(opaqueWarrant, envs, req, requestTime, rand)
		if err != nil {
			tb.Fatal(err)
		}
		s.requests = append(s.requests, r.Marshal())
	}
	r, err := NewDecryptionRequest(nil, s.envelopes[1:2], req, requestTime, rand)
	if err != nil {
		tb.Fatal(err)
	}
	s.requests = append(s.requests, r.Marshal())
	return s
}

func addSeeds(f *testing.F, seeds [][]byte) {
	for _, b := range seeds {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{1})
}

func FuzzParseContext(f *testing.F) {
	addSeeds(f, newFuzzSeeds(f).contexts)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseContext(b)
		if err != nil {
			return
		}
		got, err := c.Marshal()
		if err != nil {
			t.Fatalf("parsed context does not marshal: %v", err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("malleable context encoding: %x re-encodes as %x", b, got)
		}
	})
}

func FuzzParseEnvelope(f *testing.F) {
	s := newFuzzSeeds(f)
	addSeeds(f, s.envelopes)
	tg := dealTestGroup(f, 2, 3, 5, detReader("fuzz seeds"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEnvelope(b)
		if err != nil {
			return
		}
		if got := e.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("malleable envelope encoding: %x re-encodes as %x", b, got)
		}
		_ = e.Verify(tg.EK) // must not panic
	})
}

func FuzzParsePartialDecryption(f *testing.F) {
	addSeeds(f, newFuzzSeeds(f).partials)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePartialDecryption(b)
		if err != nil {
			return
		}
		if got := p.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("malleable partial decryption encoding: %x re-encodes as %x", b, got)
		}
	})
}

func FuzzParseDecryptionRequest(f *testing.F) {
	addSeeds(f, newFuzzSeeds(f).requests)
	tg := dealTestGroup(f, 2, 3, 5, detReader("fuzz seeds"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseDecryptionRequest(b)
		if err != nil {
			return
		}
		if got := r.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("malleable request encoding: %x re-encodes as %x", b, got)
		}
		_ = r.VerifySignature(tg.Key) // must not panic
	})
}

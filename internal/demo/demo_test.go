package demo

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// checkInvariants asserts what the demo is for: the warrant opens exactly
// its scope, collusion below t opens nothing, and the comparison designs
// behave as the design notes say, all as measured by the run.
func checkInvariants(t *testing.T, cfg Config, r *Report) {
	t.Helper()
	if r.InScope <= 0 || r.Recovered != r.InScope {
		t.Errorf("recovered %d of %d in-scope sessions", r.Recovered, r.InScope)
	}
	if r.OutOfScopeTried == 0 || r.OutOfScopeRecov != 0 {
		t.Errorf("out of scope: tried %d, recovered %d", r.OutOfScopeTried, r.OutOfScopeRecov)
	}
	if r.ForgedEnvelopes.Attempted != cfg.ForgeryTries || r.ForgedEnvelopes.Accepted != 0 {
		t.Errorf("forged envelopes %+v", r.ForgedEnvelopes)
	}
	if r.LEAFForgeryTries < 1 || r.LEAFForgeryTries > 1<<24 {
		t.Errorf("LEAF forgery took %d tries", r.LEAFForgeryTries)
	}
	if r.RogueSessions == 0 || r.RejectedSessions != r.RogueSessions {
		t.Errorf("rogue sessions %d, rejected %d", r.RogueSessions, r.RejectedSessions)
	}
	for _, a := range r.Attacks {
		if a.Succeeded {
			t.Errorf("attack %q succeeded: %s", a.Name, a.Outcome)
		}
	}
	rows := map[string]Design{}
	for _, d := range r.Designs {
		rows[d.Name] = d
		if len(d.ExposedWhenCompromised) != cfg.Trustees+1 || len(d.RecoverableWithDown) != cfg.Trustees+1 {
			t.Fatalf("%s: wrong column lengths", d.Name)
		}
	}
	n, th := cfg.Trustees, cfg.Threshold
	for _, name := range []string{"no-escrow", "master-key", "split-master-key", "threshold", "threshold-epochs"} {
		if _, ok := rows[name]; !ok {
			t.Fatalf("design %s missing", name)
		}
	}
	thr := rows["threshold"]
	for k := 0; k <= n; k++ {
		want := 0
		if k >= th {
			want = r.Sessions
		}
		if thr.ExposedWhenCompromised[k] != want {
			t.Errorf("threshold: %d compromised expose %d, want %d", k, thr.ExposedWhenCompromised[k], want)
		}
	}
	for f := 0; f <= n; f++ {
		want := 0
		if n-f >= th {
			want = r.InScope
		}
		if thr.RecoverableWithDown[f] != want {
			t.Errorf("threshold: %d down recovers %d, want %d", f, thr.RecoverableWithDown[f], want)
		}
	}
	if thr.ExposedByOneWarrant != r.InScope || !thr.UsesLogged || !thr.ForgedFieldDetected {
		t.Errorf("threshold row %+v", thr)
	}
	ep := rows["threshold-epochs"]
	if ep.ExposedWhenCompromised[th] <= 0 || ep.ExposedWhenCompromised[th] >= r.Sessions {
		t.Errorf("threshold-epochs: t compromised expose %d of %d; retention should put old epochs out of reach", ep.ExposedWhenCompromised[th], r.Sessions)
	}
	if mk := rows["master-key"]; mk.ExposedWhenCompromised[0] != 0 || mk.ExposedWhenCompromised[1] != r.Sessions || mk.UsesLogged {
		t.Errorf("master-key row %+v", mk)
	}
	if sp := rows["split-master-key"]; sp.ExposedByOneWarrant != r.Sessions || sp.ExposedWhenCompromised[th-1] != 0 {
		t.Errorf("split-master-key row %+v", sp)
	}
	if ne := rows["no-escrow"]; ne.PartiesToDecrypt != nil || ne.ExposedByOneWarrant != 0 || ne.ForgedFieldDetected {
		t.Errorf("no-escrow row %+v", ne)
	}
}

func TestDemoDefault(t *testing.T) {
	cfg := DefaultConfig()
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, cfg, r)
	if r.Mode != "in-process" || r.KeyGeneration != "dkg" {
		t.Errorf("mode %q key generation %q", r.Mode, r.KeyGeneration)
	}
	checkCeremonies(t, cfg, r)
	for name, n := range r.AuditRecords {
		if n == 0 {
			t.Errorf("%s logged nothing", name)
		}
	}
}

// checkCeremonies asserts that a DKG made every epoch: a first ceremony,
// then one rotation per further epoch, each leaving every trustee a share.
func checkCeremonies(t *testing.T, cfg Config, r *Report) {
	t.Helper()
	if len(r.Ceremonies) != r.Epochs || r.Epochs < 2 {
		t.Fatalf("%d ceremonies for %d epochs", len(r.Ceremonies), r.Epochs)
	}
	for i, c := range r.Ceremonies {
		kind := "rotation"
		if i == 0 {
			kind = "dkg"
		}
		if c.Epoch != uint32(i+1) || c.Kind != kind || c.Holders != cfg.Trustees || c.Took <= 0 {
			t.Errorf("ceremony %d: %+v", i+1, c)
		}
	}
	if r.KeyGenerationNote == "" {
		t.Error("no key generation note")
	}
}

func TestDemoOtherShapes(t *testing.T) {
	for _, shape := range []struct {
		n, t   int
		keyGen string
	}{{4, 2, "dkg"}, {3, 3, "dkg"}, {3, 2, "dealer"}, {1, 1, "dealer"}} {
		cfg := DefaultConfig()
		cfg.Trustees, cfg.Threshold, cfg.Users, cfg.Days, cfg.ForgeryTries = shape.n, shape.t, 5, 14, 1000
		cfg.EpochDays, cfg.KeyGeneration = 5, shape.keyGen
		r, err := Run(cfg)
		if err != nil {
			t.Fatalf("%d-of-%d %s: %v", shape.t, shape.n, shape.keyGen, err)
		}
		checkInvariants(t, cfg, r)
		if r.KeyGeneration != shape.keyGen {
			t.Errorf("%d-of-%d: key generation %q, want %q", shape.t, shape.n, r.KeyGeneration, shape.keyGen)
		}
		if shape.keyGen == "dkg" {
			checkCeremonies(t, cfg, r)
		} else if len(r.Ceremonies) != 0 {
			t.Errorf("dealer mode reports ceremonies %+v", r.Ceremonies)
		}
	}
}

func TestConfigRefusals(t *testing.T) {
	for _, mod := range []func(*Config){
		func(c *Config) { c.Threshold = 6 },
		func(c *Config) { c.Threshold = 0 },
		func(c *Config) { c.Users = 2 },
		func(c *Config) { c.Days = 3 },
		func(c *Config) { c.EpochDays = 0 },
		func(c *Config) { c.Threshold = 1 }, // a DKG needs t >= 2
		func(c *Config) { c.KeyGeneration = "trusted-party" },
	} {
		cfg := DefaultConfig()
		mod(&cfg)
		if _, err := Run(cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

func TestClipperLEAFForgeryIsCheap(t *testing.T) {
	// Over several seeds the brute force must succeed, and on average
	// around 2^16 tries: the checksum has 16 bits.
	total := 0
	for seed := uint64(1); seed <= 8; seed++ {
		w := &world{cfg: Config{Seed: seed}}
		n, err := forgeClipper(w)
		if err != nil || n > 1<<24 {
			t.Fatalf("seed %d: %d tries, %v", seed, n, err)
		}
		total += n
	}
	if avg := total / 8; avg < 1<<13 || avg > 1<<19 {
		t.Errorf("average %d tries, expected near 65536", avg)
	}
}

// TestDemoProcesses runs the demo with every trustee as a real process of
// the keyquorum binary, over TLS on loopback, and checks the same
// invariants plus the verified audit logs.
func TestDemoProcesses(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "keyquorum")
	build := exec.Command("go", "build", "-o", bin, "github.com/keyquorum/keyquorum/cmd/keyquorum")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building keyquorum: %v\n%s", err, out)
	}
	cfg := DefaultConfig()
	cfg.Processes, cfg.Binary, cfg.WorkDir = true, bin, t.TempDir()
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, cfg, r)
	if r.Mode != "processes" || r.KeyGeneration != "dkg" || len(r.Audit) != cfg.Trustees {
		t.Fatalf("mode %q, key generation %q, %d audited trustees", r.Mode, r.KeyGeneration, len(r.Audit))
	}
	checkCeremonies(t, cfg, r)
	for _, c := range r.Ceremonies {
		if len(c.ID) != 32 {
			t.Errorf("ceremony of epoch %d has id %q", c.Epoch, c.ID)
		}
	}
	// Every trustee released shares, each under a checkpoint w = t-1
	// others cosigned; the auditor found those witnesses' checkpoints,
	// verified, and the logs extending them.
	for _, a := range r.Audit {
		if !a.Verified || a.Records == 0 {
			t.Errorf("audit of %s: %+v", a.Trustee, a)
		}
		if !strings.HasPrefix(a.Checkpoint, a.Trustee+".keyquorum\n") {
			t.Errorf("audit of %s: checkpoint %q", a.Trustee, a.Checkpoint)
		}
		if len(a.Cosignatures) < cfg.Threshold-1 {
			t.Errorf("audit of %s: %d cosignatures, want at least w = %d", a.Trustee, len(a.Cosignatures), cfg.Threshold-1)
		}
		for _, c := range a.Cosignatures {
			if !c.Verified || c.Witness == a.Trustee || c.Size == 0 || c.Size > int64(a.Records) {
				t.Errorf("audit of %s: cosignature %+v", a.Trustee, c)
			}
		}
	}
}

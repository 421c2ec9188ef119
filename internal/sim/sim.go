// Package sim generates the messaging traffic keyquorum's demo and
// `keyquorum simulate` run on: users who open escrowed sessions with each
// other over simulated days, as a provider would capture them, and one user
// whose client strips or forges the escrow field. Honest recipients check
// every session's envelope, so the rogue user's sessions are rejected.
//
// Everything is a function of the seed except the HPKE encapsulation of
// each session key: Go's crypto/hpke draws its ephemeral key from the
// system's random source and takes no randomness parameter. Session ids,
// session keys, envelopes and message ciphertexts are reproducible.
package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
)

// Names of the first simulated users; the last user of a simulation is the
// rogue one, "mallory".
var baseNames = [...]string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "ken", "liz"}

// RogueName is the user whose client tampers with the escrow field.
const RogueName = "mallory"

// Config says what to simulate.
type Config struct {
	Users int       // including the rogue user; at least 3
	Days  int       // at least 1
	Seed  uint64    // same seed, same traffic
	Start time.Time // first simulated day
	// SessionsPerUserDay is the mean number of sessions a user starts per day.
	SessionsPerUserDay float64
}

// Tampering says what a rogue client did to a session's escrow field.
type Tampering string

// Kinds of tampering.
const (
	Honest    Tampering = ""
	Stripped  Tampering = "stripped"
	Forged    Tampering = "forged"
	Backdated Tampering = "backdated" // a genuine envelope for a false start time
)

// MaxClockSkew is how far a recipient lets a session's claimed start time
// differ from its own clock.
const MaxClockSkew = 5 * time.Minute

// Captured is one session as the provider saw it, with what the demo needs
// to check its results: the ground-truth plaintexts and whether the
// recipient accepted the session.
type Captured struct {
	Session   *escrow.Session
	Context   *escrow.Context
	Tampering Tampering
	Accepted  bool
	Rejection error // why the recipient rejected it
	Plain     []string
}

// Traffic is a whole simulation.
type Traffic struct {
	Users    []*escrow.UserKey
	Sessions []*Captured
}

// KeyAt returns the epoch and group key senders use at a time.
type KeyAt func(t time.Time) (epoch uint32, key kyber.Point, err error)

// NewRand returns the deterministic randomness source for a seed and a
// purpose: ChaCha8 keyed by SHA-256 of both.
func NewRand(seed uint64, purpose string) io.Reader {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seed)
	return rand.NewChaCha8(sha256.Sum256(append(b[:], purpose...)))
}

// UserNames returns the names of n simulated users, the rogue one last.
func UserNames(n int) []string {
	var names []string
	for i := 0; i < n-1; i++ {
		if i < len(baseNames) {
			names = append(names, baseNames[i])
		} else {
			names = append(names, fmt.Sprintf("user%d", i+1))
		}
	}
	return append(names, RogueName)
}

// GenerateUsers makes the users' keys deterministically from the seed.
func GenerateUsers(n int, seed uint64) ([]*escrow.UserKey, error) {
	if n < 3 {
		return nil, errors.New("sim: simulate at least 3 users (two honest ones and the rogue one)")
	}
	r := NewRand(seed, "users")
	var users []*escrow.UserKey
	for _, name := range UserNames(n) {
		u, err := escrow.GenerateUserKey(name, r)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	return users, nil
}

var lines = [...]string{
	"are we still on for lunch?", "running ten minutes late", "did you see the match last night",
	"can you send me the file", "the meeting moved to 3pm", "happy birthday!", "call me when you land",
	"I left the keys with the neighbour", "what time does the train leave", "thanks, that helped a lot",
	"the invoice is attached", "see you at the station", "kids are asleep, talk tomorrow", "ok",
}

// Generate simulates cfg.Days days of sessions among the users. keyAt gives
// the escrow key for each session's start time.
func Generate(cfg Config, users []*escrow.UserKey, keyAt KeyAt) (*Traffic, error) {
	if cfg.Days < 1 {
		return nil, errors.New("sim: simulate at least one day")
	}
	if len(users) < 3 {
		return nil, errors.New("sim: simulate at least 3 users")
	}
	if cfg.SessionsPerUserDay <= 0 {
		cfg.SessionsPerUserDay = 1
	}
	pubs := map[string]*escrow.UserPublic{}
	for _, u := range users {
		pubs[u.Name] = u.Public()
	}
	choices := rand.New(rand.NewChaCha8(sha256.Sum256(fmt.Appendf(nil, "choices/%d", cfg.Seed))))
	keys := NewRand(cfg.Seed, "session keys")
	seen := map[string]escrow.SeenSessions{}
	epochKeyAt := keyAt.cached()
	t := &Traffic{Users: users}
	start := cfg.Start.UTC().Truncate(24 * time.Hour)
	for day := 0; day < cfg.Days; day++ {
		for ui, u := range users {
			n := poisson(choices, cfg.SessionsPerUserDay)
			for k := 0; k < n; k++ {
				peer := users[(ui+1+choices.IntN(len(users)-1))%len(users)]
				at := start.Add(time.Duration(day)*24*time.Hour + time.Duration(choices.IntN(86400))*time.Second)
				c, err := session(u, peer, pubs, at, epochKeyAt, keys, choices, seen)
				if err != nil {
					return nil, err
				}
				t.Sessions = append(t.Sessions, c)
			}
		}
	}
	return t, nil
}

// cached returns keyAt with each epoch's key converted once to the
// escrow.EpochKey that sealing and checking use (its table costs about 50
// multiplications to build).
func (keyAt KeyAt) cached() func(time.Time) (uint32, *escrow.EpochKey, error) {
	byEpoch := map[uint32]*escrow.EpochKey{}
	return func(at time.Time) (uint32, *escrow.EpochKey, error) {
		epoch, k, err := keyAt(at)
		if err != nil {
			return 0, nil, err
		}
		if byEpoch[epoch] == nil { // an epoch has one key
			if byEpoch[epoch], err = escrow.ParseEpochKey(group.PointBytes(k)); err != nil {
				return 0, nil, err
			}
		}
		return epoch, byEpoch[epoch], nil
	}
}

func session(u, peer *escrow.UserKey, pubs map[string]*escrow.UserPublic, at time.Time, keyAt func(time.Time) (uint32, *escrow.EpochKey, error), keys io.Reader, choices *rand.Rand, seen map[string]escrow.SeenSessions) (*Captured, error) {
	epoch, gk, err := keyAt(at)
	if err != nil {
		return nil, err
	}
	tamper := Honest
	claimed := at
	if u.Name == RogueName {
		// The rogue client drops the field, sends a field that looks right
		// but escrows nothing useful, or escrows honestly under a start
		// time a week early, to fall outside any warrant for this week.
		tamper = []Tampering{Stripped, Forged, Backdated}[choices.IntN(3)]
		if tamper == Backdated {
			claimed = at.AddDate(0, 0, -7)
		}
	}
	sk, s, err := escrow.StartSession(u, pubs[peer.Name], epoch, gk, claimed, keys)
	if err != nil {
		return nil, err
	}
	c := &Captured{Session: s, Context: sk.Context, Tampering: tamper}
	if u.Name == RogueName {
		switch tamper {
		case Stripped:
			s.Envelope = nil
		case Forged:
			fake := make([]byte, len(s.Envelope))
			copy(fake, s.Envelope[:len(s.Envelope)-64-48])
			for i := len(s.Envelope) - 64 - 48; i < len(fake); i++ {
				fake[i] = byte(choices.IntN(256))
			}
			s.Envelope = fake
		}
	}
	nmsg := 2 + choices.IntN(4)
	for i := 0; i < nmsg; i++ {
		author := u
		if i%2 == 1 {
			author = peer
		}
		text := lines[choices.IntN(len(lines))]
		m, err := sk.Seal(author, uint32(i), text)
		if err != nil {
			return nil, err
		}
		s.Messages = append(s.Messages, m)
		c.Plain = append(c.Plain, text)
	}
	if seen[peer.Name] == nil {
		seen[peer.Name] = escrow.SeenSessions{}
	}
	// The recipient checks the claimed time and epoch against its own
	// clock (the real start), then the envelope.
	c.Rejection = escrow.CheckSessionTiming(c.Context, epoch, at, MaxClockSkew)
	if c.Rejection == nil {
		_, c.Rejection = escrow.AcceptSession(peer, pubs[u.Name], gk, s, seen[peer.Name])
	}
	c.Accepted = c.Rejection == nil
	return c, nil
}

// poisson draws from a Poisson distribution with mean lambda (Knuth's
// method; lambda is small here).
func poisson(r *rand.Rand, lambda float64) int {
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

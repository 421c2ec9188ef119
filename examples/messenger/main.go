// Command messenger is the minimal integration of keyquorum escrow in a
// messaging app, the code a developer would copy:
//
//  1. The client accepts the trustees' group file only signed by every
//     trustee (escrow.VerifyGroupFile) and takes the current epoch's key
//     (GroupFile.EpochKey: an *escrow.EpochKey, decoded once and kept for
//     the epoch; no group-arithmetic library appears in this program).
//  2. The sender starts each session with escrow.StartSession, which seals
//     the session key to the recipient and attaches the escrow envelope.
//  3. The recipient accepts a session only through escrow.AcceptSession
//     (which re-derives the envelope from the key it received) and
//     escrow.CheckSessionTiming, so a stripped, forged, replayed or
//     backdated escrow field is rejected, and opens messages with Open,
//     which checks each author's signature.
//
// Everything else here plays the other parties: the trustees who publish
// the group file and a rogue client. It uses only keyquorum's public
// packages (escrow, trustee) and a seeded random source, so every run
// prints the same story.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
	"golang.org/x/mod/sumdb/note"
)

// maxSkew is how far a session's claimed start may be from the
// recipient's clock.
const maxSkew = 5 * time.Minute

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "messenger:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	rnd := rand.NewChaCha8([32]byte{'m', 'e', 's', 's', 'e', 'n', 'g', 'e', 'r'})
	now := time.Date(2026, 3, 10, 9, 30, 0, 0, time.UTC)
	signedGroup, err := trusteesPublishGroup(now, rnd)
	if err != nil {
		return err
	}

	// 1. The client checks the group file and takes the current key.
	groupKey, epoch, err := currentKey(signedGroup, now)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "client: group file signed by every trustee; escrowing under epoch %d\n", epoch)
	extended := bytes.Replace(signedGroup, []byte(`"valid_until": "2026`), []byte(`"valid_until": "2027`), 1)
	_, _, err = currentKey(extended, now)
	fmt.Fprintf(out, "client: a group file with its key's validity stretched a year: %s\n", verdict(err))
	sg, err := escrow.ParseSignedGroupFile(signedGroup)
	if err != nil {
		return err
	}
	sg.Signatures = sg.Signatures[:len(sg.Signatures)-1] // the last trustee's signature dropped
	fewer, err := sg.Marshal()
	if err != nil {
		return err
	}
	_, _, err = currentKey(fewer, now)
	fmt.Fprintf(out, "client: the group file without one trustee's signature: %s\n", verdict(err))

	alice, err := escrow.GenerateUserKey("alice", rnd)
	if err != nil {
		return err
	}
	bob, err := escrow.GenerateUserKey("bob", rnd)
	if err != nil {
		return err
	}
	authors := map[string]*escrow.UserPublic{"alice": alice.Public(), "bob": bob.Public()}
	seen := escrow.SeenSessions{} // bob's client remembers the sessions it accepted

	// 2. The sender.
	send := func(start time.Time, text string) (*escrow.Session, error) {
		keys, session, err := escrow.StartSession(alice, bob.Public(), epoch, groupKey, start, rnd)
		if err != nil {
			return nil, err
		}
		m, err := keys.Seal(alice, 1, text)
		if err != nil {
			return nil, err
		}
		session.Messages = append(session.Messages, m)
		return session, nil
	}
	session, err := send(now, "lunch at one?")
	if err != nil {
		return err
	}

	// 3. The recipient.
	texts, err := receive(bob, alice.Public(), groupKey, epoch, session, seen, authors, now)
	fmt.Fprintf(out, "bob: alice's session: %s %q\n", verdict(err), texts)

	// A rogue client of alice's tries to get out of escrow: it strips
	// the field from a new session, forges it in another, replays the
	// first session, and backdates one to before any warrant's window.
	stripped, err := send(now, "no escrow here")
	if err != nil {
		return err
	}
	stripped.Envelope = nil
	forged, err := send(now, "nor here")
	if err != nil {
		return err
	}
	forged.Envelope[len(forged.Envelope)/2] ^= 0x40
	backdated, err := send(now.Add(-48*time.Hour), "this was two days ago")
	if err != nil {
		return err
	}
	for _, c := range []struct {
		what string
		s    *escrow.Session
	}{
		{"a session with its escrow field stripped", stripped},
		{"a session with a forged escrow field", forged},
		{"the first session again (a replay)", session},
		{"a session backdated by two days", backdated},
	} {
		_, err := receive(bob, alice.Public(), groupKey, epoch, c.s, seen, authors, now)
		fmt.Fprintf(out, "bob: %s: %s\n", c.what, verdict(err))
	}
	return nil
}

// currentKey is the client's step 1: verify the signed group file (every
// trustee must have signed it) and return the key of the epoch current at
// now.
func currentKey(signedGroup []byte, now time.Time) (*escrow.EpochKey, uint32, error) {
	g, _, err := escrow.VerifyGroupFile(signedGroup, true)
	if err != nil {
		return nil, 0, err
	}
	e, err := g.EpochAt(now)
	if err != nil {
		return nil, 0, err
	}
	key, err := g.EpochKey(e.Epoch)
	if err != nil {
		return nil, 0, err
	}
	return key, e.Epoch, nil
}

// receive is the recipient's step 3: accept the session only if its escrow
// envelope is exactly the one the session key determines, it is new, and it
// started now under the current epoch; then open its messages.
func receive(me *escrow.UserKey, sender *escrow.UserPublic, groupKey *escrow.EpochKey, epoch uint32,
	s *escrow.Session, seen escrow.SeenSessions, authors map[string]*escrow.UserPublic, now time.Time) ([]string, error) {
	keys, err := escrow.AcceptSession(me, sender, groupKey, s, seen)
	if err != nil {
		return nil, err
	}
	if err := escrow.CheckSessionTiming(keys.Context, epoch, now, maxSkew); err != nil {
		return nil, err
	}
	seen[keys.Context.SessionID] = true
	var texts []string
	for _, m := range s.Messages {
		pt, err := keys.Open(m, authors)
		if err != nil {
			return nil, err
		}
		texts = append(texts, pt.Text)
	}
	return texts, nil
}

func verdict(err error) string {
	switch {
	case err == nil:
		return "accepted"
	case errors.Is(err, escrow.ErrEnvelopeMissing):
		return "rejected (no escrow field)"
	case errors.Is(err, escrow.ErrEnvelopeMismatch):
		return "rejected (escrow field does not match the session key)"
	case errors.Is(err, escrow.ErrReplayedSession):
		return "rejected (replayed session)"
	case errors.Is(err, escrow.ErrSessionTiming):
		return "rejected (start time or epoch not current)"
	case errors.Is(err, escrow.ErrGroupSignature):
		return "rejected (a signature does not verify)"
	case errors.Is(err, escrow.ErrGroupUnsigned):
		return "rejected (not signed by every trustee)"
	}
	return "rejected (" + err.Error() + ")"
}

// trusteesPublishGroup plays the five trustees: a 3-of-5 group with this
// week's key (dealt here for brevity; keyquorum's trustees make it by a
// DKG), the group file signed by each trustee's log key.
func trusteesPublishGroup(now time.Time, rnd io.Reader) ([]byte, error) {
	var names []string
	var signers []note.Signer
	var vkeys []string
	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("trustee-%d", i)
		skey, vkey, err := note.GenerateKey(rnd, escrow.LogKeyName(name))
		if err != nil {
			return nil, err
		}
		s, err := note.NewSigner(skey)
		if err != nil {
			return nil, err
		}
		names, signers, vkeys = append(names, name), append(signers, s), append(vkeys, vkey)
	}
	week := now.Truncate(24*time.Hour).AddDate(0, 0, -int(now.Weekday()))
	g, _, err := escrow.Deal(names, 3, []escrow.GroupEpoch{{Epoch: 1, ValidFrom: week, ValidUntil: week.AddDate(0, 0, 7)}}, rnd)
	if err != nil {
		return nil, err
	}
	for i := range g.Trustees {
		g.Trustees[i].LogKey = vkeys[i]
	}
	signed, err := g.Marshal()
	if err != nil {
		return nil, err
	}
	for _, s := range signers {
		if signed, err = escrow.SignGroupFile(signed, s); err != nil {
			return nil, err
		}
	}
	return signed, nil
}

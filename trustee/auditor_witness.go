package trustee

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/keyquorum/keyquorum/escrow"
	"golang.org/x/mod/sumdb/note"
)

// WitnessedCheckpoint is the latest checkpoint of a trustee's log that
// another trustee's witness cosigned, as an audit fetched it from that
// witness (GET [PathWitnessCheckpoint]): the log's signature and the
// witness's cosignature both verified with their keys from the group
// file. The audit then checks that the log's current checkpoint extends
// it, so a log rewritten behind its witnesses' backs (records erased and
// the log regrown to the same size) is caught from the witnesses alone,
// without any state of the auditor's own.
type WitnessedCheckpoint struct {
	Witness    string `json:"witness"`
	Size       int64  `json:"size"`
	Checkpoint string `json:"checkpoint"`
}

// gatherWitnessed asks every other trustee's witness for the latest
// checkpoint of m's log it cosigned, and returns those whose signatures
// verify, in roster order, with why each other one is missing.
func gatherWitnessed(ctx context.Context, g *escrow.GroupFile, m escrow.GroupMember, logKey note.Verifier, clients []*Client) ([]WitnessedCheckpoint, map[string]string) {
	type got struct {
		slot int
		cp   *WitnessedCheckpoint
		why  string
	}
	var (
		mu  sync.Mutex
		all []got
		wg  sync.WaitGroup
	)
	for i, c := range clients {
		w := g.Trustees[i]
		if w.Name == m.Name {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp, why := fetchWitnessed(ctx, w, logKey, c)
			mu.Lock()
			all = append(all, got{i, cp, why})
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(all, func(a, b int) bool { return all[a].slot < all[b].slot })
	var out []WitnessedCheckpoint
	missing := map[string]string{}
	for _, x := range all {
		if x.cp != nil {
			out = append(out, *x.cp)
		} else {
			missing[g.Trustees[x.slot].Name] = x.why
		}
	}
	return out, missing
}

func fetchWitnessed(ctx context.Context, w escrow.GroupMember, logKey note.Verifier, c *Client) (*WitnessedCheckpoint, string) {
	b, err := c.WitnessCheckpoint(ctx, logKey.Name())
	if err != nil {
		return nil, err.Error()
	}
	tree, err := VerifyHead(b, logKey)
	if err != nil {
		return nil, fmt.Sprintf("its witness serves a checkpoint that does not verify with the log's key: %v", err)
	}
	cv, err := CosignatureVerifier(w)
	if err != nil {
		return nil, err.Error()
	}
	if _, err := note.Open(b, note.VerifierList(cv)); err != nil {
		return nil, fmt.Sprintf("its cosignature does not verify with its key from the group file: %v", err)
	}
	return &WitnessedCheckpoint{Witness: w.Name, Size: tree.N, Checkpoint: string(b)}, ""
}

package trustee

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/ceremony"
	"github.com/keyquorum/keyquorum/escrow"
)

// NodeStatus is what `keyquorum trustee status` shows an operator: the
// epochs the node holds and their windows, approved proposals and
// ceremonies in progress, the audit log's size and latest signed head,
// and a summary of its policy. It is served only on the control channel.
type NodeStatus struct {
	Name       string           `json:"name"`
	Index      int              `json:"index"`
	Epochs     []EpochStatus    `json:"epochs"`
	Ceremonies *ceremony.Status `json:"ceremonies"`
	AuditSize  int64            `json:"audit_size"`
	AuditHead  string           `json:"audit_head"` // the latest signed head note
	Policy     PolicySummary    `json:"policy"`
	// Witness is what the node's witness holds of the other trustees'
	// logs (set by trustee serve; nil without a group).
	Witness *WitnessStatus `json:"witness,omitempty"`
}

// EpochStatus is one epoch of the node's group file.
type EpochStatus struct {
	Epoch      uint32    `json:"epoch"`
	ValidFrom  time.Time `json:"valid_from"`
	ValidUntil time.Time `json:"valid_until"`
	Held       bool      `json:"held"`      // this node holds a share of it
	Destroyed  bool      `json:"destroyed"` // destroyed by retention
}

// PolicySummary is the part of a node's policy an operator checks at a glance.
type PolicySummary struct {
	Judges                []string `json:"judges"`
	JudgesRequired        int      `json:"judges_required"`
	MaxSessionsPerWarrant int      `json:"max_sessions_per_warrant"`
	RetentionEpochs       int      `json:"retention_epochs"`
	ProspectiveOnly       bool     `json:"prospective_only"`
}

// Status returns the node's status; g is its group file (nil if none)
// and host its ceremony host (nil if none).
func (n *Node) Status(g *escrow.GroupFile, host *ceremony.CeremonyHost) (*NodeStatus, error) {
	head, err := n.log.Head()
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	pol := n.policy
	held := map[uint32]bool{}
	for e := range n.shares {
		held[e] = true
	}
	destroyed := map[uint32]bool{}
	for e := range n.destroyed {
		destroyed[e] = true
	}
	n.mu.Unlock()
	st := &NodeStatus{Name: n.name, Index: n.Index(), Epochs: []EpochStatus{}, AuditSize: head.Tree.N, AuditHead: string(head.Note)}
	if g != nil {
		for _, e := range g.Epochs {
			st.Epochs = append(st.Epochs, EpochStatus{Epoch: e.Epoch, ValidFrom: e.ValidFrom, ValidUntil: e.ValidUntil, Held: held[e.Epoch], Destroyed: destroyed[e.Epoch]})
		}
	}
	if host != nil {
		if st.Ceremonies, err = host.Status(); err != nil {
			return nil, err
		}
	}
	for _, j := range pol.Judges {
		st.Policy.Judges = append(st.Policy.Judges, j.Name())
	}
	slices.Sort(st.Policy.Judges)
	st.Policy.JudgesRequired, st.Policy.MaxSessionsPerWarrant = pol.JudgesRequired, pol.MaxSessionsPerWarrant
	st.Policy.RetentionEpochs, st.Policy.ProspectiveOnly = pol.RetentionEpochs, pol.ProspectiveOnly
	return st, nil
}

// Print writes the status for a person.
func (st *NodeStatus) Print(w io.Writer) {
	fmt.Fprintf(w, "trustee %s (index %d)\n", st.Name, st.Index)
	if len(st.Epochs) == 0 {
		fmt.Fprintln(w, "epochs: none yet (waiting for a first DKG)")
	}
	for _, e := range st.Epochs {
		state := "not held"
		switch {
		case e.Destroyed:
			state = "destroyed by retention"
		case e.Held:
			state = "share held"
		}
		fmt.Fprintf(w, "epoch %d: %s to %s, %s\n", e.Epoch, e.ValidFrom.Format(time.RFC3339), e.ValidUntil.Format(time.RFC3339), state)
	}
	if c := st.Ceremonies; c != nil {
		fmt.Fprintf(w, "approved proposals: %d\n", len(c.Approvals))
		for _, a := range c.Approvals {
			fmt.Fprintf(w, "  %s ceremony %s, deadline %s, proposal %.16s…\n", a.Kind, a.ID, a.Deadline.Format(time.RFC3339), a.Hash)
		}
		fmt.Fprintf(w, "ceremonies in progress: %d %s\n", len(c.InProgress), strings.Join(c.InProgress, " "))
	}
	fmt.Fprintf(w, "audit log: %d records\n", st.AuditSize)
	if ws := st.Witness; ws != nil {
		fmt.Fprintf(w, "witness (w = %d):", ws.Quorum)
		for _, l := range ws.Logs {
			fmt.Fprintf(w, " %s cosigned to %d", l.Trustee, l.Cosigned)
			if len(l.Forks) > 0 {
				fmt.Fprintf(w, " (FORK refused %d times: evidence kept, see --json)", len(l.Forks))
			}
			fmt.Fprint(w, ";")
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "policy: judges %s (%d required), at most %d sessions per warrant, retention %d epochs (0: all), prospective only %v\n",
		strings.Join(st.Policy.Judges, ", "), st.Policy.JudgesRequired, st.Policy.MaxSessionsPerWarrant, st.Policy.RetentionEpochs, st.Policy.ProspectiveOnly)
}

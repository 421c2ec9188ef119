package trustee

// SetPolicy replaces the node's policy, as when its operator edits the
// policy file and reloads it (SIGHUP). A policy that does not validate is
// refused and the old one stays. Requests decided after SetPolicy returns
// use the new policy; what the node counts (sessions released per warrant,
// grants per judge) is kept, so a reload does not reset a cap or a rate
// limit.
func (n *Node) SetPolicy(p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.policy = p
	return nil
}

// currentPolicy is the policy in force, for checks made without the lock.
func (n *Node) currentPolicy() Policy {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.policy
}

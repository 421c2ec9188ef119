package trustee

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/keyquorum/keyquorum/escrow"
)

// RosterVersion is the version field of a roster file.
const RosterVersion = "keyquorum roster v1"

// ErrBadRoster wraps every roster file validation failure.
var ErrBadRoster = errors.New("trustee: bad roster file")

// A roster file lists the trustees that take part in a key ceremony, as
// their descriptors, in share-index order:
//
//	{
//	  "version": "keyquorum roster v1",
//	  "trustees": [ <descriptor>, ... ]
//	}
type rosterJSON struct {
	Version  string           `json:"version"`
	Trustees []descriptorJSON `json:"trustees"`
}

// MarshalRoster encodes descriptors as a roster file.
func MarshalRoster(ds []Descriptor) ([]byte, error) {
	r := rosterJSON{Version: RosterVersion}
	for _, d := range ds {
		r.Trustees = append(r.Trustees, descriptorJSON{Version: DescriptorVersion, Name: d.Name, Address: d.Address, IdentityKey: d.IdentityKey, TLSPin: d.TLSPin, LogKey: d.LogKey})
	}
	if _, err := rosterMembers(&r); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(&r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ParseRoster decodes a roster file into the roster of a group file:
// member i (1-based) gets share index i.
func ParseRoster(b []byte) ([]escrow.GroupMember, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r rosterJSON
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRoster, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrBadRoster)
	}
	ms, err := rosterMembers(&r)
	if err != nil {
		return nil, err
	}
	again, err := json.MarshalIndent(&r, "", "  ")
	if err != nil || !bytes.Equal(append(again, '\n'), b) {
		return nil, fmt.Errorf("%w: not in canonical form (was it edited by hand? make it with keyquorum ceremony roster)", ErrBadRoster)
	}
	return ms, nil
}

func rosterMembers(r *rosterJSON) ([]escrow.GroupMember, error) {
	if r.Version != RosterVersion {
		return nil, fmt.Errorf("%w: version %q, this build reads %q", ErrBadRoster, r.Version, RosterVersion)
	}
	if len(r.Trustees) < 2 {
		return nil, fmt.Errorf("%w: %d trustees; a group needs at least 2", ErrBadRoster, len(r.Trustees))
	}
	var out []escrow.GroupMember
	seen := map[string]string{}
	for i, j := range r.Trustees {
		if j.Version != DescriptorVersion {
			return nil, fmt.Errorf("%w: trustee %d: descriptor version %q, this build reads %q", ErrBadRoster, i+1, j.Version, DescriptorVersion)
		}
		d := Descriptor{Name: j.Name, Address: j.Address, IdentityKey: j.IdentityKey, TLSPin: j.TLSPin, LogKey: j.LogKey}
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("%w: trustee %d: %w", ErrBadRoster, i+1, err)
		}
		for _, f := range [][2]string{{"name", d.Name}, {"address", d.Address}, {"identity key", d.IdentityKey}, {"log key", d.LogKey}} {
			what, k := f[0], f[0]+"\x00"+f[1]
			if other, ok := seen[k]; ok {
				return nil, fmt.Errorf("%w: %s and %s have the same %s", ErrBadRoster, other, d.Name, what)
			}
			seen[k] = d.Name
		}
		out = append(out, d.Member(i+1))
	}
	return out, nil
}

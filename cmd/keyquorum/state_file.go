package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/keyquorum/keyquorum/trustee"
)

// readStateFile reads a file of checkpoints seen (an auditor's or a
// requester's state, [trustee.AuditState]). A missing file is an empty
// state and found is false.
func readStateFile(path string) (state trustee.AuditState, found bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return trustee.AuditState{}, false, nil
	case err != nil:
		return nil, false, err
	}
	if state, err = trustee.ParseAuditState(b); err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	return state, true, nil
}

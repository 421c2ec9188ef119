package shares

import (
	"errors"
	"fmt"
)

var (
	// ErrTooFewShares means fewer distinct shares were given than the
	// threshold. The returned error wraps it and says how many were given
	// and how many are needed.
	ErrTooFewShares = errors.New("shares: too few shares")

	// ErrMismatchedSplit means the shares given do not all come from one
	// split: share files with different split ids or headers, or, when
	// more than t shares are given without a commitment, shares that do
	// not lie on one polynomial.
	ErrMismatchedSplit = errors.New("shares: shares do not all come from one split")

	// ErrInvalidIndex means a share index is outside 1..MaxShares, or a
	// share has no value.
	ErrInvalidIndex = errors.New("shares: invalid share index")

	// ErrAuthentication means ciphertext or a header field failed
	// authentication: it was altered or damaged.
	ErrAuthentication = errors.New("shares: ciphertext failed authentication")

	// ErrTruncated means a share file's ciphertext ends early.
	ErrTruncated = errors.New("shares: ciphertext truncated")

	// ErrCiphertextFormat means the ciphertext part of a share file is not
	// in canonical form.
	ErrCiphertextFormat = errors.New("shares: malformed ciphertext")
)

func tooFewShares(given, needed int) error {
	return fmt.Errorf("%w: %d given, %d needed; get %d more share(s) of the same split from their holders",
		ErrTooFewShares, given, needed, needed-given)
}

// DuplicateIndexError reports two shares with the same index.
type DuplicateIndexError struct {
	Index int
}

func (e *DuplicateIndexError) Error() string {
	return fmt.Sprintf("shares: share %d given twice; every share of a split has its own index, so pass each share once", e.Index)
}

// ShareIndex returns the index of the share at fault.
func (e *DuplicateIndexError) ShareIndex() int { return e.Index }

// InconsistentShareError reports a share that does not match the
// commitment it is checked against.
type InconsistentShareError struct {
	Index int
}

func (e *InconsistentShareError) Error() string {
	return fmt.Sprintf("shares: share %d does not match the split's commitment: it was altered, or it belongs to another split; leave it out and use another share", e.Index)
}

// ShareIndex returns the index of the share at fault.
func (e *InconsistentShareError) ShareIndex() int { return e.Index }

// MismatchedSplitError reports two share files whose headers disagree:
// Field names the header line that differs ("split-id", "threshold",
// "total", "commitment", "size" or "ciphertext-sha256"). It matches
// [ErrMismatchedSplit] with [errors.Is].
type MismatchedSplitError struct {
	Index, OtherIndex int
	Field             string
}

func (e *MismatchedSplitError) Error() string {
	if e.Field == "split-id" {
		return fmt.Sprintf("shares: share %d and share %d come from different splits (their split ids differ); combine share files of one split only", e.Index, e.OtherIndex)
	}
	return fmt.Sprintf("shares: share %d and share %d have the same split id but a different %s: one of the two files was altered; leave it out", e.Index, e.OtherIndex, e.Field)
}

// Is reports whether target is [ErrMismatchedSplit].
func (e *MismatchedSplitError) Is(target error) bool { return target == ErrMismatchedSplit }

// AuthenticationError reports that the ciphertext carried by share Index
// failed authentication at chunk Chunk (counted from 0). It matches
// [ErrAuthentication] with [errors.Is].
type AuthenticationError struct {
	Index, Chunk int
}

func (e *AuthenticationError) Error() string {
	return fmt.Sprintf("shares: ciphertext in share %d failed authentication at chunk %d (plaintext bytes from %d): the file was altered or damaged; use another share file in its place",
		e.Index, e.Chunk, int64(e.Chunk)*ChunkSize)
}

// Is reports whether target is [ErrAuthentication].
func (e *AuthenticationError) Is(target error) bool { return target == ErrAuthentication }

// ShareIndex returns the index of the share at fault.
func (e *AuthenticationError) ShareIndex() int { return e.Index }

// TruncatedError reports that the ciphertext carried by share Index holds
// only Have of the Want bytes its header announces. It matches
// [ErrTruncated] with [errors.Is].
type TruncatedError struct {
	Index      int
	Have, Want int64
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("shares: ciphertext in share %d is truncated: it ends after %d of %d bytes; the file was cut short, so use a complete copy or another share file",
		e.Index, e.Have, e.Want)
}

// Is reports whether target is [ErrTruncated].
func (e *TruncatedError) Is(target error) bool { return target == ErrTruncated }

// ShareIndex returns the index of the share at fault.
func (e *TruncatedError) ShareIndex() int { return e.Index }

// CiphertextFormatError reports that the base64 ciphertext carried by share
// Index is not in canonical form, or goes on past its announced end. It
// matches [ErrCiphertextFormat] with [errors.Is].
type CiphertextFormatError struct {
	Index  int
	Line   int // line number within the file, if known (0 otherwise)
	Detail string
}

func (e *CiphertextFormatError) Error() string {
	where := ""
	if e.Line > 0 {
		where = fmt.Sprintf(" at line %d", e.Line)
	}
	return fmt.Sprintf("shares: ciphertext in share %d is malformed%s: %s; the file was edited or damaged, so use another share file in its place",
		e.Index, where, e.Detail)
}

// Is reports whether target is [ErrCiphertextFormat].
func (e *CiphertextFormatError) Is(target error) bool { return target == ErrCiphertextFormat }

// ShareIndex returns the index of the share at fault.
func (e *CiphertextFormatError) ShareIndex() int { return e.Index }

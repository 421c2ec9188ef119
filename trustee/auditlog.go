package trustee

import (
	"time"

	"github.com/keyquorum/keyquorum/auditlog"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The audit log lives in package [auditlog]; these names keep the node's
// code (and code written against it) reading as before.
type (
	AuditRecord   = auditlog.Record
	AuditRefusal  = auditlog.Refusal
	AuditCeremony = auditlog.Ceremony
	AuditLog      = auditlog.Log
	AuditStore    = auditlog.Store
	MemAuditStore = auditlog.MemStore
	SignedHead    = auditlog.SignedCheckpoint
)

// Record kinds and decisions; see [auditlog.Record].
const (
	AuditRecordVersion      = auditlog.RecordVersion
	AuditKindDecision       = auditlog.KindDecision
	AuditKindShareDestroyed = auditlog.KindShareDestroyed
	AuditGranted            = auditlog.Granted
	AuditRefused            = auditlog.Refused
)

// Errors of the audit log; see package [auditlog].
var (
	ErrBadAuditRecord     = auditlog.ErrBadRecord
	ErrMalformedHead      = auditlog.ErrMalformedCheckpoint
	ErrHeadWrongKey       = auditlog.ErrWrongKey
	ErrBadHeadSignature   = auditlog.ErrBadSignature
	ErrBadInclusion       = auditlog.ErrBadInclusion
	ErrLogForked          = auditlog.ErrForked
	ErrLogShrank          = auditlog.ErrShrank
	ErrAuditOutOfRange    = auditlog.ErrOutOfRange
	ErrAuditStoreConflict = auditlog.ErrStoreConflict
	ErrAuditStoreCorrupt  = auditlog.ErrStoreCorrupt
	ErrWouldFork          = auditlog.ErrWouldFork
)

// NewMemAuditStore is [auditlog.NewMemStore].
func NewMemAuditStore() *MemAuditStore { return auditlog.NewMemStore() }

// NewAuditLog is [auditlog.New].
func NewAuditLog(store AuditStore, signer note.Signer, now func() time.Time) (*AuditLog, error) {
	return auditlog.New(store, signer, now)
}

// ParseAuditRecord is [auditlog.ParseRecord].
func ParseAuditRecord(b []byte) (AuditRecord, error) { return auditlog.ParseRecord(b) }

// VerifyHead is [auditlog.VerifyCheckpoint].
func VerifyHead(signed []byte, verifier note.Verifier) (tlog.Tree, error) {
	return auditlog.VerifyCheckpoint(signed, verifier)
}

// VerifyInclusion is [auditlog.VerifyInclusion].
func VerifyInclusion(tree tlog.Tree, index int64, record []byte, proof tlog.RecordProof) error {
	return auditlog.VerifyInclusion(tree, index, record, proof)
}

// VerifyConsistency is [auditlog.VerifyConsistency].
func VerifyConsistency(old, new tlog.Tree, proof tlog.TreeProof) error {
	return auditlog.VerifyConsistency(old, new, proof)
}

package cryptostore

import (
	"fmt"
	"time"
)

// Replica describes a replica write arriving at a target region: an
// object (or a deletion) another sealfs region replicated here. Its wire
// form is package s3replica's; what it means for the store is here.
type Replica struct {
	SourceTime   time.Time // the source version's LastModified (a delete: the deletion time)
	SourceRegion string
}

// ErrStaleReplica: a replica older than the version the target holds. It
// wraps ErrPreconditionFailed (it is a PutInput Condition's refusal); a
// target answers it with success and says it skipped the replica.
var ErrStaleReplica = fmt.Errorf("replica older than the stored version: %w", ErrPreconditionFailed)

// Condition refuses (ErrStaleReplica) to store the replica over a version
// that is newer by Object.VersionTime. A version of the same time is
// replaced: it is the same version sent again, or with newer metadata.
func (r Replica) Condition(cur *Object) error {
	if cur != nil && cur.VersionTime().After(r.SourceTime) {
		return ErrStaleReplica
	}
	return nil
}

// Apply makes in a replica write: status REPLICA, the source time recorded,
// and Condition added to in's own (both must pass).
func (r Replica) Apply(in *PutInput) {
	in.ReplicationStatus = ReplicationReplica
	in.ReplicaSourceModified = r.SourceTime
	own := in.Condition
	in.Condition = func(cur *Object) error {
		if err := r.Condition(cur); err != nil {
			return err
		}
		if own != nil {
			return own(cur)
		}
		return nil
	}
}

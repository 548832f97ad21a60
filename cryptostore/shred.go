package cryptostore

import (
	"context"
	"fmt"

	"github.com/sealfs/sealfs/kms"
)

// Crypto-shredding: a master key scheduled for deletion behaves as disabled
// at once (reads and writes under it fail with ErrKeyDisabled wrapping
// ErrKMSKeyPendingDeletion: S3 KMS.KMSInvalidStateException, the mount
// ENOKEY) and can be brought back until its deletion date
// (CancelKeyDeletion, then EnableKey). On that date the KMS destroys its
// material: every object under the key is unrecoverable, from this store
// and from any copy of its blobs, and answers ErrKeyDisabled wrapping
// ErrKMSKeyNotFound (S3 KMS.NotFoundException, the mount ENOKEY); Scrub
// reports it as shredded, not as damaged.

// ScheduleKeyDeletion schedules a master key's deletion (by id, ARN) in
// days (7 to 30; 0 means 30). The system key is refused (ErrSystemKey).
func (s *Store) ScheduleKeyDeletion(ctx context.Context, keyID string, days int) (*KeyMetadata, error) {
	md, err := s.kms.DescribeKey(ctx, &kms.KeyRequest{KeyID: keyID})
	if err != nil {
		return nil, err
	}
	sys, err := s.SystemKeyID(ctx)
	if err != nil {
		return nil, err
	}
	if md.KeyID == sys {
		return nil, fmt.Errorf("key %s: %w", sys, ErrSystemKey)
	}
	md, err = s.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleDeletionRequest{KeyID: md.KeyID, PendingDays: days})
	if err != nil {
		return nil, err
	}
	s.logger.Warn("master key scheduled for deletion: its objects become unrecoverable on the deletion date", "key", md.KeyID, "deletion_date", md.DeletionDate)
	return md, nil
}

// CancelKeyDeletion cancels a scheduled deletion. The key is then disabled
// (as AWS KMS leaves it); EnableKey makes its objects readable again.
func (s *Store) CancelKeyDeletion(ctx context.Context, keyID string) (*KeyMetadata, error) {
	if err := s.kms.CancelKeyDeletion(ctx, &kms.KeyRequest{KeyID: keyID}); err != nil {
		return nil, err
	}
	return s.kms.DescribeKey(ctx, &kms.KeyRequest{KeyID: keyID})
}

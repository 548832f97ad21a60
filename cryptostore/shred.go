package cryptostore

import (
	"context"
	"fmt"
	"strings"
	"time"

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
	return s.ScheduleDeletion(ctx, KeyDeletion{KeyID: keyID, Days: days})
}

// KeyDeletion is a master key's deletion to schedule.
type KeyDeletion struct {
	KeyID string // id or ARN
	Days  int    // 7 to 30; 0 means 30
	// Pending, if set, is the waiting period instead of Days, of any
	// length: for tests that see a deletion date pass (the local KMS only).
	Pending time.Duration
	// Bucket names the bucket removed with --shred, for the audit log.
	Bucket string
}

// ScheduleDeletion schedules d's key's deletion and reports it to the
// audit log (kms:ScheduleKeyDeletion, with the deletion date). The system
// key is refused (ErrSystemKey).
func (s *Store) ScheduleDeletion(ctx context.Context, d KeyDeletion) (md *KeyMetadata, err error) {
	keyID := d.KeyID
	detail := ""
	defer func() {
		if md != nil {
			keyID = md.KeyID
			detail = "deletion date " + md.DeletionDate.UTC().Format(time.RFC3339)
		}
		if d.Bucket != "" {
			detail = strings.TrimPrefix(detail+"; bucket removed with --shred", "; ")
		}
		s.auditKeyAdminDetail(ctx, "kms:ScheduleKeyDeletion", keyID, d.Bucket, detail, err)
	}()
	md, err = s.kms.DescribeKey(ctx, &kms.KeyRequest{KeyID: d.KeyID})
	if err != nil {
		return nil, err
	}
	keyID = md.KeyID
	md = nil
	sys, err := s.SystemKeyID(ctx)
	if err != nil {
		return nil, err
	}
	if keyID == sys {
		return nil, fmt.Errorf("key %s: %w", sys, ErrSystemKey)
	}
	md, err = s.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleDeletionRequest{KeyID: keyID, PendingDays: d.Days, Pending: d.Pending})
	if err != nil {
		return nil, err
	}
	s.logger.Warn("master key scheduled for deletion: its objects become unrecoverable on the deletion date", "key", md.KeyID, "deletion_date", md.DeletionDate)
	return md, nil
}

// CancelKeyDeletion cancels a scheduled deletion. The key is then disabled
// (as AWS KMS leaves it); EnableKey makes its objects readable again.
func (s *Store) CancelKeyDeletion(ctx context.Context, keyID string) (md *KeyMetadata, err error) {
	defer func() {
		if md != nil {
			keyID = md.KeyID
		}
		s.auditKeyAdmin(ctx, "kms:CancelKeyDeletion", keyID, err)
	}()
	if err := s.kms.CancelKeyDeletion(ctx, &kms.KeyRequest{KeyID: keyID}); err != nil {
		return nil, err
	}
	return s.kms.DescribeKey(ctx, &kms.KeyRequest{KeyID: keyID})
}

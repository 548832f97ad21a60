package cryptostore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
)

// Automatic rotation: a master key may carry a rotation period (off by
// default). The store checks every RotationCheckInterval and rotates a key
// whose current version is older than its period (RotateKey: new data keys
// use the new version; rewrap moves older objects on). The period is a
// configuration record (rotationPrefix + key id) in the metadata, so every
// gateway sharing it sees the same schedule; two gateways rotating at once
// is harmless but adds a version, so the check re-reads the key first.

const rotationPrefix = "kms/rotate-every/"

// RotationCheckInterval is how often the store looks for keys due for
// rotation.
const RotationCheckInterval = time.Hour

// MinRotationPeriod is the shortest rotation period accepted.
const MinRotationPeriod = 24 * time.Hour

// SetKeyRotation sets a key's (by id or ARN) automatic rotation period; 0
// turns it off. A period under MinRotationPeriod is refused
// (ErrKMSInvalidArgument).
func (s *Store) SetKeyRotation(ctx context.Context, keyID string, every time.Duration) (*KeyMetadata, error) {
	if every != 0 && every < MinRotationPeriod {
		return nil, fmt.Errorf("%w: a rotation period is at least %s, not %s", ErrKMSInvalidArgument, MinRotationPeriod, every)
	}
	md, err := s.kms.DescribeKey(ctx, &kms.KeyRequest{KeyID: keyID})
	if err != nil {
		return nil, err
	}
	if every != 0 && md.CurrentVersionCreated.IsZero() {
		return nil, fmt.Errorf("%w: this KMS does not say when a key was last rotated: use its own rotation schedule", ErrKMSInvalidArgument)
	}
	err = s.meta.Update(ctx, func(tx *meta.Txn) error {
		if every == 0 {
			err := tx.DeleteConfig(rotationPrefix + md.KeyID)
			if errors.Is(err, meta.ErrNoSuchConfig) {
				err = nil
			}
			return err
		}
		return tx.PutConfig(rotationPrefix+md.KeyID, []byte(every.String()))
	})
	if err != nil {
		return nil, err
	}
	s.logger.Info("key rotation period set", "key", md.KeyID, "every", every)
	return md, nil
}

// KeyRotations returns every key's rotation period (keys without one are
// absent).
func (s *Store) KeyRotations(ctx context.Context) (map[string]time.Duration, error) {
	out := make(map[string]time.Duration)
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		return tx.ScanConfig(rotationPrefix, func(name string, v []byte) error {
			d, err := time.ParseDuration(string(v))
			if err != nil {
				return fmt.Errorf("cryptostore: rotation record %s holds %q: %w", name, v, err)
			}
			out[strings.TrimPrefix(name, rotationPrefix)] = d
			return nil
		})
	})
	return out, err
}

// RotateDue rotates every enabled key whose current version is older than
// its rotation period at now, and returns their ids.
func (s *Store) RotateDue(ctx context.Context, now time.Time) ([]string, error) {
	periods, err := s.KeyRotations(ctx)
	if err != nil {
		return nil, err
	}
	var rotated []string
	var errs []error
	for id, every := range periods {
		md, err := s.kms.DescribeKey(ctx, &kms.KeyRequest{KeyID: id})
		if err != nil {
			errs = append(errs, fmt.Errorf("key %s: %w", id, err))
			continue
		}
		if md.State != KeyEnabled || md.CurrentVersionCreated.IsZero() || now.Before(md.CurrentVersionCreated.Add(every)) {
			continue
		}
		if _, err := s.kms.RotateKey(ctx, &kms.KeyRequest{KeyID: id}); err != nil {
			errs = append(errs, fmt.Errorf("key %s: %w", id, err))
			continue
		}
		s.logger.Info("key rotated on schedule", "key", id, "every", every, "previous_version_created", md.CurrentVersionCreated)
		rotated = append(rotated, id)
	}
	return rotated, errors.Join(errs...)
}

func (s *Store) rotationLoop() {
	defer s.wg.Done()
	t := time.NewTicker(RotationCheckInterval)
	defer t.Stop()
	for {
		if _, err := s.RotateDue(s.bg, time.Now()); err != nil && s.bg.Err() == nil {
			s.logger.Warn("scheduled key rotation", "err", err)
		}
		select {
		case <-s.bg.Done():
			return
		case <-t.C:
		}
	}
}

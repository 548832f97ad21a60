package meta

// Coordination of gateways that share a store (keys under g\0, keys.go):
//
//   - Doomed blobs. On a shared store a blob that a commit stopped
//     referencing cannot be removed at once: another gateway may be
//     reading it, and its read pins are in its own memory. The committer
//     records it instead (DoomBlob) with a time before which it stays;
//     any gateway removes it after that time (DueBlobs, ForgetBlob) unless
//     a gateway's read pin on it is still valid.
//   - Read pins. A gateway that holds a blob open for longer than a
//     moment records a pin (PinBlobs) with an expiry, and renews it while
//     it reads: a doomed blob is not removed while any unexpired pin names
//     it.
//   - Leases. A named lease (TakeLease) has one owner until it expires or
//     is released: replication takes one per queued item, so one gateway
//     works it, and another takes it over once a dead owner's lease runs
//     out.
//
// Times are the gateways' wall clocks (Unix nanoseconds): their skew must
// stay well below the grace periods and lease durations used.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

func unixNano(t time.Time) []byte { return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())) }

func parseUnixNano(v []byte) (time.Time, error) {
	if len(v) < 8 {
		return time.Time{}, fmt.Errorf("%w: want a time of 8 bytes, have %d", ErrCorruptRecord, len(v))
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))), nil
}

// DoomBlob records that blob id is no longer referenced and may be removed
// once notBefore has passed and no read pin names it. Dooming a blob again
// keeps the later time.
func (tx *Txn) DoomBlob(id BlobID, notBefore time.Time) error {
	k := doomedBlobKey(id)
	var cur time.Time
	if _, err := tx.value(k, func(v []byte) error {
		var err error
		cur, err = parseUnixNano(v)
		return err
	}); err != nil {
		return err
	}
	if cur.After(notBefore) {
		return nil
	}
	return tx.kv.set(k, unixNano(notBefore))
}

// ForEachDoomedBlob calls fn with every doomed blob and its time.
func (db *DB) ForEachDoomedBlob(ctx context.Context, fn func(id BlobID, notBefore time.Time) error) error {
	return db.View(ctx, func(tx *Txn) error {
		return tx.scan(doomedBlobsPrefix(), nil, func(k, v []byte) (bool, error) {
			id, ok := parseDoomedBlobKey(k)
			if !ok {
				return false, fmt.Errorf("%w: bad doomed blob key %q", ErrCorruptRecord, k)
			}
			t, err := parseUnixNano(v)
			if err != nil {
				return false, err
			}
			return true, fn(id, t)
		})
	})
}

// DueBlobs returns up to max doomed blobs whose time has passed at now and
// that no unexpired read pin names: those the caller may remove (and then
// forget with ForgetBlob).
func (db *DB) DueBlobs(ctx context.Context, now time.Time, max int) ([]BlobID, error) {
	var due []BlobID
	err := db.View(ctx, func(tx *Txn) error {
		due = due[:0]
		return tx.scan(doomedBlobsPrefix(), nil, func(k, v []byte) (bool, error) {
			id, ok := parseDoomedBlobKey(k)
			if !ok {
				return false, fmt.Errorf("%w: bad doomed blob key %q", ErrCorruptRecord, k)
			}
			t, err := parseUnixNano(v)
			if err != nil {
				return false, err
			}
			if t.After(now) {
				return true, nil
			}
			pinned, err := tx.blobPinned(id, now)
			if err != nil {
				return false, err
			}
			if !pinned {
				due = append(due, id)
			}
			return len(due) < max, nil
		})
	})
	return due, err
}

// blobPinned reports whether an unexpired read pin names id.
func (tx *Txn) blobPinned(id BlobID, now time.Time) (bool, error) {
	pinned := false
	err := tx.scan(blobPinsPrefix(id), nil, func(k, v []byte) (bool, error) {
		t, err := parseUnixNano(v)
		if err != nil {
			return false, err
		}
		if t.After(now) {
			pinned = true
			return false, nil
		}
		return true, nil
	})
	return pinned, err
}

// ForgetBlob deletes a doomed blob's record and its read pins, once the
// blob is removed. It returns false when, by the time of the transaction,
// the blob became pinned again or its time was moved on: then it must not
// have been removed. The caller removes the blob after ForgetBlob returns
// true, not before: a crash in between leaves an orphan, which the orphan
// collector finds.
func (db *DB) ForgetBlob(ctx context.Context, id BlobID, now time.Time) (bool, error) {
	var ok bool
	err := db.Update(ctx, func(tx *Txn) error {
		ok = false
		k := doomedBlobKey(id)
		var t time.Time
		found, err := tx.value(k, func(v []byte) error {
			var err error
			t, err = parseUnixNano(v)
			return err
		})
		if err != nil || !found || t.After(now) {
			return err
		}
		if pinned, err := tx.blobPinned(id, now); err != nil || pinned {
			return err
		}
		var pins [][]byte
		if err := tx.scanKeys(blobPinsPrefix(id), nil, func(k []byte) (bool, error) {
			pins = append(pins, bytes.Clone(k))
			return true, nil
		}); err != nil {
			return err
		}
		for _, p := range pins {
			if err := tx.kv.delete(p); err != nil {
				return err
			}
		}
		ok = true
		return tx.kv.delete(k)
	})
	return ok, err
}

// PinBlobs records that gateway reads the blobs ids until until (renewing
// its earlier pins of them).
func (db *DB) PinBlobs(ctx context.Context, gateway string, ids []BlobID, until time.Time) error {
	if gateway == "" {
		return errors.New("meta: PinBlobs: no gateway id")
	}
	v := unixNano(until)
	return db.UpdateBulk(WithoutSync(ctx), len(ids), func(tx *Txn, i int) error {
		return tx.kv.set(blobPinKey(ids[i], gateway), v)
	})
}

// UnpinBlobs deletes gateway's read pins of ids.
func (db *DB) UnpinBlobs(ctx context.Context, gateway string, ids []BlobID) error {
	return db.UpdateBulk(WithoutSync(ctx), len(ids), func(tx *Txn, i int) error {
		return tx.kv.delete(blobPinKey(ids[i], gateway))
	})
}

// DropExpiredPins deletes every read pin that expired before now (left by
// gateways that died holding them).
func (db *DB) DropExpiredPins(ctx context.Context, now time.Time) error {
	var keys [][]byte
	err := db.View(ctx, func(tx *Txn) error {
		return tx.scan(allBlobPinsPrefix(), nil, func(k, v []byte) (bool, error) {
			if t, err := parseUnixNano(v); err == nil && t.Before(now) {
				keys = append(keys, bytes.Clone(k))
			}
			return true, nil
		})
	})
	if err != nil || len(keys) == 0 {
		return err
	}
	return db.UpdateBulk(WithoutSync(ctx), len(keys), func(tx *Txn, i int) error {
		// Delete only if still expired: the owner may have renewed it.
		var t time.Time
		found, err := tx.value(keys[i], func(v []byte) error {
			var err error
			t, err = parseUnixNano(v)
			return err
		})
		if err != nil || !found || !t.Before(now) {
			return err
		}
		return tx.kv.delete(keys[i])
	})
}

// Lease is the state of a named lease.
type Lease struct {
	Owner   string
	Expires time.Time
}

// GetLease returns the lease called name, or nil if there is none.
func (tx *Txn) GetLease(name string) (*Lease, error) {
	var l *Lease
	_, err := tx.value(leaseKey(name), func(v []byte) error {
		t, err := parseUnixNano(v)
		if err != nil {
			return fmt.Errorf("lease %q: %w", name, err)
		}
		l = &Lease{Owner: string(v[8:]), Expires: t}
		return nil
	})
	return l, err
}

// TakeLease gives the lease called name to owner until now+ttl, in the
// caller's transaction, when it is free, expired, or owner's already (a
// renewal); it reports whether owner holds it then. Two gateways taking
// the same lease at once conflict: one of them sees the other's.
func (tx *Txn) TakeLease(name, owner string, now time.Time, ttl time.Duration) (bool, error) {
	if owner == "" {
		return false, errors.New("meta: TakeLease: no owner")
	}
	l, err := tx.GetLease(name)
	if err != nil {
		return false, err
	}
	if l != nil && l.Owner != owner && l.Expires.After(now) {
		return false, nil
	}
	v := append(unixNano(now.Add(ttl)), owner...)
	return true, tx.kv.set(leaseKey(name), v)
}

// ReleaseLease deletes the lease called name if owner holds it.
func (tx *Txn) ReleaseLease(name, owner string) error {
	l, err := tx.GetLease(name)
	if err != nil || l == nil || l.Owner != owner {
		return err
	}
	return tx.kv.delete(leaseKey(name))
}

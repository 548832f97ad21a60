package kms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// How Local keeps a shared keyring current and changes it without losing
// another gateway's change (see Local). The file store goes through the same
// code: its generation only ever moves under this process's own writes.

// importedSuffix is appended to a keyring file once imported into a shared
// store.
const importedSuffix = ".imported"

// mono returns the time since k.base on the monotonic clock, in
// nanoseconds (never the settable k.now, which tests move by days).
func (k *Local) mono() int64 { return int64(time.Since(k.base)) }

// markFresh records that the copy in memory was current at t (a mono
// value taken before the read or write that proved it).
func (k *Local) markFresh(t int64) {
	for {
		cur := k.fresh.Load()
		if t <= cur || k.fresh.CompareAndSwap(cur, t) {
			return
		}
	}
}

// staleable reports whether err may come from a copy of a shared keyring
// that another gateway has changed since.
func staleable(err error) bool {
	return errors.Is(err, ErrKeyNotFound) || errors.Is(err, ErrKeyDisabled) ||
		errors.Is(err, ErrKeyPendingDeletion) || errors.Is(err, errUnknownVersion)
}

// use runs fn with the named key under the read lock; with usable set, only
// if the key may wrap and unwrap. With a shared keyring, a copy not
// confirmed current within maxStale is checked first, and a failure that a
// newer keyring might not have (staleable) is tried once more after
// re-reading it.
func (k *Local) use(ctx context.Context, name string, needUsable bool, fn func(m *masterKey) error) error {
	if k.shared && k.mono()-k.fresh.Load() > int64(k.maxStale) {
		if err := k.refresh(ctx); err != nil {
			return fmt.Errorf("%w: %w", ErrKeyringUnavailable, err)
		}
	}
	for try := 0; ; try++ {
		if err := k.rlock(ctx); err != nil {
			return err
		}
		m, err := k.lookupLocked(name)
		if err == nil && needUsable {
			err = usable(m)
		}
		if err == nil && fn != nil {
			err = fn(m)
		}
		k.mu.RUnlock()
		if err == nil || try > 0 || !k.shared || !staleable(err) {
			return err
		}
		if rerr := k.refresh(ctx); rerr != nil {
			return fmt.Errorf("%w; and the shared keyring could not be re-read: %w", err, rerr)
		}
	}
}

// refresh checks the stored keyring's generation and reads the keyring
// again if it moved. Concurrent callers share one check: a caller whose
// check was started by someone else after it asked takes that result.
func (k *Local) refresh(ctx context.Context) error {
	asked := k.mono()
	k.refreshMu.Lock()
	defer k.refreshMu.Unlock()
	if k.lastCheck >= asked {
		return k.lastErr
	}
	start := k.mono()
	err := k.checkGeneration(ctx, start)
	if ctx.Err() == nil {
		k.lastCheck, k.lastErr = start, err
	}
	return err
}

func (k *Local) checkGeneration(ctx context.Context, start int64) error {
	gen, err := k.store.Generation(ctx)
	if err != nil {
		return err
	}
	k.mu.RLock()
	closed, same := k.closed, gen == k.gen
	k.mu.RUnlock()
	switch {
	case closed:
		return errClosed
	case same:
		k.markFresh(start)
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return errClosed
	}
	return k.reloadLocked(ctx)
}

// syncLocked brings the copy up to date before a change: one small read
// of the generation, and the keyring if it moved. The caller holds k.mu for
// writing.
func (k *Local) syncLocked(ctx context.Context) error {
	start := k.mono()
	gen, err := k.store.Generation(ctx)
	if err != nil {
		return err
	}
	if gen == k.gen {
		k.markFresh(start)
		return nil
	}
	return k.reloadLocked(ctx)
}

// reloadLocked reads the stored keyring and makes it the copy in memory,
// reusing the unsealed versions that did not change. Material of versions
// and keys that are gone is wiped, and cached data keys of keys no longer
// enabled are evicted. On error the copy is unchanged. The caller holds k.mu
// for writing.
func (k *Local) reloadLocked(ctx context.Context) error {
	start := k.mono()
	data, gen, err := k.store.Load(ctx)
	if err != nil {
		return err
	}
	if gen == k.gen {
		k.markFresh(start)
		return nil
	}
	if data == nil {
		return fmt.Errorf("%w: %s is gone (this gateway read generation %d)", errKeyringIntegrity, k.where, k.gen)
	}
	body, sc, err := k.decodeKeyring(data, nil, k.where)
	if err != nil {
		return err
	}
	if err := k.checkBodyGeneration(body, gen); err != nil {
		return err
	}
	keys, err := k.loadKeys(body, sc, k.keys, k.where)
	if err != nil {
		return err
	}
	old := k.keys
	k.keys, k.check, k.gen = keys, body.Check, gen
	for id, m := range old {
		n := keys[id]
		if n == nil {
			m.destroy()
			k.cache.evictKey(id)
			continue
		}
		for i, v := range m.versions {
			if i >= len(n.versions) || n.versions[i] != v {
				clear(v.material)
				v.aead = nil
			}
		}
		if n.state != KeyEnabled {
			k.cache.evictKey(id)
		}
	}
	k.schedulePurgeLocked()
	k.markFresh(start)
	k.log.Info("kms keyring re-read", "keyring", k.where, "generation", gen, "keys", len(keys))
	return nil
}

// checkBodyGeneration checks, for a shared keyring, that the generation in
// the MAC'd body is the one the store reports, and not older than one this
// gateway has already read: a keyring put back from an older copy is
// refused while the gateway runs.
func (k *Local) checkBodyGeneration(body *keyringBody, gen uint64) error {
	if !k.shared {
		return nil
	}
	if body.Generation != gen {
		return fmt.Errorf("%w: %s: its body says generation %d, the store %d", errKeyringIntegrity, k.where, body.Generation, gen)
	}
	if gen < k.gen {
		return fmt.Errorf("%w: %s is at generation %d, older than generation %d this gateway read: it was rolled back", errKeyringIntegrity, k.where, gen, k.gen)
	}
	return nil
}

// updateLocked applies a change to the keyring by compare-and-swap. plan
// computes the change from k.keys (a nil value deletes that key); it runs
// again on a fresh copy whenever another gateway stored a keyring first, so
// it must not keep anything between runs. New versions made by a run that
// was not stored are wiped. The caller holds k.mu for writing.
func (k *Local) updateLocked(ctx context.Context, plan func() (map[string]*masterKey, error)) error {
	if k.shared {
		if err := k.syncLocked(ctx); err != nil {
			return err
		}
	}
	for attempt := 1; ; attempt++ {
		changes, err := plan()
		if err != nil || len(changes) == 0 {
			return err
		}
		err = k.persistLocked(ctx, changes)
		if err == nil {
			return nil
		}
		k.discardNew(changes)
		if !errors.Is(err, ErrKeyringChanged) || attempt == maxCASAttempts {
			return err
		}
		if err := k.reloadLocked(ctx); err != nil {
			return err
		}
	}
}

// discardNew wipes the material of versions in changes that k.keys does not
// hold: made for a change that was not stored.
func (k *Local) discardNew(changes map[string]*masterKey) {
	for id, c := range changes {
		if c == nil {
			continue
		}
		var have []*keyVersion
		if m := k.keys[id]; m != nil {
			have = m.versions
		}
		for i, v := range c.versions {
			if i >= len(have) || have[i] != v {
				clear(v.material)
				v.aead = nil
			}
		}
	}
}

// refresher polls a shared keyring's generation every refreshEvery until
// Close.
func (k *Local) refresher() {
	defer close(k.done)
	t := time.NewTicker(k.refreshEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), k.maxStale)
		err := k.refresh(ctx)
		cancel()
		switch {
		case err != nil && errors.Is(err, errClosed):
			return
		case err != nil && !failing:
			failing = true
			k.log.Error("kms: cannot re-read the shared keyring; keys stop working here once it is stale", "keyring", k.where, "max_stale", k.maxStale, "err", err)
		case err == nil && failing:
			failing = false
			k.log.Info("kms: the shared keyring is readable again", "keyring", k.where)
		}
	}
}

// importFile imports the keyring file in dir into an empty shared store:
// it reads and verifies the file under the directory's lock (refused while
// a sealfs still has it open), stores its keys as generation 1 and renames
// the file keyring.imported. It reports false when there is no file. When
// another gateway stored a keyring first the error wraps ErrKeyringChanged
// and the file is left as it is. The caller holds k.mu for writing.
func (k *Local) importFile(ctx context.Context, dir string, root []byte) (bool, error) {
	path := filepath.Join(dir, keyringName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	fst, err := openFileStore(dir)
	if err != nil {
		return false, fmt.Errorf("kms: importing %s: %w", path, err)
	}
	defer fst.Close()
	data, _, err := fst.Load(ctx)
	if err != nil || data == nil {
		return false, err
	}
	body, sc, err := k.decodeKeyring(data, root, path)
	if err != nil {
		return false, fmt.Errorf("kms: importing %s: %w", path, err)
	}
	keys, err := k.loadKeys(body, sc, nil, path)
	if err != nil {
		return false, fmt.Errorf("kms: importing %s: %w", path, err)
	}
	k.keys, k.check, k.gen = keys, body.Check, 0
	if sc != k.scheme {
		if k.check, err = sealWithRoot(k.scheme.seal, nil, []byte(k.scheme.checkAD)); err != nil {
			return false, err
		}
	}
	if err := k.persistLocked(ctx, nil); err != nil {
		for _, m := range keys {
			m.destroy()
		}
		k.keys = make(map[string]*masterKey)
		return false, err
	}
	k.log.Info("kms keyring imported into the shared store", "from", path, "to", k.where, "keys", len(keys), "generation", k.gen)
	if err := os.Rename(path, path+importedSuffix); err != nil {
		k.log.Error("kms: the imported keyring file could not be renamed; it is not read again while the shared keyring exists", "file", path, "err", err)
	} else if err := syncDir(dir); err != nil {
		k.log.Error("kms: syncing after renaming the imported keyring file", "dir", dir, "err", err)
	}
	return true, nil
}

// noteIgnoredFile logs that dir holds a keyring file that is not used
// because the shared store already holds a keyring, and how many of the
// file's keys the shared keyring lacks. The caller holds k.mu.
func (k *Local) noteIgnoredFile(dir string, root []byte) {
	path := filepath.Join(dir, keyringName)
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	missing := 0
	body, _, err := k.decodeKeyring(data, root, path)
	if err == nil {
		for _, r := range body.Keys {
			if k.keys[r.ID] == nil {
				missing++
			}
		}
	}
	attrs := []any{"file", path, "keyring", k.where, "keys_missing_from_shared", missing}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	k.log.Warn("kms: ignoring the local keyring file: the keyring is in the shared store", attrs...)
}

// sameVersion reports whether a stored version record is the one a key
// already holds unsealed.
func sameVersion(v *keyVersion, vr *versionRecord) bool {
	return v != nil && bytes.Equal(v.sealed, vr.Sealed) && v.created.Equal(vr.Created) && v.retired.Equal(vr.Retired)
}

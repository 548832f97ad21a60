package kms

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/sealfs/sealfs/meta"
)

// The shared keyring lives in two configuration records of the metadata
// engine, always written together in one transaction:
//
//	kms/keyring             the keyring, byte for byte what the keyring
//	                        file would hold (keyring.go), with its
//	                        generation inside the MAC'd body
//	kms/keyring-generation  that generation in decimal: what gateways poll
//
// meta never sees key material in clear: the versions are sealed by the
// root key, which only the gateways hold.
const (
	keyringRecord    = "kms/keyring"
	generationRecord = "kms/keyring-generation"
)

// metaStore is a KeyringStore in the configuration records of a meta.DB.
type metaStore struct {
	db *meta.DB
}

// MetaKeyring returns a KeyringStore that keeps the keyring in db's
// configuration records, for gateways that share one metadata engine
// (etcd, PostgreSQL). Every gateway opening a Local over the same engine
// with the same root key shares its master keys. Closing the store does not
// close db.
//
// The keyring is one record, rewritten whole on every change, as the file
// is: about 300 bytes per key version (measured: 1000 keys, 294 KB).
// Engines that bound a value's size bound the number of key versions: etcd's
// default request limit (--max-request-bytes, 1.5 MiB) holds about 5000.
func MetaKeyring(db *meta.DB) KeyringStore {
	return &metaStore{db: db}
}

func readGeneration(tx *meta.Txn) (uint64, error) {
	v, err := tx.GetConfig(generationRecord)
	if errors.Is(err, meta.ErrNoSuchConfig) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("kms: reading the keyring generation: %w", err)
	}
	gen, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil || gen == 0 {
		return 0, fmt.Errorf("%w: metadata record %s holds %q", errKeyringIntegrity, generationRecord, v)
	}
	return gen, nil
}

func (s *metaStore) Load(ctx context.Context) (data []byte, gen uint64, err error) {
	err = s.db.View(ctx, func(tx *meta.Txn) error {
		if gen, err = readGeneration(tx); err != nil {
			return err
		}
		data, err = tx.GetConfig(keyringRecord)
		switch {
		case errors.Is(err, meta.ErrNoSuchConfig) && gen == 0:
			data, err = nil, nil
		case errors.Is(err, meta.ErrNoSuchConfig):
			err = fmt.Errorf("%w: metadata record %s is missing but %s says generation %d", errKeyringIntegrity, keyringRecord, generationRecord, gen)
		case err == nil && gen == 0:
			err = fmt.Errorf("%w: metadata record %s is missing but %s is there", errKeyringIntegrity, generationRecord, keyringRecord)
		case err != nil:
			err = fmt.Errorf("kms: reading the keyring: %w", err)
		}
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return data, gen, nil
}

func (s *metaStore) Generation(ctx context.Context) (gen uint64, err error) {
	err = s.db.View(ctx, func(tx *meta.Txn) error {
		gen, err = readGeneration(tx)
		return err
	})
	return gen, err
}

// Store is a compare-and-swap built on meta's optimistic transactions: the
// generation record is read in the transaction that writes, so a
// concurrent Store that commits first makes this transaction conflict;
// Update runs it again, and then it sees the new generation and stores
// nothing.
func (s *metaStore) Store(ctx context.Context, data []byte, gen uint64) error {
	return s.db.Update(ctx, func(tx *meta.Txn) error {
		cur, err := readGeneration(tx)
		if err != nil {
			return err
		}
		if cur != gen {
			return fmt.Errorf("%w: the metadata holds generation %d, not %d", ErrKeyringChanged, cur, gen)
		}
		if err := tx.PutConfig(keyringRecord, data); err != nil {
			return fmt.Errorf("kms: writing the keyring: %w", err)
		}
		if err := tx.PutConfig(generationRecord, strconv.AppendUint(nil, gen+1, 10)); err != nil {
			return fmt.Errorf("kms: writing the keyring generation: %w", err)
		}
		return nil
	})
}

func (s *metaStore) Shared() bool   { return true }
func (s *metaStore) String() string { return "metadata record " + keyringRecord }
func (s *metaStore) Close() error   { return nil }

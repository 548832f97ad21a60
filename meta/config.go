package meta

// Configuration records: named settings of the daemon that live with the
// metadata (replication targets, the id of the KMS key that seals system
// secrets). meta stores their values as opaque bytes under c\0r\0<name>
// (keys.go); the owner of a name decides its encoding. Secrets are stored
// only sealed: meta never sees one in clear.

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// ErrNoSuchConfig is returned for a configuration record that is not there.
var ErrNoSuchConfig = errors.New("no such configuration record")

// ErrInvalidConfigName is returned for a name that cannot be stored.
var ErrInvalidConfigName = errors.New("invalid configuration record name")

// maxConfigNameLen bounds configuration record names, in bytes.
const maxConfigNameLen = 512

func validConfigName(name string) error {
	if name == "" || len(name) > maxConfigNameLen || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("%q: want 1 to %d bytes without NUL: %w", name, maxConfigNameLen, ErrInvalidConfigName)
	}
	return nil
}

// GetConfig returns a copy of the named record's value, or an error
// wrapping ErrNoSuchConfig.
func (tx *Txn) GetConfig(name string) ([]byte, error) {
	if err := validConfigName(name); err != nil {
		return nil, err
	}
	var out []byte
	ok, err := tx.value(configKey(name), func(v []byte) error {
		out = bytes.Clone(v)
		if out == nil {
			out = []byte{}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("config %q: %w", name, err)
	}
	if !ok {
		return nil, fmt.Errorf("config %q: %w", name, ErrNoSuchConfig)
	}
	return out, nil
}

// PutConfig stores value (copied) under name, replacing any value there.
func (tx *Txn) PutConfig(name string, value []byte) error {
	if err := validConfigName(name); err != nil {
		return err
	}
	return tx.kv.set(configKey(name), bytes.Clone(value))
}

// DeleteConfig deletes the named record (ErrNoSuchConfig if there is none).
func (tx *Txn) DeleteConfig(name string) error {
	if err := validConfigName(name); err != nil {
		return err
	}
	k := configKey(name)
	ok, err := tx.exists(k)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("config %q: %w", name, ErrNoSuchConfig)
	}
	return tx.kv.delete(k)
}

// ScanConfig calls fn with every record whose name starts with prefix, in
// name order, until fn returns an error (which ScanConfig returns). value
// is a copy fn may keep.
func (tx *Txn) ScanConfig(prefix string, fn func(name string, value []byte) error) error {
	if strings.IndexByte(prefix, 0) >= 0 {
		return nil
	}
	return tx.scan(configPrefix(prefix), nil, func(k, v []byte) (bool, error) {
		name, ok := parseConfigKey(k)
		if !ok {
			return false, fmt.Errorf("%w: bad config key %q", ErrCorruptRecord, k)
		}
		value := bytes.Clone(v)
		if value == nil {
			value = []byte{}
		}
		if err := fn(name, value); err != nil {
			return false, err
		}
		return true, nil
	})
}

package meta

import (
	"context"
	"fmt"
)

// Purging deleted inline data: a delete in an LSM engine writes a
// tombstone, and the deleted value stays in the engine's files (Badger's
// write-ahead logs and tables) until compaction happens to merge the two,
// which may be never for a quiet range. When the value was plaintext that
// has just been encrypted (sealfs bucket encrypt-existing), that is
// plaintext left behind. PurgeInline makes the engine drop those bytes
// now.
//
// Only the embedded Badger engine can: its files are the gateway's. On a
// shared engine (PostgreSQL, etcd) the server's storage — dead tuples
// until VACUUM FULL, write-ahead logs, etcd's revision history, snapshots
// and backups — is outside sealfs's reach: PurgeInline reports false and
// the operator runs the server's own tools.

// inlinePurger is implemented by engines that can remove deleted keys'
// bytes from their files at once.
type inlinePurger interface {
	// purge removes every version of keys, which must be deleted keys no
	// one writes again, from the engine's files, memory and logs
	// included, before it returns.
	purge(keys [][]byte) error
}

// PurgeInline removes the bytes of the deleted inline data of the objects
// ids from the engine's files (see above). ids must name objects whose
// inline data was deleted (object ids are never reused). It reports false,
// doing nothing, on an engine that cannot.
func (db *DB) PurgeInline(ctx context.Context, ids []ObjectID) (bool, error) {
	p, ok := db.kv.(inlinePurger)
	if !ok {
		return false, nil
	}
	if len(ids) == 0 {
		return true, nil
	}
	if err := ctx.Err(); err != nil {
		return true, err
	}
	if err := db.kv.writable(ctx); err != nil {
		return true, err
	}
	keys := make([][]byte, len(ids))
	for i, id := range ids {
		keys[i] = inlineKey(id)
	}
	if err := p.purge(keys); err != nil {
		return true, fmt.Errorf("meta: purging deleted inline data: %w", err)
	}
	return true, nil
}

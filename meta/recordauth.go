package meta

// Record authentication.
//
// Every bucket, object, upload, part, user and access key record may end with one more field,
// tag 127, holding a 32-byte MAC (record.go). The MAC is computed by a
// RecordMAC that the caller hands to SetRecordAuth (cryptostore keys it from
// the KMS); meta never holds the key. The MAC covers the database key the
// record is stored under (so bucket, object key, upload id and part number
// are bound, and a record moved to another key fails) and every byte of the
// record before the MAC field. The MAC field must be the last field.
//
// Once SetRecordAuth is called, every write seals the record and every read
// checks it: GetBucket, ListBuckets, GetObject, List, GetUpload,
// ListUploads, GetPart and ListParts fail with an error wrapping
// ErrRecordTampered when the MAC is wrong, or missing in AuthRequired mode.
// CountObjects and ForEachBlobRef (statistics and the orphan collector) read
// without checking. Queue items, configuration records and inline data are
// not records in this sense and carry no MAC.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// RecordMACSize is the size of a record MAC.
const RecordMACSize = 32

// recordMACTag is the field tag of the record MAC in every record kind.
const recordMACTag = 127

// RecordMAC computes record MACs.
type RecordMAC interface {
	// AppendMAC appends to dst the RecordMACSize-byte MAC of the record
	// stored under the database key key, whose encoding up to (not
	// including) its MAC field is record. It must be safe for concurrent
	// use.
	AppendMAC(dst, key, record []byte) []byte
	// VerifyMAC reports, in constant time, whether mac is the MAC of the
	// record stored under key whose encoding up to its MAC field is record.
	VerifyMAC(key, record, mac []byte) bool
}

// AuthMode says what a record without a MAC means.
type AuthMode int

const (
	// AuthUpgrade accepts records without a MAC (written by a sealfs that
	// did not authenticate records, and not sealed yet) and checks the
	// others. It is meant for SealRecords, at open.
	AuthUpgrade AuthMode = iota + 1
	// AuthRequired refuses records without a valid MAC.
	AuthRequired
)

// recordAuth is what transactions use to seal and check records.
type recordAuth struct {
	mac  RecordMAC
	mode AuthMode
}

// SetRecordAuth makes every transaction started afterwards seal the records
// it writes with mac and check the records it reads, in mode. Call it before
// the store serves requests; a nil mac turns authentication off (tests of
// meta alone).
func (db *DB) SetRecordAuth(mac RecordMAC, mode AuthMode) {
	// Records read so far were checked another way, or not at all.
	defer db.buckets.changed()
	if mac == nil {
		db.auth.Store(nil)
		return
	}
	db.auth.Store(&recordAuth{mac: mac, mode: mode})
}

// seal appends the MAC field to rec, the encoding of the record stored
// under k. Without authentication it returns rec unchanged.
func (a *recordAuth) seal(k, rec []byte) []byte {
	if a == nil {
		return rec
	}
	rec = binary.AppendUvarint(rec, recordMACTag)
	rec = binary.AppendUvarint(rec, RecordMACSize)
	return a.mac.AppendMAC(rec, k, rec[:len(rec)-2])
}

// splitMAC returns the record without its MAC field, and the MAC (nil when
// the record has none). A MAC field that is not the last field, or not
// RecordMACSize bytes, is an error wrapping ErrRecordTampered. A record
// that does not parse is returned whole for its decoder to refuse.
func splitMAC(v []byte) (body, mac []byte, err error) {
	if len(v) == 0 {
		return v, nil, nil
	}
	for i := 1; i < len(v); {
		tag, n := binary.Uvarint(v[i:])
		if n <= 0 {
			return v, nil, nil
		}
		l, m := binary.Uvarint(v[i+n:])
		if m <= 0 || l > uint64(len(v)-i-n-m) {
			return v, nil, nil
		}
		end := i + n + m + int(l)
		if tag == recordMACTag {
			if l != RecordMACSize || end != len(v) {
				return nil, nil, fmt.Errorf("%w: malformed MAC field", ErrRecordTampered)
			}
			return v[:i], v[i+n+m:], nil
		}
		i = end
	}
	return v, nil, nil
}

// open checks the record v stored under k and returns it without its MAC
// field. The returned slice aliases v.
func (a *recordAuth) open(k, v []byte) ([]byte, error) {
	body, mac, err := splitMAC(v)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return body, nil
	}
	if mac == nil {
		if a.mode == AuthUpgrade {
			return body, nil
		}
		return nil, fmt.Errorf("%w: the record carries no MAC", ErrRecordTampered)
	}
	if !a.mac.VerifyMAC(k, body, mac) {
		return nil, fmt.Errorf("%w: the MAC does not match", ErrRecordTampered)
	}
	return body, nil
}

// record is value for a record: fn gets the checked record without its MAC.
func (tx *Txn) record(k []byte, fn func(v []byte) error) (ok bool, err error) {
	return tx.value(k, func(v []byte) error {
		body, err := tx.auth.open(k, v)
		if err != nil {
			return err
		}
		return fn(body)
	})
}

// itemRecord checks the record v found under k by a scan, and calls fn
// with it without its MAC.
func (tx *Txn) itemRecord(k, v []byte, fn func(v []byte) error) error {
	body, err := tx.auth.open(k, v)
	if err != nil {
		return err
	}
	return fn(body)
}

// seal is tx.auth.seal, for the record writers.
func (tx *Txn) seal(k, rec []byte) []byte { return tx.auth.seal(k, rec) }

// recordPrefixes are the prefixes of every authenticated record kind.
func recordPrefixes() [][]byte {
	return [][]byte{{prefixBucket, sep}, {prefixObject, sep}, {prefixUpload, sep}, {prefixPart, sep}, {prefixCompleted, sep}, {prefixAccess, sep}}
}

// RecordCensus describes the records of a store, for deciding how to open
// it: a store written by a sealfs that did not authenticate records has
// Records > 0 and Sealed == 0.
type RecordCensus struct {
	Records int // bucket, object, upload and part records
	Sealed  int // those that carry a MAC field (checked or not)
	// NewWraps counts object and upload records whose wrapped data key is
	// in a format the first release never wrote (its first byte above 1):
	// such a record was written by a sealfs that seals records.
	NewWraps int
}

// CensusRecords counts the records, without checking any MAC.
func (db *DB) CensusRecords(ctx context.Context) (RecordCensus, error) {
	var c RecordCensus
	err := db.View(ctx, func(tx *Txn) error {
		for _, p := range recordPrefixes() {
			err := tx.scan(p, nil, func(_, v []byte) (bool, error) {
				if c.Records%1024 == 0 {
					if err := ctx.Err(); err != nil {
						return false, err
					}
				}
				c.Records++
				return true, func() error {
					body, mac, err := splitMAC(v)
					if err != nil || mac != nil {
						c.Sealed++
						return nil
					}
					if p[0] == prefixObject || p[0] == prefixUpload {
						var o Object
						var u Upload
						var e *Encryption
						if p[0] == prefixObject && decodeObject(body, &o) == nil {
							e = o.Encryption
						} else if p[0] == prefixUpload && decodeUpload(body, &u) == nil {
							e = u.Encryption
						}
						if e != nil && len(e.WrappedKey) > 0 && e.WrappedKey[0] > 1 {
							c.NewWraps++
						}
					}
					return nil
				}()
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return c, err
}

// sealBatch is how many records SealRecords reads per pass.
const sealBatch = 512

// SealRecords adds a MAC to every record that has none and checks every
// record that has one, in batches of transactions. SetRecordAuth must have
// been called (AuthUpgrade). It returns how many records it sealed; a record
// whose MAC does not verify stops it with an error wrapping
// ErrRecordTampered. It is meant to run once, at open, before the store
// serves requests; it is idempotent, so an interrupted run is completed by
// the next.
func (db *DB) SealRecords(ctx context.Context) (sealed int, err error) {
	if db.auth.Load() == nil {
		return 0, errors.New("meta: SealRecords without SetRecordAuth")
	}
	for _, p := range recordPrefixes() {
		var seek []byte
		for {
			var keys [][]byte
			var unsealed int
			err := db.View(ctx, func(tx *Txn) error {
				keys, unsealed = keys[:0], 0
				return tx.scan(p, seek, func(k, v []byte) (bool, error) {
					if seek != nil && bytes.Equal(k, seek) {
						return true, nil
					}
					keys = append(keys, bytes.Clone(k))
					if _, mac, err := splitMAC(v); err == nil && mac == nil {
						unsealed++
					}
					return len(keys) < sealBatch, nil
				})
			})
			if err != nil {
				return sealed, err
			}
			if len(keys) == 0 {
				break
			}
			err = db.UpdateBulk(ctx, len(keys), func(tx *Txn, i int) error {
				var rec []byte
				ok, err := tx.value(keys[i], func(v []byte) error {
					body, mac, err := splitMAC(v)
					if err != nil {
						return err
					}
					if mac == nil {
						rec = bytes.Clone(body)
						return nil
					}
					_, err = tx.auth.open(keys[i], v)
					return err
				})
				if err != nil {
					return fmt.Errorf("record %q: %w", keys[i], err)
				}
				if !ok || rec == nil {
					return nil
				}
				return tx.kv.set(keys[i], tx.seal(keys[i], rec))
			})
			if err != nil {
				return sealed, err
			}
			sealed += unsealed
			seek = keys[len(keys)-1]
		}
	}
	return sealed, nil
}

// ObjectKeys returns up to max (1 to 1000; other values mean 1000) object
// keys of bucket after the key after, in order, without reading or checking
// their records, and whether more follow. A scrub walks a bucket with it so
// that a record failing authentication is reported as that object's damage
// instead of stopping the walk.
func (tx *Txn) ObjectKeys(bucket, after string, max int) (keys []string, more bool, err error) {
	if strings.IndexByte(bucket, 0) >= 0 {
		return nil, false, nil
	}
	limit := pageSize(max)
	prefix := objectPrefix(bucket, "")
	var seek []byte
	if after != "" {
		seek = append(objectPrefix(bucket, after), sep) // the smallest key after it
	}
	err = tx.scanKeys(prefix, seek, func(k []byte) (bool, error) {
		if len(keys) == limit {
			more = true
			return false, nil
		}
		keys = append(keys, string(k[len(prefix):]))
		return true, nil
	})
	return keys, more, err
}

package meta

// All keys. Components are joined by a NUL byte: bucket names cannot contain
// one (ValidBucketName), object keys are validated not to (ValidKey), and
// upload ids are checked not to (validUploadID). NUL being the smallest byte,
// records of one parent sort by their last component in plain byte order.
//
//	prefix  key                                          value
//	------  -------------------------------------------  ----------------------------------------
//	b       b \0 <bucket>                                 Bucket record (record.go); the name comes
//	                                                      from the key
//	o       o \0 <bucket> \0 <key>                        Object record; bucket and key come from
//	                                                      the key
//	i       i \0 <object id: 16 bytes>                    inline data: the object's blob bytes, raw
//	                                                      (encrypted when the object is)
//	u       u \0 <bucket> \0 <key> \0 <upload id>         Upload record; bucket, key and id come
//	                                                      from the key
//	p       p \0 <upload id> \0 <part number: u32 BE>     Part record; the number comes from the key
//	d       d \0 <upload id>                               CompletedUpload record (completed.go): an
//	                                                      upload that completed, kept for a while to
//	                                                      answer a repeated completion
//	f       f \0 b \0 <bucket>                            empty: write fence of a bucket's objects
//	                                                      and uploads (see below)
//	f       f \0 p \0 <upload id>                         empty: write fence of an upload's parts
//	q       q \0 i \0 <seq: u64 BE>                        QueueItem record (queue.go): replication
//	                                                      work, in sequence (FIFO) order
//	q       q \0 k \0 <bucket> \0 <key>                    u64 BE: seq of the key's queued item (at
//	                                                      most one per key: a newer one replaces it)
//	c       c \0 r \0 <name>                               configuration record (config.go): opaque
//	                                                      bytes of the named setting
//	c       c \0 s \0 <name>                               u64 BE: the end of the numbers leased so far
//	                                                      of a named sequence (NewSequence)
//	g       g \0 d \0 <blob id: 16 bytes>                 u64 BE: Unix ns after which the blob, no longer
//	                                                      referenced, may be removed (shared.go)
//	g       g \0 r \0 <blob id: 16 bytes> \0 <gateway>     u64 BE: Unix ns until which the gateway reads
//	                                                      the blob (a read pin, shared.go)
//	g       g \0 l \0 <name>                               lease: u64 BE expiry (Unix ns), then the
//	                                                      owner's id (shared.go)
//	a       a \0 u \0 <user>                               User record (users.go): created, policy
//	                                                      document, disabled; the name comes from
//	                                                      the key
//	a       a \0 k \0 <access key id>                      AccessKey record (users.go): its user,
//	                                                      status and sealed secret; the id comes
//	                                                      from the key
//
// Write fences. Badger detects conflicts on the keys a transaction read, not
// on the ranges it scanned, so a scan that found a bucket empty does not
// conflict with a concurrent transaction that adds the bucket's first object.
// (PostgreSQL's SERIALIZABLE covers ranges too, and there the fences are
// off: its row locks would make concurrent blind writes of one fence
// conflict. etcd's range compares cover ranges as well; blind writes do not
// conflict there, so the fences stay. The engine contract asks only for keys.)
// To close that gap every PutObject and PutUpload also writes the bucket's
// fence key (a blind write: writers never read it, so they do not conflict
// with each other), and DeleteBucket reads it: a DeleteBucket whose snapshot
// predates a committed object or upload then fails with ErrConflict and is
// retried against a snapshot that sees it. PutPart and DeleteUpload do the
// same with the upload's fence. Fences are deleted with their parent.
//
// The builders and parsers below are the only code that builds or takes
// apart keys.

import (
	"bytes"
	"encoding/binary"
)

// Key prefixes: the first byte of every key.
const (
	prefixBucket      = 'b'
	prefixObject      = 'o'
	prefixInline      = 'i'
	prefixUpload      = 'u'
	prefixPart        = 'p'
	prefixCompleted   = 'd'
	prefixFence       = 'f'
	prefixReplication = 'q'
	prefixConfig      = 'c'
	prefixGateways    = 'g' // coordination of gateways sharing a store
	prefixAccess      = 'a' // users and access keys
)

// Access kinds: the byte after "a\x00".
const (
	accessUser = 'u'
	accessKey  = 'k'
)

// Gateway coordination kinds: the byte after "g\x00".
const (
	gatewayDoomed = 'd'
	gatewayPin    = 'r'
	gatewayLease  = 'l'
)

// Replication queue kinds: the byte after "q\x00".
const (
	queueItem  = 'i'
	queueIndex = 'k'
)

// Configuration kinds: the byte after "c\x00".
const (
	configRecord   = 'r'
	configSequence = 's'
)

// Fence kinds: the byte after "f\x00".
const (
	fenceBucket = 'b'
	fencePart   = 'p'
)

const sep = 0

// buildKey joins prefix and parts with sep. The last part is not terminated,
// so passing a prefix of the last component builds a scan prefix.
func buildKey(prefix byte, parts ...string) []byte {
	n := 2
	for _, p := range parts {
		n += len(p) + 1
	}
	k := make([]byte, 0, n)
	k = append(k, prefix, sep)
	for i, p := range parts {
		if i > 0 {
			k = append(k, sep)
		}
		k = append(k, p...)
	}
	return k
}

// bucketKey is b\0<bucket>.
func bucketKey(bucket string) []byte { return buildKey(prefixBucket, bucket) }

// bucketsPrefix is the prefix of every bucket key.
func bucketsPrefix() []byte { return []byte{prefixBucket, sep} }

// parseBucketKey returns the bucket name of a bucket key.
func parseBucketKey(k []byte) (string, bool) {
	if len(k) < 2 || k[0] != prefixBucket || k[1] != sep {
		return "", false
	}
	return string(k[2:]), true
}

// objectKey is o\0<bucket>\0<key>.
func objectKey(bucket, key string) []byte { return buildKey(prefixObject, bucket, key) }

// objectPrefix is o\0<bucket>\0<keyPrefix>: the prefix of every object key
// in bucket starting with keyPrefix.
func objectPrefix(bucket, keyPrefix string) []byte {
	return buildKey(prefixObject, bucket, keyPrefix)
}

// objectsPrefix is the prefix of every object key in every bucket.
func objectsPrefix() []byte { return []byte{prefixObject, sep} }

// parseObjectKey returns the bucket and key of an object key.
func parseObjectKey(k []byte) (bucket, key string, ok bool) {
	if len(k) < 2 || k[0] != prefixObject || k[1] != sep {
		return "", "", false
	}
	rest := k[2:]
	i := bytes.IndexByte(rest, sep)
	if i < 0 {
		return "", "", false
	}
	return string(rest[:i]), string(rest[i+1:]), true
}

// inlineKey is i\0<object id>. Ids begin with the time they were made
// (NewObjectID), so new objects' data sorts after all older data.
func inlineKey(id ObjectID) []byte {
	k := make([]byte, 0, 2+len(id))
	k = append(k, prefixInline, sep)
	return append(k, id[:]...)
}

// uploadKey is u\0<bucket>\0<key>\0<upload id>.
func uploadKey(bucket, key, uploadID string) []byte {
	return buildKey(prefixUpload, bucket, key, uploadID)
}

// uploadsPrefix is u\0<bucket>\0<keyPrefix>: the prefix of every upload of
// bucket whose key starts with keyPrefix.
func uploadsPrefix(bucket, keyPrefix string) []byte {
	return buildKey(prefixUpload, bucket, keyPrefix)
}

// uploadKeyAfter is the smallest upload key of bucket after every upload of
// key (all of key's upload ids included).
func uploadKeyAfter(bucket, key string) []byte {
	k := buildKey(prefixUpload, bucket, key)
	return append(k, sep+1)
}

// parseUploadKey returns the components of an upload key.
func parseUploadKey(k []byte) (bucket, key, uploadID string, ok bool) {
	if len(k) < 2 || k[0] != prefixUpload || k[1] != sep {
		return "", "", "", false
	}
	rest := k[2:]
	i := bytes.IndexByte(rest, sep)
	if i < 0 {
		return "", "", "", false
	}
	bucket, rest = string(rest[:i]), rest[i+1:]
	j := bytes.IndexByte(rest, sep)
	if j < 0 {
		return "", "", "", false
	}
	return bucket, string(rest[:j]), string(rest[j+1:]), true
}

// partKey is p\0<upload id>\0<number, 4 bytes big endian>.
func partKey(uploadID string, number int32) []byte {
	k := buildKey(prefixPart, uploadID, "")
	return binary.BigEndian.AppendUint32(k, uint32(number))
}

// partsPrefix is p\0<upload id>\0: the prefix of every part of an upload.
func partsPrefix(uploadID string) []byte { return buildKey(prefixPart, uploadID, "") }

// allPartsPrefix is the prefix of every part key of every upload.
func allPartsPrefix() []byte { return []byte{prefixPart, sep} }

// parsePartKey returns the part number of a part key.
func parsePartKey(k []byte) (uploadID string, number int32, ok bool) {
	if len(k) < 2+1+4 || k[0] != prefixPart || k[1] != sep || k[len(k)-5] != sep {
		return "", 0, false
	}
	n := binary.BigEndian.Uint32(k[len(k)-4:])
	if n > 1<<31-1 {
		return "", 0, false
	}
	return string(k[2 : len(k)-5]), int32(n), true
}

// completedUploadKey is d\0<upload id>.
func completedUploadKey(uploadID string) []byte { return buildKey(prefixCompleted, uploadID) }

// completedUploadsPrefix is the prefix of every completed upload key.
func completedUploadsPrefix() []byte { return []byte{prefixCompleted, sep} }

// bucketFenceKey is f\0b\0<bucket>.
func bucketFenceKey(bucket string) []byte {
	return buildKey(prefixFence, string(rune(fenceBucket)), bucket)
}

// partFenceKey is f\0p\0<upload id>.
func partFenceKey(uploadID string) []byte {
	return buildKey(prefixFence, string(rune(fencePart)), uploadID)
}

// successor returns the smallest key greater than every key that starts with
// p, or nil when there is none (p is all 0xff bytes).
func successor(p []byte) []byte {
	s := bytes.Clone(p)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] < 0xff {
			s[i]++
			return s[:i+1]
		}
	}
	return nil
}

// queueItemKey is q\0i\0<seq, 8 bytes big endian>.
func queueItemKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(queueItemsPrefix(), seq)
}

// queueItemsPrefix is q\0i\0: the prefix of every queue item, in seq order.
func queueItemsPrefix() []byte { return []byte{prefixReplication, sep, queueItem, sep} }

// parseQueueItemKey returns the seq of a queue item key.
func parseQueueItemKey(k []byte) (uint64, bool) {
	p := queueItemsPrefix()
	if len(k) != len(p)+8 || !bytes.HasPrefix(k, p) {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[len(p):]), true
}

// queueIndexKey is q\0k\0<bucket>\0<key>.
func queueIndexKey(bucket, key string) []byte {
	return buildKey(prefixReplication, string(rune(queueIndex)), bucket, key)
}

// configKey is c\0r\0<name>.
func configKey(name string) []byte {
	return buildKey(prefixConfig, string(rune(configRecord)), name)
}

// configPrefix is c\0r\0<prefix>: the prefix of every configuration record
// whose name starts with prefix.
func configPrefix(prefix string) []byte { return configKey(prefix) }

// parseConfigKey returns the name of a configuration record key.
func parseConfigKey(k []byte) (string, bool) {
	p := configKey("")
	if !bytes.HasPrefix(k, p) {
		return "", false
	}
	return string(k[len(p):]), true
}

// sequenceKey is c\0s\0<name>.
func sequenceKey(name string) []byte {
	return buildKey(prefixConfig, string(rune(configSequence)), name)
}

// doomedBlobKey is g\0d\0<blob id>.
func doomedBlobKey(id BlobID) []byte {
	return append(doomedBlobsPrefix(), id[:]...)
}

// doomedBlobsPrefix is g\0d\0.
func doomedBlobsPrefix() []byte { return []byte{prefixGateways, sep, gatewayDoomed, sep} }

// parseDoomedBlobKey returns the blob id of a doomed-blob key.
func parseDoomedBlobKey(k []byte) (BlobID, bool) {
	var id BlobID
	p := doomedBlobsPrefix()
	if len(k) != len(p)+len(id) || !bytes.HasPrefix(k, p) {
		return id, false
	}
	copy(id[:], k[len(p):])
	return id, true
}

// blobPinsPrefix is g\0r\0<blob id>\0: the prefix of the blob's read pins.
func blobPinsPrefix(id BlobID) []byte {
	k := []byte{prefixGateways, sep, gatewayPin, sep}
	k = append(k, id[:]...)
	return append(k, sep)
}

// allBlobPinsPrefix is g\0r\0.
func allBlobPinsPrefix() []byte { return []byte{prefixGateways, sep, gatewayPin, sep} }

// blobPinKey is g\0r\0<blob id>\0<gateway>.
func blobPinKey(id BlobID, gateway string) []byte {
	return append(blobPinsPrefix(id), gateway...)
}

// leaseKey is g\0l\0<name>.
func leaseKey(name string) []byte {
	return buildKey(prefixGateways, string(rune(gatewayLease)), name)
}

// userKey is a\0u\0<user>.
func userKey(name string) []byte {
	return buildKey(prefixAccess, string(rune(accessUser)), name)
}

// usersPrefix is a\0u\0: the prefix of every user key.
func usersPrefix() []byte { return userKey("") }

// parseUserKey returns the name of a user key.
func parseUserKey(k []byte) (string, bool) {
	p := usersPrefix()
	if !bytes.HasPrefix(k, p) || len(k) == len(p) {
		return "", false
	}
	return string(k[len(p):]), true
}

// accessKeyKey is a\0k\0<access key id>.
func accessKeyKey(id string) []byte {
	return buildKey(prefixAccess, string(rune(accessKey)), id)
}

// accessKeysPrefix is a\0k\0: the prefix of every access key.
func accessKeysPrefix() []byte { return accessKeyKey("") }

// parseAccessKeyKey returns the id of an access key key.
func parseAccessKeyKey(k []byte) (string, bool) {
	p := accessKeysPrefix()
	if !bytes.HasPrefix(k, p) || len(k) == len(p) {
		return "", false
	}
	return string(k[len(p):]), true
}

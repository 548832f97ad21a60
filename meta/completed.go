package meta

import (
	"bytes"
	"fmt"
	"time"
)

// Completed multipart uploads. S3 clients retry CompleteMultipartUpload
// after a timeout, and AWS answers a repeat for an upload that has already
// completed with 200 and the same result. To answer so, the commit that
// completes an upload also writes a CompletedUpload record under
// d\0<upload id> (keys.go); it is kept for a while (the store decides how
// long, from Completed) and then swept.

// CompletedUpload records a multipart upload that has completed.
type CompletedUpload struct {
	ID        string // the upload id (from the key)
	Bucket    string // where the upload completed
	Key       string
	ObjectID  ObjectID // the id of the object the completion made
	Completed time.Time
	// Parts identifies the list of parts the completion was asked for (a
	// digest the store computes): a repeat must name the same list.
	Parts []byte
}

// CompletedUpload record fields (record.go's encoding; version 1):
//
//	1 Bucket string · 2 Key string · 3 ObjectID id · 4 Completed time ·
//	5 Parts bytes
const (
	completedBucket   = 1
	completedKey      = 2
	completedObjectID = 3
	completedTime     = 4
	completedParts    = 5
)

func encodeCompleted(dst []byte, c *CompletedUpload) []byte {
	dst = append(dst, recordVersion)
	dst = appendString(dst, completedBucket, c.Bucket)
	dst = appendString(dst, completedKey, c.Key)
	dst = appendID(dst, completedObjectID, c.ObjectID)
	dst = appendTime(dst, completedTime, c.Completed)
	return appendBytes(dst, completedParts, c.Parts)
}

func decodeCompleted(data []byte, c *CompletedUpload) error {
	data, err := version("completed upload record", data, recordVersion)
	if err != nil {
		return err
	}
	f := fields{rec: "completed upload record", b: data}
	for f.next() {
		switch f.tag {
		case completedBucket:
			f.str(&c.Bucket)
		case completedKey:
			f.str(&c.Key)
		case completedObjectID:
			f.id((*[16]byte)(&c.ObjectID))
		case completedTime:
			f.time(&c.Completed)
		case completedParts:
			f.bytes(&c.Parts)
		}
	}
	return f.err
}

// PutCompletedUpload records a completed upload under c.ID, replacing any
// record there. An id that cannot be part of a key is refused with an error
// wrapping ErrNoSuchUpload.
func (tx *Txn) PutCompletedUpload(c *CompletedUpload) error {
	if !validUploadID(c.ID) {
		return uploadIDError(c.ID)
	}
	k := completedUploadKey(c.ID)
	return tx.kv.set(k, tx.seal(k, encodeCompleted(nil, c)))
}

// GetCompletedUpload returns the record of a completed upload, or an error
// wrapping ErrNoSuchUpload.
func (tx *Txn) GetCompletedUpload(uploadID string) (*CompletedUpload, error) {
	c := &CompletedUpload{ID: uploadID}
	ok := false
	var err error
	if validUploadID(uploadID) {
		ok, err = tx.record(completedUploadKey(uploadID), func(v []byte) error { return decodeCompleted(v, c) })
	}
	if err != nil {
		return nil, fmt.Errorf("completed upload %s: %w", uploadID, err)
	}
	if !ok {
		return nil, fmt.Errorf("completed upload %s: %w", uploadID, ErrNoSuchUpload)
	}
	return c, nil
}

// DeleteCompletedUploads deletes at most max records of uploads completed
// before cutoff, and reports how many it deleted and whether more may be
// left. A record that does not decode is deleted too: it only ever serves
// a repeated completion.
func (tx *Txn) DeleteCompletedUploads(cutoff time.Time, max int) (n int, more bool, err error) {
	var doomed [][]byte
	err = tx.scan(completedUploadsPrefix(), nil, func(k, v []byte) (bool, error) {
		var c CompletedUpload
		derr := tx.itemRecord(k, v, func(body []byte) error { return decodeCompleted(body, &c) })
		if derr == nil && !c.Completed.Before(cutoff) {
			return true, nil
		}
		if len(doomed) == max {
			more = true
			return false, nil
		}
		doomed = append(doomed, bytes.Clone(k))
		return true, nil
	})
	if err != nil {
		return 0, false, err
	}
	for _, k := range doomed {
		if err := tx.kv.delete(k); err != nil {
			return n, false, err
		}
		n++
	}
	return n, more, nil
}

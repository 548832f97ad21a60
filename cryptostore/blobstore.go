package cryptostore

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sealfs/sealfs/meta"
)

// BlobStore is where a store's blobs live: sealed bytes only (FORMAT.md),
// named by their blob id. Two implementations: the files under the data
// directory (file://DIR, the default; blobfiles.go) and any S3 endpoint
// (s3://BUCKET/PREFIX; blobstore_s3.go).
//
// The contract the store relies on:
//   - A blob is written once, through the BlobUpload Create returns, and is
//     complete and durable in the store when Commit returns nil; only then
//     is a record pointing at it committed. Abort (or a failed Commit)
//     leaves nothing behind that Exists or List reports for long: a
//     failed multipart upload is aborted.
//   - Open reads a committed blob at random offsets (io.ReaderAt); a read
//     past the end returns fewer bytes and io.EOF.
//   - Remove deletes a blob; removing a missing blob is not an error.
//   - List reports every committed blob with its size and the time it was
//     written, which the orphan collector compares with its grace window.
//
// Which blob may be removed, and when, is decided above the BlobStore, by
// the store's bookkeeping (blobFiles: in-flight writes, reader pins, the
// removals that wait for a metadata sync in durable.go) and is the same for
// every backend.
type BlobStore interface {
	// Create starts writing blob id.
	Create(ctx context.Context, id meta.BlobID) (BlobUpload, error)
	// Open opens committed blob id for reading.
	Open(ctx context.Context, id meta.BlobID) (BlobObject, error)
	// Exists reports whether blob id is committed.
	Exists(ctx context.Context, id meta.BlobID) (bool, error)
	// Remove deletes blob id.
	Remove(ctx context.Context, id meta.BlobID) error
	// List calls fn for every committed blob.
	List(ctx context.Context, fn func(BlobInfo) error) error
	// String names the store in messages (no credentials).
	String() string
}

// BlobUpload writes one new blob.
type BlobUpload interface {
	io.Writer
	// Commit makes the blob complete and durable. On error the blob is
	// aborted.
	Commit() error
	// Abort discards the blob. It is safe after Commit failed.
	Abort()
}

// BlobObject reads one blob.
type BlobObject interface {
	io.ReaderAt
	io.Closer
}

// BlobInfo describes a committed blob in a listing.
type BlobInfo struct {
	ID      meta.BlobID
	Size    int64
	ModTime time.Time
}

// DefaultBlobGrace is Config.BlobGrace when 0: the orphan collector of a
// remote blob store (s3://) keeps unreferenced blobs younger than this.
//
// A remote store may be shared with other gateways, and even alone a blob
// is in the store (its upload completed) a moment before the record that
// points at it commits: another gateway's collector, listing the bucket in
// that moment, sees an unreferenced blob it knows nothing about. Such a
// blob is young; keeping every unreferenced blob younger than the grace
// window keeps it. The window must exceed the longest time between an
// upload's completion and its commit (seconds, or the metadata engine's
// longest outage a writer retries through); an hour is generous. Orphans
// (a gateway crashed between upload and commit) are removed by the first
// collection after they are this old.
const DefaultBlobGrace = time.Hour

// BlobURL is a parsed --blobs URL.
type BlobURL struct {
	Scheme string // "file" or "s3"
	Dir    string // file: the directory ("" → DATA/blobs)
	Bucket string // s3
	Prefix string // s3: key prefix, "" or ending in "/"
}

// ParseBlobURL parses file://DIR, a bare directory path, or
// s3://BUCKET[/PREFIX]. "" is the default file store.
func ParseBlobURL(u string) (BlobURL, error) {
	if u == "" {
		return BlobURL{Scheme: "file"}, nil
	}
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return BlobURL{Scheme: "file", Dir: u}, nil
	}
	switch strings.ToLower(scheme) {
	case "file":
		if rest == "" {
			return BlobURL{}, fmt.Errorf("blob store %q: want file://DIR", u)
		}
		return BlobURL{Scheme: "file", Dir: rest}, nil
	case "s3":
		bucket, prefix, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return BlobURL{}, fmt.Errorf("blob store %q: want s3://BUCKET/PREFIX", u)
		}
		prefix = strings.Trim(prefix, "/")
		if prefix != "" {
			prefix += "/"
		}
		return BlobURL{Scheme: "s3", Bucket: bucket, Prefix: prefix}, nil
	default:
		return BlobURL{}, fmt.Errorf("blob store %q: want file://DIR or s3://BUCKET/PREFIX", u)
	}
}

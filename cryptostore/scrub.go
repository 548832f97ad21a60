package cryptostore

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"

	"github.com/minio/crc64nvme"

	"github.com/sealfs/sealfs/meta"
)

// ScrubOptions selects what Scrub reads.
type ScrubOptions struct {
	Bucket string  // "" → every bucket
	Sample float64 // fraction of objects to read, (0,1]; 0 → all
	// Progress, if set, is called after each object with the counts so far.
	Progress func(ScrubReport)
}

// Damage is one object that failed verification.
type Damage struct {
	Bucket, Key string
	Err         string
}

// ScrubReport is what a scrub found.
type ScrubReport struct {
	Objects int64 // objects read
	Bytes   int64 // plaintext bytes read
	Skipped int64 // not sampled
	Damaged []Damage
	// Shredded are objects whose master key (or key version) was deleted:
	// unrecoverable on purpose, not damaged (shred.go).
	Shredded []Damage `json:",omitempty"`
	Orphans  CollectStats
	Finished bool
}

// Scrub reads objects back through the read path, checking that every chunk
// authenticates (or matches its CRC) and that the whole object matches its
// stored full-object checksums and, if plain and written in one piece, its
// ETag (an MD5; an encrypted object's ETag is random); then it
// collects orphan blobs. A disabled key is reported as damage of that object
// (it cannot be verified), not as a failure of the scrub; an object whose
// master key (or key version) was deleted is reported as shredded.
func (s *Store) Scrub(ctx context.Context, opts ScrubOptions) (*ScrubReport, error) {
	rep := &ScrubReport{}
	var buckets []string
	if opts.Bucket != "" {
		if _, err := s.GetBucket(ctx, opts.Bucket); err != nil {
			return nil, err
		}
		buckets = []string{opts.Bucket}
	} else {
		bs, err := s.ListBuckets(ctx)
		if err != nil {
			return nil, err
		}
		for _, b := range bs {
			buckets = append(buckets, b.Name)
		}
	}
	buf := make([]byte, 1<<20)
	for _, bucket := range buckets {
		lo := meta.ListOptions{MaxKeys: 1000}
		for {
			page, err := s.scrubPage(ctx, bucket, lo)
			if err != nil {
				return rep, err
			}
			for _, o := range page.Objects {
				if opts.Sample > 0 && opts.Sample < 1 && rand.Float64() >= opts.Sample {
					rep.Skipped++
					continue
				}
				n, err := s.verify(ctx, bucket, o.Key, buf)
				if errors.Is(err, ErrNoSuchKey) {
					continue // deleted meanwhile
				}
				if err := ctx.Err(); err != nil {
					return rep, err
				}
				rep.Objects++
				rep.Bytes += n
				if err != nil && errors.Is(err, ErrKMSKeyNotFound) {
					rep.Shredded = append(rep.Shredded, Damage{Bucket: bucket, Key: o.Key, Err: err.Error()})
				} else if err != nil {
					rep.Damaged = append(rep.Damaged, Damage{Bucket: bucket, Key: o.Key, Err: err.Error()})
					s.logger.Error("scrub: object failed verification", "bucket", bucket, "key", o.Key, "err", err)
				}
				if opts.Progress != nil {
					opts.Progress(*rep)
				}
			}
			if !page.IsTruncated {
				break
			}
			lo.After = page.NextAfter
		}
	}
	st, err := s.Collect(ctx)
	if err != nil {
		return rep, err
	}
	rep.Orphans = st
	rep.Finished = true
	return rep, nil
}

// verify reads one object whole and checks its sums.
func (s *Store) verify(ctx context.Context, bucket, key string, buf []byte) (int64, error) {
	h, err := s.Open(ctx, bucket, key)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	o := h.Object()
	if o.Composed() {
		return verifyComposed(h, buf)
	}
	var algs []string
	for _, c := range o.Checksums {
		if !strings.Contains(c.Value, "-") { // composite (multipart) sums cannot be recomputed
			algs = append(algs, c.Algorithm)
		}
	}
	hs, err := newHasher(algs)
	if err != nil {
		return 0, err
	}
	// A plain single-part object's ETag is its MD5; an encrypted object's
	// ETag is random (sums.go) and says nothing about its data: its chunks
	// authenticate, and its stored checksums (DefaultChecksum at least,
	// for an object written in one piece) are checked below.
	checkMD5 := o.Encryption == nil && !strings.Contains(o.ETag, "-")
	if checkMD5 {
		hs.withMD5()
	}
	n, err := io.CopyBuffer(hs, h.Reader(0, o.Size), buf)
	if err != nil {
		return n, err
	}
	if n != o.Size {
		return n, fmt.Errorf("%w: read %d bytes, record says %d", ErrCorruptBlob, n, o.Size)
	}
	sums := hs.sums()
	if checkMD5 && md5ETag(sums.MD5) != o.ETag {
		return n, fmt.Errorf("%w: content MD5 %s does not match ETag %s", ErrCorruptBlob, md5ETag(sums.MD5), o.ETag)
	}
	for _, c := range o.Checksums {
		want, err := base64.StdEncoding.DecodeString(c.Value)
		if err != nil {
			continue // composite
		}
		if got := sums.Checksums[c.Algorithm]; got != nil && !bytes.Equal(got, want) {
			return n, fmt.Errorf("%w: %s checksum does not match", ErrCorruptBlob, c.Algorithm)
		}
	}
	return n, nil
}

// verifyComposed reads the extents of a composed version that hold data
// (holes need no reading: a 1 TiB hole is checked in microseconds) and
// checks its CRC-64/NVME, folded over the extents (crcalgebra.go). Its
// ETag is random (compose.go) and it carries no other checksum.
func verifyComposed(h *Handle, buf []byte) (int64, error) {
	o := h.Object()
	var crc uint64
	var off, n int64
	for _, r := range o.Blobs {
		c := crcZeros(r.Size)
		if !r.Hole {
			hs := crc64nvme.New()
			m, err := io.CopyBuffer(hs, h.Reader(off, r.Size), buf)
			n += m
			if err != nil {
				return n, err
			}
			if m != r.Size {
				return n, fmt.Errorf("%w: read %d bytes at %d, record says %d", ErrCorruptBlob, m, off, r.Size)
			}
			c = hs.Sum64()
		}
		crc = crcCombine(crc, c, r.Size)
		off += r.Size
	}
	if want, ok := objectCRC64(o); ok && want != crc {
		return n, fmt.Errorf("%w: %s checksum does not match", ErrCorruptBlob, CRC64NVME)
	}
	return n, nil
}

package cryptostore

import (
	"context"

	"github.com/sealfs/sealfs/meta"
)

// BucketStats counts a bucket's objects.
type BucketStats struct {
	Bucket           string `json:"bucket"`
	Encryption       bool   `json:"default_encryption"`
	Objects          int64  `json:"objects"`
	Bytes            int64  `json:"bytes"`
	EncryptedObjects int64  `json:"encrypted_objects"`
	EncryptedBytes   int64  `json:"encrypted_bytes"`
}

// Stats counts every bucket's objects and bytes, and how many of them are
// encrypted. It reads every object record: an admin's question, not a hot
// path.
func (s *Store) Stats(ctx context.Context) ([]BucketStats, error) {
	bs, err := s.ListBuckets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]BucketStats, 0, len(bs))
	for _, b := range bs {
		st := BucketStats{Bucket: b.Name, Encryption: b.EncryptionOn}
		lo := meta.ListOptions{MaxKeys: 1000}
		for {
			page, err := s.List(ctx, b.Name, lo)
			if err != nil {
				return nil, err
			}
			for _, o := range page.Objects {
				st.Objects++
				st.Bytes += o.Size
				if o.Encryption != nil {
					st.EncryptedObjects++
					st.EncryptedBytes += o.Size
				}
			}
			if !page.IsTruncated {
				break
			}
			lo.After = page.NextAfter
		}
		out = append(out, st)
	}
	return out, nil
}

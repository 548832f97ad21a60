package cryptostore

import "github.com/sealfs/sealfs/meta"

// path returns a blob's file in the file store (tests of the file store).
func (b *blobFiles) path(id meta.BlobID) string { return b.local.path(id) }

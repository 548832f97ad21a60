package integration

import (
	"io/fs"
	"path/filepath"
	"testing"
)

// storedBlobs lists the blob files under a data directory's blobs/ that
// hold a blob. The empty files the daemon creates ahead of need (their
// names made durable in batches, cryptostore/blobpool.go) are not blobs
// yet: a blob, even an empty object's, starts with a header.
func storedBlobs(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(dataDir, "blobs"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		if fi, err := e.Info(); err == nil && fi.Size() > 0 {
			out = append(out, p)
		}
		return nil
	})
	return out
}

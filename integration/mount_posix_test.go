package integration

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
)

// posixSkips are the posixtest cases that do not apply to sealfs, and why.
var posixSkips = map[string]string{
	"Link":             "hard links are refused (EPERM): an object has exactly one key",
	"LinkUnlinkRename": "hard links are refused (EPERM): an object has exactly one key",
	"XAttrLarge": "user.* attributes are S3 user metadata, which S3 limits to 2 KiB per object: " +
		"the 8 KiB value is refused with E2BIG",
	"FcntlFlockLocksFile": "POSIX locks are the kernel's own, per process as on a local disk: the test wants a lock taken through one " +
		"descriptor to block the same process through another, which only a file system forwarding locks to per-descriptor locks gives",
}

// TestMountPosix runs go-fuse's POSIX conformance suite against a
// directory in an encrypting bucket, each case in a fresh directory.
func TestMountPosix(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "posix", true)
	names := make([]string, 0, len(posixtest.All))
	for name := range posixtest.All {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if why, ok := posixSkips[name]; ok {
				t.Skip(why)
			}
			dir := filepath.Join(b, name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			posixtest.All[name](t, dir)
		})
	}
}

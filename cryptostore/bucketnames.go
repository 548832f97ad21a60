package cryptostore

import (
	"fmt"

	"github.com/sealfs/sealfs/meta"
)

// reservedBuckets are the first path segments the daemon's HTTPS listener
// routes to itself instead of to S3 (cmd/sealfs: the health endpoints and
// the admin API). A bucket of such a name would collide with those routes:
// its objects could not be reached over S3, or would shadow the routes.
var reservedBuckets = map[string]string{
	"health":       "the health endpoints (/health/live, /health/ready)",
	"sealfs-admin": "the admin API (/sealfs-admin/v1/)",
}

// ReservedBucketName reports whether name is reserved for a route of the
// daemon's listener, and for which.
func ReservedBucketName(name string) (route string, reserved bool) {
	route, reserved = reservedBuckets[name]
	return route, reserved
}

// ValidNewBucketName checks the name of a bucket to be created: S3's naming
// rules (meta.ValidBucketName) and the names sealfs reserves. CreateBucket
// applies it, so every front door (S3, the mount's mkdir, the admin API)
// refuses the same names. The error wraps ErrInvalidBucketName.
func ValidNewBucketName(name string) error {
	if err := meta.ValidBucketName(name); err != nil {
		return err
	}
	if route, ok := reservedBuckets[name]; ok {
		return fmt.Errorf("%w %q: the name is reserved for %s", ErrInvalidBucketName, name, route)
	}
	return nil
}

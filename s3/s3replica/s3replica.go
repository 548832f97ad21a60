// Package s3replica is the HTTP form of a replica write: the headers a
// sealfs region adds to the plain S3 PutObject or DeleteObject it sends to
// another region, how they are written and how a target reads them. The
// sender (package replicate) and the receiver (package s3) share it; what
// a target does with a replica (a conditional write by version time) is
// the store's: cryptostore.Replica.
package s3replica

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
)

// The headers a replica carries.
const (
	// HeaderSourceMtime is the source version's LastModified (a delete: the
	// deletion time), RFC 3339 with nanoseconds.
	HeaderSourceMtime = "X-Sealfs-Replica-Source-Mtime"
	// HeaderSourceRegion is the source daemon's region.
	HeaderSourceRegion = "X-Sealfs-Replica-Source-Region"
	// HeaderSkipped, on a target's answer, says the replica was not stored
	// because the target holds a version as new or newer ("stale").
	HeaderSkipped = "X-Sealfs-Replica-Skipped"
)

// ErrBadHeaders: replica headers that are malformed, or that the request
// did not sign.
var ErrBadHeaders = errors.New("invalid replica headers")

// FormatSourceTime writes a time as HeaderSourceMtime carries it.
func FormatSourceTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// regionPattern is a region name, as replication targets are named.
var regionPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Has reports whether h carries a replica header.
func Has(h http.Header) bool {
	return len(h.Values(HeaderSourceMtime)) > 0 || len(h.Values(HeaderSourceRegion)) > 0
}

// Parse reads the replica headers of an authenticated request. signed lists
// the header names the request's signature covers (lower case, as
// sigv4.Auth.SignedHeaders has them). ok is false for an ordinary write (no
// replica header). The headers are honoured only when signed: ErrBadHeaders
// otherwise, and when malformed.
func Parse(h http.Header, signed []string) (r cryptostore.Replica, ok bool, err error) {
	mtime, region := h.Values(HeaderSourceMtime), h.Values(HeaderSourceRegion)
	if len(mtime) == 0 && len(region) == 0 {
		return cryptostore.Replica{}, false, nil
	}
	if len(mtime) != 1 || len(region) != 1 {
		return cryptostore.Replica{}, false, fmt.Errorf("%w: want one %s and one %s", ErrBadHeaders, HeaderSourceMtime, HeaderSourceRegion)
	}
	for _, name := range []string{HeaderSourceMtime, HeaderSourceRegion} {
		if !slices.Contains(signed, strings.ToLower(name)) {
			return cryptostore.Replica{}, false, fmt.Errorf("%w: %s must be signed", ErrBadHeaders, name)
		}
	}
	t, err := time.Parse(time.RFC3339Nano, mtime[0])
	if err != nil {
		return cryptostore.Replica{}, false, fmt.Errorf("%w: %s %q: want RFC 3339", ErrBadHeaders, HeaderSourceMtime, mtime[0])
	}
	if !regionPattern.MatchString(region[0]) {
		return cryptostore.Replica{}, false, fmt.Errorf("%w: %s %q", ErrBadHeaders, HeaderSourceRegion, region[0])
	}
	return cryptostore.Replica{SourceTime: t.UTC(), SourceRegion: region[0]}, true, nil
}

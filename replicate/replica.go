package replicate

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/meta"
)

// The headers a replica carries (see the package documentation).
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

// ErrStaleReplica: a replica older than the version the target holds. It
// wraps cryptostore.ErrPreconditionFailed (it is a PutInput Condition's
// refusal); a target answers it with success and HeaderSkipped.
var ErrStaleReplica = fmt.Errorf("replica older than the stored version: %w", cryptostore.ErrPreconditionFailed)

// ErrBadReplicaHeaders: replica headers that are malformed, or that the
// request did not sign.
var ErrBadReplicaHeaders = errors.New("invalid replica headers")

// FormatSourceTime writes a time as HeaderSourceMtime carries it.
func FormatSourceTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Replica describes a replica write arriving at a target.
type Replica struct {
	SourceTime   time.Time
	SourceRegion string
}

// ParseReplica reads the replica headers of an authenticated request.
// signed lists the header names the request's signature covers (lower
// case, as sigv4.Auth.SignedHeaders has them). ok is false for an ordinary
// write (no replica header). The headers are honoured only when signed:
// ErrBadReplicaHeaders otherwise, and when malformed.
func ParseReplica(h http.Header, signed []string) (r Replica, ok bool, err error) {
	mtime, region := h.Values(HeaderSourceMtime), h.Values(HeaderSourceRegion)
	if len(mtime) == 0 && len(region) == 0 {
		return Replica{}, false, nil
	}
	if len(mtime) != 1 || len(region) != 1 {
		return Replica{}, false, fmt.Errorf("%w: want one %s and one %s", ErrBadReplicaHeaders, HeaderSourceMtime, HeaderSourceRegion)
	}
	for _, name := range []string{HeaderSourceMtime, HeaderSourceRegion} {
		if !slices.Contains(signed, strings.ToLower(name)) {
			return Replica{}, false, fmt.Errorf("%w: %s must be signed", ErrBadReplicaHeaders, name)
		}
	}
	t, err := time.Parse(time.RFC3339Nano, mtime[0])
	if err != nil {
		return Replica{}, false, fmt.Errorf("%w: %s %q: want RFC 3339", ErrBadReplicaHeaders, HeaderSourceMtime, mtime[0])
	}
	if validRegion(region[0]) != nil {
		return Replica{}, false, fmt.Errorf("%w: %s %q", ErrBadReplicaHeaders, HeaderSourceRegion, region[0])
	}
	return Replica{SourceTime: t.UTC(), SourceRegion: region[0]}, true, nil
}

// Condition refuses (ErrStaleReplica) to store the replica over a version
// that is newer by meta.Object.VersionTime. A version of the same time is
// replaced: it is the same version sent again, or with newer metadata.
func (r Replica) Condition(cur *meta.Object) error {
	if cur != nil && cur.VersionTime().After(r.SourceTime) {
		return ErrStaleReplica
	}
	return nil
}

// Apply makes in a replica write: status REPLICA, the source time recorded,
// and Condition added to in's own (both must pass).
func (r Replica) Apply(in *cryptostore.PutInput) {
	in.ReplicationStatus = cryptostore.ReplicationReplica
	in.ReplicaSourceModified = r.SourceTime
	own := in.Condition
	in.Condition = func(cur *meta.Object) error {
		if err := r.Condition(cur); err != nil {
			return err
		}
		if own != nil {
			return own(cur)
		}
		return nil
	}
}

package fs

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"sync"
	"syscall"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/iam"
)

// toErrno is the one place where store errors become errnos. go-fuse's own
// conversion compares errors with == and would turn every wrapped error into
// ENOSYS, so every node method goes through here (through FS.errno, which
// also logs).
func toErrno(err error) syscall.Errno {
	var errno syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.Is(err, iam.ErrAccessDenied):
		// The mount's user may not (authz.go): its policy refused the
		// action or the use of the bucket's key.
		return syscall.EACCES
	case errors.Is(err, cryptostore.ErrCorruptBlob), errors.Is(err, cryptostore.ErrUnsupportedFormat),
		errors.Is(err, cryptostore.ErrCorruptRecord), errors.Is(err, cryptostore.ErrRecordTampered):
		// Before "not found": a listed object whose blob file is missing
		// wraps both, and is damage (EIO), not absence (ENOENT).
		return syscall.EIO
	case errors.Is(err, cryptostore.ErrNoSuchKey), errors.Is(err, cryptostore.ErrNoSuchBucket),
		errors.Is(err, fs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, cryptostore.ErrKeyDisabled):
		return syscall.ENOKEY
	case errors.Is(err, cryptostore.ErrVersionGone):
		return syscall.ESTALE // the version a handle was following was removed
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return syscall.EINTR
	case errors.Is(err, cryptostore.ErrBucketNotEmpty):
		return syscall.ENOTEMPTY
	case errors.Is(err, cryptostore.ErrBucketExists):
		return syscall.EEXIST
	case errors.Is(err, cryptostore.ErrInvalidBucketName), errors.Is(err, cryptostore.ErrInvalidKey):
		return syscall.EINVAL
	case errors.Is(err, cryptostore.ErrCrossBucket):
		return syscall.EXDEV
	case errors.Is(err, cryptostore.ErrNoSpace), errors.Is(err, syscall.ENOSPC):
		return syscall.ENOSPC // the data disk is full (below the reserve)
	case errors.Is(err, errGone):
		return syscall.ESTALE // its streamed writes were dropped with it
	case errors.As(err, &errno):
		return errno // ENOSPC, EDQUOT, ... from the disk
	}
	return syscall.EIO
}

// errno maps err for an operation on bucket/key and logs what an operator
// must see: a corrupt object once per object, an error with no better errno
// than EIO once per message.
func (f *FS) errno(err error, bucket, key string) syscall.Errno {
	e := toErrno(err)
	if e != syscall.EIO {
		return e
	}
	if errors.Is(err, cryptostore.ErrRecordTampered) {
		f.errs.once("tampered\x00"+bucket+"\x00"+key, "metadata record failed authentication; returning EIO",
			"bucket", bucket, "key", key, "err", err)
		return e
	}
	if errors.Is(err, cryptostore.ErrCorruptBlob) || errors.Is(err, cryptostore.ErrUnsupportedFormat) {
		f.errs.once("corrupt\x00"+bucket+"\x00"+key, "object failed verification; reads return EIO",
			"bucket", bucket, "key", key, "err", err)
		return e
	}
	f.errs.once("err\x00"+err.Error(), "store error; returning EIO", "bucket", bucket, "key", key, "err", err)
	return e
}

// errorLog logs each distinct message once. It remembers a bounded number
// of them; past that it logs everything, so nothing is hidden.
type errorLog struct {
	log  *slog.Logger
	mu   sync.Mutex
	seen map[string]struct{}
}

const errorLogMax = 4096

func (l *errorLog) init(log *slog.Logger) {
	l.log = log
	l.seen = make(map[string]struct{})
}

func (l *errorLog) once(key, msg string, args ...any) {
	l.mu.Lock()
	_, dup := l.seen[key]
	if !dup && len(l.seen) < errorLogMax {
		l.seen[key] = struct{}{}
	}
	l.mu.Unlock()
	if !dup {
		l.log.Error(msg, args...)
	}
}

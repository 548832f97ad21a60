package fs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"github.com/sealfs/sealfs/cryptostore"
)

func TestToErrno(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", err)) }
	tests := []struct {
		err  error
		want syscall.Errno
	}{
		{err: nil, want: 0},
		{err: wrap(cryptostore.ErrNoSuchKey), want: syscall.ENOENT},
		{err: wrap(cryptostore.ErrNoSuchBucket), want: syscall.ENOENT},
		{err: wrap(fs.ErrNotExist), want: syscall.ENOENT},
		{err: wrap(cryptostore.ErrKeyDisabled), want: syscall.ENOKEY},
		{err: wrap(cryptostore.ErrCorruptBlob), want: syscall.EIO},
		{err: wrap(cryptostore.ErrRecordTampered), want: syscall.EIO},
		// A tampered record may name a missing key: still EIO.
		{err: fmt.Errorf("%w: %w", cryptostore.ErrRecordTampered, fs.ErrNotExist), want: syscall.EIO},
		// A listed object whose blob file is gone: damage, not absence.
		{err: fmt.Errorf("%w: %w", cryptostore.ErrCorruptBlob, &fs.PathError{Op: "open", Path: "blob", Err: syscall.ENOENT}), want: syscall.EIO},
		{err: wrap(cryptostore.ErrVersionGone), want: syscall.ESTALE},
		{err: wrap(context.Canceled), want: syscall.EINTR},
		{err: wrap(cryptostore.ErrBucketNotEmpty), want: syscall.ENOTEMPTY},
		{err: wrap(cryptostore.ErrBucketExists), want: syscall.EEXIST},
		{err: wrap(cryptostore.ErrInvalidBucketName), want: syscall.EINVAL},
		{err: wrap(cryptostore.ErrInvalidKey), want: syscall.EINVAL},
		{err: wrap(cryptostore.ErrCrossBucket), want: syscall.EXDEV},
		{err: wrap(syscall.ENOSPC), want: syscall.ENOSPC},
		{err: errors.New("something else"), want: syscall.EIO},
	}
	for _, tc := range tests {
		if got := toErrno(tc.err); got != tc.want {
			t.Errorf("toErrno(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestErrnoLogsOnce checks that a corrupt object is logged once with its
// bucket and key, and an unknown error once per message.
func TestErrnoLogsOnce(t *testing.T) {
	var buf strings.Builder
	f := newFS(Options{Store: &cryptostore.Store{}, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	for range 3 {
		f.errno(fmt.Errorf("read: %w", cryptostore.ErrCorruptBlob), "bkt", "dir/obj")
		f.errno(errors.New("disk on fire"), "bkt", "x")
	}
	out := buf.String()
	if n := strings.Count(out, "bucket=bkt key=dir/obj"); n != 1 {
		t.Errorf("corrupt object logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "disk on fire"); n != 1 {
		t.Errorf("unknown error logged %d times, want once:\n%s", n, out)
	}
	if f.errno(cryptostore.ErrNoSuchKey, "bkt", "gone"); strings.Contains(buf.String(), "gone") {
		t.Error("ENOENT was logged")
	}
}

package fs

// Acting as a user (sealfs mount --as USER). With Options.As set, every
// operation is held to that user's policy, as the same request over S3
// would be: reading a file is s3:GetObject, writing, creating, chmod and
// user.* xattrs s3:PutObject, unlink and rmdir s3:DeleteObject, rename
// s3:GetObject and s3:DeleteObject on the source and s3:PutObject on the
// destination, listing a directory s3:ListBucket with its prefix as
// s3:prefix (the top: s3:ListAllMyBuckets), mkdir and rmdir at the top
// s3:CreateBucket and s3:DeleteBucket, a bucket's encryption xattr
// s3:PutEncryptionConfiguration. Every store call carries the user
// (cryptostore.WithCaller), so the store checks kms:Decrypt and
// kms:GenerateDataKey on the bucket's key. A refusal is EACCES. Looking a
// name up and its attributes are not checked (a listing shows them).
// The mount has no source address and is not a network transport:
// aws:SourceIp is absent and aws:SecureTransport is true. With
// AllowOther the kernel's POSIX permission checks apply on top. The user's
// policy is read again every asTTL, so a change (or a disabled or deleted
// user, which may then do nothing) reaches a running mount within it.

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/iam"
)

// asTTL bounds how long a mount acting as a user trusts the policy it read.
const asTTL = 5 * time.Second

// actingAs is the user a mount acts as, its policy re-read every asTTL.
type actingAs struct {
	user  string
	store *cryptostore.Store
	mu    sync.Mutex
	c     *cryptostore.Caller
	until time.Time
}

// caller returns the user as a Caller. A user who cannot be read (deleted,
// disabled, a store error) is a Caller whose policy allows nothing.
func (a *actingAs) caller() *cryptostore.Caller {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	if a.c != nil && now.Before(a.until) {
		return a.c
	}
	p, err := a.store.UserPrincipal(context.Background(), a.user)
	if err != nil {
		p = &cryptostore.Principal{User: a.user, ARN: iam.UserARN("000000000000", a.user)}
	}
	a.c = &cryptostore.Caller{Principal: p, SecureTransport: true}
	a.until = now.Add(asTTL)
	return a.c
}

// keep is the package's keep, carrying the mount's user when it acts as
// one.
func (f *FS) keep(ctx context.Context) context.Context {
	ctx = keep(ctx)
	if f.as != nil {
		ctx = cryptostore.WithCaller(ctx, f.as.caller())
	}
	return ctx
}

// allow checks action on resource for the mount's user: 0 or EACCES.
func (f *FS) allow(action, resource string, prefix *string) syscall.Errno {
	if f.as == nil {
		return 0
	}
	r := iam.Request{Action: action, Resource: resource, SecureTransport: true}
	if prefix != nil {
		r.Prefix, r.HasPrefix = *prefix, true
	}
	if err := f.as.caller().Principal.Check(&r); err != nil {
		f.log.Info("mount: denied by the user's policy", "user", f.as.user, "action", action, "resource", resource)
		return syscall.EACCES
	}
	return 0
}

func (f *FS) allowObject(action, bucket, key string) syscall.Errno {
	return f.allow(action, iam.S3ObjectARN(bucket, key), nil)
}

func (f *FS) allowBucket(action, bucket string) syscall.Errno {
	return f.allow(action, iam.S3BucketARN(bucket), nil)
}

func (f *FS) allowList(bucket, prefix string) syscall.Errno {
	return f.allow("s3:ListBucket", iam.S3BucketARN(bucket), &prefix)
}

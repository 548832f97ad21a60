package cryptostore

// The front doors' view of the store. The gateways (package fs, package s3,
// package admin) reach metadata, blobs and keys only through a *Store: they
// import neither meta nor kms (integration's layering test enforces it).
// What they need to name — the records the store returns and takes, the
// listing options, the names of the POSIX metadata keys, the validation of
// names, the errors to test for — is named here.
//
// The record types are aliases of meta's, not copies: a record crosses the
// store's API as the value meta decoded, so a converted copy would cost an
// allocation per object listed and buy nothing. What the aliases keep out
// of the front doors is the capability, not the data: a front door holding
// an *Object cannot open a transaction, skip the record authentication,
// write a blob or unwrap a key. Those stay behind the Store's methods.
//
// Key management (for the admin API) is here too: the store's KMS is not
// handed out; the store lists, describes, enables, disables and rotates its
// master keys, and refuses to disable its own system key.

import (
	"context"
	"errors"
	"fmt"

	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
)

// Records and listing, as the store's API takes and returns them.
type (
	Bucket            = meta.Bucket
	Object            = meta.Object
	ObjectID          = meta.ObjectID
	ObjectMeta        = meta.ObjectMeta
	Encryption        = meta.Encryption
	Checksum          = meta.Checksum
	ListOptions       = meta.ListOptions
	ListPage          = meta.ListPage
	RecordPage        = meta.RecordPage
	ObjectSummary     = meta.ObjectSummary
	Upload            = meta.Upload
	Part              = meta.Part
	UploadListOptions = meta.UploadListOptions
	UploadPage        = meta.UploadPage
)

// The user-metadata names that carry POSIX attributes (the mount keeps a
// file's mode, owner and mtime there; S3 shows them as x-amz-meta-*).
const (
	MetaMode  = meta.MetaMode
	MetaUID   = meta.MetaUID
	MetaGID   = meta.MetaGID
	MetaMtime = meta.MetaMtime
)

// MaxKeyLen is the longest object key, in bytes.
const MaxKeyLen = meta.MaxKeyLen

// ValidKey reports whether key is a valid object key (ErrInvalidKey).
func ValidKey(key string) error { return meta.ValidKey(key) }

// ValidBucketName reports whether name is a valid bucket name
// (ErrInvalidBucketName).
func ValidBucketName(name string) error { return meta.ValidBucketName(name) }

// Errors of the layers below, as the front doors test them (errors.Is).
var (
	// ErrCorruptRecord: a metadata record that does not decode.
	ErrCorruptRecord = meta.ErrCorruptRecord
	// ErrNoSpace: the metadata engine is out of space (the reserve is for
	// calls that free space).
	ErrNoSpace = meta.ErrNoSpace
	// ErrInvalidPartRecord: a part number the metadata refuses (the store's
	// own check is ErrInvalidPartNumber).
	ErrInvalidPartRecord = meta.ErrInvalidPartNumber

	// The KMS's own errors, as its calls (and the key management below)
	// return them. ErrKMSKeyNotFound: no master key by that id.
	ErrKMSKeyNotFound = kms.ErrKeyNotFound
	// ErrKMSKeyDisabled: the master key is disabled (the store's reads and
	// writes under it say ErrKeyDisabled).
	ErrKMSKeyDisabled = kms.ErrKeyDisabled
	// ErrKMSKeyPendingDeletion: the master key is scheduled for deletion.
	ErrKMSKeyPendingDeletion = kms.ErrKeyPendingDeletion
	// ErrKMSInvalidArgument: a key request the KMS refuses (for instance a
	// state change the key's state does not allow).
	ErrKMSInvalidArgument = kms.ErrInvalidArgument
	// ErrKMSUnavailable: an external KMS could not be reached. Writes into
	// an encrypting bucket fail with it; reads too, once no cached data key
	// serves them. Transient: nothing was changed.
	ErrKMSUnavailable = kms.ErrUnavailable
)

// ErrSystemKey: an action that would disable the store's system key, which
// wraps the record-authentication key (the store would not open again).
var ErrSystemKey = errors.New("the system key authenticates the metadata and cannot be disabled")

// KeyMetadata describes a master key.
type KeyMetadata = kms.KeyMetadata

// KeyState is a master key's state.
type KeyState = kms.KeyState

// The states of a master key.
const (
	KeyEnabled         = kms.KeyEnabled
	KeyDisabled        = kms.KeyDisabled
	KeyPendingDeletion = kms.KeyPendingDeletion
)

// Keys lists the master keys.
func (s *Store) Keys(ctx context.Context) ([]*KeyMetadata, error) {
	return s.kms.ListKeys(ctx)
}

// DescribeKey describes a master key (by id or ARN).
func (s *Store) DescribeKey(ctx context.Context, keyID string) (*KeyMetadata, error) {
	return s.kms.DescribeKey(ctx, &kms.KeyRequest{KeyID: keyID})
}

// EnableKey enables a master key.
func (s *Store) EnableKey(ctx context.Context, keyID string) error {
	err := s.kms.EnableKey(ctx, &kms.KeyRequest{KeyID: keyID})
	s.auditKeyAdmin(ctx, "kms:EnableKey", keyID, err)
	return err
}

// DisableKey disables a master key: objects under it can be neither read
// nor written until it is enabled again. The system key is refused
// (ErrSystemKey).
func (s *Store) DisableKey(ctx context.Context, keyID string) (err error) {
	defer func() { s.auditKeyAdmin(ctx, "kms:DisableKey", keyID, err) }()
	sys, err := s.SystemKeyID(ctx)
	if err != nil {
		return err
	}
	if sys != "" {
		md, err := s.DescribeKey(ctx, keyID)
		if err != nil {
			return err
		}
		if md.KeyID == sys {
			return fmt.Errorf("key %s: %w", sys, ErrSystemKey)
		}
	}
	return s.kms.DisableKey(ctx, &kms.KeyRequest{KeyID: keyID})
}

// RotateKey adds a version to a master key; new data keys are wrapped by
// it, older versions keep unwrapping what they wrapped.
func (s *Store) RotateKey(ctx context.Context, keyID string) (*KeyMetadata, error) {
	md, err := s.kms.RotateKey(ctx, &kms.KeyRequest{KeyID: keyID})
	s.auditKeyAdmin(ctx, "kms:RotateKey", keyID, err)
	return md, err
}

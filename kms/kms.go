// Package kms is sealfs's key management service: master keys that wrap
// per-object data keys.
//
// It owns master key material and the root key that seals it. It hands out
// data keys (plaintext and wrapped) and unwraps them again, always bound to an
// encryption context, so a wrapped key copied onto another object fails to
// unwrap. It never logs key material or plaintext and never stores either
// unsealed. It never touches object data or blobs, nor any record of the
// metadata database but its own keyring records.
//
// Local is the built-in engine: master keys in one keyring, each
// key version sealed by a key derived from a 32-byte root key (see
// LoadRootKey and keyring.go; the root key is only ever HKDF input), data
// keys wrapped under a key of their own per wrap, derived from the master key
// version (the format is documented in wrap.go), and a bounded cache of
// unwrapped data keys. Keyrings and wrapped keys written by the first release
// are still read; a first-release keyring is migrated when it is opened.
//
// Key lifecycle (rewrap.go): ReWrap wraps a data key again under its key's
// current version without handing it out; RetireVersion destroys an old
// version's material. Callers (cryptostore) decide when nothing uses a
// version any more.
//
// AWS (aws.go) is the external engine: master keys in AWS KMS or any
// service speaking its API (aws-kms://REGION?endpoint=...), each with an
// alias naming its bucket; data keys from the service's GenerateDataKey and
// Decrypt under the same encryption context; unwrapped data keys cached
// only to serve reads for a bounded time (cache-ttl, 5 minutes) while the
// service cannot be reached (ErrUnavailable).
//
// Where the keyring is kept is a KeyringStore (store.go): the file
// DATA/kms/keyring for a gateway on the embedded Badger metadata (one process,
// flock'd), or MetaKeyring, two configuration records in the metadata engine
// that several gateways share (metastore.go). Changes to a shared keyring are
// compare-and-swap on its generation and retried on conflict, and every
// gateway picks up the others' changes within a bound (shared.go; Local says
// which). A shared store that is empty imports the local keyring file once.
//
// The interface is split in two: DataKeys (generate, decrypt, and seal a
// small secret), all the data path needs, and Admin (the key lifecycle).
// KMS is both. A further engine is one more implementation of KMS, not a
// rewrite of its callers: AWS (aws.go) speaks the AWS KMS API to AWS KMS or
// any service that implements it. Every call takes a request struct so that
// adding a field breaks no caller.
package kms

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors. Callers test them with errors.Is.
var (
	// ErrKeyNotFound: no master key with that id.
	ErrKeyNotFound = errors.New("kms: key not found")
	// ErrKeyDisabled: the key exists but is disabled; objects under it can be
	// neither read nor written until it is enabled again.
	ErrKeyDisabled = errors.New("kms: key is disabled")
	// ErrKeyPendingDeletion: the key is scheduled for deletion (or deleted);
	// it behaves as disabled.
	ErrKeyPendingDeletion = errors.New("kms: key is pending deletion")
	// ErrInvalidCiphertext: a wrapped key failed to unwrap: tampered, wrapped
	// by another key, or presented with another encryption context.
	ErrInvalidCiphertext = errors.New("kms: invalid ciphertext or encryption context")
	// ErrInvalidArgument: a request field is out of range (a deletion window
	// outside 7 to 30 days, a secret too long, a cancel on a key that is not
	// pending deletion, an empty key id).
	ErrInvalidArgument = errors.New("kms: invalid argument")
	// ErrUnavailable: the KMS could not be reached or did not answer (an
	// external KMS that is down). Transient: the same call may succeed
	// later. Nothing was changed.
	ErrUnavailable = errors.New("kms: the key management service is unavailable")
	// ErrVersionRetired: the wrapped key names a key version that was
	// retired; its material is gone, so what it wrapped is gone too. It
	// wraps ErrKeyNotFound.
	ErrVersionRetired = fmt.Errorf("%w: the key version that wrapped it is retired", ErrKeyNotFound)
)

// KeyState is a master key's state.
type KeyState string

// Key states.
const (
	KeyEnabled         KeyState = "Enabled"
	KeyDisabled        KeyState = "Disabled"
	KeyPendingDeletion KeyState = "PendingDeletion"
)

// KeyMetadata describes a master key. It never carries key material.
type KeyMetadata struct {
	KeyID          string
	ARN            string
	Description    string
	State          KeyState
	Created        time.Time
	CurrentVersion uint32 // versions count from 1; Rotate adds one
	DeletionDate   time.Time
	// RetiredVersions are the versions retired (RetireVersion): they
	// unwrap nothing any more.
	RetiredVersions []uint32 `json:",omitempty"`
	// CurrentVersionCreated is when the current version was made (by
	// CreateKey or the last RotateKey); zero where the engine does not say.
	CurrentVersionCreated time.Time `json:",omitzero"`
}

// Context is an encryption context: name/value pairs bound into the wrap.
// sealfs uses {"bucket": ..., "object": ...}.
type Context map[string]string

// DEK is a data key: its plaintext, to use and forget, and its ciphertext, to
// store beside the data it protects.
type DEK struct {
	KeyID      string
	Version    uint32 // master key version that wrapped it
	Plaintext  []byte // 32 bytes
	Ciphertext []byte
}

// CreateKeyRequest asks for a new master key.
type CreateKeyRequest struct {
	Description string
	// Alias names the key where the engine keeps names (AWS: the alias
	// alias/<prefix><Alias>). sealfs gives a bucket's name. Local keeps
	// none and ignores it.
	Alias string
}

// GenerateDataKeyRequest asks for a fresh 256-bit data key wrapped by KeyID's
// current version.
type GenerateDataKeyRequest struct {
	KeyID   string
	Context Context
}

// DecryptRequest asks to unwrap a data key. KeyID is checked against the key
// the ciphertext names.
type DecryptRequest struct {
	KeyID      string
	Ciphertext []byte
	Context    Context
}

// EncryptRequest seals a small secret (such as a replication target's
// secret key) under a master key.
type EncryptRequest struct {
	KeyID     string
	Plaintext []byte
	Context   Context
}

// KeyRequest names a key.
type KeyRequest struct {
	KeyID string
}

// ScheduleDeletionRequest schedules a key's deletion after a waiting period.
// The key behaves as disabled from the moment it is scheduled.
type ScheduleDeletionRequest struct {
	KeyID       string
	PendingDays int // 7 to 30, as AWS allows; 0 means 30
	// Pending, if set, overrides PendingDays with a waiting period of any
	// length, for tests that see a deletion date pass (sealfs allows it
	// only under SEALFS_TEST_SHORT_KEY_DELETION=1). The local engine
	// honours it; the AWS engine refuses it (AWS KMS waits 7 days at least).
	Pending time.Duration
}

// DataKeys is what the data path needs from a KMS: data keys issued and
// unwrapped, and small secrets sealed, every one bound to an encryption
// context. cryptostore's reads and writes use nothing else. A further engine
// (an external KMS) implements these three calls against its service and
// the Admin calls below; nothing else in sealfs changes.
type DataKeys interface {
	// GenerateDataKey returns a fresh 256-bit data key, in clear and
	// wrapped by the key's current version, bound to req.Context.
	GenerateDataKey(ctx context.Context, req *GenerateDataKeyRequest) (DEK, error)
	// Decrypt unwraps what GenerateDataKey or Encrypt wrapped, given the
	// same context. A disabled key fails with ErrKeyDisabled, a key pending
	// deletion with ErrKeyPendingDeletion, one that is gone with
	// ErrKeyNotFound, a KMS that cannot be reached with ErrUnavailable.
	Decrypt(ctx context.Context, req *DecryptRequest) ([]byte, error)
	// Encrypt seals a small secret (1 to 4096 bytes) under a master key.
	Encrypt(ctx context.Context, req *EncryptRequest) ([]byte, error)
}

// Admin is the key lifecycle: what operators and the admin API do to master
// keys. The data path never calls it, except CreateKey the first time a
// bucket needs its master key.
type Admin interface {
	CreateKey(ctx context.Context, req *CreateKeyRequest) (*KeyMetadata, error)
	DescribeKey(ctx context.Context, req *KeyRequest) (*KeyMetadata, error)
	ListKeys(ctx context.Context) ([]*KeyMetadata, error)
	EnableKey(ctx context.Context, req *KeyRequest) error
	DisableKey(ctx context.Context, req *KeyRequest) error
	ScheduleKeyDeletion(ctx context.Context, req *ScheduleDeletionRequest) (*KeyMetadata, error)
	CancelKeyDeletion(ctx context.Context, req *KeyRequest) error
	// RotateKey adds a new version; new data keys are wrapped by it, older
	// versions keep unwrapping what they wrapped.
	RotateKey(ctx context.Context, req *KeyRequest) (*KeyMetadata, error)
	// ReWrap wraps a data key again under its master key's current
	// version, bound to the same context, without handing out the data
	// key. A key wrapped by the current version already comes back as it
	// is, Changed false.
	ReWrap(ctx context.Context, req *ReWrapRequest) (*ReWrapped, error)
	// RetireVersion destroys an old version's material: what it wrapped
	// can no longer be unwrapped (ErrVersionRetired). The current version
	// cannot be retired. Callers first make sure nothing uses it (rewrap).
	RetireVersion(ctx context.Context, req *RetireVersionRequest) (*KeyMetadata, error)
}

// RetireVersionRequest names a key version to retire.
type RetireVersionRequest struct {
	KeyID   string
	Version uint32
}

// ReWrapRequest asks for a wrapped data key to be wrapped again under its
// master key's current version. KeyID, if set, must name the key the
// ciphertext names.
type ReWrapRequest struct {
	KeyID      string
	Ciphertext []byte
	Context    Context
}

// ReWrapped is a data key wrapped again: the same data key, a new wrapping.
type ReWrapped struct {
	KeyID      string
	Version    uint32 // the version that wraps it now
	Ciphertext []byte
	Changed    bool // false: Ciphertext is the one given (already current)
}

// KMS is a whole engine: the data path and the key lifecycle. Local (the
// built-in keyring) and AWS (any service speaking the AWS KMS API) are the
// engines; each is one file of calls (local.go, aws.go) plus its helpers.
type KMS interface {
	DataKeys
	Admin
}

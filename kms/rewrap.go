package kms

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

// ReWrap unwraps req.Ciphertext with the version that wrapped it and wraps
// the same data key under the key's current version, bound to the same
// context. The data key never leaves this call (it is wiped before it
// returns) and is not cached. The key must be enabled.
func (k *Local) ReWrap(ctx context.Context, req *ReWrapRequest) (*ReWrapped, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: nil request", ErrInvalidArgument)
	}
	h, err := k.wrappedBy(ctx, req.Ciphertext, req.KeyID)
	if err != nil {
		return nil, err
	}
	encCtx := appendContext(nil, req.Context)
	var out *ReWrapped
	err = k.use(ctx, h.keyID, true, func(m *masterKey) error {
		cur := uint32(len(m.versions))
		if h.version > cur {
			return fmt.Errorf("%w: key %s has no version %d", errUnknownVersion, h.keyID, h.version)
		}
		if err := checkNotRetired(m, h.version); err != nil {
			return err
		}
		pt, err := unwrap(m.versions[h.version-1], req.Ciphertext, h, encCtx)
		if err != nil {
			return err
		}
		defer clear(pt)
		k.unwraps.Add(1)
		if h.version == cur && h.format == wrapFormatV2 {
			out = &ReWrapped{KeyID: m.id, Version: cur, Ciphertext: req.Ciphertext}
			return nil
		}
		ct, err := wrap(m.versions[cur-1].material, m.id, cur, encCtx, pt)
		if err != nil {
			return err
		}
		out = &ReWrapped{KeyID: m.id, Version: cur, Ciphertext: ct, Changed: true}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReWrap asks the service to re-encrypt the data key under the key's
// current backing key (its ReEncrypt, same key, same context). The service
// does not say which version wrapped a ciphertext, so every call re-wraps
// (Changed is always true) and the version is always 1.
func (k *AWS) ReWrap(ctx context.Context, req *ReWrapRequest) (*ReWrapped, error) {
	if req == nil || req.KeyID == "" || len(req.Ciphertext) == 0 {
		return nil, fmt.Errorf("%w: ReWrap needs a key id and a ciphertext", ErrInvalidArgument)
	}
	out, err := k.client.ReEncrypt(ctx, &awskms.ReEncryptInput{
		CiphertextBlob:               req.Ciphertext,
		SourceKeyId:                  aws.String(req.KeyID),
		SourceEncryptionContext:      awsContext(req.Context),
		DestinationKeyId:             aws.String(req.KeyID),
		DestinationEncryptionContext: awsContext(req.Context),
	})
	if err != nil {
		err = awsErr("ReEncrypt", err)
		k.evictOnState(req.KeyID, err)
		return nil, err
	}
	return &ReWrapped{KeyID: k.keyID(aws.ToString(out.KeyId)), Version: 1, Ciphertext: out.CiphertextBlob, Changed: true}, nil
}

// checkNotRetired fails with ErrVersionRetired when version ver of m is
// retired.
func checkNotRetired(m *masterKey, ver uint32) error {
	if v := m.versions[ver-1]; !v.retired.IsZero() {
		return fmt.Errorf("%w: key %s version %d (retired %s)", ErrVersionRetired, m.id, ver, v.retired.Format(time.RFC3339))
	}
	return nil
}

// RetireVersion retires an old version of a key: its material is wiped
// from memory and removed from the keyring (durably, before it returns),
// and data keys it wrapped, cached ones included, can no longer be
// unwrapped. The current version cannot be retired; retiring a retired
// version changes nothing. Local does not know which objects use a
// version: the caller checks (cryptostore does, by counting them).
func (k *Local) RetireVersion(ctx context.Context, req *RetireVersionRequest) (*KeyMetadata, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: nil request", ErrInvalidArgument)
	}
	var old *keyVersion
	m, err := k.change(ctx, req.KeyID, func(c *masterKey, now time.Time) (string, error) {
		cur := uint32(len(c.versions))
		switch {
		case req.Version == 0 || req.Version > cur:
			return "", fmt.Errorf("%w: key %s has no version %d", ErrInvalidArgument, c.id, req.Version)
		case req.Version == cur:
			return "", fmt.Errorf("%w: version %d is key %s's current version: rotate first", ErrInvalidArgument, cur, c.id)
		case !c.versions[req.Version-1].retired.IsZero():
			return "", nil
		}
		old = c.versions[req.Version-1]
		c.versions = slices.Clone(c.versions)
		c.versions[req.Version-1] = &keyVersion{created: old.created, retired: now}
		return "kms key version retired", nil
	})
	if err != nil {
		return nil, err
	}
	if old != nil {
		clear(old.material)
		old.aead = nil
		k.cache.evictKey(m.id)
	}
	return k.metadata(m), nil
}

// RetireVersion is refused: the service keeps its key versions itself.
func (k *AWS) RetireVersion(context.Context, *RetireVersionRequest) (*KeyMetadata, error) {
	return nil, fmt.Errorf("%w: an external KMS keeps its key versions itself; they cannot be retired from sealfs", ErrInvalidArgument)
}

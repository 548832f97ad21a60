package kms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// AWSScheme is the URL scheme that chooses the AWS engine:
//
//	aws-kms://REGION[?endpoint=URL][&alias-prefix=P][&cache-ttl=D]
//
// endpoint is the service's URL (default: AWS KMS in REGION); alias-prefix
// is what the aliases of the keys sealfs creates start with after "alias/"
// (default "sealfs/"); cache-ttl bounds how long data keys already
// unwrapped keep serving reads while the service cannot be reached (default
// DefaultAWSCacheTTL; "0" serves nothing from the cache).
const AWSScheme = "aws-kms"

// DefaultAWSCacheTTL is how long, by default, an unwrapped data key keeps
// serving reads of its object while the external KMS cannot be reached,
// counted from the last time the KMS confirmed it.
const DefaultAWSCacheTTL = 5 * time.Minute

// defaultAliasPrefix is the default alias-prefix.
const defaultAliasPrefix = "sealfs/"

// AWSOptions configures OpenAWS. Every field may be left zero.
type AWSOptions struct {
	Logger    *slog.Logger     // nil discards
	CacheSize int              // unwrapped data keys kept; 0 means 4096; negative disables the cache
	Now       func() time.Time // nil means time.Now
	// Credentials signs the requests. nil means the SDK's usual sources
	// (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared
	// files, web identity), but never the instance metadata service.
	Credentials aws.CredentialsProvider
}

// AWS is the engine for a KMS that speaks the AWS KMS API: AWS KMS itself
// or any service that implements it. Master keys live in that service;
// sealfs stores only their ids. Data keys come from its GenerateDataKey and
// are unwrapped by its Decrypt, always under the encryption context the
// caller gives (sealfs binds bucket and object id), so a wrapped key moved
// to another object fails there as it does with Local.
//
// Every key it creates gets an alias, alias/<prefix><name>: the name is the
// CreateKeyRequest's Alias (a bucket's name, '.' written '_'), or key-<id>
// for keys without one. ListKeys lists the keys behind those aliases, and
// only them: other keys of the account are none of sealfs's business.
//
// Key states are the service's: disabling a key there is seen by the next
// call (no state is cached here). Versions are the service's too: the data
// key's version is always 1 and RotateKey asks for an on-demand rotation.
//
// Unwrapped data keys are cached only to ride out an outage: every Decrypt
// asks the service first; only when the service cannot be reached
// (ErrUnavailable) does a data key the service confirmed within the cache
// TTL serve the read. An answer that the key is disabled, pending deletion
// or gone evicts the key's cached data keys at once. Writes always need the
// service (a fresh data key per object).
type AWS struct {
	client      *awskms.Client
	region      string
	aliasPrefix string
	ttl         time.Duration
	log         *slog.Logger
	now         func() time.Time
	cache       *dekCache

	mu   sync.Mutex
	arns map[string]string // key id → ARN, as the service named them
}

var _ KMS = (*AWS)(nil)

// AWSConfig is what an aws-kms:// URL says.
type AWSConfig struct {
	Region      string
	Endpoint    string // "" means AWS KMS in Region
	AliasPrefix string
	CacheTTL    time.Duration
}

// ParseAWSURL parses an aws-kms:// URL (see AWSScheme).
func ParseAWSURL(raw string) (AWSConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return AWSConfig{}, fmt.Errorf("%w: kms url: %w", ErrInvalidArgument, err)
	}
	if u.Scheme != AWSScheme {
		return AWSConfig{}, fmt.Errorf("%w: kms url %q: the scheme must be %s://", ErrInvalidArgument, raw, AWSScheme)
	}
	c := AWSConfig{Region: u.Host, AliasPrefix: defaultAliasPrefix, CacheTTL: DefaultAWSCacheTTL}
	if c.Region == "" {
		return AWSConfig{}, fmt.Errorf("%w: kms url %q names no region (aws-kms://REGION?endpoint=...)", ErrInvalidArgument, raw)
	}
	q := u.Query()
	for name := range q {
		switch name {
		case "endpoint", "alias-prefix", "cache-ttl":
		default:
			return AWSConfig{}, fmt.Errorf("%w: kms url %q: unknown parameter %q (endpoint, alias-prefix, cache-ttl)", ErrInvalidArgument, raw, name)
		}
	}
	if e := q.Get("endpoint"); e != "" {
		eu, err := url.Parse(e)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
			return AWSConfig{}, fmt.Errorf("%w: kms url %q: endpoint must be an http:// or https:// URL", ErrInvalidArgument, raw)
		}
		c.Endpoint = e
	}
	if q.Has("alias-prefix") {
		c.AliasPrefix = q.Get("alias-prefix")
		if strings.HasPrefix(c.AliasPrefix, "aws/") || strings.ContainsFunc(c.AliasPrefix, badAliasRune) {
			return AWSConfig{}, fmt.Errorf("%w: kms url %q: alias-prefix may hold only letters, digits, '/', '_' and '-', and not start with aws/", ErrInvalidArgument, raw)
		}
	}
	if v := q.Get("cache-ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if v == "0" {
			d, err = 0, nil
		}
		if err != nil || d < 0 {
			return AWSConfig{}, fmt.Errorf("%w: kms url %q: cache-ttl must be a duration such as 5m", ErrInvalidArgument, raw)
		}
		c.CacheTTL = d
	}
	return c, nil
}

func badAliasRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '/' || r == '_' || r == '-')
}

// aliasName makes an AWS alias name from a name such as a bucket's: the
// characters an alias cannot hold become '_' (bucket names hold only
// lower-case letters, digits, '.' and '-', so this is one to one for them).
func (k *AWS) aliasName(name string) string {
	return "alias/" + k.aliasPrefix + strings.Map(func(r rune) rune {
		if badAliasRune(r) {
			return '_'
		}
		return r
	}, name)
}

// OpenAWS opens the engine an aws-kms:// URL names. It makes no request:
// the first call that needs the service finds whether it answers.
func OpenAWS(raw string, opts AWSOptions) (*AWS, error) {
	c, err := ParseAWSURL(raw)
	if err != nil {
		return nil, err
	}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithRegion(c.Region),
		// The instance metadata service is never asked (for
		// credentials or anything else): credentials come from the
		// environment or the shared files.
		config.WithEC2IMDSClientEnableState(imds.ClientDisabled),
	}
	if opts.Credentials != nil {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(opts.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("kms: loading the AWS configuration: %w", err)
	}
	client := awskms.NewFromConfig(cfg, func(o *awskms.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.RetryMaxAttempts = 3
	})
	k := &AWS{
		client:      client,
		region:      c.Region,
		aliasPrefix: c.AliasPrefix,
		ttl:         c.CacheTTL,
		log:         opts.Logger,
		now:         opts.Now,
		cache:       newDEKCache(opts.CacheSize),
		arns:        make(map[string]string),
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if k.now == nil {
		k.now = time.Now
	}
	if k.ttl == 0 {
		k.cache = nil
	}
	where := c.Endpoint
	if where == "" {
		where = "AWS KMS"
	}
	k.log.Info("kms: external KMS", "endpoint", where, "region", c.Region, "alias_prefix", c.AliasPrefix, "cache_ttl", c.CacheTTL)
	return k, nil
}

// Close empties the cache. Calls after Close still reach the service.
func (k *AWS) Close() error {
	k.cache.clear()
	return nil
}

// ARN returns a key's ARN as the service named it, or the id itself if the
// service has not named it yet.
func (k *AWS) ARN(keyID string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if a, ok := k.arns[keyID]; ok {
		return a
	}
	return keyID
}

// keyID turns an ARN the service returned into the bare key id sealfs
// stores, remembering the ARN.
func (k *AWS) keyID(arnOrID string) string {
	_, id, ok := strings.Cut(arnOrID, ":key/")
	if !ok {
		return arnOrID
	}
	k.mu.Lock()
	k.arns[id] = arnOrID
	k.mu.Unlock()
	return id
}

// awsErr sorts an error from the service into this package's: a key state
// into ErrKeyDisabled, ErrKeyPendingDeletion or ErrKeyNotFound; a bad wrap
// into ErrInvalidCiphertext; no answer into ErrUnavailable. The service's
// error stays wrapped.
func awsErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("kms: %s: %w", op, err)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
	}
	var sentinel error
	switch ae.ErrorCode() {
	case "DisabledException":
		sentinel = ErrKeyDisabled
	case "KMSInvalidStateException":
		sentinel = ErrKeyDisabled
		if strings.Contains(strings.ToLower(ae.ErrorMessage()), "pending deletion") {
			sentinel = ErrKeyPendingDeletion
		}
	case "NotFoundException":
		sentinel = ErrKeyNotFound
	case "InvalidCiphertextException", "IncorrectKeyException":
		sentinel = ErrInvalidCiphertext
	case "ValidationException", "InvalidKeyUsageException", "InvalidArnException", "UnsupportedOperationException":
		sentinel = ErrInvalidArgument
	case "KMSInternalException", "DependencyTimeoutException", "ThrottlingException", "LimitExceededException":
		sentinel = ErrUnavailable
	default:
		return fmt.Errorf("kms: %s: %w", op, err)
	}
	return fmt.Errorf("%w: %s: %w", sentinel, op, err)
}

func awsContext(c Context) map[string]string {
	if len(c) == 0 {
		return nil
	}
	return map[string]string(c)
}

// CreateKey creates a symmetric encryption key in the service and its alias
// (see AWS). When the alias is taken (a bucket deleted and made again) it is
// moved to the new key.
func (k *AWS) CreateKey(ctx context.Context, req *CreateKeyRequest) (*KeyMetadata, error) {
	if req == nil {
		req = &CreateKeyRequest{}
	}
	out, err := k.client.CreateKey(ctx, &awskms.CreateKeyInput{
		Description: aws.String(req.Description),
		KeySpec:     types.KeySpecSymmetricDefault,
		KeyUsage:    types.KeyUsageTypeEncryptDecrypt,
	})
	if err != nil {
		return nil, awsErr("CreateKey", err)
	}
	md := k.metadata(out.KeyMetadata)
	name := req.Alias
	if name == "" {
		name = "key-" + md.KeyID
	}
	alias := k.aliasName(name)
	_, err = k.client.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(md.KeyID)})
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "AlreadyExistsException" {
		_, err = k.client.UpdateAlias(ctx, &awskms.UpdateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(md.KeyID)})
	}
	if err != nil {
		// A key sealfs cannot name would be lost to ListKeys: give it
		// back (the service keeps it for the shortest window).
		if _, derr := k.client.ScheduleKeyDeletion(context.WithoutCancel(ctx), &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(md.KeyID), PendingWindowInDays: aws.Int32(7)}); derr != nil {
			k.log.Warn("kms: cannot schedule the deletion of a key whose alias failed", "key_id", md.KeyID, "err", derr)
		}
		return nil, awsErr("CreateAlias "+alias, err)
	}
	k.log.Info("kms key created", "key_id", md.KeyID, "alias", alias)
	return md, nil
}

func (k *AWS) metadata(m *types.KeyMetadata) *KeyMetadata {
	md := &KeyMetadata{
		KeyID:          k.keyID(aws.ToString(m.Arn)),
		ARN:            aws.ToString(m.Arn),
		Description:    aws.ToString(m.Description),
		Created:        aws.ToTime(m.CreationDate).UTC(),
		CurrentVersion: 1,
		DeletionDate:   aws.ToTime(m.DeletionDate).UTC(),
	}
	if md.KeyID == "" {
		md.KeyID = aws.ToString(m.KeyId)
	}
	if md.DeletionDate.Equal(time.Unix(0, 0).UTC()) {
		md.DeletionDate = time.Time{}
	}
	switch m.KeyState {
	case types.KeyStateEnabled:
		md.State = KeyEnabled
	case types.KeyStatePendingDeletion, types.KeyStatePendingReplicaDeletion:
		md.State = KeyPendingDeletion
	default:
		md.State = KeyDisabled
	}
	return md
}

// GenerateDataKey asks the service for a 256-bit data key under req.KeyID,
// bound to req.Context.
func (k *AWS) GenerateDataKey(ctx context.Context, req *GenerateDataKeyRequest) (DEK, error) {
	if req == nil || req.KeyID == "" {
		return DEK{}, fmt.Errorf("%w: GenerateDataKey needs a key id", ErrInvalidArgument)
	}
	out, err := k.client.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{
		KeyId:             aws.String(req.KeyID),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: awsContext(req.Context),
	})
	if err != nil {
		err = awsErr("GenerateDataKey", err)
		k.evictOnState(req.KeyID, err)
		return DEK{}, err
	}
	if len(out.Plaintext) != dataKeySize {
		return DEK{}, fmt.Errorf("kms: GenerateDataKey answered a %d-byte key, want %d", len(out.Plaintext), dataKeySize)
	}
	id := k.keyID(aws.ToString(out.KeyId))
	if k.cache != nil {
		k.cache.putAt(makeCacheKey(out.CiphertextBlob, appendContext(nil, req.Context)), id, out.Plaintext, k.now())
	}
	return DEK{KeyID: id, Version: 1, Plaintext: out.Plaintext, Ciphertext: out.CiphertextBlob}, nil
}

// evictOnState drops a key's cached data keys when the service said the key
// cannot be used.
func (k *AWS) evictOnState(keyID string, err error) {
	if errors.Is(err, ErrKeyDisabled) || errors.Is(err, ErrKeyPendingDeletion) || errors.Is(err, ErrKeyNotFound) {
		k.cache.evictKey(k.keyID(keyID))
	}
}

// Decrypt asks the service to unwrap req.Ciphertext under req.Context. Only
// when the service cannot be reached does a data key it confirmed within
// the cache TTL answer instead (see AWS).
func (k *AWS) Decrypt(ctx context.Context, req *DecryptRequest) ([]byte, error) {
	if req == nil || len(req.Ciphertext) == 0 {
		return nil, fmt.Errorf("%w: Decrypt needs a ciphertext", ErrInvalidArgument)
	}
	in := &awskms.DecryptInput{CiphertextBlob: req.Ciphertext, EncryptionContext: awsContext(req.Context)}
	if req.KeyID != "" {
		in.KeyId = aws.String(req.KeyID)
	}
	var ck cacheKey
	if k.cache != nil {
		ck = makeCacheKey(req.Ciphertext, appendContext(nil, req.Context))
	}
	out, err := k.client.Decrypt(ctx, in)
	if err != nil {
		err = awsErr("Decrypt", err)
		if errors.Is(err, ErrUnavailable) && k.cache != nil {
			if pt, ok := k.cache.getWithin(ck, k.now().Add(-k.ttl)); ok {
				k.log.Debug("kms: the KMS is unavailable; a cached data key serves the read", "key_id", req.KeyID, "err", err)
				return pt, nil
			}
		}
		k.evictOnState(req.KeyID, err)
		return nil, err
	}
	id := k.keyID(aws.ToString(out.KeyId))
	if k.cache != nil && len(out.Plaintext) == dataKeySize {
		k.cache.putAt(ck, id, out.Plaintext, k.now())
	}
	return out.Plaintext, nil
}

// Encrypt seals a small secret with the service's Encrypt.
func (k *AWS) Encrypt(ctx context.Context, req *EncryptRequest) ([]byte, error) {
	if req == nil || req.KeyID == "" {
		return nil, fmt.Errorf("%w: Encrypt needs a key id", ErrInvalidArgument)
	}
	if len(req.Plaintext) == 0 || len(req.Plaintext) > maxSecretSize {
		return nil, fmt.Errorf("%w: plaintext must be 1 to %d bytes, got %d", ErrInvalidArgument, maxSecretSize, len(req.Plaintext))
	}
	out, err := k.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(req.KeyID), Plaintext: req.Plaintext, EncryptionContext: awsContext(req.Context)})
	if err != nil {
		return nil, awsErr("Encrypt", err)
	}
	return out.CiphertextBlob, nil
}

// DescribeKey describes a key by id, ARN or alias.
func (k *AWS) DescribeKey(ctx context.Context, req *KeyRequest) (*KeyMetadata, error) {
	if req == nil || req.KeyID == "" {
		return nil, fmt.Errorf("%w: empty key id", ErrInvalidArgument)
	}
	out, err := k.client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(req.KeyID)})
	if err != nil {
		return nil, awsErr("DescribeKey", err)
	}
	return k.metadata(out.KeyMetadata), nil
}

// ListKeys lists the keys behind the aliases under the alias prefix, oldest
// first.
func (k *AWS) ListKeys(ctx context.Context) ([]*KeyMetadata, error) {
	prefix := "alias/" + k.aliasPrefix
	seen := make(map[string]bool)
	var out []*KeyMetadata
	p := awskms.NewListAliasesPaginator(k.client, &awskms.ListAliasesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, awsErr("ListAliases", err)
		}
		for _, a := range page.Aliases {
			id := aws.ToString(a.TargetKeyId)
			if !strings.HasPrefix(aws.ToString(a.AliasName), prefix) || id == "" || seen[id] {
				continue
			}
			seen[id] = true
			md, err := k.DescribeKey(ctx, &KeyRequest{KeyID: id})
			if errors.Is(err, ErrKeyNotFound) {
				continue // deleted; its alias goes with it
			}
			if err != nil {
				return nil, err
			}
			out = append(out, md)
		}
	}
	slices.SortFunc(out, func(a, b *KeyMetadata) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.KeyID, b.KeyID)
	})
	return out, nil
}

// EnableKey enables a key in the service.
func (k *AWS) EnableKey(ctx context.Context, req *KeyRequest) error {
	id := keyRequestID(req)
	if _, err := k.client.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: aws.String(id)}); err != nil {
		return awsErr("EnableKey", err)
	}
	k.log.Info("kms key enabled", "key_id", id)
	return nil
}

// DisableKey disables a key in the service and drops its cached data keys.
func (k *AWS) DisableKey(ctx context.Context, req *KeyRequest) error {
	id := keyRequestID(req)
	k.cache.evictKey(k.keyID(id))
	if _, err := k.client.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: aws.String(id)}); err != nil {
		return awsErr("DisableKey", err)
	}
	k.log.Info("kms key disabled", "key_id", id)
	return nil
}

// ScheduleKeyDeletion schedules a key's deletion in the service (7 to 30
// days; 0 means 30).
func (k *AWS) ScheduleKeyDeletion(ctx context.Context, req *ScheduleDeletionRequest) (*KeyMetadata, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: nil request", ErrInvalidArgument)
	}
	days := req.PendingDays
	if days == 0 {
		days = 30
	}
	if req.Pending != 0 {
		return nil, fmt.Errorf("%w: AWS KMS waits 7 to 30 days before deleting a key, not %s", ErrInvalidArgument, req.Pending)
	}
	if days < 7 || days > 30 {
		return nil, fmt.Errorf("%w: pending window must be 7 to 30 days, got %d", ErrInvalidArgument, req.PendingDays)
	}
	k.cache.evictKey(k.keyID(req.KeyID))
	if _, err := k.client.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(req.KeyID), PendingWindowInDays: aws.Int32(int32(days))}); err != nil {
		return nil, awsErr("ScheduleKeyDeletion", err)
	}
	k.log.Info("kms key scheduled for deletion", "key_id", req.KeyID, "days", days)
	return k.DescribeKey(ctx, &KeyRequest{KeyID: req.KeyID})
}

// CancelKeyDeletion cancels a scheduled deletion; the key is then in the
// state the service gives it (AWS: Disabled; local-kms: Enabled).
func (k *AWS) CancelKeyDeletion(ctx context.Context, req *KeyRequest) error {
	id := keyRequestID(req)
	if _, err := k.client.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: aws.String(id)}); err != nil {
		return awsErr("CancelKeyDeletion", err)
	}
	k.log.Info("kms key deletion cancelled", "key_id", id)
	return nil
}

// RotateKey asks the service for an on-demand rotation. The service keeps
// the versions: new data keys use the new one, old ones keep unwrapping.
func (k *AWS) RotateKey(ctx context.Context, req *KeyRequest) (*KeyMetadata, error) {
	id := keyRequestID(req)
	if _, err := k.client.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: aws.String(id)}); err != nil {
		return nil, awsErr("RotateKeyOnDemand", err)
	}
	k.log.Info("kms key rotated", "key_id", id)
	return k.DescribeKey(ctx, &KeyRequest{KeyID: id})
}

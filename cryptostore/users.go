package cryptostore

// Users, access keys and the permission to use a key.
//
// The admin (the daemon's own credentials) is not a user: it is the
// break-glass account, allowed everything, and the only one who manages
// users. A user has a name, a policy (package iam) and access keys. An
// access key's secret is generated here, returned once (CreateAccessKey),
// and stored only sealed under the system key (the KMS's Encrypt with the
// encryption context {"purpose": "sealfs access key", "access-key": ID});
// Principal opens it again to check a signature. Principals are cached for
// principalTTL: a change made through this store is seen at once; one made
// at another gateway sharing the metadata within principalTTL.
//
// A front door that serves a user puts a Caller in the context
// (WithCaller). The store then checks every use of a master key the call
// makes against the user's policy — kms:GenerateDataKey where a data key is
// issued (writing into an encrypting bucket, starting a multipart upload in
// one), kms:Decrypt where one is unwrapped (reading an encrypted object,
// uploading a part of an encrypted upload, completing it) — and refuses with
// an *iam.AccessDeniedError naming the KMS action and the key's ARN. Without
// a Caller (the admin, replication, scrub) nothing is checked.

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/sealfs/sealfs/iam"
	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
)

// Errors of users and access keys.
var (
	// ErrNoSuchUser: no user by that name.
	ErrNoSuchUser = meta.ErrNoSuchUser
	// ErrNoSuchAccessKey: no access key by that id.
	ErrNoSuchAccessKey = meta.ErrNoSuchAccessKey
	// ErrUserExists: a user by that name exists already.
	ErrUserExists = errors.New("the user exists already")
	// ErrInvalidUserName: a name IAM would refuse.
	ErrInvalidUserName = errors.New("invalid user name: want 1 to 64 letters, digits and +=,.@_-")
	// ErrAccessKeyInactive: the access key, or its user, is disabled.
	ErrAccessKeyInactive = errors.New("the access key is inactive")
	// ErrTooManyAccessKeys: a user has MaxAccessKeys keys already.
	ErrTooManyAccessKeys = errors.New("the user has the most access keys allowed")
)

// MaxAccessKeys is how many access keys a user may have (IAM's limit).
const MaxAccessKeys = 2

// principalTTL bounds how long a cached principal serves after a change at
// another gateway.
const principalTTL = 5 * time.Second

// accessKeyPurpose is the encryption context's purpose of a sealed secret.
const accessKeyPurpose = "sealfs access key"

// UserInfo describes a user.
type UserInfo struct {
	Name     string    `json:"name"`
	ARN      string    `json:"arn"`
	Created  time.Time `json:"created"`
	Disabled bool      `json:"disabled,omitempty"`
	// Policy is the policy document as stored (JSON); empty means none.
	Policy     string          `json:"policy,omitempty"`
	AccessKeys []AccessKeyInfo `json:"accessKeys"`
}

// AccessKeyInfo describes an access key, without its secret.
type AccessKeyInfo struct {
	ID      string    `json:"id"`
	User    string    `json:"user"`
	Created time.Time `json:"created"`
	// Status is Active or Inactive, as IAM says it.
	Status string `json:"status"`
}

// NewAccessKey is an access key just created, with its secret: the only
// time the secret is shown.
type NewAccessKey struct {
	AccessKeyInfo
	SecretKey string `json:"secretKey"`
}

// Principal is a user authenticated by an access key.
type Principal struct {
	User      string
	ARN       string
	AccessKey string
	Secret    string // the access key's secret, for checking signatures
	Policy    *iam.Policy
}

// Check evaluates r against the principal's policy: nil when it allows r,
// an *iam.AccessDeniedError otherwise. A nil principal is the admin, allowed
// everything.
func (p *Principal) Check(r *iam.Request) error {
	if p == nil {
		return nil
	}
	return p.Policy.Check(p.ARN, r)
}

// Caller is who a call is made for, and how the request reached the front
// door (the policy's conditions).
type Caller struct {
	Principal       *Principal // nil: the admin
	SecureTransport bool
	SourceIP        netip.Addr // zero: none (the mount)
}

type callerKey struct{}

// WithCaller returns ctx carrying c: the store checks the master key uses of
// calls made with it against c's policy.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the Caller ctx carries, or nil.
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// KeyUse is one use of a master key, as the audit hook sees it: a data key
// issued or unwrapped for an object, or an administrative operation on the
// key (Bucket and Object empty).
type KeyUse struct {
	Time   time.Time
	User   string // "" for the admin and the daemon's own work
	Action string // kms:GenerateDataKey, kms:Decrypt; kms:CreateKey, kms:ScheduleKeyDeletion, kms:ReWrap, ...
	KeyID  string // "" for a rewrap of every key
	KeyARN string
	Bucket string
	Object string // the object id (hex)
	Detail string // an administrative operation's particulars (a version, a date, a rewrap's counts)
	Err    error  // nil when the use was allowed and the KMS answered
}

// authorizeKey checks the caller in ctx may perform action (kms:...) on the
// master key keyID.
func (s *Store) authorizeKey(ctx context.Context, action, keyID string) error {
	c := CallerFrom(ctx)
	if c == nil || c.Principal == nil {
		return nil
	}
	return c.Principal.Check(&iam.Request{
		Action:          action,
		Resource:        s.KeyARN(keyID),
		SecureTransport: c.SecureTransport,
		SourceIP:        c.SourceIP,
	})
}

// useKey authorizes a use of a master key and reports it to the audit
// hook, if any, once the KMS has answered (done's argument).
func (s *Store) useKey(ctx context.Context, action, keyID, bucket string, id meta.ObjectID) (done func(error), err error) {
	err = s.authorizeKey(ctx, action, keyID)
	report := func(err error) {
		if s.cfg.Audit == nil {
			return
		}
		u := KeyUse{Time: time.Now().UTC(), Action: action, KeyID: keyID, KeyARN: s.KeyARN(keyID), Bucket: bucket, Object: id.String(), Err: err}
		if c := CallerFrom(ctx); c != nil && c.Principal != nil {
			u.User = c.Principal.User
		}
		s.cfg.Audit(u)
	}
	if err != nil {
		report(err)
		return nil, err
	}
	return report, nil
}

// auditKeyAdmin reports an administrative operation on a master key
// (kms:EnableKey, kms:DisableKey, kms:RotateKey, ...) to the audit hook.
func (s *Store) auditKeyAdmin(ctx context.Context, action, keyID string, err error) {
	s.auditKeyAdminDetail(ctx, action, keyID, "", "", err)
}

// auditKeyAdminDetail is auditKeyAdmin naming the bucket the operation was
// for, if any, and its particulars.
func (s *Store) auditKeyAdminDetail(ctx context.Context, action, keyID, bucket, detail string, err error) {
	if s.cfg.Audit == nil {
		return
	}
	arn := keyID
	if keyID != "" && !strings.HasPrefix(keyID, "arn:") {
		arn = s.KeyARN(keyID)
	}
	u := KeyUse{Time: time.Now().UTC(), Action: action, KeyID: keyID, KeyARN: arn, Bucket: bucket, Detail: detail, Err: err}
	if c := CallerFrom(ctx); c != nil && c.Principal != nil {
		u.User = c.Principal.User
	}
	s.cfg.Audit(u)
}

// principalCache holds principals by access key.
type principalCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]principalEntry
}

type principalEntry struct {
	p       *Principal
	expires time.Time
}

func (c *principalCache) get(ak string, now time.Time) (*Principal, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[ak]; ok && now.Before(e.expires) {
		return e.p, c.gen
	}
	return nil, c.gen
}

func (c *principalCache) put(ak string, p *Principal, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return // changed while it was looked up
	}
	if c.m == nil || len(c.m) > 10000 {
		c.m = make(map[string]principalEntry)
	}
	c.m[ak] = principalEntry{p: p, expires: now.Add(principalTTL)}
}

func (c *principalCache) clear() {
	c.mu.Lock()
	c.gen++
	c.m = nil
	c.mu.Unlock()
}

// validUserName is IAM's rule for user names.
func validUserName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("%q: %w", name, ErrInvalidUserName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("+=,.@_-", c) >= 0) {
			return fmt.Errorf("%q: %w", name, ErrInvalidUserName)
		}
	}
	return nil
}

// account is the account id of the ARNs the store shows (its KMS's).
func (s *Store) account() string {
	parts := strings.Split(s.KeyARN("x"), ":")
	if len(parts) == 6 && parts[4] != "" {
		return parts[4]
	}
	return "000000000000"
}

func (s *Store) userInfo(u *meta.User, keys []*meta.AccessKey) UserInfo {
	ui := UserInfo{Name: u.Name, ARN: iam.UserARN(s.account(), u.Name), Created: u.Created, Disabled: u.Disabled, Policy: string(u.Policy), AccessKeys: []AccessKeyInfo{}}
	for _, k := range keys {
		if k.User == u.Name {
			ui.AccessKeys = append(ui.AccessKeys, accessKeyInfo(k))
		}
	}
	return ui
}

func accessKeyInfo(k *meta.AccessKey) AccessKeyInfo {
	st := "Active"
	if k.Disabled {
		st = "Inactive"
	}
	return AccessKeyInfo{ID: k.ID, User: k.User, Created: k.Created, Status: st}
}

// CreateUser creates a user with policy (a policy document; empty for
// none, which denies everything).
func (s *Store) CreateUser(ctx context.Context, name string, policy []byte) (*UserInfo, error) {
	if err := validUserName(name); err != nil {
		return nil, err
	}
	if len(policy) > 0 {
		if _, err := iam.Parse(policy); err != nil {
			return nil, err
		}
	}
	u := &meta.User{Name: name, Created: time.Now().UTC(), Policy: policy}
	err := s.meta.Update(ctx, func(tx *meta.Txn) error {
		if _, err := tx.GetUser(name); err == nil {
			return fmt.Errorf("user %q: %w", name, ErrUserExists)
		} else if !errors.Is(err, meta.ErrNoSuchUser) {
			return err
		}
		return tx.PutUser(u)
	})
	if err != nil {
		return nil, err
	}
	s.principals.clear()
	s.logger.Info("user created", "user", name)
	ui := s.userInfo(u, nil)
	return &ui, nil
}

// SetUserPolicy replaces a user's policy (empty: none).
func (s *Store) SetUserPolicy(ctx context.Context, name string, policy []byte) error {
	if len(policy) > 0 {
		if _, err := iam.Parse(policy); err != nil {
			return err
		}
	}
	return s.updateUser(ctx, name, func(u *meta.User) { u.Policy = policy }, "user policy set")
}

// SetUserDisabled disables or enables a user: a disabled user's access keys
// are refused.
func (s *Store) SetUserDisabled(ctx context.Context, name string, disabled bool) error {
	return s.updateUser(ctx, name, func(u *meta.User) { u.Disabled = disabled }, "user status set")
}

func (s *Store) updateUser(ctx context.Context, name string, fn func(*meta.User), what string) error {
	err := s.meta.Update(ctx, func(tx *meta.Txn) error {
		u, err := tx.GetUser(name)
		if err != nil {
			return err
		}
		fn(u)
		return tx.PutUser(u)
	})
	s.principals.clear()
	if err == nil {
		s.logger.Info(what, "user", name)
	}
	return err
}

// GetUser describes a user and its access keys.
func (s *Store) GetUser(ctx context.Context, name string) (*UserInfo, error) {
	var ui UserInfo
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		u, err := tx.GetUser(name)
		if err != nil {
			return err
		}
		keys, err := allAccessKeys(tx)
		if err != nil {
			return err
		}
		ui = s.userInfo(u, keys)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ui, nil
}

// ListUsers describes every user, by name.
func (s *Store) ListUsers(ctx context.Context) ([]UserInfo, error) {
	var out []UserInfo
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		out = out[:0]
		keys, err := allAccessKeys(tx)
		if err != nil {
			return err
		}
		return tx.ListUsers(func(u *meta.User) error {
			out = append(out, s.userInfo(u, keys))
			return nil
		})
	})
	return out, err
}

func allAccessKeys(tx *meta.Txn) ([]*meta.AccessKey, error) {
	var keys []*meta.AccessKey
	err := tx.ListAccessKeys(func(k *meta.AccessKey) error { keys = append(keys, k); return nil })
	return keys, err
}

// DeleteUser deletes a user and its access keys.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	err := s.meta.Update(ctx, func(tx *meta.Txn) error {
		if _, err := tx.GetUser(name); err != nil {
			return err
		}
		keys, err := allAccessKeys(tx)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.User == name {
				if err := tx.DeleteAccessKey(k.ID); err != nil {
					return err
				}
			}
		}
		return tx.DeleteUser(name)
	})
	s.principals.clear()
	if err == nil {
		s.logger.Info("user deleted", "user", name)
	}
	return err
}

func accessKeyContext(id string) kms.Context {
	return kms.Context{"purpose": accessKeyPurpose, "access-key": id}
}

// CreateAccessKey gives a user a new access key and returns it with its
// secret, which is stored only sealed and never shown again.
func (s *Store) CreateAccessKey(ctx context.Context, user string) (*NewAccessKey, error) {
	var id [10]byte
	var secret [30]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return nil, err
	}
	k := &meta.AccessKey{
		ID:      "SFAK" + base32.StdEncoding.EncodeToString(id[:])[:16],
		User:    user,
		Created: time.Now().UTC(),
	}
	sk := base64.RawStdEncoding.EncodeToString(secret[:])
	keyID, err := s.systemKey(ctx)
	if err != nil {
		return nil, err
	}
	k.SealKeyID = keyID
	k.SealedSecret, err = s.kms.Encrypt(ctx, &kms.EncryptRequest{KeyID: keyID, Plaintext: []byte(sk), Context: accessKeyContext(k.ID)})
	if err != nil {
		return nil, fmt.Errorf("sealing the secret: %w", kmsErr(err))
	}
	err = s.meta.Update(ctx, func(tx *meta.Txn) error {
		if _, err := tx.GetUser(user); err != nil {
			return err
		}
		keys, err := allAccessKeys(tx)
		if err != nil {
			return err
		}
		n := 0
		for _, o := range keys {
			if o.User == user {
				n++
			}
		}
		if n >= MaxAccessKeys {
			return fmt.Errorf("user %q: %w (%d)", user, ErrTooManyAccessKeys, MaxAccessKeys)
		}
		return tx.PutAccessKey(k)
	})
	if err != nil {
		return nil, err
	}
	s.logger.Info("access key created", "user", user, "access_key", k.ID)
	return &NewAccessKey{AccessKeyInfo: accessKeyInfo(k), SecretKey: sk}, nil
}

// SetAccessKeyActive makes an access key Active or Inactive.
func (s *Store) SetAccessKeyActive(ctx context.Context, id string, active bool) (*AccessKeyInfo, error) {
	var info AccessKeyInfo
	err := s.meta.Update(ctx, func(tx *meta.Txn) error {
		k, err := tx.GetAccessKey(id)
		if err != nil {
			return err
		}
		k.Disabled = !active
		info = accessKeyInfo(k)
		return tx.PutAccessKey(k)
	})
	s.principals.clear()
	if err != nil {
		return nil, err
	}
	s.logger.Info("access key status set", "access_key", id, "status", info.Status)
	return &info, nil
}

// DeleteAccessKey deletes an access key.
func (s *Store) DeleteAccessKey(ctx context.Context, id string) error {
	err := s.meta.Update(ctx, func(tx *meta.Txn) error { return tx.DeleteAccessKey(id) })
	s.principals.clear()
	if err == nil {
		s.logger.Info("access key deleted", "access_key", id)
	}
	return err
}

// Principal returns the user an access key belongs to, with the key's
// secret and the user's parsed policy. An unknown key is ErrNoSuchAccessKey;
// a disabled key or user ErrAccessKeyInactive.
func (s *Store) Principal(ctx context.Context, accessKey string) (*Principal, error) {
	now := time.Now()
	p, gen := s.principals.get(accessKey, now)
	if p != nil {
		return p, nil
	}
	var k *meta.AccessKey
	var u *meta.User
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		var err error
		if k, err = tx.GetAccessKey(accessKey); err != nil {
			return err
		}
		u, err = tx.GetUser(k.User)
		return err
	})
	if err != nil {
		return nil, err
	}
	if k.Disabled || u.Disabled {
		return nil, fmt.Errorf("access key %s: %w", accessKey, ErrAccessKeyInactive)
	}
	var pol *iam.Policy
	if len(u.Policy) > 0 {
		if pol, err = iam.Parse(u.Policy); err != nil {
			return nil, fmt.Errorf("user %q: %w", u.Name, err)
		}
	}
	sk, err := s.kms.Decrypt(ctx, &kms.DecryptRequest{KeyID: k.SealKeyID, Ciphertext: k.SealedSecret, Context: accessKeyContext(k.ID)})
	if err != nil {
		return nil, fmt.Errorf("access key %s: opening the secret: %w", accessKey, kmsErr(err))
	}
	p = &Principal{User: u.Name, ARN: iam.UserARN(s.account(), u.Name), AccessKey: k.ID, Secret: string(sk), Policy: pol}
	s.principals.put(accessKey, p, gen, now)
	return p, nil
}

// UserPrincipal returns a user as a principal without an access key (the
// mount's --as): the user's parsed policy. A disabled user is
// ErrAccessKeyInactive.
func (s *Store) UserPrincipal(ctx context.Context, name string) (*Principal, error) {
	var u *meta.User
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		var err error
		u, err = tx.GetUser(name)
		return err
	})
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, fmt.Errorf("user %q: %w", name, ErrAccessKeyInactive)
	}
	var pol *iam.Policy
	if len(u.Policy) > 0 {
		if pol, err = iam.Parse(u.Policy); err != nil {
			return nil, fmt.Errorf("user %q: %w", u.Name, err)
		}
	}
	return &Principal{User: u.Name, ARN: iam.UserARN(s.account(), u.Name), Policy: pol}, nil
}

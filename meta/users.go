package meta

// Users and access keys: who may sign requests, and what their policy
// allows. meta stores the records; what a policy says is package iam's
// business and who may change a record is the caller's. A user record
// holds its policy document as the bytes it was given; an access key
// record holds its secret only sealed by the KMS (the caller seals it and
// opens it; meta never sees it in clear). Both are authenticated records
// (recordauth.go): written with a MAC while record authentication is on,
// checked on every read.
//
// User (version 1; the name comes from the key, a\0u\0<name>)
//
//	1 Created time · 2 Policy bytes · 3 Disabled bool
//
// AccessKey (version 1; the id comes from the key, a\0k\0<id>)
//
//	1 User string · 2 Created time · 3 Disabled bool · 4 SealKeyID string ·
//	5 SealedSecret bytes

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNoSuchUser is returned for a user that is not there.
var ErrNoSuchUser = errors.New("no such user")

// ErrNoSuchAccessKey is returned for an access key that is not there.
var ErrNoSuchAccessKey = errors.New("no such access key")

// ErrInvalidUserName is returned for a user name or access key id that
// cannot be stored.
var ErrInvalidUserName = errors.New("invalid user name")

// maxUserNameLen bounds user names and access key ids, in bytes.
const maxUserNameLen = 128

// User is a user: a name and the policy that says what it may do.
type User struct {
	Name    string // from the key
	Created time.Time
	// Policy is the user's identity policy document as given (JSON); nil
	// means none (everything denied).
	Policy []byte
	// Disabled users' access keys are refused.
	Disabled bool
}

// AccessKey is an access key of a user. Its secret is kept sealed.
type AccessKey struct {
	ID       string // from the key
	User     string
	Created  time.Time
	Disabled bool
	// SealKeyID is the KMS key that sealed SealedSecret.
	SealKeyID    string
	SealedSecret []byte
}

const (
	userCreated  = 1
	userPolicy   = 2
	userDisabled = 3

	accessKeyUser         = 1
	accessKeyCreated      = 2
	accessKeyDisabled     = 3
	accessKeySealKeyID    = 4
	accessKeySealedSecret = 5
)

func validUserName(what, name string) error {
	if name == "" || len(name) > maxUserNameLen || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("%s %q: want 1 to %d bytes without NUL: %w", what, name, maxUserNameLen, ErrInvalidUserName)
	}
	return nil
}

func encodeUser(dst []byte, u *User) []byte {
	dst = append(dst, recordVersion)
	dst = appendTime(dst, userCreated, u.Created)
	dst = appendBytes(dst, userPolicy, u.Policy)
	return appendBool(dst, userDisabled, u.Disabled)
}

func decodeUser(data []byte, u *User) error {
	data, err := version("user record", data, recordVersion)
	if err != nil {
		return err
	}
	f := fields{rec: "user record", b: data}
	for f.next() {
		switch f.tag {
		case userCreated:
			f.time(&u.Created)
		case userPolicy:
			f.bytes(&u.Policy)
		case userDisabled:
			f.bool(&u.Disabled)
		}
	}
	return f.err
}

func encodeAccessKey(dst []byte, k *AccessKey) []byte {
	dst = append(dst, recordVersion)
	dst = appendString(dst, accessKeyUser, k.User)
	dst = appendTime(dst, accessKeyCreated, k.Created)
	dst = appendBool(dst, accessKeyDisabled, k.Disabled)
	dst = appendString(dst, accessKeySealKeyID, k.SealKeyID)
	return appendBytes(dst, accessKeySealedSecret, k.SealedSecret)
}

func decodeAccessKey(data []byte, k *AccessKey) error {
	data, err := version("access key record", data, recordVersion)
	if err != nil {
		return err
	}
	f := fields{rec: "access key record", b: data}
	for f.next() {
		switch f.tag {
		case accessKeyUser:
			f.str(&k.User)
		case accessKeyCreated:
			f.time(&k.Created)
		case accessKeyDisabled:
			f.bool(&k.Disabled)
		case accessKeySealKeyID:
			f.str(&k.SealKeyID)
		case accessKeySealedSecret:
			f.bytes(&k.SealedSecret)
		}
	}
	return f.err
}

// PutUser stores u under u.Name, replacing any record there.
func (tx *Txn) PutUser(u *User) error {
	if err := validUserName("user", u.Name); err != nil {
		return err
	}
	k := userKey(u.Name)
	return tx.kv.set(k, tx.seal(k, encodeUser(nil, u)))
}

// GetUser returns the named user, or an error wrapping ErrNoSuchUser.
func (tx *Txn) GetUser(name string) (*User, error) {
	if err := validUserName("user", name); err != nil {
		return nil, fmt.Errorf("user %q: %w", name, ErrNoSuchUser)
	}
	u := &User{Name: name}
	ok, err := tx.record(userKey(name), func(v []byte) error { return decodeUser(v, u) })
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	if !ok {
		return nil, fmt.Errorf("user %q: %w", name, ErrNoSuchUser)
	}
	return u, nil
}

// DeleteUser deletes the named user (ErrNoSuchUser if there is none). Its
// access keys are the caller's to delete first.
func (tx *Txn) DeleteUser(name string) error {
	if err := validUserName("user", name); err != nil {
		return fmt.Errorf("user %q: %w", name, ErrNoSuchUser)
	}
	k := userKey(name)
	ok, err := tx.exists(k)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("user %q: %w", name, ErrNoSuchUser)
	}
	return tx.kv.delete(k)
}

// ListUsers calls fn with every user, in name order, until fn returns an
// error (which ListUsers returns).
func (tx *Txn) ListUsers(fn func(*User) error) error {
	return tx.scan(usersPrefix(), nil, func(k, v []byte) (bool, error) {
		name, ok := parseUserKey(k)
		if !ok {
			return false, fmt.Errorf("%w: bad user key %q", ErrCorruptRecord, k)
		}
		u := &User{Name: name}
		if err := tx.itemRecord(k, v, func(body []byte) error { return decodeUser(body, u) }); err != nil {
			return false, fmt.Errorf("user %q: %w", name, err)
		}
		return true, fn(u)
	})
}

// PutAccessKey stores k under k.ID, replacing any record there.
func (tx *Txn) PutAccessKey(k *AccessKey) error {
	if err := validUserName("access key", k.ID); err != nil {
		return err
	}
	key := accessKeyKey(k.ID)
	return tx.kv.set(key, tx.seal(key, encodeAccessKey(nil, k)))
}

// GetAccessKey returns the access key id, or an error wrapping
// ErrNoSuchAccessKey.
func (tx *Txn) GetAccessKey(id string) (*AccessKey, error) {
	if validUserName("access key", id) != nil {
		return nil, fmt.Errorf("access key %q: %w", id, ErrNoSuchAccessKey)
	}
	ak := &AccessKey{ID: id}
	ok, err := tx.record(accessKeyKey(id), func(v []byte) error { return decodeAccessKey(v, ak) })
	if err != nil {
		return nil, fmt.Errorf("access key %q: %w", id, err)
	}
	if !ok {
		return nil, fmt.Errorf("access key %q: %w", id, ErrNoSuchAccessKey)
	}
	return ak, nil
}

// DeleteAccessKey deletes the access key id (ErrNoSuchAccessKey if there
// is none).
func (tx *Txn) DeleteAccessKey(id string) error {
	if validUserName("access key", id) != nil {
		return fmt.Errorf("access key %q: %w", id, ErrNoSuchAccessKey)
	}
	k := accessKeyKey(id)
	ok, err := tx.exists(k)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("access key %q: %w", id, ErrNoSuchAccessKey)
	}
	return tx.kv.delete(k)
}

// ListAccessKeys calls fn with every access key, in id order, until fn
// returns an error (which ListAccessKeys returns).
func (tx *Txn) ListAccessKeys(fn func(*AccessKey) error) error {
	return tx.scan(accessKeysPrefix(), nil, func(k, v []byte) (bool, error) {
		id, ok := parseAccessKeyKey(k)
		if !ok {
			return false, fmt.Errorf("%w: bad access key key %q", ErrCorruptRecord, k)
		}
		ak := &AccessKey{ID: id}
		if err := tx.itemRecord(k, v, func(body []byte) error { return decodeAccessKey(body, ak) }); err != nil {
			return false, fmt.Errorf("access key %q: %w", id, err)
		}
		return true, fn(ak)
	})
}

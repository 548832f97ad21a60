package meta

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// TestUsersAndAccessKeys stores, reads, lists and deletes users and access
// keys on every engine, with record authentication on: the records carry a
// MAC, a tampered one is refused.
func TestUsersAndAccessKeys(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		db.SetRecordAuth(testMAC("user test key"), AuthRequired)
		now := time.Now().UTC().Truncate(time.Microsecond)
		policy := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`)
		users := []*User{
			{Name: "reader", Created: now, Policy: policy},
			{Name: "app", Created: now.Add(time.Second), Disabled: true},
		}
		keys := []*AccessKey{
			{ID: "SFAK2", User: "reader", Created: now, SealKeyID: "sys", SealedSecret: []byte("sealed-2")},
			{ID: "SFAK1", User: "app", Created: now, Disabled: true, SealKeyID: "sys", SealedSecret: []byte("sealed-1")},
		}
		if err := db.Update(ctx, func(tx *Txn) error {
			for _, u := range users {
				if err := tx.PutUser(u); err != nil {
					return err
				}
			}
			for _, k := range keys {
				if err := tx.PutAccessKey(k); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"", "a\x00b", string(bytes.Repeat([]byte("x"), maxUserNameLen+1))} {
			if err := db.Update(ctx, func(tx *Txn) error { return tx.PutUser(&User{Name: bad}) }); !errors.Is(err, ErrInvalidUserName) {
				t.Errorf("PutUser(%q) = %v, want ErrInvalidUserName", bad, err)
			}
			if err := db.Update(ctx, func(tx *Txn) error { return tx.PutAccessKey(&AccessKey{ID: bad}) }); !errors.Is(err, ErrInvalidUserName) {
				t.Errorf("PutAccessKey(%q) = %v, want ErrInvalidUserName", bad, err)
			}
		}
		if err := db.View(ctx, func(tx *Txn) error {
			u, err := tx.GetUser("reader")
			if err != nil {
				return err
			}
			if u.Name != "reader" || !u.Created.Equal(now) || !bytes.Equal(u.Policy, policy) || u.Disabled {
				t.Errorf("GetUser = %+v", u)
			}
			if _, err := tx.GetUser("nobody"); !errors.Is(err, ErrNoSuchUser) {
				t.Errorf("GetUser(nobody) = %v, want ErrNoSuchUser", err)
			}
			k, err := tx.GetAccessKey("SFAK1")
			if err != nil {
				return err
			}
			if k.User != "app" || !k.Disabled || k.SealKeyID != "sys" || string(k.SealedSecret) != "sealed-1" || !k.Created.Equal(now) {
				t.Errorf("GetAccessKey = %+v", k)
			}
			if _, err := tx.GetAccessKey("SFAK9"); !errors.Is(err, ErrNoSuchAccessKey) {
				t.Errorf("GetAccessKey(SFAK9) = %v, want ErrNoSuchAccessKey", err)
			}
			var names, ids []string
			if err := tx.ListUsers(func(u *User) error { names = append(names, u.Name); return nil }); err != nil {
				return err
			}
			if err := tx.ListAccessKeys(func(k *AccessKey) error { ids = append(ids, k.ID+"/"+k.User); return nil }); err != nil {
				return err
			}
			if len(names) != 2 || names[0] != "app" || names[1] != "reader" {
				t.Errorf("ListUsers = %q", names)
			}
			if len(ids) != 2 || ids[0] != "SFAK1/app" || ids[1] != "SFAK2/reader" {
				t.Errorf("ListAccessKeys = %q", ids)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}

		// A record changed on disk, or moved to another key, is refused.
		raw := rawGet(t, db, accessKeyKey("SFAK1"))
		rawSet(t, db, accessKeyKey("SFAK3"), raw)
		if err := db.View(ctx, func(tx *Txn) error { _, err := tx.GetAccessKey("SFAK3"); return err }); !errors.Is(err, ErrRecordTampered) {
			t.Errorf("a key record moved to another id: %v, want ErrRecordTampered", err)
		}
		if err := db.View(ctx, func(tx *Txn) error { return tx.ListAccessKeys(func(*AccessKey) error { return nil }) }); !errors.Is(err, ErrRecordTampered) {
			t.Errorf("ListAccessKeys over a moved record: %v, want ErrRecordTampered", err)
		}
		raw = rawGet(t, db, userKey("app"))
		flipped := bytes.Clone(raw)
		flipped[len(flipped)-RecordMACSize-3] ^= 1 // the disabled flag
		rawSet(t, db, userKey("app"), flipped)
		if err := db.View(ctx, func(tx *Txn) error { _, err := tx.GetUser("app"); return err }); !errors.Is(err, ErrRecordTampered) {
			t.Errorf("a flipped user record: %v, want ErrRecordTampered", err)
		}

		if err := db.Update(ctx, func(tx *Txn) error {
			if err := tx.DeleteAccessKey("SFAK3"); err != nil {
				return err
			}
			if err := tx.DeleteAccessKey("SFAK3"); !errors.Is(err, ErrNoSuchAccessKey) {
				t.Errorf("second DeleteAccessKey = %v", err)
			}
			if err := tx.DeleteUser("app"); err != nil {
				return err
			}
			if err := tx.DeleteUser("app"); !errors.Is(err, ErrNoSuchUser) {
				t.Errorf("second DeleteUser = %v", err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestUserRecordDecodeStrict(t *testing.T) {
	u := &User{Name: "x", Created: time.Unix(5, 0).UTC(), Policy: []byte("{}"), Disabled: true}
	enc := encodeUser(nil, u)
	var got User
	if err := decodeUser(enc, &got); err != nil || !got.Created.Equal(u.Created) || string(got.Policy) != "{}" || !got.Disabled {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for i := 0; i < len(enc); i++ {
		var x User
		_ = decodeUser(enc[:i], &x) // never panics
	}
	if err := decodeUser([]byte{9}, &got); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("version 9: %v", err)
	}
	k := &AccessKey{User: "x", SealKeyID: "k", SealedSecret: []byte{1, 2}}
	var gk AccessKey
	if err := decodeAccessKey(encodeAccessKey(nil, k), &gk); err != nil || gk.User != "x" || gk.SealKeyID != "k" || !bytes.Equal(gk.SealedSecret, []byte{1, 2}) {
		t.Fatalf("access key round trip: %+v, %v", gk, err)
	}
}

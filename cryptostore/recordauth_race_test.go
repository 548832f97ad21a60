package cryptostore

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
)

// Gateways sharing one metadata engine (and so one keyring) may open a new
// store at the same moment. They must agree on one system key and one
// record-authentication key: a gateway that kept a key of its own would
// write records no other gateway can verify.
func TestConcurrentOpenersAgreeOnRecordAuthKey(t *testing.T) {
	for round := 0; round < 10; round++ {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			e := newEnv(t, nil)
			first, err := e.store.SystemKeyID(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Back to a store that has never been opened: no system key,
			// no record-authentication key, no records.
			err = e.db.Update(ctx, func(tx *meta.Txn) error {
				if err := tx.DeleteConfig(recordAuthConfig); err != nil {
					return err
				}
				return tx.DeleteConfig(systemKeyConfig)
			})
			if err != nil {
				t.Fatal(err)
			}
			const openers = 4
			var wg sync.WaitGroup
			errs := make([]error, openers)
			for i := range openers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = e.store.openRecordAuth(ctx)
				}()
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			var raw, sysKey []byte
			err = e.db.View(ctx, func(tx *meta.Txn) error {
				if raw, err = tx.GetConfig(recordAuthConfig); err != nil {
					return err
				}
				sysKey, err = tx.GetConfig(systemKeyConfig)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			var st recordAuthState
			if err := json.Unmarshal(raw, &st); err != nil {
				t.Fatal(err)
			}
			if st.KeyID != string(sysKey) {
				t.Errorf("the record-authentication key is wrapped by %s, but the system key is %s", st.KeyID, sysKey)
			}
			// Records written now verify after a reopen, which reads the
			// stored key.
			e.bucket(t, "bkt", true)
			e.put(t, "bkt", "k", []byte("data"))
			e.store.Close()
			e.kms.Close()
			e.db.Close()
			*e = *openEnv(t, e.dir, e.root, nil)
			if _, err := e.get(t, "bkt", "k"); err != nil {
				t.Fatalf("reading a record written by the openers after a reopen: %v", err)
			}
			keys, err := e.kms.ListKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				if k.KeyID != string(sysKey) && k.KeyID != first && k.Description == systemKeyDescription && k.State == kms.KeyEnabled {
					t.Errorf("a second system key %s was left enabled", k.KeyID)
				}
			}
		})
	}
}

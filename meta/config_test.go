package meta

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestConfigRecords(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		update(t, db, func(tx *Txn) error {
			for _, kv := range [][2]string{
				{"replicate/target/eu-west-1", "one"},
				{"replicate/target/ap-south-1", "two"},
				{"system/secret-key", "k"},
				{"empty", ""},
			} {
				if err := tx.PutConfig(kv[0], []byte(kv[1])); err != nil {
					return err
				}
			}
			return nil
		})
		view(t, db, func(tx *Txn) error {
			v, err := tx.GetConfig("system/secret-key")
			if err != nil || string(v) != "k" {
				t.Errorf("GetConfig: got %q, %v", v, err)
			}
			v, err = tx.GetConfig("empty")
			if err != nil || v == nil || len(v) != 0 {
				t.Errorf("GetConfig(empty): got %v, %v; want an empty value", v, err)
			}
			if _, err := tx.GetConfig("nothing"); !errors.Is(err, ErrNoSuchConfig) {
				t.Errorf("GetConfig(nothing): want ErrNoSuchConfig, have %v", err)
			}
			var names, values []string
			err = tx.ScanConfig("replicate/target/", func(name string, value []byte) error {
				names = append(names, name)
				values = append(values, string(value))
				return nil
			})
			if err != nil {
				return err
			}
			if want := []string{"replicate/target/ap-south-1", "replicate/target/eu-west-1"}; !reflect.DeepEqual(names, want) {
				t.Errorf("ScanConfig names: got %v, want %v", names, want)
			}
			if want := []string{"two", "one"}; !reflect.DeepEqual(values, want) {
				t.Errorf("ScanConfig values: got %v, want %v", values, want)
			}
			return nil
		})
		update(t, db, func(tx *Txn) error { return tx.DeleteConfig("replicate/target/eu-west-1") })
		err := db.Update(context.Background(), func(tx *Txn) error { return tx.DeleteConfig("replicate/target/eu-west-1") })
		if !errors.Is(err, ErrNoSuchConfig) {
			t.Fatalf("second delete: want ErrNoSuchConfig, have %v", err)
		}
		// Configuration records are apart from everything else: they do not
		// show up as buckets or queue items.
		view(t, db, func(tx *Txn) error {
			bs, err := tx.ListBuckets()
			if err != nil || len(bs) != 0 {
				t.Errorf("ListBuckets: got %d buckets, %v", len(bs), err)
			}
			return nil
		})
	})
}

func TestConfigNames(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		for _, name := range []string{"", "a\x00b", strings.Repeat("n", maxConfigNameLen+1)} {
			err := db.Update(context.Background(), func(tx *Txn) error { return tx.PutConfig(name, []byte("v")) })
			if !errors.Is(err, ErrInvalidConfigName) {
				t.Errorf("PutConfig(%q): want ErrInvalidConfigName, have %v", name, err)
			}
		}
		if _, err := db.NewSequence("", 1); !errors.Is(err, ErrInvalidConfigName) {
			t.Errorf("NewSequence(\"\"): want ErrInvalidConfigName, have %v", err)
		}
	})
}

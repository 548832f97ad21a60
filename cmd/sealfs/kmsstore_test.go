package main

import "testing"

// The keyring goes into the metadata exactly when the metadata is shared.
func TestSharedMeta(t *testing.T) {
	for url, want := range map[string]bool{
		"/var/lib/sealfs/meta":             false,
		"badger:///var/lib/sealfs/meta":    false,
		"BADGER:///var/lib/sealfs/meta":    false,
		"etcd://h1:2379,h2:2379/sealfs":    true,
		"postgres://sealfs@db:5432/meta":   true,
		"postgresql://sealfs@db:5432/meta": true,
	} {
		if got := sharedMeta(url); got != want {
			t.Errorf("sharedMeta(%q) = %v, want %v", url, got, want)
		}
	}
}

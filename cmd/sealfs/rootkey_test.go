package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/sealfs/sealfs/kms"
)

// The root key given in SEALFS_KMS_ROOT_KEY is used, and gone from the
// daemon's environment once it is open: a child it starts does not see it.
func TestRootKeyEnvUnset(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	root := bytes.Repeat([]byte{0x5a}, kms.RootKeySize)
	t.Setenv(kms.RootKeyEnv, hex.EncodeToString(root))
	var afterOpen, childEnv string
	app := &cli.App{
		Flags: concat(dataFlags(), s3Flags(), kmsFlags(), replicationFlags(), logFlags()),
		Action: func(c *cli.Context) error {
			d, err := openDaemon(c)
			if err != nil {
				return err
			}
			defer d.close()
			afterOpen = os.Getenv(kms.RootKeyEnv)
			out, err := exec.Command("env").Output()
			childEnv = string(out)
			return err
		},
	}
	if err := app.Run([]string{"sealfs", "--data", dir, "--s3", "", "--log-level", "error"}); err != nil {
		t.Fatal(err)
	}
	if afterOpen != "" {
		t.Errorf("%s is still set in the daemon after it opened", kms.RootKeyEnv)
	}
	if strings.Contains(childEnv, kms.RootKeyEnv+"=") || strings.Contains(childEnv, hex.EncodeToString(root)) {
		t.Errorf("a child of the daemon inherited %s", kms.RootKeyEnv)
	}
	// The key from the environment is the one that sealed the keyring.
	k, err := kms.OpenLocal(kms.Dir(dir), root, kms.LocalOptions{})
	if err != nil {
		t.Fatalf("keyring does not open with the key from %s: %v", kms.RootKeyEnv, err)
	}
	k.Close()
	if _, err := os.Stat(kms.RootKeyPath(dir)); err == nil {
		t.Errorf("a root key was generated at %s although %s was set", kms.RootKeyPath(dir), kms.RootKeyEnv)
	}
}

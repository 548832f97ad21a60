package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// credentials are the S3 access key and secret.
type credentials struct {
	AccessKey string
	SecretKey string
	// File is where they were read from or written to ("" when they came
	// from the environment).
	File string
}

// loadOrCreateCredentials takes SEALFS_ACCESS_KEY / SEALFS_SECRET_KEY when
// set; else reads DATA/credentials, generating it (0600) on first start. The
// file is in the aws CLI's credentials format, so AWS_SHARED_CREDENTIALS_FILE
// can point at it.
func loadOrCreateCredentials(dataDir string) (credentials, bool, error) {
	ak, sk := os.Getenv("SEALFS_ACCESS_KEY"), os.Getenv("SEALFS_SECRET_KEY")
	if ak != "" || sk != "" {
		if ak == "" || sk == "" {
			return credentials{}, false, errors.New("SEALFS_ACCESS_KEY and SEALFS_SECRET_KEY go together")
		}
		return credentials{AccessKey: ak, SecretKey: sk}, false, nil
	}
	path := filepath.Join(dataDir, "credentials")
	c, err := readCredentials(path)
	if err == nil {
		return c, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return c, false, err
	}
	id := make([]byte, 10)
	secret := make([]byte, 30)
	rand.Read(id)
	rand.Read(secret)
	c = credentials{
		AccessKey: "SEALFS" + base32.StdEncoding.EncodeToString(id)[:14],
		SecretKey: base64.RawStdEncoding.EncodeToString(secret),
		File:      path,
	}
	body := fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", c.AccessKey, c.SecretKey)
	if err := writeFileAtomic(path, []byte(body), 0o600); err != nil {
		return c, false, fmt.Errorf("writing %s: %w", path, err)
	}
	return c, true, nil
}

func readCredentials(path string) (credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return credentials{}, err
	}
	defer f.Close()
	c := credentials{File: path}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(name) {
		case "aws_access_key_id":
			c.AccessKey = strings.TrimSpace(value)
		case "aws_secret_access_key":
			c.SecretKey = strings.TrimSpace(value)
		}
	}
	if err := sc.Err(); err != nil {
		return c, err
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return c, fmt.Errorf("%s: no aws_access_key_id / aws_secret_access_key", path)
	}
	return c, nil
}

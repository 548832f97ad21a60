package kms

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// RootKeySize is the root key's length in bytes.
const RootKeySize = 32

// RootKeyEnv is the environment variable sealfs reads the root key from.
const RootKeyEnv = "SEALFS_KMS_ROOT_KEY"

// Where LoadRootKey found the root key. With RootKeyGenerated and
// RootKeyStored the key sits on the data disk beside what it protects
// (RootKeyPath): fine for a trial, not for production, and the caller should
// say so.
const (
	RootKeyFromFile  = "file"      // the file the caller named
	RootKeyFromEnv   = "env"       // the environment value
	RootKeyGenerated = "generated" // generated now at RootKeyPath
	RootKeyStored    = "stored"    // read from RootKeyPath, generated earlier
)

// maxKeyFileSize bounds what is read from a root key file.
const maxKeyFileSize = 1024

// Dir returns the KMS directory inside a sealfs data directory: DATA/kms.
func Dir(dataDir string) string {
	return filepath.Join(dataDir, "kms")
}

// RootKeyPath returns where a generated root key is kept: DATA/kms/root.key.
func RootKeyPath(dataDir string) string {
	return filepath.Join(Dir(dataDir), "root.key")
}

// LoadRootKey finds the root key, in this order:
//
//   - file, if non-empty: 32 raw bytes, 64 hex characters, or base64 of 32
//     bytes; a trailing newline is allowed. source is RootKeyFromFile.
//   - envValue, if non-empty (the daemon passes TakeRootKeyEnv()): hex
//     or base64. source is RootKeyFromEnv.
//   - RootKeyPath(dataDir): reused if it exists (source RootKeyStored),
//     otherwise generated there as hex, mode 0600 in directories created
//     0700 (source RootKeyGenerated). It is not generated when DATA/kms
//     already holds a keyring, or one imported into shared metadata
//     (keyring.imported): a new root key could not open it.
//
// A key file that group or others may read or write is refused (chmod 600
// fixes it). Errors never contain key bytes.
func LoadRootKey(file, envValue, dataDir string) (key []byte, source string, err error) {
	if file != "" {
		key, err := readRootKeyFile(file)
		if err != nil {
			return nil, "", err
		}
		return key, RootKeyFromFile, nil
	}
	if envValue != "" {
		key, err := parseRootKey([]byte(strings.TrimSpace(envValue)), false)
		if err != nil {
			return nil, "", fmt.Errorf("kms: root key in %s: %w", RootKeyEnv, err)
		}
		return key, RootKeyFromEnv, nil
	}
	path := RootKeyPath(dataDir)
	key, err = readRootKeyFile(path)
	switch {
	case err == nil:
		return key, RootKeyStored, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, "", err
	}
	for _, name := range []string{keyringName, keyringName + importedSuffix} {
		if _, err := os.Stat(filepath.Join(Dir(dataDir), name)); err == nil {
			return nil, "", fmt.Errorf("kms: %s holds a keyring (%s) but no root key was given and %s does not exist: give the root key that sealed it (a key file or %s)", Dir(dataDir), name, path, RootKeyEnv)
		}
	}
	key, err = generateRootKey(path)
	if errors.Is(err, fs.ErrExist) {
		// Another process generated it first: use theirs.
		key, err = readRootKeyFile(path)
		if err != nil {
			return nil, "", err
		}
		return key, RootKeyStored, nil
	}
	if err != nil {
		return nil, "", err
	}
	return key, RootKeyGenerated, nil
}

// readRootKeyFile reads and parses a root key file, refusing one that group
// or others may read or write. A missing file gives an error wrapping
// fs.ErrNotExist.
func readRootKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("kms: root key file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o066 != 0 {
		return nil, fmt.Errorf("kms: root key file %s has mode %04o: group and others must not read or write it (chmod 600 %s)", path, perm, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kms: root key file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("kms: reading root key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("kms: root key file %s is larger than %d bytes: not a root key", path, maxKeyFileSize)
	}
	key, err := parseRootKey(data, true)
	clear(data)
	if err != nil {
		return nil, fmt.Errorf("kms: root key file %s: %w", path, err)
	}
	return key, nil
}

// parseRootKey decodes a root key: 64 hex characters or base64 (standard or
// URL alphabet, padded or not) of 32 bytes, and with allowRaw also 32 raw
// bytes. One trailing newline (LF or CRLF) is allowed.
func parseRootKey(data []byte, allowRaw bool) ([]byte, error) {
	if allowRaw && len(data) == RootKeySize {
		return append([]byte(nil), data...), nil
	}
	text := data
	if n := len(text); n > 0 && text[n-1] == '\n' {
		text = text[:n-1]
		if n := len(text); n > 0 && text[n-1] == '\r' {
			text = text[:n-1]
		}
	}
	if allowRaw && len(text) == RootKeySize {
		return append([]byte(nil), text...), nil
	}
	if len(text) == 2*RootKeySize {
		key := make([]byte, RootKeySize)
		if _, err := hex.Decode(key, text); err == nil {
			return key, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if enc.DecodedLen(len(text)) < RootKeySize || enc.DecodedLen(len(text)) > RootKeySize+2 {
			continue
		}
		key := make([]byte, enc.DecodedLen(len(text)))
		n, err := enc.Decode(key, text)
		if err == nil && n == RootKeySize {
			return key[:n], nil
		}
		clear(key)
	}
	if allowRaw {
		return nil, fmt.Errorf("want %d raw bytes, %d hex characters or base64 of %d bytes; have %d bytes", RootKeySize, 2*RootKeySize, RootKeySize, len(data))
	}
	return nil, fmt.Errorf("want %d hex characters or base64 of %d bytes; have %d characters", 2*RootKeySize, RootKeySize, len(text))
}

// generateRootKey writes a fresh root key, hex encoded, to path without
// replacing an existing file (the error then wraps fs.ErrExist).
func generateRootKey(path string) (key []byte, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	key = make([]byte, RootKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("kms: reading random root key: %w", err)
	}
	f, err := os.CreateTemp(dir, "root.key.tmp-*")
	if err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	text := make([]byte, 2*RootKeySize+1)
	hex.Encode(text, key)
	text[len(text)-1] = '\n'
	_, err = f.Write(text)
	clear(text)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("kms: writing %s: %w", tmp, err)
	}
	// Link, unlike rename, fails if path exists: two first starts racing
	// end up with one key.
	if err := os.Link(tmp, path); err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	return key, nil
}

// TakeRootKeyEnv returns the value of RootKeyEnv and removes the variable
// from the process environment, so that child processes (fusermount3, say)
// do not inherit the root key. The daemon calls it once, before LoadRootKey.
func TakeRootKeyEnv() string {
	v := os.Getenv(RootKeyEnv)
	os.Unsetenv(RootKeyEnv)
	return v
}

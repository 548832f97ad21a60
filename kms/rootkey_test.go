package kms

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadRootKey(t *testing.T) {
	key := make([]byte, RootKeySize)
	rand.Read(key)
	// A raw key ending in a newline byte must be read as raw, whole.
	rawNL := append(bytes.Clone(key[:31]), '\n')
	other := make([]byte, RootKeySize)
	rand.Read(other)
	tests := []struct {
		name       string
		file       []byte // nil: no file given
		mode       os.FileMode
		env        string
		want       []byte
		wantSource string
		wantErr    string
	}{
		{name: "raw", file: key, want: key, wantSource: RootKeyFromFile},
		{name: "raw ending in newline byte", file: rawNL, want: rawNL, wantSource: RootKeyFromFile},
		{name: "raw plus newline", file: append(bytes.Clone(key), '\n'), want: key, wantSource: RootKeyFromFile},
		{name: "hex", file: []byte(hex.EncodeToString(key)), want: key, wantSource: RootKeyFromFile},
		{name: "hex newline", file: []byte(hex.EncodeToString(key) + "\n"), want: key, wantSource: RootKeyFromFile},
		{name: "hex upper crlf", file: []byte(strings.ToUpper(hex.EncodeToString(key)) + "\r\n"), want: key, wantSource: RootKeyFromFile},
		{name: "base64", file: []byte(base64.StdEncoding.EncodeToString(key) + "\n"), want: key, wantSource: RootKeyFromFile},
		{name: "base64 raw url", file: []byte(base64.RawURLEncoding.EncodeToString(key)), want: key, wantSource: RootKeyFromFile},
		{name: "file wins over env", file: key, env: hex.EncodeToString(other), want: key, wantSource: RootKeyFromFile},
		{name: "mode 0400", file: key, mode: 0o400, want: key, wantSource: RootKeyFromFile},
		{name: "env hex", env: hex.EncodeToString(key), want: key, wantSource: RootKeyFromEnv},
		{name: "env base64 with spaces", env: " " + base64.StdEncoding.EncodeToString(key) + "\n", want: key, wantSource: RootKeyFromEnv},
		{name: "file too short", file: key[:31], wantErr: "want 32 raw bytes"},
		{name: "file too long", file: append(bytes.Clone(key), 'x', 'y'), wantErr: "have 34 bytes"},
		{name: "hex too short", file: []byte(hex.EncodeToString(key[:31])), wantErr: "want 32 raw bytes"},
		{name: "not hex", file: []byte(strings.Repeat("zz", 32)), wantErr: "64 hex characters"},
		{name: "base64 of 31 bytes", file: []byte(base64.StdEncoding.EncodeToString(key[:31])), wantErr: "base64 of 32 bytes"},
		{name: "env wrong length", env: hex.EncodeToString(key[:16]), wantErr: RootKeyEnv},
		{name: "env raw bytes refused", env: string(bytes.Repeat([]byte{'k'}, 32)), wantErr: RootKeyEnv},
		{name: "group readable", file: key, mode: 0o640, wantErr: "chmod 600"},
		{name: "world readable", file: key, mode: 0o644, wantErr: "group and others must not read"},
		{name: "group writable", file: key, mode: 0o620, wantErr: "chmod 600"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			file := ""
			if tc.file != nil {
				file = filepath.Join(t.TempDir(), "root.key")
				mode := tc.mode
				if mode == 0 {
					mode = 0o600
				}
				if err := os.WriteFile(file, tc.file, mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(file, mode); err != nil {
					t.Fatal(err)
				}
			}
			got, source, err := LoadRootKey(file, tc.env, data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				for _, enc := range []string{hex.EncodeToString(key), base64.StdEncoding.EncodeToString(key)} {
					if strings.Contains(err.Error(), enc[:16]) {
						t.Fatal("error message contains key bytes")
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) || source != tc.wantSource {
				t.Fatalf("got source %s, key equal %v; want %s", source, bytes.Equal(got, tc.want), tc.wantSource)
			}
			if _, err := os.Stat(Dir(data)); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("a given root key still created %s", Dir(data))
			}
		})
	}
}

func TestLoadRootKeyMissingFile(t *testing.T) {
	_, _, err := LoadRootKey(filepath.Join(t.TempDir(), "nope"), "", t.TempDir())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestLoadRootKeyGeneratedThenReused(t *testing.T) {
	data := filepath.Join(t.TempDir(), "sealfs-data")
	first, source, err := LoadRootKey("", "", data)
	if err != nil || source != RootKeyGenerated || len(first) != RootKeySize {
		t.Fatalf("first start: %d-byte key from %s, %v; want generated", len(first), source, err)
	}
	for path, want := range map[string]os.FileMode{
		data:              0o700 | os.ModeDir,
		Dir(data):         0o700 | os.ModeDir,
		RootKeyPath(data): 0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
	stored, err := os.ReadFile(RootKeyPath(data))
	if err != nil || string(stored) != hex.EncodeToString(first)+"\n" {
		t.Fatalf("root.key holds %d bytes (%v), want the key in hex", len(stored), err)
	}
	if names, _ := filepath.Glob(filepath.Join(Dir(data), "*.tmp-*")); len(names) != 0 {
		t.Fatalf("temporary files left: %v", names)
	}

	second, source, err := LoadRootKey("", "", data)
	if err != nil || source != RootKeyStored || !bytes.Equal(first, second) {
		t.Fatalf("second start: source %s, same key %v, %v; want the stored key", source, bytes.Equal(first, second), err)
	}

	// A root.key others can read is refused, not silently used.
	if err := os.Chmod(RootKeyPath(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadRootKey("", "", data); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable root.key: %v, want a refusal", err)
	}
}

func TestLoadRootKeyWillNotOrphanKeyring(t *testing.T) {
	data := t.TempDir()
	k := openTest(t, Dir(data), randomRoot(t), LocalOptions{})
	k.Close()
	_, _, err := LoadRootKey("", "", data)
	if err == nil || !strings.Contains(err.Error(), "holds a keyring") {
		t.Fatalf("keyring without root.key: %v, want a refusal to generate", err)
	}
	if _, err := os.Stat(RootKeyPath(data)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a root key was generated beside a keyring it cannot open")
	}
}

// A keyring file imported into shared metadata (keyring.imported) still
// says a root key exists somewhere: none is generated beside it.
func TestLoadRootKeyWillNotOrphanImportedKeyring(t *testing.T) {
	data := t.TempDir()
	k := openTest(t, Dir(data), randomRoot(t), LocalOptions{})
	k.Close()
	path := filepath.Join(Dir(data), keyringName)
	if err := os.Rename(path, path+importedSuffix); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadRootKey("", "", data)
	if err == nil || !strings.Contains(err.Error(), "holds a keyring") {
		t.Fatalf("imported keyring without root.key: %v, want a refusal to generate", err)
	}
	if _, err := os.Stat(RootKeyPath(data)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a root key was generated beside an imported keyring")
	}
}

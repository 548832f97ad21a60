package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/urfave/cli/v2"

	"github.com/sealfs/sealfs/admin"
)

// adminFlags are the flags of every command that talks to the running
// daemon: where its data directory is (the endpoint, CA and credentials are
// found there), or the endpoint and CA themselves.
func adminFlags() []cli.Flag {
	return concat(dataFlags(), []cli.Flag{
		&cli.StringFlag{Name: "admin-endpoint", EnvVars: []string{"SEALFS_ADMIN_ENDPOINT"}, Category: "Daemon",
			Usage: "URL of the running daemon (https://HOST:PORT); default: read from DATA/endpoint"},
		&cli.StringFlag{Name: "admin-ca", EnvVars: []string{"SEALFS_ADMIN_CA"}, Category: "Daemon",
			Usage: "CA bundle (PEM) the daemon's certificate is checked against; default: DATA/tls/cert.pem when present, else the system's"},
		&cli.StringFlag{Name: "admin-region", Value: "us-east-1", EnvVars: []string{"SEALFS_ADMIN_REGION"}, Category: "Daemon",
			Usage: "region named in the request signatures (the admin API accepts any)"},
	})
}

// adminClient calls the daemon's admin API (adminapi.go), signing every
// request with Signature Version 4 like an S3 client.
type adminClient struct {
	base   string // https://HOST:PORT
	http   *http.Client
	creds  aws.Credentials
	region string
	signer *v4.Signer
}

// newAdminClient finds the daemon from the command's flags: the endpoint
// in DATA/endpoint (written by the daemon when it starts), the CA in
// DATA/tls/cert.pem, and the credentials in SEALFS_ACCESS_KEY /
// SEALFS_SECRET_KEY or DATA/credentials.
func newAdminClient(c *cli.Context) (*adminClient, error) {
	dataDir := c.String("data")
	endpoint := c.String("admin-endpoint")
	if endpoint == "" {
		var err error
		endpoint, err = readEndpoint(dataDir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no running daemon found: %s is missing (start it with `sealfs serve --data %s`, or pass --admin-endpoint)",
				endpointFile(dataDir), dataDir)
		}
		if err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, exitUsage(fmt.Errorf("--admin-endpoint %q: want https://HOST:PORT", endpoint))
	}
	caFile := c.String("admin-ca")
	if caFile == "" {
		if p := filepath.Join(dataDir, "tls", "cert.pem"); fileExists(p) {
			caFile = p
		}
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading the CA bundle: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate found", caFile)
		}
	}
	var creds credentials
	if ak, sk := os.Getenv("SEALFS_ACCESS_KEY"), os.Getenv("SEALFS_SECRET_KEY"); ak != "" && sk != "" {
		creds = credentials{AccessKey: ak, SecretKey: sk}
	} else if creds, err = readCredentials(filepath.Join(dataDir, "credentials")); err != nil {
		return nil, fmt.Errorf("reading the daemon's credentials (or set SEALFS_ACCESS_KEY / SEALFS_SECRET_KEY): %w", err)
	}
	return &adminClient{
		base: u.Scheme + "://" + u.Host,
		http: &http.Client{
			Transport: &http.Transport{
				Proxy:               http.ProxyFromEnvironment,
				TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
				TLSHandshakeTimeout: 10 * time.Second,
			},
			Timeout: 5 * time.Minute,
		},
		creds:  aws.Credentials{AccessKeyID: creds.AccessKey, SecretAccessKey: creds.SecretKey},
		region: c.String("admin-region"),
		signer: v4.NewSigner(),
	}, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// adminCallError is an error the daemon answered with.
type adminCallError struct {
	Status  int
	Code    string
	Message string
}

func (e *adminCallError) Error() string { return e.Message }

// call sends a request to path (relative to admin.Prefix, query included)
// with in as its JSON body (nil: none) and decodes the answer into out
// (nil: ignored).
func (a *adminClient) call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+admin.Prefix+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	if err := a.signer.SignHTTP(ctx, a.creds, req, hash, "s3", a.region, time.Now()); err != nil {
		return fmt.Errorf("signing the request: %w", err)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the daemon at %s (is it running?): %w", a.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the daemon's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error adminCallError `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error.Message == "" {
			return &adminCallError{Status: resp.StatusCode, Code: resp.Status, Message: fmt.Sprintf("the daemon answered %s: %s", resp.Status, strings.TrimSpace(string(data)))}
		}
		e.Error.Status = resp.StatusCode
		return &e.Error
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding the daemon's answer: %w", err)
	}
	return nil
}

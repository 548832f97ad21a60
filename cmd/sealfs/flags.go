package main

import (
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sealfs/sealfs/cryptostore"
)

// Flag groups shared between commands. Every flag has a SEALFS_ environment
// variable.

func dataFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "data", Value: "./sealfs-data", EnvVars: []string{"SEALFS_DATA"}, Category: "Storage",
			Usage: "data directory: metadata, blobs, keys, TLS certificate and credentials"},
		&cli.StringFlag{Name: "meta", EnvVars: []string{"SEALFS_META"}, Category: "Storage",
			Usage: "metadata engine `URL`: badger://DIR (default: an embedded Badger store in DATA/meta), postgres://user@host:port/db?..., etcd://host1:2379,host2:2379/prefix; gateways given the same URL share one namespace"},
		&cli.StringFlag{Name: "blobs", EnvVars: []string{"SEALFS_BLOBS"}, Category: "Storage",
			Usage: "blob store `URL`: file://DIR (default: DATA/blobs) or s3://BUCKET/PREFIX (see --blobs-endpoint); gateways sharing a --meta share it too"},
	}
}

// metaLocation returns the metadata engine's URL: --meta, or the embedded
// Badger store in the data directory.
func metaLocation(c *cli.Context, dataDir string) string {
	if u := c.String("meta"); u != "" {
		return u
	}
	return "badger://" + filepath.Join(dataDir, "meta")
}

func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"SEALFS_LOG_LEVEL"}, Category: "Logging",
			Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: "log-format", Value: "auto", EnvVars: []string{"SEALFS_LOG_FORMAT"}, Category: "Logging",
			Usage: "text, json, or auto (text on a terminal, JSON otherwise)"},
	}
}

func s3Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "s3", Value: "127.0.0.1:9443", EnvVars: []string{"SEALFS_S3"}, Category: "S3 listener",
			Usage: "HTTPS address of the S3 listener (empty: no listener)"},
		&cli.StringFlag{Name: "s3-http", EnvVars: []string{"SEALFS_S3_HTTP"}, Category: "S3 listener",
			Usage: "plain-HTTP address, off unless given; objects of encrypting buckets are refused over it"},
		&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"SEALFS_TLS_CERT"}, Category: "S3 listener",
			Usage: "certificate (PEM) to serve; default: a self-signed one generated at DATA/tls/cert.pem"},
		&cli.StringFlag{Name: "tls-key", EnvVars: []string{"SEALFS_TLS_KEY"}, Category: "S3 listener",
			Usage: "private key (PEM) of --tls-cert"},
		&cli.StringFlag{Name: "domain", EnvVars: []string{"SEALFS_DOMAIN"}, Category: "S3 listener",
			Usage: "enables virtual-host-style addressing: BUCKET.DOMAIN"},
		&cli.StringFlag{Name: "region", Value: "us-east-1", EnvVars: []string{"SEALFS_REGION"}, Category: "S3 listener",
			Usage: "this daemon's region name"},
		&cli.BoolFlag{Name: "console", Value: true, EnvVars: []string{"SEALFS_CONSOLE"}, Category: "S3 listener",
			Usage: "serve the web console at https://S3-ADDRESS/console/ (admin credentials; --console=false turns it off)"},
	}
}

func kmsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kms", Value: "local", EnvVars: []string{"SEALFS_KMS"}, Category: "Keys",
			Usage: "the KMS that keeps master keys: local (the built-in keyring, sealed by the root key) or aws-kms://REGION[?endpoint=URL][&alias-prefix=P][&cache-ttl=D] (AWS KMS or any service speaking its API; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE; data keys already unwrapped serve reads for cache-ttl, default 5m, while it cannot be reached)"},
		&cli.StringFlag{Name: "kms-root-key-file", EnvVars: []string{"SEALFS_KMS_ROOT_KEY_FILE"}, Category: "Keys",
			Usage: "file holding the 32-byte KMS root key (raw, hex or base64); SEALFS_KMS_ROOT_KEY may hold it instead; default: generated at DATA/kms/root.key"},
	}
}

// syncFlags: how often what the mount committed without fsync is made
// durable (cryptostore.Config.SyncInterval).
func syncFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "sync-interval", Value: cryptostore.DefaultSyncInterval, EnvVars: []string{"SEALFS_SYNC_INTERVAL"}, Category: "Mount",
			Usage: "background sync period: a file closed through the mount without fsync is durable within this time (a power cut loses at most this window); 0 turns it off (durable only on fsync and unmount)"},
	}
}

// syncInterval is the store's SyncInterval for the flag's value.
func syncInterval(c *cli.Context) time.Duration {
	if !c.IsSet("sync-interval") {
		return cryptostore.DefaultSyncInterval
	}
	if d := c.Duration("sync-interval"); d > 0 {
		return d
	}
	return -1
}

func concat(groups ...[]cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

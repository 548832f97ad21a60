package main

import (
	"fmt"
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/sealfs/sealfs/cryptostore"
)

// blobS3Flags configure an s3:// --blobs store.
func blobS3Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "blobs-endpoint", EnvVars: []string{"SEALFS_BLOBS_ENDPOINT"}, Category: "Storage",
			Usage: "S3 endpoint `URL` of an s3:// --blobs store, https://HOST:PORT (default: AWS)"},
		&cli.StringFlag{Name: "blobs-region", EnvVars: []string{"SEALFS_BLOBS_REGION"}, Value: "us-east-1", Category: "Storage",
			Usage: "region of an s3:// --blobs store"},
		&cli.StringFlag{Name: "blobs-access-key", EnvVars: []string{"SEALFS_BLOBS_ACCESS_KEY"}, Category: "Storage",
			Usage: "access key of an s3:// --blobs store (default: the AWS SDK's credential chain)"},
		&cli.StringFlag{Name: "blobs-secret-key", EnvVars: []string{"SEALFS_BLOBS_SECRET_KEY"}, Category: "Storage",
			Usage: "secret key of an s3:// --blobs store; prefer the environment variable to the flag"},
		&cli.StringFlag{Name: "blobs-ca", EnvVars: []string{"SEALFS_BLOBS_CA"}, Category: "Storage",
			Usage: "PEM `FILE` of CA certificates to trust for an s3:// --blobs store, besides the system's"},
	}
}

// openBlobs returns the blob store of --blobs: a directory for file://
// ("" → DATA/blobs), or an open S3 store for s3://.
func openBlobs(c *cli.Context, logger *slog.Logger) (string, cryptostore.BlobStore, error) {
	u, err := cryptostore.ParseBlobURL(c.String("blobs"))
	if err != nil {
		return "", nil, exitUsage(fmt.Errorf("--blobs: %w", err))
	}
	if u.Scheme == "file" {
		return u.Dir, nil, nil
	}
	be, err := cryptostore.OpenS3Blobs(c.Context, cryptostore.S3BlobConfig{
		Bucket:    u.Bucket,
		Prefix:    u.Prefix,
		Endpoint:  c.String("blobs-endpoint"),
		Region:    c.String("blobs-region"),
		AccessKey: c.String("blobs-access-key"),
		SecretKey: c.String("blobs-secret-key"),
		CAFile:    c.String("blobs-ca"),
		Logger:    logger,
	})
	if err != nil {
		return "", nil, err
	}
	return "", be, nil
}

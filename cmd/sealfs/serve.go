package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "run the daemon without a mount: the S3 listener over the store",
		ArgsUsage: " ",
		Category:  "Daemon",
		Description: `Opens the data directory (creating it, the KMS root key, the S3 credentials
and a self-signed TLS certificate on first start) and serves it over HTTPS.

   $ sealfs serve
   $ sealfs serve --data /var/lib/sealfs --s3 0.0.0.0:9443 --region eu-west-1
   $ SEALFS_KMS_ROOT_KEY_FILE=/run/keys/sealfs.key sealfs serve --data /srv/sealfs`,
		Flags: concat(dataFlags(), blobS3Flags(), s3Flags(), kmsFlags(), replicationFlags(), metricsFlags(), logFlags()),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return exitUsage(errUnexpectedArgs(c))
			}
			d, err := openDaemon(c)
			if err != nil {
				return err
			}
			defer d.close()
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runServe(ctx, d)
		},
	}
}

func runServe(ctx context.Context, d *daemon) error {
	return d.serve(ctx, func() {
		d.banner(os.Stdout, "")
		d.logger.Info("serving", "s3", d.s3Addr, "s3_http", d.s3HTTPAddr)
	})
}

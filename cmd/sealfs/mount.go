package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	sealfs "github.com/sealfs/sealfs/fs"
)

func mountCommand() *cli.Command {
	return &cli.Command{
		Name:      "mount",
		Usage:     "mount the store as a file system, with the S3 listener in the same process",
		ArgsUsage: "MOUNTPOINT",
		Category:  "Daemon",
		Description: `Mounts the store at MOUNTPOINT (created if missing; it must be empty): every
bucket is a directory, every object a file. mkdir at the top creates a bucket.
The S3 listener serves the same store at the same time. Runs until SIGINT or
SIGTERM (or until the file system is unmounted): open files are committed,
then the mount is removed.

   $ sealfs mount ./mnt
   $ mkdir ./mnt/photos && setfattr -n sealfs.default-encryption -v aws:kms ./mnt/photos
   $ cp IMG_0001.jpg ./mnt/photos/ && getfattr -n sealfs.headers ./mnt/photos/IMG_0001.jpg
   $ sealfs mount /srv/sealfs --data /var/lib/sealfs --allow-other --s3 0.0.0.0:9443
   $ sealfs mount ./mnt --sync-interval 1s   # files closed without fsync are durable within 1s
   $ sealfs mount ./mnt --as reader          # every operation held to the user reader's policy`,
		Flags: concat(dataFlags(), blobS3Flags(), mountFlags(), syncFlags(), s3Flags(), kmsFlags(), replicationFlags(), metricsFlags(), logFlags()),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return exitUsage(errors.New("mount: want one argument, the mount point"))
			}
			return runMount(c, c.Args().First())
		},
	}
}

func mountFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "allow-other", EnvVars: []string{"SEALFS_ALLOW_OTHER"}, Category: "Mount",
			Usage: "let other users use the mount; the kernel then enforces the stored modes and owners (default_permissions)"},
		&cli.StringFlag{Name: "as", EnvVars: []string{"SEALFS_MOUNT_AS"}, Category: "Mount",
			Usage: "act as `USER`: hold every operation to the user's policy (EACCES where it denies); default: the admin, allowed everything"},
		&cli.BoolFlag{Name: "fuse-debug", EnvVars: []string{"SEALFS_FUSE_DEBUG"}, Category: "Mount",
			Usage: "log every FUSE request (at debug level)"},
	}
}

func runMount(c *cli.Context, dir string) error {
	logger, err := newLogger(c, os.Stderr)
	if err != nil {
		return exitUsage(err)
	}
	// Check the mount point before anything is created.
	mnt, err := sealfs.PrepareMountpoint(dir, logger)
	if err != nil {
		return err
	}
	d, err := openDaemon(c)
	if err != nil {
		return err
	}
	defer d.close()
	opts := sealfs.Options{
		Store:      d.store,
		Logger:     d.logger,
		DataDir:    d.dataDir,
		AllowOther: c.Bool("allow-other"),
		Debug:      c.Bool("fuse-debug"),
		As:         c.String("as"),
	}
	if opts.As != "" {
		// The user must exist now; later changes to it reach the mount.
		if _, err := d.store.GetUser(c.Context, opts.As); err != nil {
			return fmt.Errorf("mount --as %s: %w", opts.As, err)
		}
	}
	if d.metrics != nil {
		opts.Observe = d.metrics.observeFUSE
	}
	m, err := sealfs.Mount(mnt, opts)
	if err != nil {
		return fmt.Errorf("%w (is /dev/fuse usable here? as non-root, is user_allow_other in /etc/fuse.conf for --allow-other?)", err)
	}
	d.subscribe(m.Changed)

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		// Unmounted from outside (fusermount3 -u): stop too.
		m.Wait()
		cancel()
	}()
	err = d.serve(ctx, func() {
		d.banner(os.Stdout, mnt)
		d.logger.Info("mounted", "mountpoint", mnt, "s3", d.s3Addr, "s3_http", d.s3HTTPAddr)
	})
	d.logger.Info("unmounting", "mountpoint", mnt)
	if cerr := m.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return err
}

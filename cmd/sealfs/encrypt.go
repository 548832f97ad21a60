package main

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/urfave/cli/v2"

	"github.com/sealfs/sealfs/admin"
	"github.com/sealfs/sealfs/cryptostore"
)

func encryptExistingCommand() *cli.Command {
	return &cli.Command{
		Name:      "encrypt-existing",
		Usage:     "rewrite a bucket's objects stored before its default encryption was on (or under another bucket's key) encrypted",
		ArgsUsage: "BUCKET",
		Description: `Turning default encryption on changes only objects written afterwards. This
rewrites the others in place, as a copy onto themselves: same key, content
type, user metadata, POSIX attributes and mtime; a new data key and a new
version, written only if nobody wrote the object meanwhile. The plain data
it replaces is removed. It runs in the daemon; stopped by a crash or restart
of the daemon, it continues where it stopped when started again with the
same bucket and prefix. Refused on a bucket without default encryption.
Exit code 3 when some objects could not be rewritten.

   $ sealfs bucket encryption set photos
   $ sealfs bucket encrypt-existing photos
   $ sealfs bucket encrypt-existing photos --prefix 2019/ --rate 50`,
		Flags: concat(adminFlags(), []cli.Flag{
			&cli.StringFlag{Name: "prefix", EnvVars: []string{"SEALFS_ENCRYPT_PREFIX"}, Usage: "only objects whose key starts with this"},
			&cli.Float64Flag{Name: "rate", EnvVars: []string{"SEALFS_ENCRYPT_RATE"}, Usage: "objects per second at most; 0: as fast as the store allows"},
		}),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return exitUsage(errors.New("bucket encrypt-existing: want one argument, the bucket"))
			}
			if c.Float64("rate") < 0 {
				return exitUsage(fmt.Errorf("--rate %v: want 0 or more", c.Float64("rate")))
			}
			bucket := c.Args().First()
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			var job admin.EncryptJob
			in := admin.EncryptExistingInput{Prefix: c.String("prefix"), Rate: c.Float64("rate")}
			if err := a.call(c.Context, "POST", "buckets/"+url.PathEscape(bucket)+"/encrypt-existing", in, &job); err != nil {
				return err
			}
			total, err := objectTotal(c, a, bucket)
			if err != nil {
				return err
			}
			detail := func(r cryptostore.EncryptReport) string {
				return fmt.Sprintf("(%d encrypted, %d failed)", r.Encrypted, len(r.Failed))
			}
			err = followJob(c, "encrypting", total, func() bool { return job.Done },
				func() error { return a.call(c.Context, "GET", "encrypt-existing/"+url.PathEscape(job.ID), nil, &job) },
				func() (int64, string) { return job.Report.Objects, detail(job.Report) })
			if err != nil {
				return err
			}
			r := job.Report
			w := c.App.Writer
			if r.ResumedAt != "" {
				fmt.Fprintf(w, "resumed after %s/%s\n", bucket, r.ResumedAt)
			}
			for _, d := range r.Failed {
				fmt.Fprintf(w, "FAILED %s/%s: %s\n", d.Bucket, d.Key, d.Err)
			}
			if job.Error != "" {
				return fmt.Errorf("encrypt-existing stopped after %d %s: %s", r.Objects, plural(r.Objects, "object"), job.Error)
			}
			fmt.Fprintf(w, "encrypt-existing: %d %s: %d encrypted (%d %s), %d skipped (already encrypted), %d overwritten meanwhile, %d failed\n",
				r.Objects, plural(r.Objects, "object"), r.Encrypted, r.Bytes, plural(r.Bytes, "byte"), r.Skipped, r.Raced, len(r.Failed))
			if len(r.Failed) > 0 {
				return damageError{len(r.Failed), "not encrypted"}
			}
			return nil
		},
	}
}

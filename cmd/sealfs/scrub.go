package main

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sealfs/sealfs/admin"
)

func scrubCommand() *cli.Command {
	return &cli.Command{
		Name:      "scrub",
		Usage:     "read every object (or a sample) back, verify it decrypts and matches its checksums, collect orphan blobs",
		ArgsUsage: "[BUCKET]",
		Category:  "Admin",
		Description: `The running daemon reads each object through its read path: every chunk must
authenticate (encrypted objects) or match its CRC32C (plain ones), and the
whole object its ETag and stored checksums. Damaged objects are listed;
blobs no record references are removed. Exit code 3 when damage is found.

   $ sealfs scrub
   $ sealfs scrub photos --sample 0.1`,
		Flags: concat(adminFlags(), []cli.Flag{
			&cli.Float64Flag{Name: "sample", Value: 1, EnvVars: []string{"SEALFS_SCRUB_SAMPLE"}, Usage: "fraction of objects to read, 0 < F <= 1"},
		}),
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return exitUsage(errors.New("scrub: at most one argument, the bucket"))
			}
			sample := c.Float64("sample")
			if sample <= 0 || sample > 1 {
				return exitUsage(fmt.Errorf("--sample %v: want 0 < F <= 1", sample))
			}
			bucket := c.Args().First()
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			var st admin.StatusReport
			if err := a.call(c.Context, "GET", "status", nil, &st); err != nil {
				return err
			}
			var total int64
			for _, b := range st.Buckets {
				if bucket == "" || b.Bucket == bucket {
					total += b.Objects
				}
			}
			var job admin.ScrubJob
			if err := a.call(c.Context, "POST", "scrub", admin.ScrubInput{Bucket: bucket, Sample: sample}, &job); err != nil {
				return err
			}
			bar := newProgress(c.App.ErrWriter, "scrubbing", total)
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for !job.Done {
				select {
				case <-c.Context.Done():
					return c.Context.Err()
				case <-tick.C:
				}
				if err := a.call(c.Context, "GET", "scrub/"+url.PathEscape(job.ID), nil, &job); err != nil {
					return err
				}
				r := job.Report
				bar.set(r.Objects+r.Skipped, fmt.Sprintf("(%d damaged)", len(r.Damaged)))
			}
			r := job.Report
			bar.finish(r.Objects+r.Skipped, fmt.Sprintf("(%d damaged)", len(r.Damaged)))
			w := c.App.Writer
			for _, d := range r.Damaged {
				fmt.Fprintf(w, "DAMAGED %s/%s: %s\n", d.Bucket, d.Key, d.Err)
			}
			for _, d := range r.Shredded {
				fmt.Fprintf(w, "SHREDDED %s/%s: its master key was deleted\n", d.Bucket, d.Key)
			}
			if job.Error != "" {
				return fmt.Errorf("scrub stopped after %d %s: %s", r.Objects, plural(r.Objects, "object"), job.Error)
			}
			fmt.Fprintf(w, "scrub: %d %s (%d %s) verified, %d skipped, %d damaged; %d orphan %s (%d %s) removed\n",
				r.Objects, plural(r.Objects, "object"), r.Bytes, plural(r.Bytes, "byte"), r.Skipped, len(r.Damaged),
				r.Orphans.Orphans, plural(r.Orphans.Orphans, "blob"), r.Orphans.Bytes, plural(r.Orphans.Bytes, "byte"))
			if n := len(r.Shredded); n > 0 {
				fmt.Fprintf(w, "scrub: %d %s shredded (master key deleted; unrecoverable on purpose, not damage)\n", n, plural(n, "object"))
			}
			if len(r.Damaged) > 0 {
				return damageError{n: len(r.Damaged)}
			}
			return nil
		},
	}
}

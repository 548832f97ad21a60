package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/sealfs/sealfs/admin"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:     "status",
		Usage:    "the running daemon: uptime, buckets, objects, bytes, encrypted share, replication backlog",
		Category: "Admin",
		Description: `   $ sealfs status
   $ sealfs status --json`,
		Flags: concat(adminFlags(), jsonFlag()),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return exitUsage(errUnexpectedArgs(c))
			}
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			var st admin.StatusReport
			if err := a.call(c.Context, "GET", "status", nil, &st); err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, st)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "sealfs %s, region %s, up %s\n", st.Version, st.Region, st.Uptime)
			var objs, bytes, encObjs, encBytes int64
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "BUCKET\tDEFAULT ENCRYPTION\tOBJECTS\tBYTES\tENCRYPTED")
			for _, b := range st.Buckets {
				enc := "off"
				if b.Encryption {
					enc = "aws:kms"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", b.Bucket, enc, b.Objects, b.Bytes, share(b.EncryptedBytes, b.Bytes, b.EncryptedObjects, b.Objects))
				objs += b.Objects
				bytes += b.Bytes
				encObjs += b.EncryptedObjects
				encBytes += b.EncryptedBytes
			}
			fmt.Fprintf(tw, "%d %s\t\t%d\t%d\t%s\n", len(st.Buckets), plural(len(st.Buckets), "bucket"), objs, bytes, share(encBytes, bytes, encObjs, objs))
			if err := tw.Flush(); err != nil {
				return err
			}
			if r := st.Replication; r != nil {
				fmt.Fprintf(w, "replication: backlog %d (oldest %s), %d completed, %d failed, %d retries\n",
					r.Backlog, r.OldestPendingAge.Round(1e9), r.Completed, r.Failed, r.Retries)
			}
			for _, k := range st.Rotations {
				fmt.Fprintf(w, "key %s rotates every %dd, next on %s\n", k.KeyID, k.EveryDays, k.NextRotation.UTC().Format("2006-01-02"))
			}
			return nil
		},
	}
}

// share tells the encrypted share by bytes (or by objects when there are
// no bytes).
func share(encBytes, bytes, encObjs, objs int64) string {
	switch {
	case bytes > 0:
		return fmt.Sprintf("%.1f%%", 100*float64(encBytes)/float64(bytes))
	case objs > 0:
		return fmt.Sprintf("%.1f%%", 100*float64(encObjs)/float64(objs))
	}
	return "-"
}

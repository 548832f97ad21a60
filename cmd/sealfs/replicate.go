package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sealfs/sealfs/replicate"
)

// replicationFlags are the daemon's replication settings (serve, mount).
func replicationFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "replication-workers", Value: replicate.DefaultWorkers, EnvVars: []string{"SEALFS_REPLICATION_WORKERS"}, Category: "Replication",
			Usage: "objects sent to replication targets at once"},
		&cli.DurationFlag{Name: "replication-retry-max-delay", Value: replicate.DefaultRetryMaxDelay, EnvVars: []string{"SEALFS_REPLICATION_RETRY_MAX_DELAY"}, Category: "Replication",
			Usage: "longest wait between retries after transient errors (a target that comes back is drained within it)"},
		&cli.DurationFlag{Name: "replication-retry-for", Value: replicate.DefaultRetryFor, EnvVars: []string{"SEALFS_REPLICATION_RETRY_FOR"}, Category: "Replication",
			Usage: "how long an object keeps being retried after its first failure before it is marked FAILED"},
	}
}

// replicationConfig reads the replication flags (absent flags: defaults).
func replicationConfig(c *cli.Context) replicate.Config {
	return replicate.Config{
		Workers:       c.Int("replication-workers"),
		RetryMaxDelay: c.Duration("replication-retry-max-delay"),
		RetryFor:      c.Duration("replication-retry-for"),
	}
}

func replicateCommand() *cli.Command {
	return &cli.Command{
		Name:     "replicate",
		Usage:    "cross-region replication: targets, rules, status and resync (asks the running daemon)",
		Category: "Admin",
		Description: `Objects written to a bucket with a replication rule are copied, in the
background, to a bucket on another sealfs daemon (another region) over HTTPS.
The replica is encrypted if and only if the target bucket has default
encryption. These commands talk to the running daemon found through --data.

   $ sealfs replicate target add eu-west-1 --endpoint https://eu.example:9443 \
         --access-key AK --secret-key SK --ca eu-cert.pem
   $ sealfs replicate enable photos --to eu-west-1/photos-backup --deletes
   $ sealfs replicate status photos
   $ sealfs replicate resync photos`,
		Subcommands: []*cli.Command{
			replicateTargetCommand(),
			replicateEnableCommand(),
			replicateDisableCommand(),
			replicateStatusCommand(),
			replicateResyncCommand(),
		},
	}
}

func replicateTargetCommand() *cli.Command {
	return &cli.Command{
		Name:  "target",
		Usage: "register, list and remove replication targets (one per region)",
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "register (or replace) the target daemon of a region",
				ArgsUsage: "REGION",
				Description: `The secret key is stored sealed by the daemon's KMS, never in clear.

   $ sealfs replicate target add eu-west-1 --endpoint https://10.0.0.2:9443 \
         --access-key "$EU_AK" --secret-key "$EU_SK" --ca /etc/sealfs/eu-cert.pem
   $ SEALFS_TARGET_SECRET_KEY=... sealfs replicate target add eu-west-1 --endpoint https://eu:9443 --access-key AK`,
				Flags: concat(adminFlags(), []cli.Flag{
					&cli.StringFlag{Name: "endpoint", Required: true, EnvVars: []string{"SEALFS_TARGET_ENDPOINT"}, Usage: "the target's S3 endpoint, https://HOST:PORT"},
					&cli.StringFlag{Name: "access-key", Required: true, EnvVars: []string{"SEALFS_TARGET_ACCESS_KEY"}, Usage: "access key on the target"},
					&cli.StringFlag{Name: "secret-key", Required: true, EnvVars: []string{"SEALFS_TARGET_SECRET_KEY"}, Usage: "secret key on the target (the environment variable keeps it out of shell history)"},
					&cli.StringFlag{Name: "ca", EnvVars: []string{"SEALFS_TARGET_CA"}, Usage: "PEM file of the CA (or self-signed certificate) to trust for the target, e.g. its DATA/tls/cert.pem"},
				}),
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return exitUsage(errors.New("target add: want one argument, the region"))
					}
					in := &replicate.TargetInput{
						Region:    c.Args().First(),
						Endpoint:  c.String("endpoint"),
						AccessKey: c.String("access-key"),
						SecretKey: c.String("secret-key"),
					}
					if f := c.String("ca"); f != "" {
						pem, err := os.ReadFile(f)
						if err != nil {
							return fmt.Errorf("--ca: %w", err)
						}
						in.CA = string(pem)
					}
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					var t replicate.Target
					if err := a.call(c.Context, "POST", "replication/targets", in, &t); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "target %s registered: %s (access key %s)\n", t.Region, t.Endpoint, t.AccessKey)
					return nil
				},
			},
			{
				Name:    "ls",
				Aliases: []string{"list"},
				Usage:   "list the registered targets",
				Flags:   concat(adminFlags(), jsonFlag()),
				Action: func(c *cli.Context) error {
					if c.NArg() > 0 {
						return exitUsage(errUnexpectedArgs(c))
					}
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					var ts []replicate.Target
					if err := a.call(c.Context, "GET", "replication/targets", nil, &ts); err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, ts)
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "REGION\tENDPOINT\tACCESS KEY\tCA\tADDED")
					for _, t := range ts {
						ca := "system"
						if t.CA != "" {
							ca = "own"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Region, t.Endpoint, t.AccessKey, ca, t.Added.Local().Format(time.DateTime))
					}
					return tw.Flush()
				},
			},
			{
				Name:      "rm",
				Aliases:   []string{"remove"},
				Usage:     "remove a region's target (no rule may still name it)",
				ArgsUsage: "REGION",
				Flags:     adminFlags(),
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return exitUsage(errors.New("target rm: want one argument, the region"))
					}
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					region := c.Args().First()
					if err := a.call(c.Context, "DELETE", "replication/targets/"+url.PathEscape(region), nil, nil); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "target %s removed\n", region)
					return nil
				},
			},
		},
	}
}

func replicateEnableCommand() *cli.Command {
	return &cli.Command{
		Name:      "enable",
		Usage:     "replicate a bucket to a bucket of another region",
		ArgsUsage: "SRC-BUCKET",
		Description: `Adds a rule to the bucket's replication configuration (or replaces the
rule of the same --id). Objects written from now on are replicated; those
already there are sent by ` + "`sealfs replicate resync`" + `.

   $ sealfs replicate enable photos --to eu-west-1/photos-backup
   $ sealfs replicate enable logs --to eu-west-1/logs --prefix app/ --deletes`,
		Flags: concat(adminFlags(), []cli.Flag{
			&cli.StringFlag{Name: "to", Required: true, EnvVars: []string{"SEALFS_REPLICATE_TO"}, Usage: "destination: REGION/BUCKET (or arn:aws:s3:REGION::BUCKET)"},
			&cli.StringFlag{Name: "prefix", EnvVars: []string{"SEALFS_REPLICATE_PREFIX"}, Usage: "replicate only keys starting with this"},
			&cli.BoolFlag{Name: "deletes", EnvVars: []string{"SEALFS_REPLICATE_DELETES"}, Usage: "replicate deletes too"},
			&cli.StringFlag{Name: "id", EnvVars: []string{"SEALFS_REPLICATE_RULE_ID"}, Usage: "rule id (default: to-REGION-BUCKET)"},
			&cli.IntFlag{Name: "priority", EnvVars: []string{"SEALFS_REPLICATE_PRIORITY"}, Usage: "rule priority: of overlapping rules, the highest decides"},
		}),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return exitUsage(errors.New("enable: want one argument, the source bucket"))
			}
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			bucket := c.Args().First()
			in := &replicate.EnableInput{To: c.String("to"), ID: c.String("id"), Prefix: c.String("prefix"), Deletes: c.Bool("deletes"), Priority: c.Int("priority")}
			var cfg replicate.Configuration
			if err := a.call(c.Context, "PUT", "replication/buckets/"+url.PathEscape(bucket), in, &cfg); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "replication of %s enabled:\n", bucket)
			return printRules(c.App.Writer, cfg.Rules)
		},
	}
}

func replicateDisableCommand() *cli.Command {
	return &cli.Command{
		Name:      "disable",
		Usage:     "remove a bucket's replication configuration",
		ArgsUsage: "SRC-BUCKET",
		Description: `Objects still waiting to be sent are marked FAILED; resync sends them once
replication is enabled again.

   $ sealfs replicate disable photos`,
		Flags: adminFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return exitUsage(errors.New("disable: want one argument, the source bucket"))
			}
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			bucket := c.Args().First()
			if err := a.call(c.Context, "DELETE", "replication/buckets/"+url.PathEscape(bucket), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "replication of %s disabled\n", bucket)
			return nil
		},
	}
}

func jsonFlag() []cli.Flag {
	return []cli.Flag{&cli.BoolFlag{Name: "json", EnvVars: []string{"SEALFS_JSON"}, Usage: "print JSON"}}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printRules(w io.Writer, rules []replicate.Rule) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  RULE\tSTATUS\tPRIORITY\tPREFIX\tDELETES\tDESTINATION")
	for _, r := range rules {
		status := "Disabled"
		if r.Enabled {
			status = "Enabled"
		}
		prefix := r.Prefix
		if prefix == "" {
			prefix = "(all)"
		}
		deletes := "no"
		if r.Deletes {
			deletes = "yes"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%s/%s\n", r.ID, status, r.Priority, prefix, deletes, r.Region, r.Bucket)
	}
	return tw.Flush()
}

// statusAnswer mirrors the daemon's answer to GET replication/status.
type statusAnswer struct {
	Region string `json:"region"`
	replicate.Stats
	Buckets []struct {
		Bucket string           `json:"bucket"`
		Rules  []replicate.Rule `json:"rules"`
	} `json:"buckets"`
}

func replicateStatusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show the replication backlog, targets and failures (of one bucket, if named)",
		ArgsUsage: "[SRC-BUCKET]",
		Description: `Without a bucket: the queue (backlog, oldest pending, in flight), counts since
the daemon started, each target's health, and the buckets with rules. With a
bucket: its rules, its objects by replication status, and the keys that
FAILED.

   $ sealfs replicate status
   $ sealfs replicate status photos --json`,
		Flags: concat(adminFlags(), jsonFlag()),
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return exitUsage(errors.New("status: want at most one argument, a bucket"))
			}
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			w := c.App.Writer
			if c.NArg() == 1 {
				var bs replicate.BucketStatus
				if err := a.call(c.Context, "GET", "replication/buckets/"+url.PathEscape(c.Args().First()), nil, &bs); err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(w, bs)
				}
				return printBucketStatus(w, &bs)
			}
			var st statusAnswer
			if err := a.call(c.Context, "GET", "replication/status", nil, &st); err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(w, st)
			}
			return printStatus(w, &st)
		},
	}
}

func printStatus(w io.Writer, st *statusAnswer) error {
	fmt.Fprintf(w, "region %s\n", st.Region)
	oldest := "-"
	if !st.OldestPending.IsZero() {
		oldest = st.OldestPendingAge.Round(time.Second).String() + " ago"
	}
	fmt.Fprintf(w, "backlog:      %d queued (%d retrying, %d in flight); oldest pending %s\n", st.Backlog, st.Retrying, st.InFlight, oldest)
	fmt.Fprintf(w, "since start:  %d replicated (%d already newer on the target), %d failed, %d retries\n", st.Completed, st.Skipped, st.Failed, st.Retries)
	if len(st.Targets) == 0 {
		fmt.Fprintln(w, "targets:      none (sealfs replicate target add REGION --endpoint URL ...)")
	} else {
		fmt.Fprintln(w, "targets:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  REGION\tENDPOINT\tSTATE\tBACKLOG\tLAST ERROR")
		for _, t := range st.Targets {
			last := t.LastError
			if last != "" {
				last = fmt.Sprintf("%s (%s)", truncateLine(last, 100), t.LastErrorAt.Local().Format(time.TimeOnly))
			}
			state := t.State
			if state == "retrying" && !t.RetryAt.IsZero() {
				state += " at " + t.RetryAt.Local().Format(time.TimeOnly)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\n", t.Region, t.Endpoint, state, t.Backlog, last)
		}
		tw.Flush()
	}
	if len(st.Buckets) == 0 {
		fmt.Fprintln(w, "buckets:      none replicated (sealfs replicate enable BUCKET --to REGION/BUCKET)")
		return nil
	}
	fmt.Fprintln(w, "buckets:")
	for _, b := range st.Buckets {
		fmt.Fprintf(w, "%s (backlog %d)\n", b.Bucket, st.BucketBacklog[b.Bucket])
		if err := printRules(w, b.Rules); err != nil {
			return err
		}
	}
	return nil
}

func printBucketStatus(w io.Writer, bs *replicate.BucketStatus) error {
	fmt.Fprintf(w, "bucket %s\n", bs.Bucket)
	if len(bs.Rules) == 0 {
		fmt.Fprintln(w, "rules:    none")
	} else {
		fmt.Fprintln(w, "rules:")
		if err := printRules(w, bs.Rules); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "backlog:  %d queued\n", bs.Backlog)
	statuses := make([]string, 0, len(bs.Objects))
	for s := range bs.Objects {
		statuses = append(statuses, s)
	}
	sort.Strings(statuses)
	var parts []string
	for _, s := range statuses {
		parts = append(parts, fmt.Sprintf("%d %s", bs.Objects[s], s))
	}
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	fmt.Fprintf(w, "objects:  %s\n", strings.Join(parts, ", "))
	if len(bs.Failed) > 0 {
		fmt.Fprintf(w, "failed (sealfs replicate resync %s sends them again):\n", bs.Bucket)
		for _, k := range bs.Failed {
			fmt.Fprintf(w, "  %s\n", k)
		}
		if n := bs.Objects["FAILED"]; n > int64(len(bs.Failed)) {
			fmt.Fprintf(w, "  ... and %d more\n", n-int64(len(bs.Failed)))
		}
	}
	return nil
}

func truncateLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func replicateResyncCommand() *cli.Command {
	return &cli.Command{
		Name:      "resync",
		Usage:     "send again the objects whose replication FAILED, and those from before the rule",
		ArgsUsage: "BUCKET",
		Description: `Queues every object of BUCKET that an enabled rule applies to and that
FAILED or has no replication status (written before the rule), then waits
until the bucket's backlog is sent, showing progress (a bar on a terminal,
lines otherwise). --no-wait returns once the objects are queued.

   $ sealfs replicate resync photos
   $ sealfs replicate resync photos --no-wait`,
		Flags: concat(adminFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "no-wait", EnvVars: []string{"SEALFS_RESYNC_NO_WAIT"}, Usage: "return once the objects are queued, without waiting for them to be sent"},
		}),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return exitUsage(errors.New("resync: want one argument, the bucket"))
			}
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			return runResync(c.Context, a, c.Args().First(), !c.Bool("no-wait"), c.App.Writer, os.Stderr)
		},
	}
}

func runResync(ctx context.Context, a *adminClient, bucket string, wait bool, out, status io.Writer) error {
	var pr replicate.ResyncProgress
	if err := a.call(ctx, "POST", "replication/buckets/"+url.PathEscape(bucket)+"/resync", nil, &pr); err != nil {
		return err
	}
	bar := newProgress(status, "scanning", pr.Total)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for !pr.Done {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if err := a.call(ctx, "GET", "replication/resync/"+url.PathEscape(pr.ID), nil, &pr); err != nil {
			return err
		}
		bar.set(pr.Scanned, fmt.Sprintf("(%d queued)", pr.Queued))
	}
	bar.finish(pr.Scanned, fmt.Sprintf("(%d queued)", pr.Queued))
	if pr.Error != "" {
		return fmt.Errorf("resync of %s stopped after %d %s: %s", bucket, pr.Scanned, plural(pr.Scanned, "object"), pr.Error)
	}
	fmt.Fprintf(out, "resync of %s: %d %s scanned, %d queued (%d had FAILED), %d left alone\n",
		bucket, pr.Scanned, plural(pr.Scanned, "object"), pr.Queued, pr.Requeued, pr.Skipped)
	if !wait || pr.Queued == 0 {
		return nil
	}
	backlog := func() (int64, error) {
		var st statusAnswer
		if err := a.call(ctx, "GET", "replication/status", nil, &st); err != nil {
			return 0, err
		}
		return int64(st.BucketBacklog[bucket]), nil
	}
	left, err := backlog()
	if err != nil {
		return err
	}
	total := max(left, pr.Queued)
	sent := newProgress(status, "replicating", total)
	for left > 0 {
		sent.set(total-left, fmt.Sprintf("(%d left)", left))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if left, err = backlog(); err != nil {
			return err
		}
	}
	sent.finish(total, "(done)")
	var bs replicate.BucketStatus
	if err := a.call(ctx, "GET", "replication/buckets/"+url.PathEscape(bucket), nil, &bs); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %d COMPLETED, %d FAILED\n", bucket, bs.Objects["COMPLETED"], bs.Objects["FAILED"])
	if bs.Objects["FAILED"] > 0 {
		return fmt.Errorf("%d %s of %s FAILED to replicate (sealfs replicate status %s shows them)", bs.Objects["FAILED"], plural(bs.Objects["FAILED"], "object"), bucket, bucket)
	}
	return nil
}

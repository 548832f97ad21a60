package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sealfs/sealfs/admin"
	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/kms"
)

func kmsCommand() *cli.Command {
	action := func(name, usage, past string) *cli.Command {
		return &cli.Command{
			Name:      name,
			Usage:     usage,
			ArgsUsage: "KEY",
			Flags:     adminFlags(),
			Description: `KEY is a key id, its ARN, or the name of a bucket (its master key).

   $ sealfs kms ` + name + ` photos`,
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return exitUsage(errors.New("kms " + name + ": want one argument, the key"))
				}
				a, err := newAdminClient(c)
				if err != nil {
					return err
				}
				var km kms.KeyMetadata
				if err := a.call(c.Context, "POST", "kms/keys/"+url.PathEscape(c.Args().First())+"/"+name, nil, &km); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "key %s %s: state %s, version %d\n", km.KeyID, past, km.State, km.CurrentVersion)
				return nil
			},
		}
	}
	return &cli.Command{
		Name:     "kms",
		Usage:    "the built-in KMS: list master keys, disable, enable or rotate one (asks the running daemon)",
		Category: "Admin",
		Description: `Each encrypting bucket has a master key that wraps its objects' data keys.
A disabled key makes its objects unreadable and unwritable (S3 answers
KMS.DisabledException, the mount ENOKEY) until it is enabled again. Rotating
adds a key version for new data keys; older versions keep decrypting.

   $ sealfs kms keys
   $ sealfs kms disable photos
   $ sealfs kms enable photos
   $ sealfs kms rotate photos
   $ sealfs kms rewrap photos --rate 500`,
		Subcommands: []*cli.Command{
			{
				Name:  "keys",
				Usage: "list master keys and the buckets using them",
				Flags: concat(adminFlags(), jsonFlag()),
				Action: func(c *cli.Context) error {
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					var keys []admin.KeyInfo
					if err := a.call(c.Context, "GET", "kms/keys", nil, &keys); err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, keys)
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "KEY\tSTATE\tVERSION\tOBJECTS BY VERSION\tROTATION\tCREATED\tUSED BY")
					for _, k := range keys {
						used := strings.Join(k.Buckets, ",")
						if used == "" {
							used = k.Description
						}
						version := strconv.FormatUint(uint64(k.CurrentVersion), 10)
						if n := len(k.RetiredVersions); n > 0 {
							version += fmt.Sprintf(" (%d retired)", n)
						}
						rotation := "-"
						if k.RotateEveryDays > 0 {
							rotation = fmt.Sprintf("every %dd, next %s", k.RotateEveryDays, k.NextRotation.UTC().Format("2006-01-02"))
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.KeyID, k.State, version, versionUse(k.CurrentVersion, k.VersionsInUse), rotation,
							k.Created.Format("2006-01-02 15:04:05"), used)
					}
					return tw.Flush()
				},
			},
			action("disable", "disable a key: its objects can be neither read nor written", "disabled"),
			action("enable", "enable a disabled key", "enabled"),
			rotateCommand(action("rotate", "add a key version for new data keys, now or on a schedule (--every 365d)", "rotated")),
			rewrapCommand(),
			retireCommand(),
			deleteKeyCommand(),
			{
				Name:      "cancel-delete",
				Usage:     "cancel a key's scheduled deletion (the key is left disabled: enable it to read its objects again)",
				ArgsUsage: "KEY",
				Flags:     adminFlags(),
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return exitUsage(errors.New("kms cancel-delete: want one argument, the key"))
					}
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					var km kms.KeyMetadata
					if err := a.call(c.Context, "POST", "kms/keys/"+url.PathEscape(c.Args().First())+"/cancel-deletion", nil, &km); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "key %s deletion cancelled: state %s (sealfs kms enable %s makes its objects readable)\n", km.KeyID, km.State, c.Args().First())
					return nil
				},
			},
		},
	}
}

// kmsEngine is what the daemon holds: a KMS engine that names its keys'
// ARNs and is closed with the daemon.
type kmsEngine interface {
	kms.KMS
	ARN(keyID string) string
	Close() error
}

// openExternalKMS opens the engine --kms names (not "local").
func openExternalKMS(raw string, logger *slog.Logger) (kmsEngine, error) {
	if strings.HasPrefix(raw, kms.AWSScheme+"://") {
		k, err := kms.OpenAWS(raw, kms.AWSOptions{Logger: logger})
		if err != nil {
			return nil, exitUsage(fmt.Errorf("--kms: %w", err))
		}
		return k, nil
	}
	return nil, exitUsage(fmt.Errorf("--kms %q: want local or %s://REGION?endpoint=URL", raw, kms.AWSScheme))
}

// versionUse says how many objects each version wraps, oldest first
// ("v1:20 v2:3"); "-" when none. An old version that no object uses is
// left out: nothing needs it any more.
func versionUse(current uint32, use map[uint32]int64) string {
	var parts []string
	for v := uint32(1); v <= current; v++ {
		if n := use[v]; n > 0 {
			parts = append(parts, fmt.Sprintf("v%d:%d", v, n))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func rewrapCommand() *cli.Command {
	return &cli.Command{
		Name:      "rewrap",
		Usage:     "wrap every object's data key again under its master key's current version (no blob is rewritten)",
		ArgsUsage: "[BUCKET|KEY]",
		Description: `After "sealfs kms rotate", objects written before keep data keys wrapped by
the old version. rewrap wraps each again under the current version: one
metadata update per object, the object's bytes untouched, every object
readable throughout. An object overwritten meanwhile keeps the newer version.
It runs in the daemon; stopped (Ctrl-C does not stop it; a crash or restart
of the daemon does), it continues where it stopped when started again with
the same argument. "sealfs kms keys" then shows no object under the old
version. Exit code 3 when some objects could not be re-wrapped.

   $ sealfs kms rotate photos && sealfs kms rewrap photos
   $ sealfs kms rewrap --rate 200          # every bucket, 200 objects/s`,
		Flags: concat(adminFlags(), []cli.Flag{
			&cli.Float64Flag{Name: "rate", EnvVars: []string{"SEALFS_REWRAP_RATE"}, Usage: "objects per second at most; 0: as fast as the KMS and metadata allow"},
		}),
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return exitUsage(errors.New("kms rewrap: at most one argument, a bucket or a key"))
			}
			if c.Float64("rate") < 0 {
				return exitUsage(fmt.Errorf("--rate %v: want 0 or more", c.Float64("rate")))
			}
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			var job admin.RewrapJob
			if err := a.call(c.Context, "POST", "kms/rewrap", admin.RewrapInput{Target: c.Args().First(), Rate: c.Float64("rate")}, &job); err != nil {
				return err
			}
			total, err := objectTotal(c, a, job.Bucket)
			if err != nil {
				return err
			}
			detail := func(r cryptostore.RewrapReport) string {
				return fmt.Sprintf("(%d re-wrapped, %d failed)", r.Rewrapped, len(r.Failed))
			}
			err = followJob(c, "re-wrapping", total, func() bool { return job.Done },
				func() error { return a.call(c.Context, "GET", "kms/rewrap/"+url.PathEscape(job.ID), nil, &job) },
				func() (int64, string) { return job.Report.Objects, detail(job.Report) })
			if err != nil {
				return err
			}
			r := job.Report
			w := c.App.Writer
			if r.ResumedAt != "" {
				fmt.Fprintf(w, "resumed after %s\n", r.ResumedAt)
			}
			for _, d := range r.Failed {
				fmt.Fprintf(w, "FAILED %s/%s: %s\n", d.Bucket, d.Key, d.Err)
			}
			if job.Error != "" {
				return fmt.Errorf("rewrap stopped after %d %s: %s", r.Objects, plural(r.Objects, "object"), job.Error)
			}
			fmt.Fprintf(w, "rewrap: %d %s: %d re-wrapped, %d already current, %d skipped (plain or another key), %d overwritten meanwhile, %d failed\n",
				r.Objects, plural(r.Objects, "object"), r.Rewrapped, r.Current, r.Skipped, r.Raced, len(r.Failed))
			if len(r.Failed) > 0 {
				return damageError{len(r.Failed), "not re-wrapped"}
			}
			return nil
		},
	}
}

// followJob draws an admin job's progress (what, out of total objects)
// until done says it has ended, refreshing its state every 200 ms;
// progress reads the objects done and the detail shown beside them.
func followJob(c *cli.Context, what string, total int64, done func() bool, refresh func() error, progress func() (int64, string)) error {
	bar := newProgress(c.App.ErrWriter, what, total)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		select {
		case <-c.Context.Done():
			return c.Context.Err()
		case <-tick.C:
		}
		if err := refresh(); err != nil {
			return err
		}
		bar.set(progress())
	}
	bar.finish(progress())
	return nil
}

// objectTotal is the number of objects in bucket ("" for all), for a
// progress bar.
func objectTotal(c *cli.Context, a *adminClient, bucket string) (int64, error) {
	var st admin.StatusReport
	if err := a.call(c.Context, "GET", "status", nil, &st); err != nil {
		return 0, err
	}
	var total int64
	for _, b := range st.Buckets {
		if bucket == "" || b.Bucket == bucket {
			total += b.Objects
		}
	}
	return total, nil
}

func retireCommand() *cli.Command {
	return &cli.Command{
		Name:      "retire",
		Usage:     "retire an old key version no object uses any more: it unwraps nothing from then on",
		ArgsUsage: "KEY VERSION",
		Flags:     adminFlags(),
		Description: `KEY is a key id, its ARN, or the name of a bucket (its master key). The
version's material is destroyed; it is refused while "sealfs kms keys" shows
objects under that version (run "sealfs kms rewrap" first) and for the
current version.

   $ sealfs kms rotate photos && sealfs kms rewrap photos
   $ sealfs kms retire photos 1`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return exitUsage(errors.New("kms retire: want two arguments, the key and the version"))
			}
			v, err := strconv.ParseUint(c.Args().Get(1), 10, 32)
			if err != nil || v == 0 {
				return exitUsage(fmt.Errorf("kms retire: version %q: want a number from 1", c.Args().Get(1)))
			}
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			var km kms.KeyMetadata
			path := "kms/keys/" + url.PathEscape(c.Args().First()) + "/versions/" + strconv.FormatUint(v, 10) + "/retire"
			if err := a.call(c.Context, "POST", path, nil, &km); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "key %s version %d retired; current version %d\n", km.KeyID, v, km.CurrentVersion)
			return nil
		},
	}
}

func deleteKeyCommand() *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "schedule a master key's deletion (crypto-shredding): on that date its objects become unrecoverable",
		ArgsUsage: "KEY",
		Flags: concat(adminFlags(), []cli.Flag{
			&cli.StringFlag{Name: "after", Value: "30d", EnvVars: []string{"SEALFS_KMS_DELETE_AFTER"}, Usage: "waiting period, 7d to 30d; until then \"sealfs kms cancel-delete\" brings the key back (a few seconds, e.g. 5s, only for tests: the daemon must run with SEALFS_TEST_SHORT_KEY_DELETION=1)"},
		}),
		Description: `KEY is a key id, its ARN, or the name of a bucket (its master key). From now
on the key's objects can be neither read nor written (S3 answers
KMS.KMSInvalidStateException, the mount ENOKEY). On the deletion date the key
material is destroyed: every object under it is unrecoverable, from this
store and from any copy of its blobs; S3 then answers KMS.NotFoundException
and scrub lists the objects as shredded.

   $ sealfs kms delete photos --after 7d
   $ sealfs kms cancel-delete photos && sealfs kms enable photos`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return exitUsage(errors.New("kms delete: want one argument, the key"))
			}
			in, err := parseDeletionWait(c.String("after"))
			if err != nil {
				return exitUsage(fmt.Errorf("--after %q: want 7d to 30d", c.String("after")))
			}
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			var km kms.KeyMetadata
			if err := a.call(c.Context, "POST", "kms/keys/"+url.PathEscape(c.Args().First())+"/delete", in, &km); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "key %s scheduled for deletion on %s; its objects are unreadable from now on (sealfs kms cancel-delete %s to undo before then)\n",
				km.KeyID, km.DeletionDate.UTC().Format(time.RFC3339), c.Args().First())
			return nil
		},
	}
}

// parseDeletionWait reads a key deletion's waiting period: 7d to 30d; or,
// for tests against a daemon run with SEALFS_TEST_SHORT_KEY_DELETION=1
// (the daemon refuses it otherwise), a duration under a day in seconds
// ("5s").
func parseDeletionWait(s string) (admin.DeleteKeyInput, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 && d < 24*time.Hour && d%time.Second == 0 {
		return admin.DeleteKeyInput{AfterSeconds: int(d / time.Second)}, nil
	}
	days, err := parseDays(s)
	if err != nil || days < 7 || days > 30 {
		return admin.DeleteKeyInput{}, fmt.Errorf("%q: want 7d to 30d", s)
	}
	return admin.DeleteKeyInput{AfterDays: days}, nil
}

// parseDays reads "7d", "7" or a duration in whole days ("168h").
func parseDays(s string) (int, error) {
	if v, ok := strings.CutSuffix(s, "d"); ok {
		return strconv.Atoi(v)
	}
	if n, err := strconv.Atoi(s); err == nil {
		return n, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d%(24*time.Hour) != 0 {
		return 0, fmt.Errorf("%q is not a number of days", s)
	}
	return int(d / (24 * time.Hour)), nil
}

// rotateCommand adds --every to `kms rotate`: with it, the key is rotated
// automatically whenever its current version is that old (0 turns it off),
// instead of now.
func rotateCommand(now *cli.Command) *cli.Command {
	rotateNow := now.Action
	now.Flags = append(now.Flags, &cli.StringFlag{Name: "every", EnvVars: []string{"SEALFS_KMS_ROTATE_EVERY"},
		Usage: "rotate automatically whenever the current version is this old (e.g. 365d; at least 1d; 0 turns it off) instead of now"})
	now.Description += `
   $ sealfs kms rotate photos --every 365d     # then yearly, checked hourly by the daemon
   $ sealfs kms rotate photos --every 0       # automatic rotation off`
	now.Action = func(c *cli.Context) error {
		if !c.IsSet("every") {
			return rotateNow(c)
		}
		if c.NArg() != 1 {
			return exitUsage(errors.New("kms rotate: want one argument, the key"))
		}
		days, err := parseDays(c.String("every"))
		if err != nil || days < 0 {
			return exitUsage(fmt.Errorf("--every %q: want a number of days such as 365d, or 0", c.String("every")))
		}
		a, err := newAdminClient(c)
		if err != nil {
			return err
		}
		var ki admin.KeyInfo
		if err := a.call(c.Context, "PUT", "kms/keys/"+url.PathEscape(c.Args().First())+"/rotation", admin.RotationInput{EveryDays: days}, &ki); err != nil {
			return err
		}
		if days == 0 {
			fmt.Fprintf(c.App.Writer, "key %s: automatic rotation off\n", ki.KeyID)
			return nil
		}
		fmt.Fprintf(c.App.Writer, "key %s rotates every %d days; next on %s\n", ki.KeyID, days, ki.NextRotation.UTC().Format("2006-01-02"))
		return nil
	}
	return now
}

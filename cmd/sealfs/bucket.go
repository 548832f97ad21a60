package main

import (
	"errors"
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sealfs/sealfs/admin"
)

func bucketCommand() *cli.Command {
	one := func(c *cli.Context, what string) (string, error) {
		if c.NArg() != 1 {
			return "", exitUsage(fmt.Errorf("%s: want one argument, the bucket", what))
		}
		return c.Args().First(), nil
	}
	return &cli.Command{
		Name:     "bucket",
		Usage:    "list, create and remove buckets; show and set default encryption (asks the running daemon)",
		Category: "Admin",
		Description: `Buckets are the mount's top-level directories and the S3 API's buckets.
While a bucket's default encryption is on, every object written to it is
encrypted with a data key of its own; objects already stored keep their state.

   $ sealfs bucket create photos --encrypt
   $ sealfs bucket ls
   $ sealfs bucket encryption set photos
   $ sealfs bucket encryption get photos
   $ sealfs bucket encrypt-existing photos
   $ sealfs bucket rm photos`,
		Subcommands: []*cli.Command{
			{
				Name:    "ls",
				Aliases: []string{"list"},
				Usage:   "list buckets",
				Flags:   concat(adminFlags(), jsonFlag()),
				Action: func(c *cli.Context) error {
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					var bs []admin.BucketInfo
					if err := a.call(c.Context, "GET", "buckets", nil, &bs); err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, bs)
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "BUCKET\tREGION\tCREATED\tDEFAULT ENCRYPTION")
					for _, b := range bs {
						enc := "off"
						if b.Encryption {
							enc = "aws:kms"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", b.Name, b.Region, b.Created.Format("2006-01-02 15:04:05"), enc)
					}
					return tw.Flush()
				},
			},
			{
				Name:      "create",
				Usage:     "create a bucket",
				ArgsUsage: "BUCKET",
				Flags: concat(adminFlags(), []cli.Flag{
					&cli.BoolFlag{Name: "encrypt", EnvVars: []string{"SEALFS_BUCKET_ENCRYPT"}, Usage: "turn default encryption on at once"},
					&cli.StringFlag{Name: "bucket-region", EnvVars: []string{"SEALFS_BUCKET_REGION"}, Usage: "the bucket's region (default: the daemon's)"},
				}),
				Action: func(c *cli.Context) error {
					name, err := one(c, "bucket create")
					if err != nil {
						return err
					}
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					in := admin.CreateBucketInput{Name: name, Region: c.String("bucket-region"), Encryption: c.Bool("encrypt")}
					if err := a.call(c.Context, "POST", "buckets", in, nil); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "bucket %s created\n", name)
					return nil
				},
			},
			{
				Name:      "rm",
				Aliases:   []string{"remove"},
				Usage:     "remove an empty bucket (--shred 7d: and schedule its master key's deletion)",
				ArgsUsage: "BUCKET",
				Flags: concat(adminFlags(), []cli.Flag{
					&cli.StringFlag{Name: "shred", EnvVars: []string{"SEALFS_BUCKET_SHRED"},
						Usage: "also schedule the bucket's master key for deletion after this waiting period (7d to 30d): copies of its former objects' blobs become unrecoverable"},
				}),
				Action: func(c *cli.Context) error {
					name, err := one(c, "bucket rm")
					if err != nil {
						return err
					}
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					if c.IsSet("shred") {
						in, err := parseDeletionWait(c.String("shred"))
						if err != nil {
							return exitUsage(fmt.Errorf("--shred %q: want 7d to 30d", c.String("shred")))
						}
						var res admin.ShredResult
						if err := a.call(c.Context, "POST", "buckets/"+url.PathEscape(name)+"/shred", in, &res); err != nil {
							return err
						}
						if res.Key == nil {
							fmt.Fprintf(c.App.Writer, "bucket %s removed (it never had a master key)\n", name)
							return nil
						}
						fmt.Fprintf(c.App.Writer, "bucket %s removed; key %s scheduled for deletion on %s\n", name, res.Key.KeyID, res.Key.DeletionDate.UTC().Format(time.RFC3339))
						return nil
					}
					if err := a.call(c.Context, "DELETE", "buckets/"+url.PathEscape(name), nil, nil); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "bucket %s removed\n", name)
					return nil
				},
			},
			{
				Name:  "encryption",
				Usage: "show, set or clear a bucket's default encryption (SSE-KMS with the service's key)",
				Subcommands: []*cli.Command{
					encryptionCommand("get", "show the setting", nil),
					encryptionCommand("set", "turn default encryption on", &[]bool{true}[0]),
					encryptionCommand("clear", "turn default encryption off", &[]bool{false}[0]),
				},
			},
			encryptExistingCommand(), // encrypt.go
		},
	}
}

// encryptionCommand is `bucket encryption get|set|clear BUCKET`; to is nil
// for get.
func encryptionCommand(name, usage string, to *bool) *cli.Command {
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "BUCKET",
		Flags:     adminFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return exitUsage(errors.New("bucket encryption " + name + ": want one argument, the bucket"))
			}
			bucket := c.Args().First()
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			var st admin.EncryptionSetting
			path := "buckets/" + url.PathEscape(bucket) + "/encryption"
			if to == nil {
				err = a.call(c.Context, "GET", path, nil, &st)
			} else {
				err = a.call(c.Context, "PUT", path, admin.EncryptionSetting{Encryption: *to}, &st)
			}
			if err != nil {
				return err
			}
			switch {
			case !st.Encryption:
				fmt.Fprintf(c.App.Writer, "%s: default encryption off\n", bucket)
			case st.KeyARN == "":
				fmt.Fprintf(c.App.Writer, "%s: default encryption %s (the master key is made with the first encrypted object)\n", bucket, st.Algorithm)
			default:
				fmt.Fprintf(c.App.Writer, "%s: default encryption %s, key %s\n", bucket, st.Algorithm, st.KeyARN)
			}
			return nil
		},
	}
}

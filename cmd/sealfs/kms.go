package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/sealfs/sealfs/admin"
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
   $ sealfs kms rotate photos`,
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
					fmt.Fprintln(tw, "KEY\tSTATE\tVERSION\tCREATED\tUSED BY")
					for _, k := range keys {
						used := strings.Join(k.Buckets, ",")
						if used == "" {
							used = k.Description
						}
						fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", k.KeyID, k.State, k.CurrentVersion, k.Created.Format("2006-01-02 15:04:05"), used)
					}
					return tw.Flush()
				},
			},
			action("disable", "disable a key: its objects can be neither read nor written", "disabled"),
			action("enable", "enable a disabled key", "enabled"),
			action("rotate", "add a key version for new data keys", "rotated"),
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

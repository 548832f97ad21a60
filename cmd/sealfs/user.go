package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/sealfs/sealfs/admin"
	"github.com/sealfs/sealfs/cryptostore"
)

// readPolicy reads a policy document from a file, or standard input for -.
func readPolicy(c *cli.Context, path string) (json.RawMessage, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(c.App.Reader, 1<<20))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the policy: %w", err)
	}
	if !json.Valid(data) {
		return nil, exitUsage(fmt.Errorf("the policy in %s is not JSON", path))
	}
	return json.RawMessage(data), nil
}

func nArgs(c *cli.Context, n int, what string) error {
	if c.NArg() != n {
		return exitUsage(fmt.Errorf("%s: want %d argument(s): %s", c.Command.FullName(), n, what))
	}
	return nil
}

func printUser(w io.Writer, u *cryptostore.UserInfo) {
	status := "enabled"
	if u.Disabled {
		status = "disabled"
	}
	fmt.Fprintf(w, "user:    %s (%s)\narn:     %s\ncreated: %s\n", u.Name, status, u.ARN, u.Created.Format("2006-01-02 15:04:05"))
	for _, k := range u.AccessKeys {
		fmt.Fprintf(w, "key:     %s %s (created %s)\n", k.ID, k.Status, k.Created.Format("2006-01-02 15:04:05"))
	}
	if u.Policy == "" {
		fmt.Fprintln(w, "policy:  none (everything is denied)")
		return
	}
	var v any
	if json.Unmarshal([]byte(u.Policy), &v) == nil {
		if out, err := json.MarshalIndent(v, "", "  "); err == nil {
			fmt.Fprintf(w, "policy:\n%s\n", out)
			return
		}
	}
	fmt.Fprintf(w, "policy:\n%s\n", u.Policy)
}

func userCommand() *cli.Command {
	userAction := func(method, what string, body func(c *cli.Context) (any, error), done string) cli.ActionFunc {
		return func(c *cli.Context) error {
			var in any
			if body != nil {
				var err error
				if in, err = body(c); err != nil {
					return err
				}
			}
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			name := c.Args().First()
			var u cryptostore.UserInfo
			if err := a.call(c.Context, method, "users/"+url.PathEscape(name)+what, in, &u); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, done+"\n", name)
			return nil
		}
	}
	return &cli.Command{
		Name:     "user",
		Usage:    "list, create, change and remove users and their policies (asks the running daemon)",
		Category: "Admin",
		Description: `A user signs S3 requests with its own access keys (sealfs accesskey) and may
do what its policy allows: a policy document in IAM's JSON shape (Version,
Statement, Effect, Action, Resource, Condition with aws:SecureTransport,
aws:SourceIp and s3:prefix). A user without a policy may do nothing.
Reading an encrypted object needs kms:Decrypt on its bucket's key, writing
into an encrypting bucket kms:GenerateDataKey. The daemon's own credentials
are the admin's: allowed everything, the only ones that manage users.

   $ sealfs user create reader --policy reader.json
   $ sealfs user ls
   $ sealfs user show reader
   $ sealfs user policy reader readwrite.json
   $ sealfs user disable reader
   $ sealfs user rm reader`,
		Subcommands: []*cli.Command{
			{
				Name:    "ls",
				Aliases: []string{"list"},
				Usage:   "list users",
				Flags:   concat(adminFlags(), jsonFlag()),
				Action: func(c *cli.Context) error {
					if c.NArg() != 0 {
						return exitUsage(errUnexpectedArgs(c))
					}
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					var us []cryptostore.UserInfo
					if err := a.call(c.Context, "GET", "users", nil, &us); err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, us)
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "USER\tSTATUS\tCREATED\tACCESS KEYS\tPOLICY")
					for _, u := range us {
						status := "enabled"
						if u.Disabled {
							status = "disabled"
						}
						var keys []string
						for _, k := range u.AccessKeys {
							keys = append(keys, k.ID+" ("+k.Status+")")
						}
						pol := "none"
						if u.Policy != "" {
							pol = "yes"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, status, u.Created.Format("2006-01-02 15:04:05"), strings.Join(keys, ", "), pol)
					}
					return tw.Flush()
				},
			},
			{
				Name:      "create",
				Usage:     "create a user",
				ArgsUsage: "USER",
				Flags: concat(adminFlags(), []cli.Flag{
					&cli.StringFlag{Name: "policy", EnvVars: []string{"SEALFS_USER_POLICY"}, Usage: "the user's policy document: a JSON `FILE` (- for standard input)"},
				}),
				Action: func(c *cli.Context) error {
					if err := nArgs(c, 1, "the user's name"); err != nil {
						return err
					}
					in := admin.CreateUserInput{Name: c.Args().First()}
					if p := c.String("policy"); p != "" {
						var err error
						if in.Policy, err = readPolicy(c, p); err != nil {
							return err
						}
					}
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					if err := a.call(c.Context, "POST", "users", in, nil); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "user %s created; give it an access key with: sealfs accesskey create %s\n", in.Name, in.Name)
					return nil
				},
			},
			{
				Name:      "show",
				Usage:     "show a user, its access keys and its policy",
				ArgsUsage: "USER",
				Flags:     concat(adminFlags(), jsonFlag()),
				Action: func(c *cli.Context) error {
					if err := nArgs(c, 1, "the user's name"); err != nil {
						return err
					}
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					var u cryptostore.UserInfo
					if err := a.call(c.Context, "GET", "users/"+url.PathEscape(c.Args().First()), nil, &u); err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, u)
					}
					printUser(c.App.Writer, &u)
					return nil
				},
			},
			{
				Name:      "policy",
				Usage:     "replace a user's policy (--clear: remove it)",
				ArgsUsage: "USER [FILE|-]",
				Flags: concat(adminFlags(), []cli.Flag{
					&cli.BoolFlag{Name: "clear", EnvVars: []string{"SEALFS_USER_POLICY_CLEAR"}, Usage: "remove the policy: the user may do nothing"},
				}),
				Action: userAction("PUT", "/policy", func(c *cli.Context) (any, error) {
					if c.Bool("clear") {
						if c.NArg() != 1 {
							return nil, exitUsage(fmt.Errorf("user policy --clear: want one argument, the user"))
						}
						return admin.PolicyInput{}, nil
					}
					if c.NArg() != 2 {
						return nil, exitUsage(fmt.Errorf("user policy: want the user and a policy FILE (- for standard input), or --clear"))
					}
					p, err := readPolicy(c, c.Args().Get(1))
					return admin.PolicyInput{Policy: p}, err
				}, "policy of user %s set"),
			},
			{
				Name:      "disable",
				Usage:     "disable a user: its access keys are refused",
				ArgsUsage: "USER",
				Flags:     adminFlags(),
				Action: userAction("PUT", "/status", func(c *cli.Context) (any, error) {
					return admin.UserStatusInput{Disabled: true}, nArgs(c, 1, "the user's name")
				}, "user %s disabled"),
			},
			{
				Name:      "enable",
				Usage:     "enable a disabled user",
				ArgsUsage: "USER",
				Flags:     adminFlags(),
				Action: userAction("PUT", "/status", func(c *cli.Context) (any, error) {
					return admin.UserStatusInput{Disabled: false}, nArgs(c, 1, "the user's name")
				}, "user %s enabled"),
			},
			{
				Name:      "rm",
				Aliases:   []string{"remove"},
				Usage:     "remove a user and its access keys",
				ArgsUsage: "USER",
				Flags:     adminFlags(),
				Action:    removeAction("users/", "user", "the user's name"),
			},
		},
	}
}

func accessKeyCommand() *cli.Command {
	status := func(name, st, done string) *cli.Command {
		return &cli.Command{
			Name:      name,
			Usage:     "make an access key " + st,
			ArgsUsage: "ACCESS_KEY_ID",
			Flags:     adminFlags(),
			Action: func(c *cli.Context) error {
				if err := nArgs(c, 1, "the access key id"); err != nil {
					return err
				}
				a, err := newAdminClient(c)
				if err != nil {
					return err
				}
				id := c.Args().First()
				if err := a.call(c.Context, "PUT", "access-keys/"+url.PathEscape(id), admin.AccessKeyStatusInput{Status: st}, nil); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "access key %s %s\n", id, done)
				return nil
			},
		}
	}
	return &cli.Command{
		Name:     "accesskey",
		Usage:    "create, list, disable and remove users' access keys (asks the running daemon)",
		Category: "Admin",
		Description: `An access key is what a user signs S3 requests with. Its secret is shown once,
when it is created, and stored only sealed by the KMS. A user has at most two.

   $ sealfs accesskey create reader
   $ sealfs accesskey ls reader
   $ sealfs accesskey disable SFAKXXXXXXXXXXXXXXXX
   $ sealfs accesskey rm SFAKXXXXXXXXXXXXXXXX`,
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "give a user a new access key; its secret is shown this once",
				ArgsUsage: "USER",
				Flags:     concat(adminFlags(), jsonFlag()),
				Action: func(c *cli.Context) error {
					if err := nArgs(c, 1, "the user"); err != nil {
						return err
					}
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					var k cryptostore.NewAccessKey
					if err := a.call(c.Context, "POST", "users/"+url.PathEscape(c.Args().First())+"/access-keys", nil, &k); err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, k)
					}
					fmt.Fprintf(c.App.Writer, "aws_access_key_id = %s\naws_secret_access_key = %s\n", k.ID, k.SecretKey)
					fmt.Fprintln(c.App.ErrWriter, "sealfs: the secret is shown this once; keep it now")
					return nil
				},
			},
			{
				Name:      "ls",
				Aliases:   []string{"list"},
				Usage:     "list access keys (of one user, or of all)",
				ArgsUsage: "[USER]",
				Flags:     concat(adminFlags(), jsonFlag()),
				Action: func(c *cli.Context) error {
					if c.NArg() > 1 {
						return exitUsage(fmt.Errorf("accesskey ls: want at most one argument, the user"))
					}
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					var us []cryptostore.UserInfo
					if err := a.call(c.Context, "GET", "users", nil, &us); err != nil {
						return err
					}
					keys := []cryptostore.AccessKeyInfo{}
					for _, u := range us {
						if c.NArg() == 0 || u.Name == c.Args().First() {
							keys = append(keys, u.AccessKeys...)
						}
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, keys)
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ACCESS KEY\tUSER\tSTATUS\tCREATED")
					for _, k := range keys {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.User, k.Status, k.Created.Format("2006-01-02 15:04:05"))
					}
					return tw.Flush()
				},
			},
			status("disable", "Inactive", "disabled"),
			status("enable", "Active", "enabled"),
			{
				Name:      "rm",
				Aliases:   []string{"remove"},
				Usage:     "remove an access key",
				ArgsUsage: "ACCESS_KEY_ID",
				Flags:     adminFlags(),
				Action:    removeAction("access-keys/", "access key", "the access key id"),
			},
		},
	}
}

// removeAction deletes the admin API resource at path plus the command's
// one argument (arg says what it is), and says "WHAT NAME removed".
func removeAction(path, what, arg string) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := nArgs(c, 1, arg); err != nil {
			return err
		}
		a, err := newAdminClient(c)
		if err != nil {
			return err
		}
		if err := a.call(c.Context, "DELETE", path+url.PathEscape(c.Args().First()), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "%s %s removed\n", what, c.Args().First())
		return nil
	}
}

package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/identity/account"
)

// cliAgent is the audit agent of every account change made here: the
// operator at the console, who holds the data directory's key file.
func cliAgent() audit.Agent { return audit.Agent{Client: "cli"} }

// maxSecretFile bounds the enrolment secret file read (a secret is 47
// bytes; anything much larger is not one).
const maxSecretFile = 1 << 10

// maxPasswordInput bounds the password read from stdin.
const maxPasswordInput = 4 << 10

func (e *env) userCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage local accounts: add, list, show, disable, enable, set roles, reset MFA, sessions",
		Long: `user manages local accounts. Every change is audited and commits together
with its audit event. A new account has no password: "user add" prints a
one-time invitation link (with the enrolment secret in it), with which its
owner sets a password in a browser (the /enrol page; or "user set-password",
or POST /auth/enrol) and then enrols a second factor at the first login. Password hashes are never shown.`,
	}
	cmd.AddCommand(e.userAddCmd(), e.userListCmd(), e.userShowCmd(),
		e.userSetDisabledCmd(true), e.userSetDisabledCmd(false),
		e.userSetRolesCmd(), e.userResetMFACmd(), e.userSetPasswordCmd(),
		e.userSessionsCmd(), e.userRevokeSessionsCmd())
	return cmd
}

// withAccounts opens the app and its account service for one command.
func (e *env) withAccounts(cmd *cobra.Command, fn func(context.Context, *account.Service) error) error {
	a, err := e.openApp(cmd)
	if err != nil {
		return err
	}
	defer a.Close()
	acc, err := a.Accounts()
	if err != nil {
		return err
	}
	return fn(cmd.Context(), acc)
}

// userFlagErr rewrites an identity field error to name the option or
// argument the operator typed.
func userFlagErr(err error) error {
	var fe *identity.FieldError
	if !errors.As(err, &fe) {
		if errors.Is(err, identity.ErrFHIRUserBound) {
			return errors.New("--fhir-user: " + identity.ErrFHIRUserBound.Error())
		}
		if errors.Is(err, identity.ErrExists) {
			return errors.New("USERNAME: that username is taken")
		}
		if errors.Is(err, identity.ErrNotFound) {
			return errors.New("USERNAME: no such user")
		}
		return err
	}
	opt := map[string]string{"username": "USERNAME", "display_name": "--display-name", "fhir_user": "--fhir-user", "roles": "--roles"}[fe.Field]
	if opt == "" {
		opt = fe.Field
	}
	return fmt.Errorf("%s: %s", opt, fe.Reason)
}

func parseRolesFlag(s string) ([]identity.Role, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("--roles: at least one role is required (one of " + roleNames() + ")")
	}
	var out []identity.Role
	for _, p := range strings.Split(s, ",") {
		r, err := identity.ParseRole(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("--roles: unknown role (one of %s)", roleNames())
		}
		out = append(out, r)
	}
	return out, nil
}

func roleNames() string { return identity.FormatRoles(identity.Roles()) }

// breakGlassHelp explains the --break-glass flag of add and set-roles.
const breakGlassHelp = "grant roles that reach patient data (or security-admin) at once, outside the two-person rule; raises an alert (for the first administrators, or when no second administrator can approve)"

// needsBreakGlass is the refusal of a grant that needs a second
// administrator, made without --break-glass.
func needsBreakGlass(target []identity.Role) error {
	var need []string
	for _, r := range target {
		if r.NeedsApproval() {
			need = append(need, string(r))
		}
	}
	return fmt.Errorf("--roles: %s need a second administrator's approval: grant them in the console or with POST /admin/api/users/{id}/roles (a second security admin approves), or pass --break-glass (an operator with the key file and the data directory; an alert is raised)",
		strings.Join(need, ", "))
}

func (e *env) userAddCmd() *cobra.Command {
	var roles, display, fhirUser string
	var breakGlass bool
	cmd := &cobra.Command{
		Use:   "add USERNAME --roles ROLE[,ROLE] [--break-glass]",
		Short: "Add an account and print its one-time enrolment secret",
		Long: `add creates an account. Roles that reach patient data, and security-admin,
need a second administrator's approval (two-person rule); the offline CLI
grants them only with --break-glass, which raises an alert for the privacy
officer. It is meant for the first security administrators of an
installation, by an operator who holds the key file and the data directory.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := parseRolesFlag(roles)
			if err != nil {
				return err
			}
			if _, pending := identity.Split(nil, rs); pending && !breakGlass {
				return needsBreakGlass(rs)
			}
			c, err := e.loadConfig(config.Overrides{})
			if err != nil {
				return err
			}
			return e.withAccounts(cmd, func(ctx context.Context, acc *account.Service) error {
				u, secret, err := acc.AddBreakGlass(ctx, cliAgent(), identity.User{Username: args[0], DisplayName: display, Roles: rs, FHIRUser: fhirUser})
				if err != nil {
					return userFlagErr(err)
				}
				printEnrolment(e.stdout, c.Server.BaseURL, u, secret.Reveal())
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&roles, "roles", "", "comma-separated roles: "+roleNames())
	f.StringVar(&display, "display-name", "", "display name (workforce accounts only)")
	f.StringVar(&fhirUser, "fhir-user", "", "linked FHIR resource: Practitioner/<id>, or Patient/<id> for a patient account")
	f.BoolVar(&breakGlass, "break-glass", false, breakGlassHelp)
	return cmd
}

// printEnrolment prints a new account's invitation link, once. The
// enrolment secret is in the link and printed nowhere else, so the
// output holds it exactly once.
func printEnrolment(w io.Writer, base string, u identity.User, secret string) {
	fmt.Fprintf(w, `User %s created (id %s, roles %s).

%s`, u.Username, u.ID, identity.FormatRoles(u.Roles), invitationText(base, u.Username, secret, account.EnrolmentLifetime))
}

// invitationText explains an invitation link (ADR 0034); base is the
// server's public base URL (server.base_url), empty when unknown.
func invitationText(base, username, secret string, valid time.Duration) string {
	page := strings.TrimRight(base, "/") + account.EnrolmentPage
	if base == "" {
		page = "the server's " + account.EnrolmentPage + " page"
	}
	return fmt.Sprintf(`Invitation link for %s (shown once; valid for %s; whoever holds it can set
the account's password, so send it through a trusted channel):

  %s

Opened in a browser, it sets the password at %s; the user then
signs in and sets up a second factor. The enrolment secret is the part
after "token=" (up to "&"): the user may type it there with the username
instead, an operator may pass it to "phivault user set-password", and
POST /auth/enrol takes it as "enrolment_secret".
`, username, valid, account.InvitationLink(base, username, secret), page)
}

func (e *env) userListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List accounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withAccounts(cmd, func(ctx context.Context, acc *account.Service) error {
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "USERNAME\tID\tROLES\tSTATUS\tPASSWORD\tMFA")
				after := ""
				for {
					us, err := acc.Directory().List(ctx, after, identity.MaxPage)
					if err != nil {
						return err
					}
					for _, u := range us {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Username, u.ID, identity.FormatRoles(u.Roles),
							status(u), yesNo(u.PasswordHash != "", "set", "not set"), yesNo(u.MFAEnrolled, "enrolled", "not enrolled"))
					}
					if len(us) < identity.MaxPage {
						break
					}
					after = us[len(us)-1].Username
				}
				return tw.Flush()
			})
		},
	}
}

func status(u identity.User) string { return yesNo(u.Disabled, "disabled", "active") }

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func (e *env) userShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show USERNAME",
		Short: "Show one account (never its password hash)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withAccounts(cmd, func(ctx context.Context, acc *account.Service) error {
				u, err := acc.Directory().ByUsername(ctx, args[0])
				if err != nil {
					return userFlagErr(err)
				}
				printUser(e.stdout, u)
				return nil
			})
		},
	}
}

func printUser(w io.Writer, u identity.User) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "username\t%s\n", u.Username)
	fmt.Fprintf(tw, "id\t%s\n", u.ID)
	fmt.Fprintf(tw, "display name\t%s\n", u.DisplayName)
	fmt.Fprintf(tw, "roles\t%s\n", identity.FormatRoles(u.Roles))
	fmt.Fprintf(tw, "fhir user\t%s\n", u.FHIRUser)
	fmt.Fprintf(tw, "status\t%s\n", status(u))
	fmt.Fprintf(tw, "password\t%s\n", yesNo(u.PasswordHash != "", "set", "not set"))
	fmt.Fprintf(tw, "mfa\t%s\n", yesNo(u.MFAEnrolled, "enrolled", "not enrolled"))
	fmt.Fprintf(tw, "created\t%s\n", u.Created.Format(time.RFC3339))
	fmt.Fprintf(tw, "updated\t%s\n", u.Updated.Format(time.RFC3339))
	tw.Flush()
}

// byName resolves USERNAME to the account's id.
func byName(ctx context.Context, acc *account.Service, name string) (identity.User, error) {
	u, err := acc.Directory().ByUsername(ctx, name)
	if err != nil {
		return identity.User{}, userFlagErr(err)
	}
	return u, nil
}

func (e *env) userSetDisabledCmd(disable bool) *cobra.Command {
	use, short, done := "enable USERNAME", "Re-enable a disabled account", "enabled"
	if disable {
		use, short, done = "disable USERNAME", "Disable an account and end all its sessions", "disabled; its sessions are revoked"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withUser(cmd, args[0], func(ctx context.Context, acc *account.Service, u identity.User) error {
				if _, err := acc.SetDisabled(ctx, cliAgent(), u.ID, disable); err != nil {
					return userFlagErr(err)
				}
				fmt.Fprintf(e.stdout, "User %s %s.\n", u.Username, done)
				return nil
			})
		},
	}
}

func (e *env) userSetRolesCmd() *cobra.Command {
	var roles string
	var breakGlass bool
	cmd := &cobra.Command{
		Use:   "set-roles USERNAME --roles ROLE[,ROLE] [--break-glass]",
		Short: "Replace an account's roles and end its sessions",
		Long: `set-roles replaces an account's roles. Adding a role that reaches patient
data, or security-admin, needs a second administrator's approval
(two-person rule); the offline CLI does it only with --break-glass, which
raises an alert for the privacy officer.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := parseRolesFlag(roles)
			if err != nil {
				return err
			}
			return e.withUser(cmd, args[0], func(ctx context.Context, acc *account.Service, u identity.User) error {
				if _, pending := identity.Split(u.Roles, rs); pending && !breakGlass {
					return needsBreakGlass(rs)
				}
				u, err := acc.SetRolesBreakGlass(ctx, cliAgent(), u.ID, rs)
				if err != nil {
					return userFlagErr(err)
				}
				fmt.Fprintf(e.stdout, "User %s now has roles %s; its sessions are revoked.\n", u.Username, identity.FormatRoles(u.Roles))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&roles, "roles", "", "comma-separated roles: "+roleNames())
	cmd.Flags().BoolVar(&breakGlass, "break-glass", false, breakGlassHelp)
	return cmd
}

func (e *env) userResetMFACmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reset-mfa USERNAME",
		Short: "Remove an account's second factors and end its sessions; the password is kept",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withUser(cmd, args[0], func(ctx context.Context, acc *account.Service, u identity.User) error {
				if _, err := acc.ResetMFA(ctx, cliAgent(), u.ID); err != nil {
					return userFlagErr(err)
				}
				fmt.Fprintf(e.stdout, "MFA of %s reset; its sessions are revoked. A second factor is enrolled again at the next login.\n", u.Username)
				return nil
			})
		},
	}
}

func (e *env) userSessionsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sessions USERNAME",
		Short: "List an account's active sessions (never their tokens)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withUser(cmd, args[0], func(ctx context.Context, acc *account.Service, u identity.User) error {
				ss, err := acc.Sessions(ctx, u.ID)
				if err != nil {
					return userFlagErr(err)
				}
				if len(ss) == 0 {
					fmt.Fprintf(e.stdout, "User %s has no active sessions.\n", u.Username)
					return nil
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SESSION\tCREATED\tLAST SEEN\tEXPIRES\tMFA\tADDRESS")
				for _, x := range ss {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, x.Created.Format(time.RFC3339), x.LastSeen.Format(time.RFC3339),
						x.ExpiresAbsolute.Format(time.RFC3339), yesNo(x.MFA, "yes", "no"), x.Address)
				}
				return tw.Flush()
			})
		},
	}
}

func (e *env) userRevokeSessionsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke-sessions USERNAME",
		Short: "End every session of an account (audited)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withUser(cmd, args[0], func(ctx context.Context, acc *account.Service, u identity.User) error {
				if err := acc.RevokeSessions(ctx, cliAgent(), u.ID); err != nil {
					return userFlagErr(err)
				}
				fmt.Fprintf(e.stdout, "All sessions of %s are revoked.\n", u.Username)
				return nil
			})
		},
	}
}

func (e *env) userSetPasswordCmd() *cobra.Command {
	var secretFile string
	cmd := &cobra.Command{
		Use:   "set-password --enrolment-secret-file FILE USERNAME",
		Short: "Set an account's password with its enrolment secret; the password is read from stdin",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if secretFile == "" {
				return errors.New("--enrolment-secret-file: required (the file holding the one-time enrolment secret)")
			}
			secret, err := readBounded(secretFile, maxSecretFile)
			if err != nil {
				return fmt.Errorf("--enrolment-secret-file: %w", err)
			}
			pw, err := readPassword(e.stdin)
			if err != nil {
				return err
			}
			return e.withAccounts(cmd, func(ctx context.Context, acc *account.Service) error {
				u, err := acc.Enrol(ctx, cliAgent(), args[0], strings.TrimSpace(secret), pw)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "Password of %s set. A second factor is enrolled at the first login.\n", u.Username)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&secretFile, "enrolment-secret-file", "", "file holding the one-time enrolment secret (never pass a secret as a flag)")
	return cmd
}

func readBounded(path string, limit int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return "", err
	}
	if int64(len(b)) > limit {
		return "", errors.New("file is too large to hold an enrolment secret")
	}
	return string(b), nil
}

// readPassword reads the first line of r (without its line ending): the
// password is never a flag, so it stays out of shell history and ps.
func readPassword(r io.Reader) (string, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxPasswordInput), maxPasswordInput)
	line, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from stdin: %w", err)
	}
	if !strings.HasSuffix(line, "\n") && len(line) >= maxPasswordInput {
		return "", errors.New("reading the password from stdin: line too long")
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("stdin: no password given (write it on the first line of stdin)")
	}
	return line, nil
}

// withUser runs fn with the account named username.
func (e *env) withUser(cmd *cobra.Command, username string, fn func(ctx context.Context, acc *account.Service, u identity.User) error) error {
	return e.withAccounts(cmd, func(ctx context.Context, acc *account.Service) error {
		u, err := byName(ctx, acc, username)
		if err != nil {
			return err
		}
		return fn(ctx, acc, u)
	})
}

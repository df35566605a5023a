package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/ident"
)

// maxCaseFile bounds a policy test file.
const maxCaseFile = 8 << 20

func (e *env) policyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Authorization policies: validate, test, explain, install, versions",
		Long: `policy works with the Cedar authorization policies. The defaults are built
in; *.cedar files in DATA/policies/ replace them (validated at start: a bad
file stops the server). Every policy set that comes into force is versioned
by its SHA-256 and audited.`,
	}
	cmd.AddCommand(e.policyValidateCmd(), e.policyTestCmd(), e.policyExplainCmd(), e.policyInstallCmd(), e.policyVersionsCmd(), e.policyShowCmd())
	return cmd
}

// policyDir is DATA/policies.
func (e *env) policyDir() string { return filepath.Join(e.dataDir, app.PolicyDir) }

// loadPolicies reads the policy files given, or the deployment's.
func (e *env) loadPolicies(args []string) (*authz.Policies, error) {
	if len(args) == 0 {
		return authz.LoadPolicies(e.policyDir())
	}
	if len(args) == 1 {
		if st, err := os.Stat(args[0]); err == nil && st.IsDir() {
			return authz.LoadPolicies(args[0])
		}
	}
	files := map[string][]byte{}
	for _, p := range args {
		b, err := readLimited(p, 1<<20)
		if err != nil {
			return nil, err
		}
		files[filepath.Base(p)] = b
	}
	return authz.ParsePolicies(strings.Join(args, ","), files)
}

func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return b, nil
}

func (e *env) policyValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate [DIR | FILE.cedar...]",
		Short: "Parse and type-check policies against the schema (default: the deployment's)",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := e.loadPolicies(args)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "ok: %d policies from %s\nsha256 %s\n", len(p.IDs()), p.Source(), p.Hash())
			return nil
		},
	}
}

func (e *env) policyShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Print the policies in force (or the defaults) and the schema",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := e.loadPolicies(nil)
			if err != nil {
				return err
			}
			for name, b := range p.Text() {
				fmt.Fprintf(e.stdout, "// ---- %s\n%s\n", name, b)
			}
			fmt.Fprintf(e.stdout, "// ---- schema\n%s", authz.SchemaText())
			return nil
		},
	}
}

func (e *env) policyTestCmd() *cobra.Command {
	var policies []string
	cmd := &cobra.Command{
		Use:   "test CASES.json",
		Short: "Run policy test cases (JSON) against the policies; fails on any mismatch",
		Long: `test evaluates each case of CASES.json ({"cases": [...]}, see
docs/authorization.md) against the deployment's policies, or --policies.
Facts are given in the file, nothing is read from the database.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := e.loadPolicies(policies)
			if err != nil {
				return err
			}
			b, err := readLimited(args[0], maxCaseFile)
			if err != nil {
				return err
			}
			var file struct {
				Cases []authz.Case `json:"cases"`
			}
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&file); err != nil {
				return fmt.Errorf("not a policy test file: %w", jsonError(args[0], []byte(b), err))
			}
			res, err := authz.RunCases(p, file.Cases)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			failed := 0
			for _, r := range res {
				if r.Pass {
					fmt.Fprintf(e.stdout, "PASS %s\n", r.Name)
					continue
				}
				failed++
				fmt.Fprintf(e.stdout, "FAIL %s: %s\n", r.Name, r.Why)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d cases failed", failed, len(res))
			}
			fmt.Fprintf(e.stdout, "ok: %d cases\n", len(res))
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&policies, "policies", nil, "policy directory or .cedar files (default: the deployment's)")
	return cmd
}

func (e *env) policyExplainCmd() *cobra.Command {
	var user, action, resource string
	cmd := &cobra.Command{
		Use:   "explain --user USERNAME --action ACTION --resource Type/id",
		Short: "Say whether a user may act on a resource, and which policies decided",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			act, ok := authz.ParseAction(action)
			if !ok {
				return fmt.Errorf("--action: one of read, vread, search, history, everything, create, update, delete, erase, breakGlass, viewIdentifiers, relabel")
			}
			typ, id, ok := strings.Cut(resource, "/")
			if !ok || typ == "" || id == "" {
				return errors.New("--resource: Type/id, e.g. Patient/123")
			}
			a, err := e.openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			u, err := a.Directory().ByUsername(cmd.Context(), user)
			if err != nil {
				return fmt.Errorf("--user: %w", userFlagErr(err))
			}
			x, err := a.PolicyExplainer().ExplainAccount(cmd.Context(), cliAgent(), u, act, typ, id)
			if err != nil {
				return fmt.Errorf("--resource %s: %w", resource, err)
			}
			verdict := "DENIED"
			if x.Allowed {
				verdict = "ALLOWED"
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "%s\t%s %s %s\n", verdict, user, action, resource)
			fmt.Fprintf(w, "policies\t%s\n", strings.Join(x.Policies, ", "))
			fmt.Fprintf(w, "principal\t%s roles=%s fhirUser=%s\n", x.Principal, strings.Join(x.Roles, ","), orNone(x.FHIRUser))
			fmt.Fprintf(w, "resource\towner=%s labels=%s\n", x.Owner, orNone(strings.Join(x.Labels, ",")))
			if strings.HasPrefix(x.Owner, ident.PatientPrefix) {
				fmt.Fprintf(w, "relationship\tcare-team=%v encounter=%v break-glass=%v\n", x.CareTeam, x.Encounter, x.BreakGlass)
				fmt.Fprintf(w, "patient\tvip=%v employee=%v consent-deny=%v consent-permit=%v\n", x.VIP, x.Employee, x.ConsentDeny, x.ConsentOK)
			}
			if x.Purpose != "" {
				fmt.Fprintf(w, "purpose\t%s\n", x.Purpose)
			}
			if x.Mask {
				fmt.Fprintf(w, "masking\tidentifiers redacted\n")
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "username")
	cmd.Flags().StringVar(&action, "action", "read", "action")
	cmd.Flags().StringVar(&resource, "resource", "", "Type/id")
	_ = cmd.MarkFlagRequired("user")
	_ = cmd.MarkFlagRequired("resource")
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (e *env) policyInstallCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "install FILE.cedar...",
		Short: "Validate policy files and make them the deployment's policies (versioned, audited)",
		Long: `install validates the files, replaces the *.cedar files of DATA/policies/
with them, and records the new version (SHA-256, time) with an audit event.
Running servers load policies at start: restart them.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := e.loadPolicies(args)
			if err != nil {
				return err
			}
			c, err := e.loadConfig(config.Overrides{})
			if err != nil {
				return err
			}
			dir := e.policyDir()
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			old, _ := filepath.Glob(filepath.Join(dir, "*.cedar"))
			for _, f := range old {
				if err := os.Remove(f); err != nil {
					return err
				}
			}
			for name, b := range p.Text() {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
					return err
				}
			}
			// Opening the app loads DATA/policies and records the version.
			a, err := app.Open(cmd.Context(), c, e.logger())
			if err != nil {
				return err
			}
			defer a.Close()
			if a.Authz.Policies().Hash() != p.Hash() {
				return errors.New("the installed policies did not come into force (hash mismatch)")
			}
			fmt.Fprintf(e.stdout, "installed %d policies, sha256 %s\n", len(p.IDs()), p.Hash())
			return nil
		},
	}
}

func (e *env) policyVersionsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "versions",
		Short: "List the policy versions that came into force",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := e.openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			vs, err := a.PolicyVersions(cmd.Context(), 100)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			for _, v := range vs {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", v.Seq, v.Created.Format(time.RFC3339), v.Hash, v.Source)
			}
			return w.Flush()
		},
	}
}

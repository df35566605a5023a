package demo

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/totp"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/identity/account"
	"github.com/phivault/phivault/internal/record"
)

// AccountsFile holds the demo accounts (passwords and TOTP URIs) in the
// data directory, mode 0600, so a restart can print them again.
const AccountsFile = "demo-accounts.txt"

// demoUser is one account demo creates.
type demoUser struct {
	username, display string
	role              identity.Role
}

var demoWorkforce = []demoUser{
	{"dr.house", "Gregory House", identity.RolePhysician},
	{"nurse.joy", "Joy Nurse", identity.RoleNurse},
	{"desk.pam", "Pam Desk", identity.RoleFrontDesk},
	{"bill.ing", "Bill Ing", identity.RoleBilling},
	{"privacy.pat", "Pat Privacy", identity.RolePrivacyOfficer},
	{"sec.sam", "Sam Security", identity.RoleSecurityAdmin},
	{"audit.al", "Al Audit", identity.RoleAuditor},
}

// demoPatientUser is the patient account, linked to the first loaded
// synthetic Patient.
var demoPatientUser = demoUser{"patient.pia", "", identity.RolePatient} // no display name: a patient's name is PHI

// demoProxyUser is a proxy account (a parent or carer, ADR 0039): role
// patient, linked to a RelatedPerson of the demo patient that carries the
// proxy grant, so it reads the demo patient's record in the portal.
var demoProxyUser = demoUser{"carer.cam", "", identity.RolePatient}

// Account is a created account as printed: TOTPURI is empty for the
// patient (no second factor is required of patients).
type Account struct {
	Username, Role, Password, FHIRUser, TOTPURI string
}

// demoAddr is the client address recorded for the demo set-up logins.
var demoAddr = netip.MustParseAddr("127.0.0.1")

// Services are what the demo set-up uses: the account service, the
// login service and an operator of the record (record.Operator).
type Services struct {
	Accounts *account.Service
	Login    *login.Service
	Record   Operator
}

// Operator is the record as the demo set-up writes and searches it: a
// trusted operator's (record.Operator).
type Operator interface {
	ImportBundle(ctx context.Context, body []byte) ([]byte, error)
	Create(ctx context.Context, res fhir.Resource) (string, error)
	Search(ctx context.Context, typ string, vals url.Values) (record.Page, error)
}

// CreateAccounts creates the demo accounts: each account is added and
// its password set through the account service (argon2id), and each
// workforce account enrols TOTP through the login service's own
// enrolment flow (password, EnrollTOTP, ConfirmTOTP), so the secret is
// sealed at rest exactly as for a real user; the session that enrolment
// starts is logged out at once. The set-up makes 3 logins per account
// from one address: the login service's per-address limit must allow
// them. A Patient must be stored (LoadPatients): the patient account is
// linked to one.
func CreateAccounts(ctx context.Context, s Services) ([]Account, error) {
	acc := s.Accounts
	pid, err := firstPatientID(ctx, s.Record)
	if err != nil {
		return nil, err
	}
	actor := audit.Agent{User: "demo", Client: "cli"}
	users := append(append([]demoUser(nil), demoWorkforce...), demoPatientUser, demoProxyUser)
	var clinicians []string
	out := make([]Account, 0, len(users))
	for _, du := range users {
		u := identity.User{Username: du.username, DisplayName: du.display, Roles: []identity.Role{du.role}}
		switch {
		case du == demoProxyUser:
			ref, err := demoProxy(ctx, s.Record, pid)
			if err != nil {
				return nil, err
			}
			u.FHIRUser = ref
		case du.role == identity.RolePatient:
			u.FHIRUser = ident.PatientRef(pid).String()
		case du.role == identity.RolePhysician || du.role == identity.RoleNurse:
			// Clinicians reach patients through a treatment relationship:
			// each gets a Practitioner, and the care team of the demo
			// patient below.
			ref, err := demoPractitioner(ctx, s.Record, du.display)
			if err != nil {
				return nil, err
			}
			u.FHIRUser = ref
			clinicians = append(clinicians, ref)
		}
		pw, err := demoPassword(du.username, du.display)
		if err != nil {
			return nil, err
		}
		// Demo accounts are set up by the operator at the console, outside
		// the two-person rule (each raises its alert, as it should).
		nu, secret, err := acc.AddBreakGlass(ctx, actor, u)
		if err != nil {
			return nil, fmt.Errorf("demo account %s: %w", du.username, err)
		}
		if _, err := acc.Enrol(ctx, actor, du.username, secret.Reveal(), pw); err != nil {
			return nil, fmt.Errorf("demo account %s: setting password: %w", du.username, err)
		}
		da := Account{Username: du.username, Role: string(du.role), Password: pw, FHIRUser: nu.FHIRUser}
		if du.role.Workforce() {
			key, err := enrolDemoTOTP(ctx, s.Login, du.username, pw)
			if err != nil {
				return nil, fmt.Errorf("demo account %s: enrolling TOTP: %w", du.username, err)
			}
			da.TOTPURI = key.URI()
		}
		out = append(out, da)
	}
	if err := demoCareTeam(ctx, s.Record, pid, clinicians); err != nil {
		return nil, err
	}
	return out, nil
}

// demoProxy stores a RelatedPerson of the demo patient carrying the proxy
// grant, with the proof the front desk would have checked.
func demoProxy(ctx context.Context, op Operator, pid string) (string, error) {
	res := map[string]any{"resourceType": "RelatedPerson", "active": true,
		"patient":      map[string]any{"reference": ident.PatientRef(pid).String()},
		"relationship": []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH", "display": "mother"}}}},
		"name":         []any{map[string]any{"family": "Carer", "given": []any{"Cam"}}},
		"extension": []any{map[string]any{"url": authz.ProxyExtension,
			"extension": []any{map[string]any{"url": "proof", "valueString": "demo data: proof of guardianship checked at the front desk"}}}}}
	ref, err := op.Create(ctx, res)
	if err != nil {
		return "", fmt.Errorf("demo proxy: %w", err)
	}
	return ref, nil
}

// demoPractitioner stores a Practitioner for a demo clinician.
func demoPractitioner(ctx context.Context, op Operator, name string) (string, error) {
	given, family, _ := strings.Cut(name, " ")
	res := map[string]any{"resourceType": "Practitioner", "active": true,
		"name": []any{map[string]any{"family": family, "given": []any{given}}}}
	ref, err := op.Create(ctx, res)
	if err != nil {
		return "", fmt.Errorf("demo practitioner: %w", err)
	}
	return ref, nil
}

// demoCareTeam puts the demo clinicians on the demo patient's care team.
func demoCareTeam(ctx context.Context, op Operator, pid string, members []string) error {
	parts := make([]any, 0, len(members))
	for _, m := range members {
		parts = append(parts, map[string]any{"member": map[string]any{"reference": m}})
	}
	res := map[string]any{"resourceType": "CareTeam", "status": "active",
		"subject": map[string]any{"reference": ident.PatientRef(pid).String()}, "participant": parts}
	if _, err := op.Create(ctx, res); err != nil {
		return fmt.Errorf("demo care team: %w", err)
	}
	return nil
}

// enrolDemoTOTP runs the first-login TOTP enrolment of username. It
// confirms with the previous step's code (within the ±1 step skew), so
// the code an authenticator app shows right after the demo starts is
// not refused as already used.
func enrolDemoTOTP(ctx context.Context, s *login.Service, username, pw string) (totp.Key, error) {
	res, err := s.Login(ctx, username, pw, demoAddr)
	if err != nil {
		return totp.Key{}, err
	}
	if !res.EnrollmentRequired {
		return totp.Key{}, errors.New("the account did not ask for enrolment")
	}
	enr, err := s.EnrollTOTP(ctx, res.Challenge, demoAddr)
	if err != nil {
		return totp.Key{}, err
	}
	var started login.Started
	for _, at := range []time.Duration{-30 * time.Second, 0} {
		code, err := totp.Code(enr.Key.Secret(), time.Now().Add(at))
		if err != nil {
			return totp.Key{}, err
		}
		started, _, err = s.ConfirmTOTP(ctx, res.Challenge, code, demoAddr)
		if errors.Is(err, login.ErrInvalidCode) {
			continue // the step changed between computing and checking
		}
		if err != nil {
			return totp.Key{}, err
		}
		break
	}
	if started.Session.ID == "" {
		return totp.Key{}, errors.New("the enrolment code was refused")
	}
	p, err := s.Authenticate(ctx, started.Secret.Reveal())
	if err != nil {
		return totp.Key{}, err
	}
	if err := s.Logout(ctx, p, demoAddr); err != nil {
		return totp.Key{}, err
	}
	return enr.Key, nil
}

// firstPatientID returns the id of a stored Patient.
func firstPatientID(ctx context.Context, op Operator) (string, error) {
	page, err := op.Search(ctx, "Patient", url.Values{"_count": {"1"}})
	if err != nil {
		return "", fmt.Errorf("finding a demo patient: %w", err)
	}
	var b struct {
		Entry []struct {
			Resource struct {
				ID string `json:"id"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(page.Bundle, &b); err != nil {
		return "", fmt.Errorf("finding a demo patient: %w", err)
	}
	if len(b.Entry) == 0 || b.Entry[0].Resource.ID == "" {
		return "", errors.New("finding a demo patient: no Patient is stored (load at least one with --patients)")
	}
	return b.Entry[0].Resource.ID, nil
}

// demoAlphabet has no look-alike characters (0/o, 1/l/i).
const demoAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// demoPassword returns a random password of four groups of five
// characters (about 99 bits) that passes the password policy.
func demoPassword(words ...string) (string, error) {
	for {
		var b [20]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		var sb strings.Builder
		for i, c := range b {
			if i > 0 && i%5 == 0 {
				sb.WriteByte('-')
			}
			sb.WriteByte(demoAlphabet[int(c)%len(demoAlphabet)])
		}
		if pw := sb.String(); password.Check(pw, words...) == nil {
			return pw, nil
		}
	}
}

// WriteAccounts stores accs in dir/demo-accounts.txt, mode 0600, one
// tab-separated line per account after comment lines.
func WriteAccounts(dir string, accs []Account) error {
	var sb strings.Builder
	sb.WriteString("# phivault demo accounts: passwords and TOTP secrets of a DEMO; keep this file private.\n")
	sb.WriteString("# username\trole\tpassword\tfhirUser\totpauth URI\n")
	for _, x := range accs {
		fmt.Fprintf(&sb, "%s\t%s\t%s\t%s\t%s\n", x.Username, x.Role, x.Password, dash(x.FHIRUser), dash(x.TOTPURI))
	}
	p := filepath.Join(dir, AccountsFile)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if _, err := f.WriteString(sb.String()); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ReadAccounts reads what WriteAccounts wrote; os.ErrNotExist when the
// data directory has no demo accounts file.
func ReadAccounts(dir string) ([]Account, error) {
	f, err := os.Open(filepath.Join(dir, AccountsFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Account
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Split(line, "\t")
		if len(fs) != 5 {
			return nil, fmt.Errorf("%s: malformed line", AccountsFile)
		}
		for i := range fs {
			if fs[i] == "-" {
				fs[i] = ""
			}
		}
		out = append(out, Account{Username: fs[0], Role: fs[1], Password: fs[2], FHIRUser: fs[3], TOTPURI: fs[4]})
	}
	return out, sc.Err()
}

// PrintAccounts writes the account table, then the otpauth URI and a
// terminal QR code of each workforce account.
func PrintAccounts(w io.Writer, accs []Account, file string) error {
	fmt.Fprintf(w, "\nDemo accounts (also in %s, mode 0600; `phivault demo` prints them again on restart):\n\n", file)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  USERNAME\tROLE\tPASSWORD\tFHIR USER")
	for _, x := range accs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", x.Username, x.Role, x.Password, dash(x.FHIRUser))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nWorkforce accounts need a TOTP code: scan a QR code with an authenticator app,")
	fmt.Fprintln(w, "or add the otpauth URI. The patient accounts log in with their password only:")
	fmt.Fprintln(w, "carer.cam is a proxy (a carer linked to a RelatedPerson with the proxy grant) reading patient.pia's record.")
	for _, x := range accs {
		if x.TOTPURI == "" {
			continue
		}
		fmt.Fprintf(w, "\n%s (%s)\n  %s\n", x.Username, x.Role, x.TOTPURI)
		if err := totp.WriteQR(w, x.TOTPURI); err != nil {
			return err
		}
	}
	return nil
}

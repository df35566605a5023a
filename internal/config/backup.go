package config

import (
	"fmt"
	"strings"
	"time"
)

// Backup schedules encrypted backups and restore drills inside serve
// (issue 17, ADR 0051). Absent (nil), serve takes no backups (the
// backup command still does). On PostgreSQL one process of the fleet
// runs the schedule.
//
// Example (phivault.json):
//
//	"backup": {
//	  "dir": "/srv/phivault-backups",
//	  "recipients": ["age1offline...", "age1drill..."],
//	  "daily_at": "02:30",
//	  "retention": {"daily": 7, "weekly": 4, "monthly": 12},
//	  "drill": {"every": "168h", "identity_file": "/etc/phivault/drill.agekey"}
//	}
type Backup struct {
	// Dir is a directory destination (another disk or a mounted share),
	// resolved against the data directory. Exactly one of Dir and S3.
	Dir string `json:"dir,omitempty"`
	// S3 is an S3-compatible bucket destination.
	S3 *BackupS3 `json:"s3,omitempty"`
	// Recipients are the age public keys ("age1...") every backup is
	// encrypted to; keep their identities offline, except a dedicated
	// drill recipient's (Drill.IdentityFile).
	Recipients []string `json:"recipients"`
	// Every takes a backup at this interval (e.g. "6h"); DailyAt takes
	// one a day at "HH:MM" UTC. Exactly one of them.
	Every   Duration `json:"every,omitzero"`
	DailyAt string   `json:"daily_at,omitempty"`
	// Retention is how many backups to keep (grandfather-father-son);
	// absent: DefaultRetention.
	Retention *BackupRetention `json:"retention,omitempty"`
	// Drill restores the newest backup into a scratch place and checks
	// it, on its own schedule.
	Drill BackupDrill `json:"drill"`
}

// BackupS3 is a bucket of an S3-compatible object store. The
// credentials are read from the environment variables named here (never
// from this file); the defaults are PHIVAULT_BACKUP_S3_ACCESS_KEY and
// PHIVAULT_BACKUP_S3_SECRET_KEY.
type BackupS3 struct {
	// Endpoint is host[:port] (TLS), or http://127.0.0.1:port for a
	// store on the same host.
	Endpoint string `json:"endpoint"`
	Bucket   string `json:"bucket"`
	Prefix   string `json:"prefix,omitempty"` // e.g. "phivault/prod/"
	Region   string `json:"region,omitempty"` // "us-east-1" if empty
	// AccessKeyEnv, SecretKeyEnv and SessionTokenEnv name environment
	// variables holding the credentials.
	AccessKeyEnv    string `json:"access_key_env,omitempty"`
	SecretKeyEnv    string `json:"secret_key_env,omitempty"`
	SessionTokenEnv string `json:"session_token_env,omitempty"`
	// CAFile holds PEM roots for the endpoint's certificate; "": system roots.
	CAFile string `json:"ca_file,omitempty"`

	accessKey, secretKey, sessionToken string
}

// Default environment variables of the S3 credentials.
const (
	BackupAccessKeyEnv = "PHIVAULT_BACKUP_S3_ACCESS_KEY"
	BackupSecretKeyEnv = "PHIVAULT_BACKUP_S3_SECRET_KEY"
)

// Credentials returns the S3 credentials read from the environment at
// load. Never log them.
func (s *BackupS3) Credentials() (access, secret, session string) {
	return s.accessKey, s.secretKey, s.sessionToken
}

// WithCredentials returns s with credentials set, for a configuration
// built in code rather than loaded (tests, tools).
func (s BackupS3) WithCredentials(access, secret string) *BackupS3 {
	s.accessKey, s.secretKey = access, secret
	return &s
}

// BackupRetention is how many backups to keep: the newest of each of the
// last Daily days, Weekly ISO weeks and Monthly months that have one.
// The newest backup and the newest whose drill passed are always kept.
type BackupRetention struct {
	Daily   int `json:"daily"`
	Weekly  int `json:"weekly"`
	Monthly int `json:"monthly"`
}

// DefaultRetention keeps a week of dailies, a month of weeklies and a
// year of monthlies.
var DefaultRetention = BackupRetention{Daily: 7, Weekly: 4, Monthly: 12}

// BackupDrill configures restore drills.
type BackupDrill struct {
	// Every is the interval between drills; 0: DefaultDrillEvery.
	Every Duration `json:"every,omitzero"`
	// IdentityFile holds the age identity that decrypts backups for the
	// drill (mode 0600); a dedicated "drill" recipient is recommended,
	// so the offline identities never sit on the server. Required
	// unless Off.
	IdentityFile string `json:"identity_file,omitempty"`
	// KeyFile is the key file the restored database is opened with in
	// the drill; "" means keys.key_file.
	KeyFile string `json:"key_file,omitempty"`
	// Off turns drills off (the evidence then shows §164.308(a)(7)(ii)(D)
	// as failing).
	Off bool `json:"off,omitempty"`
}

// Backup schedule bounds.
const (
	MinBackupEvery    = 15 * time.Minute
	MaxBackupEvery    = 7 * 24 * time.Hour
	DefaultDrillEvery = 7 * 24 * time.Hour
	MinDrillEvery     = time.Hour
	MaxDrillEvery     = 31 * 24 * time.Hour
)

// Interval is the time between two scheduled backups (24h for DailyAt).
func (b *Backup) Interval() time.Duration {
	if b.DailyAt != "" {
		return 24 * time.Hour
	}
	return b.Every.D()
}

// DailyTime returns the hour and minute of DailyAt, ok false when unset.
func (b *Backup) DailyTime() (hour, minute int, ok bool) {
	if b.DailyAt == "" {
		return 0, 0, false
	}
	t, err := time.Parse("15:04", b.DailyAt)
	if err != nil {
		return 0, 0, false
	}
	return t.Hour(), t.Minute(), true
}

// RetentionOrDefault is Retention, or DefaultRetention when absent.
func (b *Backup) RetentionOrDefault() BackupRetention {
	if b.Retention == nil {
		return DefaultRetention
	}
	return *b.Retention
}

// DrillEvery is Drill.Every, or DefaultDrillEvery when unset.
func (b *Backup) DrillEvery() time.Duration {
	if b.Drill.Every == 0 {
		return DefaultDrillEvery
	}
	return b.Drill.Every.D()
}

// backupEnv reads the S3 credentials from the environment.
func (c *Config) backupEnv(getenv func(string) string) {
	if c.Backup == nil || c.Backup.S3 == nil {
		return
	}
	s := c.Backup.S3
	if s.AccessKeyEnv == "" {
		s.AccessKeyEnv = BackupAccessKeyEnv
	}
	if s.SecretKeyEnv == "" {
		s.SecretKeyEnv = BackupSecretKeyEnv
	}
	s.accessKey, s.secretKey = getenv(s.AccessKeyEnv), getenv(s.SecretKeyEnv)
	if s.SessionTokenEnv != "" {
		s.sessionToken = getenv(s.SessionTokenEnv)
	}
}

func (c *Config) backupPaths() {
	b := c.Backup
	if b == nil {
		return
	}
	b.Dir = c.Path(b.Dir)
	b.Drill.IdentityFile, b.Drill.KeyFile = c.Path(b.Drill.IdentityFile), c.Path(b.Drill.KeyFile)
	if b.Drill.KeyFile == "" {
		b.Drill.KeyFile = c.Keys.KeyFile
	}
	if b.S3 != nil {
		b.S3.CAFile = c.Path(b.S3.CAFile)
	}
}

// validate checks the "backup" section (nil: no schedule).
func (b *Backup) validate() error {
	if b == nil {
		return nil
	}
	bad := func(opt, why string) error { return fmt.Errorf("%w: backup.%s: %s", ErrInvalid, opt, why) }
	switch {
	case b.Dir == "" && b.S3 == nil:
		return bad("dir", "a destination is required: dir (a directory) or s3 (a bucket)")
	case b.Dir != "" && b.S3 != nil:
		return bad("dir", "give one destination: dir or s3, not both")
	}
	if s := b.S3; s != nil {
		if s.Endpoint == "" {
			return bad("s3.endpoint", "required: host[:port] of the S3-compatible service")
		}
		if s.Bucket == "" {
			return bad("s3.bucket", "required")
		}
		if strings.HasPrefix(s.Prefix, "/") || strings.Contains(s.Prefix, "..") {
			return bad("s3.prefix", "must be a relative key prefix such as phivault/prod/")
		}
		if s.accessKey == "" || s.secretKey == "" {
			return bad("s3", fmt.Sprintf("the credentials are read from the environment: set %s and %s", s.AccessKeyEnv, s.SecretKeyEnv))
		}
	}
	if len(b.Recipients) == 0 {
		return bad("recipients", "at least one age recipient (age1...) is required: backups are always encrypted")
	}
	for _, r := range b.Recipients {
		if r == "" || strings.ContainsAny(r, " \t\r\n") || !(strings.HasPrefix(r, "age1") || strings.HasPrefix(r, "ssh-")) {
			return bad("recipients", "each entry must be one age recipient (age1...) or SSH public key")
		}
	}
	switch {
	case b.Every != 0 && b.DailyAt != "":
		return bad("every", "give one schedule: every or daily_at, not both")
	case b.Every == 0 && b.DailyAt == "":
		return bad("every", "a schedule is required: every (an interval such as \"6h\") or daily_at (\"HH:MM\" UTC)")
	case b.Every != 0 && (b.Every.D() < MinBackupEvery || b.Every.D() > MaxBackupEvery):
		return bad("every", fmt.Sprintf("must be between %s and %s", MinBackupEvery, MaxBackupEvery))
	}
	if _, _, ok := b.DailyTime(); b.DailyAt != "" && !ok {
		return bad("daily_at", "must be HH:MM (24-hour, UTC), e.g. \"02:30\"")
	}
	if r := b.Retention; r != nil {
		for _, c := range []struct {
			opt string
			n   int
		}{{"daily", r.Daily}, {"weekly", r.Weekly}, {"monthly", r.Monthly}} {
			if c.n < 0 || c.n > maxBackupRetention {
				return bad("retention."+c.opt, fmt.Sprintf("must be between 0 and %d", maxBackupRetention))
			}
		}
	}
	d := b.Drill
	if d.Off {
		return nil
	}
	if d.Every != 0 && (d.Every.D() < MinDrillEvery || d.Every.D() > MaxDrillEvery) {
		return bad("drill.every", fmt.Sprintf("must be between %s and %s", MinDrillEvery, MaxDrillEvery))
	}
	if d.IdentityFile == "" {
		return bad("drill.identity_file", "required: the age identity of a drill recipient (or set drill.off, and the evidence shows untested backups)")
	}
	return nil
}

// maxBackupRetention matches backup.MaxRetention.
const maxBackupRetention = 4000

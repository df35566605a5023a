package config_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/config"
)

const recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"

func TestBackupValidate(t *testing.T) {
	good := func() *config.Backup {
		return &config.Backup{Dir: "/srv/backups", Recipients: []string{recipient}, DailyAt: "02:30",
			Drill: config.BackupDrill{IdentityFile: "/etc/phivault/drill.agekey"}}
	}
	s3 := func() *config.BackupS3 {
		return config.BackupS3{Endpoint: "s3.example.org", Bucket: "b", AccessKeyEnv: "A", SecretKeyEnv: "S"}.WithCredentials("AKIA", "secret-value")
	}
	bad := []struct {
		name, option string
		mutate       func(*config.Backup)
	}{
		{"no destination", "backup.dir", func(b *config.Backup) { b.Dir = "" }},
		{"two destinations", "backup.dir", func(b *config.Backup) { b.S3 = s3() }},
		{"s3 without bucket", "backup.s3.bucket", func(b *config.Backup) { b.Dir = ""; b.S3 = s3(); b.S3.Bucket = "" }},
		{"s3 without endpoint", "backup.s3.endpoint", func(b *config.Backup) { b.Dir = ""; b.S3 = s3(); b.S3.Endpoint = "" }},
		{"s3 absolute prefix", "backup.s3.prefix", func(b *config.Backup) { b.Dir = ""; b.S3 = s3(); b.S3.Prefix = "/x" }},
		{"s3 without credentials", "backup.s3", func(b *config.Backup) {
			b.Dir = ""
			b.S3 = &config.BackupS3{Endpoint: "s3.example.org", Bucket: "b", AccessKeyEnv: "A", SecretKeyEnv: "S"}
		}},
		{"no recipients", "backup.recipients", func(b *config.Backup) { b.Recipients = nil }},
		{"a private key as recipient", "backup.recipients", func(b *config.Backup) { b.Recipients = []string{"AGE-SECRET-KEY-1XYZ"} }},
		{"no schedule", "backup.every", func(b *config.Backup) { b.DailyAt = "" }},
		{"two schedules", "backup.every", func(b *config.Backup) { b.Every = config.Duration(time.Hour) }},
		{"too often", "backup.every", func(b *config.Backup) { b.DailyAt = ""; b.Every = config.Duration(time.Minute) }},
		{"too rarely", "backup.every", func(b *config.Backup) { b.DailyAt = ""; b.Every = config.Duration(30 * 24 * time.Hour) }},
		{"bad daily time", "backup.daily_at", func(b *config.Backup) { b.DailyAt = "25:00" }},
		{"negative retention", "backup.retention.weekly", func(b *config.Backup) { b.Retention = &config.BackupRetention{Weekly: -1} }},
		{"absurd retention", "backup.retention.daily", func(b *config.Backup) { b.Retention = &config.BackupRetention{Daily: 100000} }},
		{"no drill identity", "backup.drill.identity_file", func(b *config.Backup) { b.Drill.IdentityFile = "" }},
		{"drill too often", "backup.drill.every", func(b *config.Backup) { b.Drill.Every = config.Duration(time.Minute) }},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default(t.TempDir())
			c.Backup = good()
			tt.mutate(c.Backup)
			err := c.Validate()
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tt.option) {
				t.Fatalf("Validate: %v, want ErrInvalid naming %s", err, tt.option)
			}
			if strings.Contains(err.Error(), "secret-value") {
				t.Fatalf("error shows the secret: %v", err)
			}
		})
	}
	c := config.Default(t.TempDir())
	c.Backup = good()
	if err := c.Validate(); err != nil {
		t.Fatalf("a good section: %v", err)
	}
	if c.Backup.Interval() != 24*time.Hour || c.Backup.DrillEvery() != config.DefaultDrillEvery || c.Backup.RetentionOrDefault() != config.DefaultRetention {
		t.Fatalf("defaults: interval %v drill %v retention %+v", c.Backup.Interval(), c.Backup.DrillEvery(), c.Backup.RetentionOrDefault())
	}
	c.Backup.Drill = config.BackupDrill{Off: true}
	if err := c.Validate(); err != nil {
		t.Fatalf("drills off: %v", err)
	}
}

// Load reads the S3 credentials from the environment variables the file
// names, resolves paths, and defaults the drill key file to the server's.
func TestBackupLoad(t *testing.T) {
	dir := t.TempDir()
	c := config.Default(dir)
	if err := config.Write(c); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, config.FileName)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["backup"] = map[string]any{
		"s3":         map[string]any{"endpoint": "minio.internal:9000", "bucket": "phi", "prefix": "prod/", "access_key_env": "MY_KEY"},
		"recipients": []string{recipient},
		"every":      "6h",
		"retention":  map[string]any{"daily": 3, "weekly": 2, "monthly": 1},
		"drill":      map[string]any{"identity_file": "drill.agekey"},
	}
	raw, _ = json.Marshal(m)
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MY_KEY": "AKIAEXAMPLE", config.BackupSecretKeyEnv: "s3cr3t"}
	got, err := config.Load(dir, func(k string) string { return env[k] }, config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	b := got.Backup
	if a, s, _ := b.S3.Credentials(); a != "AKIAEXAMPLE" || s != "s3cr3t" {
		t.Fatalf("credentials not read from the environment")
	}
	if b.Drill.IdentityFile != filepath.Join(dir, "drill.agekey") || b.Drill.KeyFile != got.Keys.KeyFile || b.Interval() != 6*time.Hour {
		t.Fatalf("paths or schedule: %+v", b.Drill)
	}
	if r := b.RetentionOrDefault(); r != (config.BackupRetention{Daily: 3, Weekly: 2, Monthly: 1}) {
		t.Fatalf("retention %+v", r)
	}
	delete(env, config.BackupSecretKeyEnv)
	_, err = config.Load(dir, func(k string) string { return env[k] }, config.Overrides{})
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), config.BackupSecretKeyEnv) || strings.Contains(err.Error(), "AKIAEXAMPLE") {
		t.Fatalf("missing secret: %v", err)
	}
}

package cli

import "testing"

// TestWithoutPassword (penetration test): init --postgres wrote the URL
// with its password into phivault.json.
func TestWithoutPassword(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:S3cret@db:5432/pv?sslmode=disable":       "postgres://u@db:5432/pv?sslmode=disable",
		"postgresql://u@db/pv":                                 "postgresql://u@db/pv",
		"postgres://db/pv?password=S3cret&sslmode=require":     "postgres://db/pv?sslmode=require",
		"host=db user=u password=S3cret dbname=pv":             "host=db user=u dbname=pv",
		"host=db password='S3 cr\\'et' dbname=pv":              "host=db dbname=pv",
		"postgres://postgres@127.0.0.1:5432/x?sslmode=disable": "postgres://postgres@127.0.0.1:5432/x?sslmode=disable",
	} {
		if got := withoutPassword(in); got != want {
			t.Errorf("withoutPassword(%q) = %q, want %q", in, got, want)
		}
	}
}

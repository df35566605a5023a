package cli

import (
	"context"
	"strings"
	"testing"
)

// TestProbeRetriesABusyEntry: under load the server may refuse the
// search inside the probe's batch (an entry 503) while answering the
// batch: the import waits and asks again instead of failing (a 1,000
// patient import on a busy machine stopped at its 92nd file).
func TestProbeRetriesABusyEntry(t *testing.T) {
	calls := 0
	load := func(context.Context, []byte) ([]byte, error) {
		calls++
		if calls < 3 {
			return []byte(`{"resourceType":"Bundle","type":"batch-response","entry":[{"response":{"status":"503 Service Unavailable"}}]}`), nil
		}
		return []byte(`{"resourceType":"Bundle","type":"batch-response","entry":[{"resource":{"resourceType":"Bundle","entry":[{"resource":{}}]},"response":{"status":"200 OK"}}]}`), nil
	}
	found, err := probe(t.Context(), load, "Patient?identifier=a|b")
	if err != nil || !found || calls != 3 {
		t.Fatalf("probe = %v, %v after %d calls; want found after 3", found, err, calls)
	}
	// A refusal that is not load ends the probe with its status.
	_, err = probe(t.Context(), func(context.Context, []byte) ([]byte, error) {
		return []byte(`{"resourceType":"Bundle","type":"batch-response","entry":[{"response":{"status":"403 Forbidden"}}]}`), nil
	}, "Patient?identifier=a|b")
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("a 403 entry: %v", err)
	}
}

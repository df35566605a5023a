package audit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
)

// TestLedgerEventFitsALeaf: an event with MaxCommitsPerEvent
// commitments of the longest references (64-character ids, a long type
// and owner) still fits an entry bundle's leaf (a 16-bit length).
func TestLedgerEventFitsALeaf(t *testing.T) {
	id := strings.Repeat("a", 64)
	c := audit.Commit{Kind: audit.CommitBaseline, Ref: "MedicinalProductAuthorization/" + id + "/_history/9223372036854775807",
		Owner: "Patient/" + id, Deleted: true, Version: make([]byte, 32), Index: make([]byte, 32)}
	ev := audit.Event{Time: time.Now(), Action: audit.ActionLedgerBaseline, Outcome: audit.OutcomeSuccess,
		Agent: audit.Agent{User: strings.Repeat("u", 64), Client: "cli"}, Purpose: "HOPERAT", RequestID: strings.Repeat("r", 64)}
	for range audit.MaxCommitsPerEvent {
		ev.Ledger = append(ev.Ledger, c)
	}
	b, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if leaf := audit.SaltSize + len(b); leaf >= 1<<16 {
		t.Errorf("a leaf of %d bytes: more than an entry bundle can hold", leaf)
	}
}

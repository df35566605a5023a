// Command monitoreval measures privacy and intrusion monitoring (issue
// 16) on generated hospitals with injected misuse, through the path a
// hospital's files take: the context Bundle through fhirctx, the
// AuditEvent NDJSON through balp, the engine, its alerts. See
// bench/README.md, "Issue 16: monitoring evaluation and speed".
//
//	go run ./bench/monitoreval -seeds 1,2,3 -sizes small,medium -out DIR
//	go run ./bench/monitoreval -speed -events 5000000 -out DIR
//
// The evaluation writes DIR/<size>-seed<n>/{context.json,events.ndjson,
// truth.tsv} (reused when present), scores each and prints markdown
// tables: precision over alerted (user, patient) pairs and attack
// alerts, recall per category, macro recall. The speed run generates
// the log to a file first, then scores it in a fresh child process that
// reports its rate and its peak RSS (VmHWM), so that the generator's
// memory is not counted.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "monitoreval:", err)
		os.Exit(1)
	}
}

// Command suite measures phivault against bench/baseline, the unsecured
// reference server, in one command, and prints the table of issue 15 with
// each figure's target and whether it is met. See bench/README.md.
//
//	go run ./bench/suite -patients 10000 -duration 20s -rounds 2 -work DIR [-postgres URL] [-phivault BIN] [-keep]
//
// In order it: builds (or takes) the phivault, baseline and load
// binaries; generates the synthetic patients (or reuses them from an
// earlier run in the same -work directory); imports them into a fresh
// phivault data directory, timed, with its speed per tenth of the data and
// its peak RSS; optionally the same into a fresh PostgreSQL database that
// it creates and drops; loads the baseline with the same files; serves
// both, on the same TLS certificate; runs every load mode for -rounds
// rounds, baseline and phivault interleaved; and writes the markdown table
// to stdout and the raw figures as JSON to -out.
//
// Progress goes to stderr. The admin token that "phivault init" prints is
// read from its output and handed to bench/load through the environment,
// never printed, logged or put on a command line. The servers' logs are
// kept in WORK/logs.
//
// Nothing here asserts a target: the table says "met" or "not met", and
// the command fails only when a step cannot run.
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
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "suite:", err)
		os.Exit(1)
	}
}

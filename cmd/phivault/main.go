// Command phivault is a self-hosted FHIR R4 server in which every
// safeguard is on by default. See the README and docs/.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/phivault/phivault/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

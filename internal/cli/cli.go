package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/config"
)

// env carries the process environment to the commands; nothing reads
// os.Getenv or os.Stdout elsewhere.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	dataDir        string
	logFormat      string // --log-format
}

// Main runs the CLI and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := e.root()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "phivault:", err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

var errUsage = errors.New("usage")

func (e *env) root() *cobra.Command {
	root := &cobra.Command{
		Use:           "phivault",
		Short:         "A FHIR R4 server with every safeguard on by default",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&e.dataDir, "data", config.DefaultDataDir, "data directory")
	root.PersistentFlags().StringVar(&e.logFormat, "log-format", "", `log format: "text" (compact lines), "json" (one object a line), or "auto" (text when stderr is a terminal; default, or $PHIVAULT_LOG_FORMAT, or logging.format)`)
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if !config.ValidLogFormat(e.logFormat) {
			return fmt.Errorf("--log-format %q: want text, json or auto", e.logFormat)
		}
		return nil
	}
	root.AddCommand(
		e.initCmd(),
		e.serveCmd(),
		e.demoCmd(),
		e.importCmd(),
		e.synthCmd(),
		e.keysCmd(),
		e.backupCmd(),
		e.verifyCmd(),
		e.auditCmd(),
		e.tokenCmd(),
		e.clientCmd(),
		e.userCmd(),
		e.policyCmd(),
		e.monitorCmd(),
		e.reindexCmd(),
		e.exportCmd(),
		e.versionCmd(),
	)
	return root
}

func (e *env) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(e.stdout, "phivault", app.Version)
			return nil
		},
	}
}

// logger is the logger of the commands that open an instance: text or
// JSON (logFormatFor) to stderr.
func (e *env) logger() *slog.Logger {
	return slog.New(app.LogHandler(e.stderr, e.logFormatFor(e.getenv("PHIVAULT_LOG_FORMAT"))))
}

// logFormatFor resolves the log format: --log-format, else configured
// (the configuration's logging.format or $PHIVAULT_LOG_FORMAT), else
// text when stderr is a terminal (a person reads it) and JSON when it is
// not (a collector does).
func (e *env) logFormatFor(configured string) string {
	f := e.logFormat
	if f == "" {
		f = configured
	}
	if f == config.LogFormatText || f == config.LogFormatJSON {
		return f
	}
	if isTerminal(e.stderr) {
		return config.LogFormatText
	}
	return config.LogFormatJSON
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// loadConfig reads the data directory's configuration with overrides,
// and checks what only the domains can (app.CheckConfig).
func (e *env) loadConfig(o config.Overrides) (config.Config, error) {
	if o.LogFormat == "" {
		o.LogFormat = e.logFormat
	}
	c, err := config.Load(e.dataDir, e.getenv, o)
	if err != nil {
		return config.Config{}, e.dataDirHint(err)
	}
	if err := app.CheckConfig(c); err != nil {
		return config.Config{}, err
	}
	return c, nil
}

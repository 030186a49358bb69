// Command hoso is the ledger's one binary: serve, import, report, rebuild,
// verify, backup, restore, simulate and bench. Every flag also reads an environment variable
// named HOSO_ and the flag's name in upper case with '-' as '_'.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "hoso:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitError carries a specific exit status (verify uses 1 for a bad ledger).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

const usage = `hoso: a tamper-evident audit ledger of administrative-procedure dossiers

Usage: hoso COMMAND [flags]

Commands:
  serve     run the ledger: embedded NATS + SQLite, HTTP API, NATS ingest service
  verify    check the ledger (or a saved dossier proof) against its signed checkpoints
  report    print the on-time and backlog report from the read model: text, csv, xlsx or json
  rebuild   rebuild the read model from the stream (stop the server first)
  backup    write the ledger's events and signed checkpoints into a directory
  restore   check a backup against its signed checkpoints and write it into an empty ledger
  bench     measure ingest, rebuild, reports and memory against raw baselines in one run
  simulate  generate realistic dossier histories (NDJSON, or sent to a running ledger)
  import    import an NDJSON history through the validating ingest service
  token     make, list and revoke the principals' bearer tokens (as an admin)
  version   print the version

Run "hoso COMMAND -h" for a command's flags. Every flag can also be set with
an environment variable: --nats-url is HOSO_NATS_URL.
`

// Version is the binary's version, set at build time with -ldflags.
var Version = "0.1.0-dev"

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		m := NewMain()
		if err := m.ParseFlags(rest, stderr); err != nil {
			return err
		}
		return m.Serve(ctx)
	case "report":
		return runReport(ctx, rest, stdout, stderr)
	case "rebuild":
		return runRebuild(ctx, rest, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "verify":
		return runVerify(ctx, rest, stdout, stderr)
	case "backup":
		return runBackup(ctx, rest, stdout, stderr)
	case "restore":
		return runRestore(ctx, rest, stdout, stderr)
	case "simulate":
		return runSimulate(ctx, rest, stdout, stderr, time.Now)
	case "import":
		return runImport(ctx, rest, stdin, stdout, stderr)
	case "token":
		return runToken(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// envName is the environment variable that sets a flag.
func envName(flagName string) string {
	return "HOSO_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseWithEnv parses args, then sets every flag not given on the command
// line from its environment variable, if set.
func parseWithEnv(fs *flag.FlagSet, args []string) error {
	return parseWithEnvPrefix(fs, args, "HOSO_")
}

// parseWithEnvPrefix is parseWithEnv for commands whose flags would clash
// with serve's variables (bench's --data is not the ledger's data dir).
func parseWithEnvPrefix(fs *flag.FlagSet, args []string, prefix string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		name := prefix + strings.TrimPrefix(envName(f.Name), "HOSO_")
		if v, ok := os.LookupEnv(name); ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, serr)
			}
		}
	})
	return err
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error {
	// From the environment, several values are separated by commas.
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*m = append(*m, p)
		}
	}
	return nil
}

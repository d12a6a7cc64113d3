// Command sidecar-webhook validates, defaults and explains Istio Sidecars.
//
//	sidecar-webhook serve    the admission webhook server (in a cluster)
//	sidecar-webhook check    the same decisions offline, on YAML/JSON files
//	sidecar-webhook resolve  which Sidecar a pod gets, and its effective listeners
//
// main only turns flags into configuration and hands a signal-aware context
// down; the work is in the packages. This is the shipped binary: the local
// control plane is a command of its own (cmd/sidecar-webhook-dev), and
// TestProductionDependencies keeps its packages out of this one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes shared by every subcommand.
const (
	exitOK      = 0
	exitDenied  = 1 // check: some Sidecar would be denied
	exitFailure = 1 // serve: the server could not run
	exitUsage   = 2 // bad flags, unreadable or unparsable input
)

// errUsage marks an error whose cause is how the command was called.
var errUsage = errors.New("usage")

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"serve", "run the admission webhook server (in a cluster)", runServe},
		{"check", "decide on Sidecars in files, offline (CI, GitOps repositories)", runCheck},
		{"resolve", "show which Sidecar a pod gets and its effective listeners", runResolve},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdin, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "sidecar-webhook: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: sidecar-webhook COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'sidecar-webhook COMMAND -h' for a command's flags.")
}

// parseFlags parses args, printing errors and help to stderr; it returns
// errUsage (exit 2) on a bad flag and flag.ErrHelp for -h.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

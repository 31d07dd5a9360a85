// Command presencegw is the Outlook/Exchange ⇄ XMPP presence gateway: one
// binary that serves, syncs directories, explains mappings and checks a
// deployment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// command is one subcommand.
type command struct {
	name  string
	usage string // arguments after the name
	help  string // one line
	run   func(ctx context.Context, args []string, out, errOut io.Writer) error
}

// commands is filled in init: the commands' flag sets print their usage
// from it, which a plain initializer would make an initialization cycle.
var commands []command

func init() {
	commands = []command{
		{"serve", "-c FILE", "run the gateway with a configuration file", runServe},
		{"demo", "[--listen ADDR] [--xmpp [--xmpp-port N]]", "run the gateway on its embedded demo directory (no configuration needed)", runDemo},
		{"resolve", "[-c FILE] [--json] [--live] [--sync] ADDRESS...", "show who an address maps to, and why", runResolve},
		{"sync", "-c FILE [--json]", "read every directory in full now, showing progress", runSync},
		{"conflicts", "[-c FILE] [--json]", "list addresses claimed by several people", runConflicts},
		{"override", "-c FILE set ADDRESS JID | remove ADDRESS | delete ADDRESS | list", "manage admin overrides of single mappings", runOverride},
		{"optout", "-c FILE ADDRESS [on|off]", "keep a person's chat presence free of calendar states (no argument: show)", runOptOut},
		{"token", "-c FILE USER | --api-key NAME", "print a kopano-presence token for USER, or make a new API key", runToken},
		{"manifest", "--base-url URL [--id GUID] [-c FILE] [-o FILE]", "write the Outlook add-in's XML manifest", runManifest},
		{"doctor", "-c FILE", "check the configuration and reach every directory and the XMPP server", runDoctor},
		{"version", "", "print the version", runVersion},
	}
}

// errUsage marks errors caused by how the command was called (exit 2).
var errUsage = errors.New("usage")

// errUnresolved makes resolve exit 1 when some address did not resolve.
var errUnresolved = errors.New("some addresses did not resolve")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit code: 0 success,
// 1 failure, 2 bad usage.
func run(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(errOut)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], out, errOut)
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(errOut, "presencegw %s: %v\nusage: presencegw %s %s\n", c.name, err, c.name, c.usage)
			return 2
		case errors.Is(err, errUnresolved):
			return 1
		default:
			fmt.Fprintf(errOut, "presencegw %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(errOut, "presencegw: unknown command %q\n\n", args[0])
	usage(errOut)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "presencegw: Outlook/Exchange ⇄ XMPP presence gateway")
	fmt.Fprintln(w, "\nusage: presencegw COMMAND [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.help)
	}
	fmt.Fprintln(w, "\nRun 'presencegw COMMAND --help' for the flags of one command.")
}

// newFlags makes a flag set whose --help prints the command's usage.
func newFlags(name string, errOut io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(errOut)
	for _, c := range commands {
		if c.name == name {
			fs.Usage = func() {
				fmt.Fprintf(errOut, "usage: presencegw %s %s\n\n%s\n", c.name, c.usage, c.help)
				if hasFlags(fs) {
					fmt.Fprintln(errOut, "\nflags:")
					fs.PrintDefaults()
				}
			}
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parse parses flags, also those given after positional arguments
// ("resolve alice@x --json"), which the flag package alone stops at.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func runVersion(_ context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlags("version", errOut)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(out, "presencegw", version())
	return nil
}

// version is the module version, or the VCS revision of a source build.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" && (v == "" || v == "(devel)") {
		v = "devel-" + rev[:min(12, len(rev))]
		if settings["vcs.modified"] == "true" {
			v += "-dirty"
		}
	}
	return strings.TrimSpace(v + " " + bi.GoVersion)
}

// newLogger makes the process logger from the log settings.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

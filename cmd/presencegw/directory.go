package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/presencegw/presencegw/ldapmap"
	"github.com/presencegw/presencegw/rules"
)

// cliApp opens the app for a one-shot command: logs go to errOut at warn
// level unless -v, so the command's own output stays readable.
func cliApp(path string, verbose bool, errOut io.Writer) (*app, error) {
	level := "error"
	if verbose {
		level = "debug"
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	return openApp(cfg, path == "", newLogger(errOut, "text", level))
}

func runResolve(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlags("resolve", errOut)
	path := fs.String("c", "", "configuration file (default: the embedded demo directory)")
	asJSON := fs.Bool("json", false, "print JSON, one object per address")
	live := fs.Bool("live", false, "also ask every LDAP directory directly what it holds for the address now")
	syncFirst := fs.Bool("sync", false, "read the directories in full before resolving")
	verbose := fs.Bool("v", false, "log what happens")
	addrs, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%w: give at least one address", errUsage)
	}
	a, err := cliApp(*path, *verbose, errOut)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.ensureSynced(ctx, *syncFirst, errOut); err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	failed := false
	for _, addr := range addrs {
		r := a.dir.Resolve(addr)
		failed = failed || r.Status != ldapmap.StatusResolved
		var liveRes []liveAnswer
		if *live {
			liveRes = a.lookupLive(ctx, addr)
		}
		pres, err := a.presenceOf(ctx, r)
		if err != nil {
			fmt.Fprintf(errOut, "presencegw resolve: calendar of %s: %v\n", addr, err)
		}
		if *asJSON {
			if err := enc.Encode(struct {
				ldapmap.Resolution
				Presence *rules.Output `json:"presence,omitempty"`
				Live     []liveAnswer  `json:"live,omitempty"`
			}{r, pres, liveRes}); err != nil {
				return err
			}
			continue
		}
		fmt.Fprint(out, explain(r, pres))
		if line := a.calendarRoute(r); line != "" {
			fmt.Fprintf(out, "  %-11s %s\n", "calendar:", line)
		}
		for _, l := range liveRes {
			if l.Error != "" {
				fmt.Fprintf(out, "  %-11s %s: %s\n", "live:", l.Source, l.Error)
				continue
			}
			if len(l.People) == 0 {
				fmt.Fprintf(out, "  %-11s %s: no enabled entry holds it now\n", "live:", l.Source)
			}
			for _, p := range l.People {
				fmt.Fprintf(out, "  %-11s %s: %s → %s\n", "live:", l.Source, p.DN, cmp.Or(p.JID, p.JIDProblem))
			}
		}
	}
	if failed {
		return errUnresolved
	}
	return nil
}

// presenceOf reads the calendar of a resolved person now and derives
// their presence; nil without a calendar source or a person. (The CLI
// has no live chat presence: without a calendar there is nothing to say.)
func (a *app) presenceOf(ctx context.Context, r ldapmap.Resolution) (*rules.Output, error) {
	if a.presence == nil || a.calendar == nil || r.Person == nil || r.Person.MailboxID == "" {
		return nil, nil
	}
	if err := a.presence.Refresh(ctx, a.calendar, r.Person.MailboxID); err != nil {
		return nil, err
	}
	out, _ := a.presence.Get(r.Person.MailboxID)
	return &out, nil
}

// liveAnswer is what one LDAP directory says about an address right now.
type liveAnswer struct {
	Source string            `json:"source"`
	People []*ldapmap.Person `json:"people"`
	Error  string            `json:"error,omitempty"`
}

func (a *app) lookupLive(ctx context.Context, addr string) []liveAnswer {
	var out []liveAnswer
	for _, s := range a.ldap {
		people, err := s.Lookup(ctx, addr)
		l := liveAnswer{Source: s.Name(), People: people}
		if err != nil {
			l.Error = err.Error()
		}
		out = append(out, l)
	}
	return out
}

// ensureSynced makes sure the index has something to answer from: the
// demo and --sync read the directories now; otherwise the store's last
// snapshot is used, and a source never synced is an error that says what
// to run.
func (a *app) ensureSynced(ctx context.Context, force bool, errOut io.Writer) error {
	if force || a.demo {
		_, err := a.dir.SyncFull(ctx, nil)
		return err
	}
	var never []string
	for _, h := range a.dir.Health() {
		if h.LastFull.IsZero() {
			never = append(never, h.Source)
		}
	}
	if len(never) > 0 {
		return fmt.Errorf("directory %s never synced into %s: run 'presencegw sync -c %s' (or pass --sync)",
			strings.Join(never, ", "), a.cfg.Store, a.cfg.Path())
	}
	return nil
}

func runSync(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlags("sync", errOut)
	path := fs.String("c", "", "configuration file")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	verbose := fs.Bool("v", false, "log what happens")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("%w: -c FILE is required", errUsage)
	}
	a, err := cliApp(*path, *verbose, errOut)
	if err != nil {
		return err
	}
	defer a.close()
	start := time.Now()
	last := time.Time{}
	progress := func(p ldapmap.Progress) {
		if time.Since(last) < time.Second {
			return
		}
		last = time.Now()
		rate := float64(p.Entries) / max(p.Elapsed.Seconds(), 0.001)
		fmt.Fprintf(errOut, "%s: %d entries, %.0f/s, %s\n", p.Source, p.Entries, rate, p.Elapsed.Round(100*time.Millisecond))
	}
	results, syncErr := a.dir.SyncFull(ctx, progress)
	people, addrs := a.dir.Index().Len()
	conflicts := a.dir.Conflicts()
	unresolved := 0
	for _, c := range conflicts {
		if c.Winner < 0 {
			unresolved++
		}
	}
	if *asJSON {
		type src struct {
			ldapmap.SourceResult
			Error string `json:"error,omitempty"`
		}
		sum := struct {
			Sources    []src   `json:"sources"`
			People     int     `json:"people"`
			Addresses  int     `json:"addresses"`
			Conflicts  int     `json:"conflicts"`
			Unresolved int     `json:"unresolved_conflicts"`
			Seconds    float64 `json:"seconds"`
		}{People: people, Addresses: addrs, Conflicts: len(conflicts), Unresolved: unresolved, Seconds: time.Since(start).Seconds()}
		for _, r := range results {
			s := src{SourceResult: r}
			if r.Err != nil {
				s.Error = r.Err.Error()
			}
			sum.Sources = append(sum.Sources, s)
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return err
		}
		return syncErr
	}
	fmt.Fprintf(out, "%-16s %8s %9s %9s %8s %8s %8s %9s\n", "source", "people", "addresses", "disabled", "no mail", "no jid", "removed", "seconds")
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(out, "%-16s FAILED: %v (last good entries kept)\n", r.Source, r.Err)
			continue
		}
		s := r.Stats
		fmt.Fprintf(out, "%-16s %8d %9d %9d %8d %8d %8d %9.2f\n", r.Source, s.People, s.Addresses, s.Disabled, s.NoMail+s.OutsideDomains, s.NoJID, r.Removed, r.Duration.Seconds())
	}
	fmt.Fprintf(out, "index: %d people, %d addresses, %d conflicts (%d unresolved), %.2fs\n",
		people, addrs, len(conflicts), unresolved, time.Since(start).Seconds())
	return syncErr
}

func runConflicts(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlags("conflicts", errOut)
	path := fs.String("c", "", "configuration file (default: the embedded demo directory)")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	a, err := cliApp(*path, false, errOut)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.ensureSynced(ctx, false, errOut); err != nil {
		return err
	}
	conflicts := a.dir.Conflicts()
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if conflicts == nil {
			conflicts = []*ldapmap.Conflict{}
		}
		return enc.Encode(conflicts)
	}
	if len(conflicts) == 0 {
		fmt.Fprintln(out, "no conflicts")
		return nil
	}
	for _, c := range conflicts {
		fmt.Fprint(out, a.dir.Resolve(c.Address).String())
	}
	return nil
}

func runOverride(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlags("override", errOut)
	path := fs.String("c", "", "configuration file")
	note := fs.String("note", "", "why (shown in explanations)")
	name := fs.String("name", "", "display name, for an address no directory knows")
	mailbox := fs.String("mailbox", "", "mailbox id, for an address no directory knows")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("%w: -c FILE is required", errUsage)
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: say set, remove, delete or list", errUsage)
	}
	a, err := cliApp(*path, false, errOut)
	if err != nil {
		return err
	}
	defer a.close()
	switch {
	case pos[0] == "set" && len(pos) == 3:
		o, err := a.dir.SetOverride(ldapmap.Override{Address: pos[1], JID: pos[2], Note: *note, Name: *name, MailboxID: *mailbox})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "override set: %s → %s\n", o.Address, o.JID)
	case pos[0] == "remove" && len(pos) == 2:
		o, err := a.dir.SetOverride(ldapmap.Override{Address: pos[1], Note: *note})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "override set: %s → nothing\n", o.Address)
	case pos[0] == "delete" && len(pos) == 2:
		found, err := a.dir.DeleteOverride(pos[1])
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("no override for %s", pos[1])
		}
		fmt.Fprintf(out, "override deleted: %s (the directories decide again)\n", pos[1])
	case pos[0] == "list" && len(pos) == 1:
		for _, o := range a.dir.Overrides() {
			fmt.Fprintf(out, "%s → %s\t%s\t%s\n", o.Address, cmp.Or(o.JID, "nothing"), o.Created.Format(time.RFC3339), o.Note)
		}
	default:
		return fmt.Errorf("%w: %q", errUsage, strings.Join(pos, " "))
	}
	return nil
}

func runDoctor(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlags("doctor", errOut)
	path := fs.String("c", "", "configuration file")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("%w: -c FILE is required", errUsage)
	}
	a, err := cliApp(*path, false, errOut)
	if err != nil {
		return err
	}
	defer a.close()
	fmt.Fprintf(out, "config %s: ok\nstore %s: ok\n", *path, a.cfg.Store)
	failed := false
	for _, s := range a.ldap {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.Check(ctx)
		cancel()
		if err != nil {
			failed = true
			fmt.Fprintf(out, "ldap %s: FAILED: %v\n", s.Name(), err)
			continue
		}
		fmt.Fprintf(out, "ldap %s: ok\n", s.Name())
	}
	if !a.doctorXMPP(ctx, out) {
		failed = true
	}
	if !a.doctorCalendar(ctx, out) {
		failed = true
	}
	if failed {
		return fmt.Errorf("some checks failed")
	}
	return nil
}

func runOptOut(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlags("optout", errOut)
	path := fs.String("c", "", "configuration file (default: the embedded demo directory)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 || len(pos) == 2 && pos[1] != "on" && pos[1] != "off" {
		return fmt.Errorf("%w: give an address and on, off or nothing", errUsage)
	}
	a, err := cliApp(*path, false, errOut)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.ensureSynced(ctx, false, errOut); err != nil {
		return err
	}
	if a.presence == nil {
		return fmt.Errorf("no calendar source is configured (graph:), so there is nothing to opt out of")
	}
	r := a.dir.Resolve(pos[0])
	if r.Person == nil || r.Person.MailboxID == "" {
		return fmt.Errorf("%s: %s", pos[0], strings.TrimSpace(strings.SplitN(r.String(), "\n", 2)[0]))
	}
	mb := r.Person.MailboxID
	if len(pos) == 2 {
		if err := a.presence.SetOptOut(mb, pos[1] == "on"); err != nil {
			return err
		}
	}
	state := "calendar states apply"
	if a.presence.OptedOut(mb) {
		state = "opted out: calendar states do not apply"
	}
	fmt.Fprintf(out, "%s (mailbox %s): %s\n", r.Address, mb, state)
	return nil
}

package ldapmap

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Status is the outcome of a resolution.
type Status string

// Outcomes of Resolve. Callers branch on them: only StatusResolved carries
// a JID.
const (
	// StatusResolved: the address maps to exactly one JID.
	StatusResolved Status = "resolved"
	// StatusNotFound: no directory or override knows the address.
	StatusNotFound Status = "not_found"
	// StatusConflict: several people claim the address (or the entry has
	// several JIDs) and neither priority nor an override decides.
	StatusConflict Status = "conflict"
	// StatusRemoved: an admin override removed the mapping.
	StatusRemoved Status = "removed"
	// StatusInvalid: the query is not an e-mail address.
	StatusInvalid Status = "invalid"
)

// Override is an admin's decision about one address. It wins over every
// directory and survives restarts and resyncs. An empty JID removes the
// mapping.
type Override struct {
	Address string `json:"address"`
	// JID the address maps to; empty means "maps to nothing".
	JID string `json:"jid,omitempty"`
	// Name and MailboxID fill in what no directory knows (for an address
	// that is in no directory); when a directory knows the person, its
	// facts are kept.
	Name      string `json:"name,omitempty"`
	MailboxID string `json:"mailbox,omitempty"`
	// Note is the admin's reason, shown in explanations.
	Note    string    `json:"note,omitempty"`
	Created time.Time `json:"created"`
}

// Claim is one directory entry claiming an address, as listed in a
// conflict.
type Claim struct {
	Source   string `json:"source"`
	Priority int    `json:"priority"`
	DN       string `json:"dn"`
	JID      string `json:"jid,omitempty"`
	// Problem is set when the entry itself has no single JID.
	Problem string `json:"problem,omitempty"`
	Attr    string `json:"attribute"`
	Raw     string `json:"raw"`

	// sl is the claim's index slot, so an override that picks this
	// claim keeps its directory facts.
	sl slot
}

// Conflict is an address claimed by people who disagree on the JID, or an
// entry with several JIDs.
type Conflict struct {
	Address string  `json:"address"`
	Claims  []Claim `json:"claims"`
	// Winner is the index in Claims that the address resolves to, or -1
	// when the conflict is unresolved and the address resolves to nothing.
	Winner int `json:"winner"`
	// Resolution says how it was decided: "priority", "override", or "" for
	// unresolved.
	Resolution string `json:"resolution,omitempty"`
}

// signature sums up a conflict's claims and outcome, to notice when it
// changes between two indexes.
func (c *Conflict) signature() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", c.Winner, c.Resolution)
	for _, cl := range c.Claims {
		fmt.Fprintf(&b, "|%s %s %s %s", cl.Source, cl.DN, cl.JID, cl.Problem)
	}
	return b.String()
}

// Resolution is the answer for one address, with everything needed to
// explain it.
type Resolution struct {
	// Query is the input as given; Address its normalized form.
	Query   string `json:"query"`
	Address string `json:"address"`
	Status  Status `json:"status"`
	// JID is set only for StatusResolved.
	JID string `json:"jid,omitempty"`
	// Person is the directory entry the answer came from (nil when none).
	Person *Person `json:"person,omitempty"`
	// Via is the person's address entry that matched.
	Via *Address `json:"via,omitempty"`
	// Priority is the priority of Person's source.
	Priority int `json:"priority,omitempty"`
	// Override is set when an admin override applies.
	Override *Override `json:"override,omitempty"`
	// Conflict is set when the address is (or was, before an override or
	// priority decided) contested.
	Conflict *Conflict `json:"conflict,omitempty"`
	// Error says why a query is invalid.
	Error string `json:"error,omitempty"`
}

// slot is the index's value per address: 16 bytes, so 100,000 people with
// several addresses each stay below a kilobyte per person. Conflicts and
// overrides are rare and live in a side map, marked by flags.
type slot struct {
	p     *Person
	prio  int32
	addr  uint16 // index into p.Addresses
	flags uint8
}

const (
	hasConflict uint8 = 1 << iota
	hasOverride
)

// rare holds what few addresses have: a conflict, an override.
type rare struct {
	conflict *Conflict
	override *Override
}

// Index is an immutable snapshot of every mapping. A new one is built after
// each sync or override change and swapped in atomically, so lookups never
// lock.
type Index struct {
	slots map[string]slot
	rare  map[string]rare
	// jids maps each JID an address resolves to onto the address that
	// stands for it (see indexJIDs); nil marks a JID that people of the
	// same standing share. A pointer, not the address, costs 8 bytes less
	// per person.
	jids      map[string]*Address
	conflicts []*Conflict
	people    int
}

// sourcePeople is the input of buildIndex for one source.
type sourcePeople struct {
	name     string
	priority int
	people   map[string]*Person
}

// buildIndex merges every source's people and the overrides into an Index.
// Sources are visited in a fixed order and conflicts decided only by
// priority or override, so the same input always gives the same index.
func buildIndex(sources []sourcePeople, overrides map[string]*Override) *Index {
	total := 0
	for _, s := range sources {
		total += len(s.people) * 3
	}
	ix := &Index{slots: make(map[string]slot, total), rare: map[string]rare{}}
	// Addresses claimed more than once; settled after all claims are in.
	var contested map[string][]slot
	for _, s := range sources {
		ix.people += len(s.people)
		for _, p := range s.people {
			for i := range p.Addresses {
				a := p.Addresses[i].Address
				sl := slot{p: p, addr: uint16(i), prio: int32(s.priority)}
				if list, ok := contested[a]; ok {
					contested[a] = append(list, sl)
					continue
				}
				prev, dup := ix.slots[a]
				if !dup && p.JIDProblem == "" {
					ix.slots[a] = sl
					continue
				}
				if contested == nil {
					contested = map[string][]slot{}
				}
				if dup {
					contested[a] = []slot{prev, sl}
				} else {
					contested[a] = []slot{sl}
				}
			}
		}
	}
	for a, claims := range contested {
		sl, c := settle(a, claims)
		if c != nil {
			sl.flags |= hasConflict
			ix.rare[a] = rare{conflict: c}
			ix.conflicts = append(ix.conflicts, c)
		}
		ix.slots[a] = sl
	}
	slices.SortFunc(ix.conflicts, func(a, b *Conflict) int { return strings.Compare(a.Address, b.Address) })
	for a, o := range overrides {
		sl := ix.slots[a]
		sl.flags |= hasOverride
		rr := ix.rare[a]
		rr.override = o
		if c := rr.conflict; c != nil {
			decided := *c
			decided.Resolution = "override"
			decided.Winner = -1
			for i, cl := range c.Claims {
				if cl.JID == o.JID && o.JID != "" && cl.Problem == "" {
					// The first (highest priority) claim with the
					// chosen JID gives the person's facts.
					decided.Winner = i
					sl.p, sl.addr, sl.prio = cl.sl.p, cl.sl.addr, cl.sl.prio
					break
				}
			}
			rr.conflict = &decided
			for i, old := range ix.conflicts {
				if old == c {
					ix.conflicts[i] = &decided
				}
			}
		}
		ix.slots[a] = sl
		ix.rare[a] = rr
	}
	ix.indexJIDs()
	return ix
}

// jidClaim is an address as a candidate to stand for the JID it resolves
// to.
type jidClaim struct {
	jid string
	// rank: an override outranks every directory, then priority decides.
	rank    int64
	primary bool
	person  *Person // nil for an address only an override knows
	mailbox string
}

// claimOf returns what address a resolves to, or false when it resolves
// to no JID (unresolved conflict, removed).
func (ix *Index) claimOf(a string, sl slot) (jidClaim, bool) {
	c := jidClaim{rank: int64(sl.prio), person: sl.p}
	if sl.p != nil {
		c.jid, c.primary, c.mailbox = sl.p.JID, sl.p.Addresses[sl.addr].Primary, sl.p.MailboxID
	}
	if sl.flags&hasOverride != 0 {
		o := ix.rare[a].override
		c.jid, c.rank = o.JID, math.MaxInt64
		if sl.p == nil {
			c.mailbox = cmp.Or(o.MailboxID, a)
		}
	}
	return c, c.jid != ""
}

// samePerson tells whether two claims stand for the same presence: the
// same entry, or entries with the same mailbox.
func (c jidClaim) samePerson(d jidClaim) bool {
	return c.person != nil && c.person == d.person || c.mailbox != "" && strings.EqualFold(c.mailbox, d.mailbox)
}

// indexJIDs maps every JID that some address resolves to onto one such
// address, so ResolveJID answers exactly as Resolve does for it. Of the
// addresses of a JID, those of an override, then of the highest directory
// priority decide; among them the person's primary address, then the
// smallest one stands for the JID. When they belong to different people
// (mailboxes), the JID resolves to nothing, as an undecided conflict
// does. The outcome does not depend on the order of the map.
func (ix *Index) indexJIDs() {
	ix.jids = make(map[string]*Address, ix.people)
	var tied map[string]int64 // JIDs shared at the top: the rank of the tie
	for a, sl := range ix.slots {
		c, ok := ix.claimOf(a, sl)
		if !ok {
			continue
		}
		// The person's own address entry, so the map adds no strings.
		at := &Address{Address: a}
		if sl.p != nil {
			at = &sl.p.Addresses[sl.addr]
		}
		prevAt, seen := ix.jids[c.jid]
		switch {
		case !seen:
			ix.jids[c.jid] = at
			continue
		case prevAt == nil:
			if r := tied[c.jid]; c.rank > r {
				ix.jids[c.jid] = at
				delete(tied, c.jid)
			}
			continue
		}
		prevAddr := prevAt.Address
		prev, _ := ix.claimOf(prevAddr, ix.slots[prevAddr])
		switch {
		case c.rank < prev.rank:
		case c.rank > prev.rank:
			ix.jids[c.jid] = at
		case !c.samePerson(prev):
			if tied == nil {
				tied = map[string]int64{}
			}
			ix.jids[c.jid], tied[c.jid] = nil, c.rank
		case c.primary != prev.primary && c.primary || c.primary == prev.primary && a < prevAddr:
			ix.jids[c.jid] = at
		}
	}
}

// settle decides an address claimed by several entries (or by one entry
// without a single JID). Claims that agree on the JID are no conflict: the
// highest priority gives the details. Otherwise the one JID at the highest
// priority wins; a tie at the top leaves the conflict unresolved.
func settle(addr string, claims []slot) (slot, *Conflict) {
	slices.SortStableFunc(claims, func(a, b slot) int {
		if c := cmp.Compare(b.prio, a.prio); c != 0 {
			return c
		}
		if c := strings.Compare(a.p.Source, b.p.Source); c != 0 {
			return c
		}
		return strings.Compare(a.p.DN, b.p.DN)
	})
	jids := map[string]bool{}
	problem := false
	for _, c := range claims {
		jids[c.p.JID] = true
		problem = problem || c.p.JIDProblem != ""
	}
	if len(jids) == 1 && !problem {
		return claims[0], nil
	}
	conf := &Conflict{Address: addr, Winner: -1}
	for _, c := range claims {
		a := c.p.Addresses[c.addr]
		conf.Claims = append(conf.Claims, Claim{
			Source: c.p.Source, Priority: int(c.prio), DN: c.p.DN, JID: c.p.JID,
			Problem: c.p.JIDProblem, Attr: a.Attr, Raw: a.RawValue(), sl: c,
		})
	}
	// Claims are sorted by priority: the top ones decide if they agree.
	top := claims[0]
	winner := slot{}
	agree := true
	for _, c := range claims {
		if c.prio == top.prio && (c.p.JID != top.p.JID || c.p.JIDProblem != "") {
			agree = false
		}
	}
	if agree {
		conf.Winner = 0
		conf.Resolution = "priority"
		winner = top
	}
	return winner, conf
}

// Resolve answers for one address. It does not allocate for an address
// already in lower case, so the index serves millions of lookups a second.
func (ix *Index) Resolve(query string) Resolution {
	addr, err := NormalizeAddress(query)
	if err != nil {
		return Resolution{Query: query, Status: StatusInvalid, Error: err.Error()}
	}
	r := Resolution{Query: query, Address: addr, Status: StatusNotFound}
	sl, ok := ix.slots[addr]
	if !ok {
		return r
	}
	if sl.p != nil {
		r.Person = sl.p
		r.Via = &sl.p.Addresses[sl.addr]
		r.Priority = int(sl.prio)
		r.JID = sl.p.JID
		r.Status = StatusResolved
	}
	if sl.flags == 0 {
		return r
	}
	rr := ix.rare[addr]
	r.Conflict = rr.conflict
	if sl.p == nil && rr.conflict != nil {
		r.Status = StatusConflict
	}
	if o := rr.override; o != nil {
		r.Override = o
		r.JID = o.JID
		r.Status = StatusResolved
		if o.JID == "" {
			r.Status = StatusRemoved
			r.Person, r.Via = nil, nil
		} else if r.Person == nil {
			// Only the override knows this person.
			r.Person = &Person{Source: "override", JID: o.JID, Name: o.Name, MailboxID: cmp.Or(o.MailboxID, addr)}
		}
	}
	return r
}

// ResolveJID answers for a bare JID (any case, with or without an
// "xmpp:" or "sip:" scheme): the person of one of the addresses that resolve to it
// (see indexJIDs), with that address as Address. A JID that only an
// unresolved conflict or a removed mapping would give, or that no address
// resolves to, is StatusNotFound; one that different people share at the
// same standing is StatusConflict, without a person.
func (ix *Index) ResolveJID(query string) Resolution {
	jid, err := normalizeJID(query)
	if err != nil {
		return Resolution{Query: query, Status: StatusInvalid, Error: err.Error()}
	}
	at, ok := ix.jids[jid]
	switch {
	case !ok:
		return Resolution{Query: query, Status: StatusNotFound}
	case at == nil:
		return Resolution{Query: query, Status: StatusConflict}
	}
	r := ix.Resolve(at.Address)
	r.Query = query
	return r
}

// Conflicts lists every contested address, sorted.
func (ix *Index) Conflicts() []*Conflict { return ix.conflicts }

// Mailboxes lists the mailbox ids of everyone the index resolves to,
// sorted and without repeats: what the calendar poller tracks.
func (ix *Index) Mailboxes() []string {
	seen := map[string]bool{}
	var out []string
	add := func(m string) {
		if m != "" && !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	for _, sl := range ix.slots {
		if sl.p != nil {
			add(sl.p.MailboxID)
		}
	}
	for a, r := range ix.rare {
		if o := r.override; o != nil && o.JID != "" && ix.slots[a].p == nil {
			add(cmp.Or(o.MailboxID, a))
		}
	}
	slices.Sort(out)
	return out
}

// Routes maps each mailbox id the index resolves to onto its person's
// Route (the directory attribute that chooses the calendar source);
// mailboxes whose person has none are left out. Should people of several
// directories share a mailbox id, the higher priority wins, then the
// smaller value, so the answer does not depend on map order.
func (ix *Index) Routes() map[string]string {
	out := map[string]string{}
	prio := map[string]int32{}
	for _, sl := range ix.slots {
		p := sl.p
		if p == nil || p.MailboxID == "" || p.Route == nil {
			continue
		}
		old, ok := out[p.MailboxID]
		if !ok || sl.prio > prio[p.MailboxID] || sl.prio == prio[p.MailboxID] && *p.Route < old {
			out[p.MailboxID], prio[p.MailboxID] = *p.Route, sl.prio
		}
	}
	return out
}

// Len returns the number of people and of addresses in the index.
func (ix *Index) Len() (people, addresses int) { return ix.people, len(ix.slots) }

// String explains r in a few lines for people: what it resolves to and why.
func (r Resolution) String() string {
	var b strings.Builder
	w := func(k, f string, a ...any) { fmt.Fprintf(&b, "  %-11s %s\n", k+":", fmt.Sprintf(f, a...)) }
	switch r.Status {
	case StatusInvalid:
		fmt.Fprintf(&b, "%s: invalid: %s\n", r.Query, r.Error)
		return b.String()
	case StatusResolved:
		fmt.Fprintf(&b, "%s → %s\n", r.Address, r.JID)
	case StatusNotFound:
		fmt.Fprintf(&b, "%s: not found in any directory\n", r.Address)
	case StatusConflict:
		fmt.Fprintf(&b, "%s: unresolved conflict: resolves to nothing until a priority or an override decides\n", r.Address)
	case StatusRemoved:
		fmt.Fprintf(&b, "%s: removed by an override: resolves to nothing\n", r.Address)
	}
	if p := r.Person; p != nil {
		if p.Name != "" {
			extra := strings.Join(nonEmpty(p.Title, p.Department), ", ")
			if extra != "" {
				extra = " (" + extra + ")"
			}
			w("person", "%s%s", p.Name, extra)
		}
		if p.MailboxID != "" {
			w("mailbox", "%s", p.MailboxID)
		}
		if p.Source != "override" {
			w("directory", "%s (priority %d)", p.Source, r.Priority)
			w("dn", "%s", p.DN)
		}
		if r.Via != nil {
			w("matched", "%s %q", r.Via.Attr, r.Via.RawValue())
		}
		if p.JIDFrom != "" {
			w("jid from", "%s", p.JIDFrom)
		}
	}
	if o := r.Override; o != nil {
		target := o.JID
		if target == "" {
			target = "nothing"
		}
		note := ""
		if o.Note != "" {
			note = fmt.Sprintf(" — %q", o.Note)
		}
		w("override", "→ %s, set %s%s", target, o.Created.UTC().Format(time.RFC3339), note)
	} else {
		w("override", "none")
	}
	if c := r.Conflict; c != nil {
		how := "unresolved"
		switch c.Resolution {
		case "priority":
			how = "decided by directory priority"
		case "override":
			how = "decided by an override"
		}
		w("conflict", "%d claims, %s", len(c.Claims), how)
		for i, cl := range c.Claims {
			mark := " "
			if i == c.Winner {
				mark = "*"
			}
			jid := cl.JID
			if cl.Problem != "" {
				jid = cl.Problem
			}
			fmt.Fprintf(&b, "    %s %s (priority %d) %s: %s %q → %s\n", mark, cl.Source, cl.Priority, cl.DN, cl.Attr, cl.Raw, jid)
		}
	}
	return b.String()
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

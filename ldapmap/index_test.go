package ldapmap

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// person builds a Person claiming addrs (the first is primary).
func person(source, dn, jid string, addrs ...string) *Person {
	p := &Person{Source: source, DN: dn, JID: jid, JIDFrom: "attribute jabberID", MailboxID: addrs[0]}
	for i, a := range addrs {
		p.Addresses = append(p.Addresses, Address{Address: a, Attr: "mail", Primary: i == 0})
	}
	return p
}

func src(name string, prio int, people ...*Person) sourcePeople {
	m := map[string]*Person{}
	for _, p := range people {
		m[p.DN] = p
	}
	return sourcePeople{name: name, priority: prio, people: m}
}

func TestIndexResolve(t *testing.T) {
	alice := person("ad", "cn=alice", "alice@chat", "alice@example.com", "a.smith@example.com")
	bob := person("ad", "cn=bob", "bob@chat", "bob@example.com", "shared@example.com")
	carol := person("ad", "cn=carol", "carol@chat", "carol@example.com", "shared@example.com")
	// The same person in two directories, agreeing on the JID: no conflict.
	alice2 := person("ldap", "uid=alice", "alice@chat", "alice@example.com")
	// Two directories disagree on dave; ad has the higher priority.
	dave := person("ad", "cn=dave", "dave@chat", "dave@example.com")
	dave2 := person("ldap", "uid=dave", "dsmith@chat", "dave@example.com")
	// Two directories with the same priority disagree on erin.
	erin := person("ad", "cn=erin", "erin@chat", "erin@example.com")
	erin2 := person("hr", "uid=erin", "erin2@chat", "erin@example.com")
	// One entry with two JIDs.
	frank := person("ad", "cn=frank", "", "frank@example.com")
	frank.JIDProblem = "jabberID has 2 different values: f@chat, frank@chat"

	sources := []sourcePeople{
		src("ad", 10, alice, bob, carol, dave, erin, frank),
		src("ldap", 5, alice2, dave2),
		src("hr", 10, erin2),
	}
	ix := buildIndex(sources, nil)

	tests := []struct {
		query      string
		status     Status
		jid        string
		dn         string
		conflict   bool
		resolution string
	}{
		{"alice@example.com", StatusResolved, "alice@chat", "cn=alice", false, ""},
		{"ALICE@Example.COM", StatusResolved, "alice@chat", "cn=alice", false, ""},
		{" mailto:a.smith@example.com ", StatusResolved, "alice@chat", "cn=alice", false, ""},
		{"shared@example.com", StatusConflict, "", "", true, ""},
		{"dave@example.com", StatusResolved, "dave@chat", "cn=dave", true, "priority"},
		{"erin@example.com", StatusConflict, "", "", true, ""},
		{"frank@example.com", StatusConflict, "", "", true, ""},
		{"nobody@example.com", StatusNotFound, "", "", false, ""},
		{"not-an-address", StatusInvalid, "", "", false, ""},
		{"", StatusInvalid, "", "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := ix.Resolve(tt.query)
			if r.Status != tt.status || r.JID != tt.jid {
				t.Fatalf("Resolve(%q) = %s %q, want %s %q", tt.query, r.Status, r.JID, tt.status, tt.jid)
			}
			if tt.dn != "" && (r.Person == nil || r.Person.DN != tt.dn) {
				t.Errorf("person = %+v, want DN %s", r.Person, tt.dn)
			}
			if (r.Conflict != nil) != tt.conflict {
				t.Fatalf("conflict = %+v, want %v", r.Conflict, tt.conflict)
			}
			if r.Conflict != nil && r.Conflict.Resolution != tt.resolution {
				t.Errorf("resolution = %q, want %q", r.Conflict.Resolution, tt.resolution)
			}
			if tt.status == StatusInvalid && r.Error == "" {
				t.Errorf("invalid query without error message")
			}
		})
	}
	// Every contested address is listed once, sorted, with all claims.
	var listed []string
	for _, c := range ix.Conflicts() {
		listed = append(listed, fmt.Sprintf("%s/%d", c.Address, len(c.Claims)))
	}
	if got, want := strings.Join(listed, " "), "dave@example.com/2 erin@example.com/2 frank@example.com/1 shared@example.com/2"; got != want {
		t.Errorf("conflicts = %s, want %s", got, want)
	}
	if p, a := ix.Len(); p != 9 || a != 8 {
		t.Errorf("Len = %d people, %d addresses; want 9, 8", p, a)
	}
}

// The outcome must not depend on the order sources or entries are seen in.
func TestIndexDeterministic(t *testing.T) {
	a := person("a", "cn=1", "one@chat", "x@example.com")
	b := person("b", "cn=2", "two@chat", "x@example.com")
	c := person("c", "cn=3", "three@chat", "x@example.com")
	orders := [][]sourcePeople{
		{src("a", 1, a), src("b", 2, b), src("c", 2, c)},
		{src("c", 2, c), src("b", 2, b), src("a", 1, a)},
		{src("b", 2, b), src("a", 1, a), src("c", 2, c)},
	}
	var first string
	for i, o := range orders {
		r := buildIndex(o, nil).Resolve("x@example.com")
		got := fmt.Sprintf("%s %v", r.Status, r.Conflict.Claims)
		if r.Status != StatusConflict {
			t.Fatalf("order %d: tie at the top priority resolved to %s", i, r.JID)
		}
		if i == 0 {
			first = got
		} else if got != first {
			t.Errorf("order %d: %s, want %s", i, got, first)
		}
	}
	// With b alone on top, b wins whatever the order.
	for _, o := range [][]sourcePeople{{src("a", 1, a), src("b", 3, b)}, {src("b", 3, b), src("a", 1, a)}} {
		if r := buildIndex(o, nil).Resolve("x@example.com"); r.JID != "two@chat" || r.Conflict.Resolution != "priority" {
			t.Errorf("got %s %q, want two@chat by priority", r.Status, r.JID)
		}
	}
}

func TestIndexOverrides(t *testing.T) {
	bob := person("ad", "cn=bob", "bob@chat", "bob@example.com", "shared@example.com")
	carol := person("ad", "cn=carol", "carol@chat", "carol@example.com", "shared@example.com")
	when := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ov := map[string]*Override{
		// decide a conflict
		"shared@example.com": {Address: "shared@example.com", JID: "carol@chat", Note: "Carol owns support", Created: when},
		// replace a directory mapping
		"bob@example.com": {Address: "bob@example.com", JID: "robert@chat", Created: when},
		// remove one
		"carol@example.com": {Address: "carol@example.com", Created: when},
		// add one no directory knows
		"ext@partner.org": {Address: "ext@partner.org", JID: "ext@partner.org", Name: "External", Created: when},
	}
	ix := buildIndex([]sourcePeople{src("ad", 1, bob, carol)}, ov)
	tests := []struct {
		query  string
		status Status
		jid    string
		name   string
	}{
		{"shared@example.com", StatusResolved, "carol@chat", ""},
		{"bob@example.com", StatusResolved, "robert@chat", ""},
		{"carol@example.com", StatusRemoved, "", ""},
		{"ext@partner.org", StatusResolved, "ext@partner.org", "External"},
	}
	for _, tt := range tests {
		r := ix.Resolve(tt.query)
		if r.Status != tt.status || r.JID != tt.jid || r.Override == nil {
			t.Errorf("Resolve(%s) = %s %q override=%v, want %s %q with override", tt.query, r.Status, r.JID, r.Override, tt.status, tt.jid)
		}
		if tt.name != "" && (r.Person == nil || r.Person.Name != tt.name || r.Person.MailboxID != tt.query) {
			t.Errorf("Resolve(%s).Person = %+v, want name %s and mailbox %s", tt.query, r.Person, tt.name, tt.query)
		}
	}
	r := ix.Resolve("shared@example.com")
	if r.Conflict == nil || r.Conflict.Resolution != "override" || r.Conflict.Winner != 1 {
		t.Errorf("conflict after override = %+v, want decided by override for claim 1 (carol)", r.Conflict)
	}
	explain := r.String()
	for _, want := range []string{"→ carol@chat", `"Carol owns support"`, "decided by an override", "* ad (priority 1) cn=carol"} {
		if !strings.Contains(explain, want) {
			t.Errorf("explanation lacks %q:\n%s", want, explain)
		}
	}
}

func TestResolutionString(t *testing.T) {
	p := person("corp-ad", "cn=Alice Smith,ou=Users,dc=example,dc=com", "alice@chat.example.com", "alice@example.com", "a.smith@example.com")
	p.Addresses[1] = Address{Address: "a.smith@example.com", Attr: "proxyAddresses", Raw: "smtp:A.Smith@example.com"}
	p.Name, p.Title, p.Department = "Alice Smith", "Engineer", "R&D"
	ix := buildIndex([]sourcePeople{src("corp-ad", 7, p)}, nil)
	got := ix.Resolve("a.smith@EXAMPLE.com").String()
	want := `a.smith@example.com → alice@chat.example.com
  person:     Alice Smith (Engineer, R&D)
  mailbox:    alice@example.com
  directory:  corp-ad (priority 7)
  dn:         cn=Alice Smith,ou=Users,dc=example,dc=com
  matched:    proxyAddresses "smtp:A.Smith@example.com"
  jid from:   attribute jabberID
  override:   none
`
	if got != want {
		t.Errorf("explanation:\n%s\nwant:\n%s", got, want)
	}
}

// A lookup of a lower-case address must not allocate: that is what keeps
// millions of lookups a second possible.
func TestResolveAllocations(t *testing.T) {
	ix := buildIndex([]sourcePeople{src("ad", 1, person("ad", "cn=a", "a@chat", "a@example.com"))}, nil)
	n := testing.AllocsPerRun(1000, func() {
		if ix.Resolve("a@example.com").Status != StatusResolved {
			t.Fatal("not resolved")
		}
	})
	if n != 0 {
		t.Errorf("Resolve allocates %.1f times per call, want 0", n)
	}
}

// BenchmarkResolveSynthetic measures lookups in an index of 100,000
// synthetic people without a directory server (scripts/bench measures the
// same on an index synced from slapd).
func BenchmarkResolveSynthetic(b *testing.B) {
	const n = 100000
	people := map[string]*Person{}
	for i := range n {
		p := person("ad", fmt.Sprintf("cn=User %06d", i), fmt.Sprintf("user%06d@chat", i),
			fmt.Sprintf("user%06d@example.com", i), fmt.Sprintf("u.%06d@example.com", i), fmt.Sprintf("user%06d@example.org", i))
		people[p.DN] = p
	}
	ix := buildIndex([]sourcePeople{{name: "ad", people: people}}, nil)
	queries := make([]string, 4096)
	for i := range queries {
		u := (i * 7919) % n
		queries[i] = [...]string{
			fmt.Sprintf("user%06d@example.com", u), fmt.Sprintf("u.%06d@example.com", u),
			fmt.Sprintf("User%06d@Example.com", u), fmt.Sprintf("nobody%06d@example.com", u),
		}[i%4]
	}
	i := 0
	for b.Loop() {
		_ = ix.Resolve(queries[i&4095])
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}

func TestIndexMailboxes(t *testing.T) {
	a := person("ad", "cn=a", "a@chat", "a@example.com", "alias@example.com")
	b := person("ad", "cn=b", "b@chat", "b@example.com")
	b.MailboxID = "B.Box@example.com"
	ov := map[string]*Override{
		"ext@partner.org":  {Address: "ext@partner.org", JID: "ext@partner.org"},
		"gone@partner.org": {Address: "gone@partner.org"},
	}
	got := buildIndex([]sourcePeople{src("ad", 1, a, b)}, ov).Mailboxes()
	if fmt.Sprint(got) != "[B.Box@example.com a@example.com ext@partner.org]" {
		t.Errorf("Mailboxes() = %v", got)
	}
}

func TestIndexResolveJID(t *testing.T) {
	// alice has two addresses, and ldap knows one more (lower priority).
	alice := person("ad", "cn=alice", "alice@chat", "alice@example.com", "a.smith@example.com")
	alice2 := person("ldap", "uid=alice", "alice@chat", "alice@example.com", "alice@lab.example.com")
	// Two entries of different people with the same JID at the same
	// priority (an admin account, say); a third at a lower one.
	gina := person("ad", "cn=gina", "gina@chat", "gina@example.com")
	ginaAdm := person("ad", "cn=adm-gina", "gina@chat", "adm-gina@example.com")
	ginaLab := person("ldap", "uid=gina", "gina@chat", "gina@lab.example.com")
	// The same JID in two directories for the same mailbox: no conflict.
	hank := person("ad", "cn=hank", "hank@chat", "hank@example.com")
	hank2 := person("hr", "uid=hank", "hank@chat", "h.smith@example.com")
	hank2.MailboxID = "Hank@Example.com"
	// A contested address gives no JID; a removed one neither.
	bob := person("ad", "cn=bob", "bob@chat", "bob@example.com", "shared@example.com")
	erin := person("ad", "cn=erin", "erin@chat", "shared@example.com")
	ivan := person("ad", "cn=ivan", "ivan@chat", "ivan@example.com")
	// An override sends dave's address to another JID and adds one only
	// it knows; a directory person with that JID is outranked.
	dave := person("ad", "cn=dave", "dave@chat", "dave@example.com")
	robert := person("ad", "cn=robert", "robert@chat", "robert@example.com")
	// Only a conflict gives frank's JID.
	frank := person("ad", "cn=frank", "frank@chat", "frank@example.com")
	frank2 := person("hr", "uid=frank", "f@chat", "frank@example.com")
	ov := map[string]*Override{
		"ivan@example.com": {Address: "ivan@example.com"},
		"dave@example.com": {Address: "dave@example.com", JID: "robert@chat"},
		"ext@partner.org":  {Address: "ext@partner.org", JID: "ext@partner.org", Name: "External"},
	}
	sources := []sourcePeople{
		src("ad", 10, alice, gina, ginaAdm, hank, bob, erin, ivan, dave, robert, frank),
		src("ldap", 5, alice2, ginaLab),
		src("hr", 10, hank2, frank2),
	}
	ix := buildIndex(sources, ov)
	tests := []struct {
		query   string
		status  Status
		address string // the address that stands for the JID
		dn      string
	}{
		{"alice@chat", StatusResolved, "alice@example.com", "cn=alice"},
		{"Alice@CHAT", StatusResolved, "alice@example.com", "cn=alice"},
		{" xmpp:alice@chat ", StatusResolved, "alice@example.com", "cn=alice"},
		{"gina@chat", StatusConflict, "", ""},
		{"hank@chat", StatusResolved, "h.smith@example.com", "uid=hank"},
		{"bob@chat", StatusResolved, "bob@example.com", "cn=bob"},
		{"erin@chat", StatusNotFound, "", ""},
		{"ivan@chat", StatusNotFound, "", ""},
		{"dave@chat", StatusNotFound, "", ""},
		{"robert@chat", StatusResolved, "dave@example.com", "cn=dave"},
		{"ext@partner.org", StatusResolved, "ext@partner.org", ""},
		{"f@chat", StatusNotFound, "", ""},
		{"frank@chat", StatusNotFound, "", ""},
		{"nobody@chat", StatusNotFound, "", ""},
		{"alice@chat/laptop", StatusInvalid, "", ""},
		{"chat", StatusInvalid, "", ""},
		{"", StatusInvalid, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := ix.ResolveJID(tt.query)
			if r.Status != tt.status || r.Address != tt.address || r.Query != tt.query {
				t.Fatalf("ResolveJID(%q) = %s %q (query %q), want %s %q", tt.query, r.Status, r.Address, r.Query, tt.status, tt.address)
			}
			if tt.status != StatusResolved {
				if r.Person != nil || r.JID != "" {
					t.Errorf("unresolved with person %+v, JID %q", r.Person, r.JID)
				}
				if (tt.status == StatusInvalid) != (r.Error != "") {
					t.Errorf("error %q", r.Error)
				}
				return
			}
			// Exactly what Resolve says for the address.
			want := ix.Resolve(tt.address)
			want.Query = tt.query
			if fmt.Sprint(r) != fmt.Sprint(want) {
				t.Errorf("ResolveJID = %+v\nResolve = %+v", r, want)
			}
			if !strings.EqualFold(r.JID, strings.TrimPrefix(strings.TrimSpace(tt.query), "xmpp:")) {
				t.Errorf("JID %q, asked %q", r.JID, tt.query)
			}
			if tt.dn != "" && r.Person.DN != tt.dn {
				t.Errorf("person %s, want %s", r.Person.DN, tt.dn)
			}
		})
	}
	if r := ix.ResolveJID("ext@partner.org"); r.Person == nil || r.Person.Name != "External" || r.Override == nil {
		t.Errorf("override-only JID: %+v", r)
	}
}

// Which address stands for a JID, and whether it is shared, must not
// depend on the order the index sees them in.
func TestIndexResolveJIDDeterministic(t *testing.T) {
	a := person("a", "cn=1", "x@chat", "x1@example.com")
	b := person("b", "cn=2", "x@chat", "x2@example.com")
	c := person("c", "cn=3", "x@chat", "x3@example.com", "x0@example.com")
	for range 20 {
		// Same priority, different people: shared, whatever the order.
		if r := buildIndex([]sourcePeople{src("a", 1, a), src("b", 1, b), src("c", 0, c)}, nil).ResolveJID("x@chat"); r.Status != StatusConflict {
			t.Fatalf("tie resolved to %s", r.Address)
		}
		// c alone on top: its primary address, not its smaller alias.
		if r := buildIndex([]sourcePeople{src("a", 1, a), src("b", 1, b), src("c", 2, c)}, nil).ResolveJID("x@chat"); r.Address != "x3@example.com" {
			t.Fatalf("got %s %s, want x3@example.com", r.Status, r.Address)
		}
	}
}

func TestResolveJIDAllocations(t *testing.T) {
	ix := buildIndex([]sourcePeople{src("ad", 1, person("ad", "cn=a", "a@chat", "a@example.com"))}, nil)
	n := testing.AllocsPerRun(1000, func() {
		if ix.ResolveJID("a@chat").Status != StatusResolved {
			t.Fatal("not resolved")
		}
	})
	if n != 0 {
		t.Errorf("ResolveJID allocates %.1f times per call, want 0", n)
	}
}

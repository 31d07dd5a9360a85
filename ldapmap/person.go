// Package ldapmap maps e-mail addresses to people: their JID, the mailbox
// id a calendar source needs, and their name, title and department. It
// reads several directories at once (LDAP and files), each with its own
// mail domains and priority, keeps an in-memory index that answers in tens
// of nanoseconds, explains every answer (directory, DN, attribute, raw
// value, override, conflict), and never resolves a conflict by chance.
package ldapmap

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
)

// Person is one directory entry that the gateway can map. Strings are kept
// as read, so an explanation can show what the directory really holds.
type Person struct {
	// Source is the name of the directory the entry came from.
	Source string `json:"s"`
	// DN is the entry's distinguished name (for files: "path:line").
	DN string `json:"dn"`
	// ID is the entry's stable identity (objectGUID, entryUUID), which
	// survives a rename; empty when the directory has none.
	ID string `json:"id,omitempty"`
	// JID is the person's bare JID, lower-cased. Empty when JIDProblem is
	// set: such a person resolves to nothing until an override decides.
	JID string `json:"j,omitempty"`
	// JIDFrom says where the JID came from: an attribute name, or
	// "template".
	JIDFrom string `json:"jf,omitempty"`
	// JIDProblem explains why the entry has no single JID (for example two
	// different jabberID values).
	JIDProblem string `json:"jp,omitempty"`
	// MailboxID is what the calendar source asks for (the primary SMTP
	// address unless configured otherwise).
	MailboxID string `json:"m,omitempty"`
	// Name, Title and Department are for display.
	Name       string `json:"n,omitempty"`
	Title      string `json:"t,omitempty"`
	Department string `json:"d,omitempty"`
	// Route is the value of the directory attribute that chooses the
	// person's calendar source (calendar.routing.attribute, e.g.
	// msExchRecipientTypeDetails), as read; nil when none is configured
	// or the entry has none. A pointer to a copy every person with the
	// value shares (see internRoute): a handful of values exist, and 8
	// bytes keep a Person in its 192-byte allocation (a string would
	// cost 16 more per person).
	Route *string `json:"ro,omitempty"`
	// Addresses are every address of the person within the source's
	// domains, deduplicated, the primary one first.
	Addresses []Address `json:"a"`
}

// RouteValue returns Route, or "" when the person has none.
func (p *Person) RouteValue() string {
	if p.Route == nil {
		return ""
	}
	return *p.Route
}

// routes holds the one shared copy of each Route value.
var routes sync.Map // string → *string

// internRoute returns the shared pointer for a Route value (nil for "").
func internRoute(v string) *string {
	if v == "" {
		return nil
	}
	if p, ok := routes.Load(v); ok {
		return p.(*string)
	}
	p, _ := routes.LoadOrStore(v, &v)
	return p.(*string)
}

// Key identifies the entry within its source: the stable ID when there is
// one, so a renamed entry replaces its old self, else the DN.
func (p *Person) Key() string {
	if p.ID != "" {
		return p.ID
	}
	return p.DN
}

// Address is one address a person claims and the fact it came from.
type Address struct {
	// Address is the normalized (lower-case) address.
	Address string `json:"a"`
	// Attr is the attribute (or file column) it was read from.
	Attr string `json:"f"`
	// Raw is the value exactly as stored ("smtp:Alice@Example.com"); empty
	// when it equals Address, which saves memory for the common case.
	Raw string `json:"r,omitempty"`
	// Primary marks the primary SMTP address.
	Primary bool `json:"p,omitempty"`
}

// RawValue returns the value as the directory holds it.
func (a Address) RawValue() string {
	if a.Raw == "" {
		return a.Address
	}
	return a.Raw
}

// NormalizeAddress returns the lower-case form of an e-mail address, with
// a "mailto:" or "sip:" prefix removed, or an error saying what is wrong.
// Addresses compare case-insensitively everywhere in the gateway.
func NormalizeAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	// Every prefix goes ("mailto:sip:a@b"): what is left must not have one.
	for len(s) > 6 && (s[0] == 'm' || s[0] == 'M' || s[0] == 's' || s[0] == 'S') {
		i := strings.IndexByte(s, ':')
		if i != 3 && i != 6 || strings.ToLower(s[:i]) != "mailto" && strings.ToLower(s[:i]) != "sip" {
			break
		}
		s = s[i+1:]
	}
	at := strings.LastIndexByte(s, '@')
	switch {
	case s == "":
		return "", fmt.Errorf("empty address")
	case len(s) > 320:
		return "", fmt.Errorf("address is longer than 320 characters")
	case at <= 0 || at == len(s)-1:
		return "", fmt.Errorf("%q is not an e-mail address (want local@domain)", s)
	case strings.IndexByte(s, '@') != at:
		return "", fmt.Errorf("%q has more than one @", s)
	}
	ascii := true
	for _, r := range s {
		if r < 0x20 || r == 0x7f || unicode.IsSpace(r) || r == '<' || r == '>' || r == ',' {
			return "", fmt.Errorf("%q contains a character not allowed in an address (%q)", s, r)
		}
		ascii = ascii && r < 0x80
	}
	l := strings.ToLower(s)
	if !ascii && l != s {
		// Lower-casing other letters can change what was checked: "İ"
		// becomes "i" (so "SİP:" a prefix), "Ⱥ" gains a byte, invalid
		// UTF-8 becomes U+FFFD. Check again, so that a normalized address
		// normalizes to itself.
		return NormalizeAddress(l)
	}
	return l, nil
}

// normalizeJID lower-cases a bare JID and strips an "xmpp:" or "sip:" URI
// scheme; it reports what is wrong with values that are not bare JIDs.
func normalizeJID(s string) (string, error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, ':'); i > 0 && i < 6 {
		switch strings.ToLower(s[:i]) {
		case "xmpp", "sip":
			s = s[i+1:]
		}
	}
	at := strings.IndexByte(s, '@')
	switch {
	case s == "":
		return "", fmt.Errorf("empty JID")
	case len(s) > 3071:
		return "", fmt.Errorf("JID is longer than 3071 bytes")
	case at <= 0 || at == len(s)-1:
		// A person's JID has a local part; a domain JID would be a server.
		return "", fmt.Errorf("%q is not a bare JID (want local@domain)", s)
	case strings.ContainsAny(s, "/ \t\r\n\"&'<>:") || strings.ContainsFunc(s, unicode.IsControl):
		// RFC 7622 forbids "&'/:<>@ and controls in the local part; a
		// "/" would make it a full JID.
		return "", fmt.Errorf("%q is not a bare JID (resource or forbidden character)", s)
	case strings.Count(s, "@") > 1:
		return "", fmt.Errorf("%q has more than one @", s)
	}
	return strings.ToLower(s), nil
}

// domainOf returns the part after the last @ of a normalized address.
func domainOf(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}

// addressAdder collects a person's addresses, deduplicated and restricted
// to the source's domains.
type addressAdder struct {
	domains map[string]bool
	list    []Address
	// outside counts addresses dropped for being outside the domains.
	outside int
}

// add records raw (as read from attr); value is raw without any prefix.
// Invalid values are ignored: a directory holds plenty of junk in
// proxyAddresses, and one bad value must not hide the person.
func (a *addressAdder) add(attr, raw, value string, primary bool) {
	addr, err := NormalizeAddress(value)
	if err != nil {
		return
	}
	if a.domains != nil && !a.domains[domainOf(addr)] {
		a.outside++
		return
	}
	for i := range a.list {
		if a.list[i].Address == addr {
			if primary && !a.list[i].Primary {
				a.list[i].Primary = true
			}
			return
		}
	}
	if raw == addr {
		raw = ""
	}
	a.list = append(a.list, Address{Address: addr, Attr: attr, Raw: raw, Primary: primary})
}

// result returns the addresses with the primary one first, in a slice of
// exactly their number (this is kept for every person).
func (a *addressAdder) result() []Address {
	for i := range a.list {
		if a.list[i].Primary && i > 0 {
			p := a.list[i]
			copy(a.list[1:i+1], a.list[:i])
			a.list[0] = p
			break
		}
	}
	return slices.Clone(a.list)
}

func domainSet(domains []string) map[string]bool {
	if len(domains) == 0 {
		return nil
	}
	m := make(map[string]bool, len(domains))
	for _, d := range domains {
		m[strings.ToLower(d)] = true
	}
	return m
}

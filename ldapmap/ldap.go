package ldapmap

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/presencegw/presencegw/internal/config"
)

// LDAPSource reads people from one LDAP directory (Active Directory,
// OpenLDAP, FreeIPA). It opens a connection per sync, like dex's connector:
// syncs are minutes apart, and a fresh connection fails over cleanly.
type LDAPSource struct {
	cfg      config.LDAP
	password string
	tls      *tls.Config
	domains  map[string]bool
	jidTmpl  *template.Template
	// attrs is every attribute a sync requests.
	attrs []string
	// tmplAttrs are the attributes the JID template refers to.
	tmplAttrs []string
	log       *slog.Logger
	// jidFrom explains where JIDs come from; one string shared by every
	// person of the source.
	jidFrom string
	// numericMark is true when the change attribute is a counter (uSN),
	// false for a GeneralizedTime (modifyTimestamp).
	numericMark bool
}

// CheckLDAPConfig validates what only go-ldap and text/template can judge:
// filter syntax and the JID template. It is a config.Check.
func CheckLDAPConfig(c *config.Config, p *config.Problems) {
	for i, l := range c.LDAP {
		path := fmt.Sprintf("ldap[%d]", i)
		for _, f := range []struct{ field, filter string }{{"user_filter", l.UserFilter}, {"disabled_filter", l.DisabledFilter}} {
			if f.filter == "" {
				continue
			}
			if _, err := ldap.CompileFilter(f.filter); err != nil {
				p.Add(path+"."+f.field, "%q is not a valid LDAP filter: %v", f.filter, err)
			}
		}
		if l.BaseDN != "" {
			if _, err := ldap.ParseDN(l.BaseDN); err != nil {
				p.Add(path+".base_dn", "%q is not a DN: %v", l.BaseDN, err)
			}
		}
		if l.JID.Template != "" {
			if _, _, err := parseJIDTemplate(l.JID.Template); err != nil {
				p.Add(path+".jid.template", "%v", err)
			}
		}
	}
}

// parseJIDTemplate parses a JID template and lists the attributes it uses
// ({{.sAMAccountName}} or {{index . "msRTCSIP-PrimaryUserAddress"}}).
func parseJIDTemplate(s string) (*template.Template, []string, error) {
	t, err := template.New("jid").Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, nil, fmt.Errorf("%q: %w", s, err)
	}
	var attrs []string
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n != nil {
				for _, c := range n.Nodes {
					walk(c)
				}
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			for _, c := range n.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			for i, a := range n.Args {
				switch a := a.(type) {
				case *parse.FieldNode:
					attrs = append(attrs, a.Ident[0])
				case *parse.StringNode:
					// {{index . "msRTCSIP-PrimaryUserAddress"}}
					if i > 1 {
						if id, ok := n.Args[0].(*parse.IdentifierNode); ok && id.Ident == "index" {
							attrs = append(attrs, a.Text)
						}
					}
				}
			}
		}
	}
	walk(t.Tree.Root)
	if len(attrs) == 0 {
		return nil, nil, fmt.Errorf("%q uses no attribute: every person would get the same JID", s)
	}
	return t, attrs, nil
}

// NewLDAPSource prepares a source from its (validated) configuration: it
// reads the bind password and CA file now, so mistakes show at start-up.
func NewLDAPSource(cfg config.LDAP, log *slog.Logger) (*LDAPSource, error) {
	s := &LDAPSource{cfg: cfg, domains: domainSet(cfg.Domains), log: log.With("source", cfg.Name)}
	pw, err := config.Secret(cfg.BindPasswordFile, cfg.BindPasswordEnv)
	if err != nil {
		return nil, fmt.Errorf("ldap source %s: bind password: %w", cfg.Name, err)
	}
	s.password = pw
	s.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ldap source %s: %w", cfg.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ldap source %s: ca_file %s holds no PEM certificate", cfg.Name, cfg.CAFile)
		}
		s.tls.RootCAs = pool
	}
	s.jidFrom = "attribute " + cfg.JID.Attribute
	if cfg.JID.Template != "" {
		s.jidFrom = "template " + cfg.JID.Template
		s.jidTmpl, s.tmplAttrs, err = parseJIDTemplate(cfg.JID.Template)
		if err != nil {
			return nil, fmt.Errorf("ldap source %s: jid template: %w", cfg.Name, err)
		}
	}
	a := cfg.Attributes
	seen := map[string]bool{}
	add := func(names ...string) {
		for _, n := range names {
			if n != "" && n != "localpart" && n != "domain" && !seen[strings.ToLower(n)] {
				seen[strings.ToLower(n)] = true
				s.attrs = append(s.attrs, n)
			}
		}
	}
	add(a.Mail...)
	add(a.ProxyAddresses, a.UserPrincipal, a.SIP, a.Mailbox, a.DisplayName, a.Title, a.Department, a.ID,
		a.CalendarRoute, cfg.JID.Attribute, cfg.ChangeAttribute)
	add(s.tmplAttrs...)
	s.numericMark = strings.EqualFold(cfg.ChangeAttribute, "uSNChanged") || strings.EqualFold(cfg.ChangeAttribute, "uSNCreated")
	return s, nil
}

// Name implements Source.
func (s *LDAPSource) Name() string { return s.cfg.Name }

// Priority implements Source.
func (s *LDAPSource) Priority() int { return s.cfg.Priority }

// connect dials the configured URLs in order and binds, returning the
// first that works, the URL it came from, and the function that closes it.
func (s *LDAPSource) connect(ctx context.Context) (*ldap.Conn, string, func(), error) {
	var errs []error
	for _, raw := range s.cfg.URL {
		if err := ctx.Err(); err != nil {
			return nil, "", nil, err
		}
		c, err := s.dial(ctx, raw)
		if err != nil {
			s.log.Warn("ldap server unreachable, trying next", "url", raw, "err", err)
			errs = append(errs, err)
			continue
		}
		// Cancelling ctx (shutdown) closes the connection, so a request
		// in flight ends now instead of after its timeout.
		stop := context.AfterFunc(ctx, func() { c.Close() })
		return c, raw, func() { stop(); c.Close() }, nil
	}
	return nil, "", nil, fmt.Errorf("%w: %w", ErrUnreachable, errors.Join(errs...))
}

// ErrUnreachable means no configured server of a source answered; the last
// good index stays in use and the sync is retried with backoff.
var ErrUnreachable = errors.New("no directory server reachable")

func (s *LDAPSource) dial(ctx context.Context, raw string) (*ldap.Conn, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("ldap %s: %w", raw, err)
	}
	tlsCfg := s.tls.Clone()
	tlsCfg.ServerName = u.Hostname()
	timeout := s.cfg.Timeout.D()
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	// The socket is dialled here rather than by ldap.DialURL so that one
	// deadline on it bounds connecting, the TLS handshake and the bind,
	// and cancelling ctx aborts them: go-ldap's StartTLS runs its
	// handshake without any timeout, so a server that stalls it would
	// hang the sync (and shutdown) for ever.
	port := u.Port()
	if port == "" {
		port = "389"
		if u.Scheme == "ldaps" {
			port = "636"
		}
	}
	deadline := time.Now().Add(timeout)
	nc, err := (&net.Dialer{Deadline: deadline}).DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return nil, fmt.Errorf("ldap dial %s: %w", raw, err)
	}
	_ = nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	defer stop()
	conn := nc
	if u.Scheme == "ldaps" {
		tc := tls.Client(nc, tlsCfg)
		if err := tc.Handshake(); err != nil {
			nc.Close()
			return nil, fmt.Errorf("ldap dial %s: %w", raw, err)
		}
		conn = tc
	}
	c := ldap.NewConn(conn, u.Scheme == "ldaps")
	c.Start()
	c.SetTimeout(s.cfg.Timeout.D())
	if s.cfg.StartTLS && u.Scheme == "ldap" {
		if err := c.StartTLS(tlsCfg); err != nil {
			c.Close()
			return nil, fmt.Errorf("ldap starttls %s: %w", raw, err)
		}
	}
	if s.cfg.BindDN != "" {
		if err := c.Bind(s.cfg.BindDN, s.password); err != nil {
			c.Close()
			return nil, fmt.Errorf("ldap bind %s as %s: %w", raw, s.cfg.BindDN, err)
		}
	}
	if !stop() {
		c.Close()
		return nil, fmt.Errorf("ldap %s: %w", raw, ctx.Err())
	}
	_ = nc.SetDeadline(time.Time{}) // requests have their own timeout
	return c, nil
}

// search runs a paged subtree search under the base DN and calls fn for
// every entry, page by page, so memory stays flat and progress is visible.
func (s *LDAPSource) search(ctx context.Context, c *ldap.Conn, filter string, attrs []string, fn func(*ldap.Entry), afterPage func()) error {
	paging := ldap.NewControlPaging(uint32(s.cfg.PageSize))
	timeLimit := int(s.cfg.Timeout.D() / time.Second)
	for {
		if err := ctx.Err(); err != nil {
			// Tell the server to drop the paged result set.
			paging.PagingSize = 0
			_, _ = c.Search(ldap.NewSearchRequest(s.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
				0, 0, false, filter, []string{"1.1"}, []ldap.Control{paging}))
			return err
		}
		req := ldap.NewSearchRequest(s.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			0, timeLimit, false, filter, attrs, []ldap.Control{paging})
		res, err := c.Search(req)
		if err != nil {
			return fmt.Errorf("ldap search %s %s: %w", s.cfg.BaseDN, filter, err)
		}
		for _, e := range res.Entries {
			fn(e)
		}
		if afterPage != nil {
			afterPage()
		}
		ctrl, ok := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
		if !ok || len(ctrl.Cookie) == 0 {
			return nil
		}
		paging.SetCookie(ctrl.Cookie)
	}
}

// timestampOverlap is how far before its high-water mark an incremental
// sync on a timestamp (modifyTimestamp) looks again. A paged search is no
// snapshot: an entry read on the first page and changed during the sync
// has an older timestamp than one changed later and read on the last page,
// and replicas apply changes late. Re-reading is cheap: unchanged entries
// are not counted or written.
const timestampOverlap = 5 * time.Minute

// serverMark reads the root DSE before a search: on AD, highestCommittedUSN
// is a high-water mark no change during the search can fall below, and
// dsServiceName names the domain controller behind a round-robin host name
// (uSNs are per DC).
func (s *LDAPSource) serverMark(c *ldap.Conn, url string) (mark, server string) {
	server = url
	if !s.numericMark {
		return "", server
	}
	res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1,
		int(s.cfg.Timeout.D()/time.Second), false, "(objectClass=*)", []string{"highestCommittedUSN", "dsServiceName"}, nil))
	if err != nil || len(res.Entries) == 0 {
		return "", server
	}
	e := res.Entries[0]
	if dsa := e.GetEqualFoldAttributeValue("dsServiceName"); dsa != "" {
		server = dsa
	}
	return e.GetEqualFoldAttributeValue("highestCommittedUSN"), server
}

// Full implements Source: it reads every enabled person, and the disabled
// ones' DNs to count them.
func (s *LDAPSource) Full(ctx context.Context, progress func(entries int)) (*Snapshot, error) {
	c, url, done, err := s.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("ldap source %s: %w", s.cfg.Name, err)
	}
	defer done()
	dseMark, server := s.serverMark(c, url)
	snap := &Snapshot{People: map[string]*Person{}}
	seen := ""
	if s.cfg.DisabledFilter != "" {
		err := s.search(ctx, c, and(s.cfg.UserFilter, s.cfg.DisabledFilter), []string{"1.1"}, func(*ldap.Entry) {
			snap.Stats.Disabled++
		}, nil)
		if err != nil {
			return nil, fmt.Errorf("ldap source %s: %w", s.cfg.Name, err)
		}
	}
	n := 0
	err = s.search(ctx, c, and(s.cfg.UserFilter, not(s.cfg.DisabledFilter)), s.attrs, func(e *ldap.Entry) {
		n++
		seen = s.maxMark(seen, e.GetEqualFoldAttributeValue(s.cfg.ChangeAttribute))
		if p := s.person(e, &snap.Stats); p != nil {
			snap.People[p.Key()] = p
		}
	}, func() {
		if progress != nil {
			progress(n)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("ldap source %s: %w", s.cfg.Name, err)
	}
	snap.Cursor = Cursor{Mark: cmp.Or(dseMark, seen), Server: server}
	return snap, nil
}

// Changes implements Source: entries whose change attribute passed the
// cursor. People disabled since then are returned as removed. On AD the
// uSN counters are per domain controller, so a cursor from another server
// is useless and ErrNeedFull asks for a full read.
func (s *LDAPSource) Changes(ctx context.Context, cur Cursor) (*Delta, error) {
	if cur.Mark == "" {
		return nil, ErrNeedFull
	}
	c, url, done, err := s.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("ldap source %s: %w", s.cfg.Name, err)
	}
	defer done()
	dseMark, server := s.serverMark(c, url)
	if s.numericMark && server != cur.Server {
		return nil, fmt.Errorf("%w: %s counts changes per server and the cursor is from %s, now connected to %s",
			ErrNeedFull, s.cfg.ChangeAttribute, cur.Server, server)
	}
	var since string
	if s.numericMark {
		// LDAP has no ">", so ask for >= mark+1.
		n, err := strconv.ParseInt(cur.Mark, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: bad cursor %q", ErrNeedFull, cur.Mark)
		}
		since = strconv.FormatInt(n+1, 10)
	} else {
		t, err := parseGeneralizedTime(cur.Mark)
		if err != nil {
			return nil, fmt.Errorf("%w: bad cursor %q", ErrNeedFull, cur.Mark)
		}
		since = t.Add(-timestampOverlap).UTC().Format("20060102150405Z")
	}
	changed := fmt.Sprintf("(%s>=%s)", s.cfg.ChangeAttribute, ldap.EscapeFilter(since))
	d := &Delta{}
	seen := cur.Mark
	idAttrs := []string{s.cfg.ChangeAttribute}
	if s.cfg.Attributes.ID != "" {
		idAttrs = append(idAttrs, s.cfg.Attributes.ID)
	}
	if s.cfg.DisabledFilter != "" {
		err := s.search(ctx, c, and(s.cfg.UserFilter, s.cfg.DisabledFilter, changed), idAttrs, func(e *ldap.Entry) {
			d.Removed = append(d.Removed, (&Person{DN: e.DN, ID: s.entryID(e)}).Key())
			d.Stats.Disabled++
			seen = s.maxMark(seen, e.GetEqualFoldAttributeValue(s.cfg.ChangeAttribute))
		}, nil)
		if err != nil {
			return nil, fmt.Errorf("ldap source %s: %w", s.cfg.Name, err)
		}
	}
	err = s.search(ctx, c, and(s.cfg.UserFilter, not(s.cfg.DisabledFilter), changed), s.attrs, func(e *ldap.Entry) {
		seen = s.maxMark(seen, e.GetEqualFoldAttributeValue(s.cfg.ChangeAttribute))
		if p := s.person(e, &d.Stats); p != nil {
			d.Changed = append(d.Changed, p)
		} else {
			// Changed so that it no longer maps (mail removed, say).
			d.Removed = append(d.Removed, (&Person{DN: e.DN, ID: s.entryID(e)}).Key())
		}
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("ldap source %s: %w", s.cfg.Name, err)
	}
	mark := seen
	if dseMark != "" {
		mark = s.maxMark(cur.Mark, dseMark)
	}
	d.Cursor = Cursor{Mark: mark, Server: server}
	return d, nil
}

// entryID is the entry's stable identity: a binary objectGUID in hex, a
// textual one (entryUUID, ipaUniqueID) as it is; "" when absent.
func (s *LDAPSource) entryID(e *ldap.Entry) string {
	attr := s.cfg.Attributes.ID
	if attr == "" {
		return ""
	}
	if strings.EqualFold(attr, "objectGUID") {
		if raw := e.GetEqualFoldRawAttributeValue(attr); len(raw) > 0 {
			return hex.EncodeToString(raw)
		}
		return ""
	}
	return e.GetEqualFoldAttributeValue(attr)
}

// Check connects, binds and reads the base DN, so "presencegw doctor" can
// tell an operator which of URL, TLS, credentials or base DN is wrong.
func (s *LDAPSource) Check(ctx context.Context) error {
	var errs []error
	for _, raw := range s.cfg.URL {
		c, err := s.dial(ctx, raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_, err = c.Search(ldap.NewSearchRequest(s.cfg.BaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
			1, int(s.cfg.Timeout.D()/time.Second), false, "(objectClass=*)", []string{"1.1"}, nil))
		c.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("ldap %s: base_dn %s: %w", raw, s.cfg.BaseDN, err))
		}
	}
	return errors.Join(errs...)
}

// Lookup asks the directory directly which enabled entries claim addr, for
// "resolve --live": it shows what the directory says now, independent of
// the index. The address is escaped before it goes into the filter.
func (s *LDAPSource) Lookup(ctx context.Context, addr string) ([]*Person, error) {
	addr, err := NormalizeAddress(addr)
	if err != nil {
		return nil, err
	}
	c, _, done, err := s.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("ldap source %s: %w", s.cfg.Name, err)
	}
	defer done()
	a := s.cfg.Attributes
	esc := ldap.EscapeFilter(addr)
	var or []string
	for _, m := range a.Mail {
		or = append(or, fmt.Sprintf("(%s=%s)", m, esc))
	}
	if a.ProxyAddresses != "" {
		or = append(or, fmt.Sprintf("(%s=smtp:%s)", a.ProxyAddresses, esc))
	}
	if a.UserPrincipal != "" {
		or = append(or, fmt.Sprintf("(%s=%s)", a.UserPrincipal, esc))
	}
	if a.SIP != "" {
		or = append(or, fmt.Sprintf("(%s=sip:%s)", a.SIP, esc))
	}
	filter := and(s.cfg.UserFilter, not(s.cfg.DisabledFilter), "(|"+strings.Join(or, "")+")")
	var out []*Person
	var st SyncStats
	err = s.search(ctx, c, filter, s.attrs, func(e *ldap.Entry) {
		if p := s.person(e, &st); p != nil {
			out = append(out, p)
		}
	}, nil)
	return out, err
}

// person turns an entry into a Person, or nil (counted in st) when it has
// no address in the source's domains or no JID.
func (s *LDAPSource) person(e *ldap.Entry, st *SyncStats) *Person {
	a := s.cfg.Attributes
	add := addressAdder{domains: s.domains}
	if a.ProxyAddresses != "" {
		for _, v := range e.GetEqualFoldAttributeValues(a.ProxyAddresses) {
			// "SMTP:" is the primary address, "smtp:" an alias; X500:,
			// SIP:, X400: and the rest are not mail addresses.
			if len(v) > 5 && strings.EqualFold(v[:5], "smtp:") {
				add.add(a.ProxyAddresses, v, v[5:], v[:5] == "SMTP:")
			}
		}
	}
	for _, m := range a.Mail {
		for _, v := range e.GetEqualFoldAttributeValues(m) {
			add.add(m, v, v, false)
		}
	}
	if a.UserPrincipal != "" {
		for _, v := range e.GetEqualFoldAttributeValues(a.UserPrincipal) {
			add.add(a.UserPrincipal, v, v, false)
		}
	}
	if a.SIP != "" {
		for _, v := range e.GetEqualFoldAttributeValues(a.SIP) {
			if len(v) > 4 && strings.EqualFold(v[:4], "sip:") {
				add.add(a.SIP, v, v[4:], false)
			}
		}
	}
	addrs := add.result()
	if len(addrs) == 0 {
		if add.outside > 0 {
			st.OutsideDomains++
		} else {
			st.NoMail++
		}
		return nil
	}
	p := &Person{
		Source:     s.cfg.Name,
		DN:         e.DN,
		ID:         s.entryID(e),
		Name:       e.GetEqualFoldAttributeValue(a.DisplayName),
		Title:      e.GetEqualFoldAttributeValue(a.Title),
		Department: e.GetEqualFoldAttributeValue(a.Department),
		Addresses:  addrs,
	}
	if a.CalendarRoute != "" {
		p.Route = internRoute(e.GetEqualFoldAttributeValue(a.CalendarRoute))
	}
	p.MailboxID = addrs[0].Address
	if a.Mailbox != "" {
		if v := e.GetEqualFoldAttributeValue(a.Mailbox); v != "" {
			p.MailboxID = v
		}
	}
	if !s.setJID(p, e) {
		st.NoJID++
		return nil
	}
	st.People++
	st.Addresses += len(addrs)
	return p
}

// setJID fills p's JID from the attribute or template; it returns false
// when the entry has none (the person is skipped). Several different values
// are kept as a JIDProblem: a conflict for an admin, not a coin toss.
func (s *LDAPSource) setJID(p *Person, e *ldap.Entry) bool {
	if s.jidTmpl != nil {
		data := map[string]string{}
		for _, n := range s.tmplAttrs {
			if v := e.GetEqualFoldAttributeValue(n); v != "" {
				data[n] = v
			}
		}
		primary := p.Addresses[0].Address
		at := strings.LastIndexByte(primary, '@')
		data["localpart"], data["domain"] = primary[:at], primary[at+1:]
		var b strings.Builder
		if err := s.jidTmpl.Execute(&b, data); err != nil {
			s.log.Debug("jid template failed", "dn", e.DN, "err", err)
			return false
		}
		jid, err := normalizeJID(b.String())
		if err != nil {
			p.JIDProblem = fmt.Sprintf("template gave %v", err)
			return true
		}
		p.JID, p.JIDFrom = jid, s.jidFrom
		return true
	}
	var jids []string
	for _, v := range e.GetEqualFoldAttributeValues(s.cfg.JID.Attribute) {
		j, err := normalizeJID(v)
		if err != nil {
			p.JIDProblem = fmt.Sprintf("%s: %v", s.cfg.JID.Attribute, err)
			return true
		}
		if !slices.Contains(jids, j) {
			jids = append(jids, j)
		}
	}
	switch len(jids) {
	case 0:
		return false
	case 1:
		p.JID, p.JIDFrom = jids[0], s.jidFrom
	default:
		p.JIDProblem = fmt.Sprintf("%s has %d different values: %s", s.cfg.JID.Attribute, len(jids), strings.Join(jids, ", "))
	}
	return true
}

// maxMark returns the later of two change marks.
func (s *LDAPSource) maxMark(a, b string) string {
	if b == "" {
		return a
	}
	if a == "" {
		return b
	}
	if s.numericMark {
		x, errA := strconv.ParseInt(a, 10, 64)
		y, errB := strconv.ParseInt(b, 10, 64)
		if errA == nil && errB == nil {
			if y > x {
				return b
			}
			return a
		}
	}
	ta, errA := parseGeneralizedTime(a)
	tb, errB := parseGeneralizedTime(b)
	if errA == nil && errB == nil {
		if tb.After(ta) {
			return b
		}
		return a
	}
	if b > a {
		return b
	}
	return a
}

// and combines filters with &, leaving out empty ones.
func and(filters ...string) string {
	var parts []string
	for _, f := range filters {
		if f != "" {
			parts = append(parts, f)
		}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(&" + strings.Join(parts, "") + ")"
}

// not negates a filter; the empty filter stays empty (matches everything).
func not(f string) string {
	if f == "" {
		return ""
	}
	return "(!" + f + ")"
}

// parseGeneralizedTime reads an LDAP GeneralizedTime such as
// "20261124101714Z" or "20240101090000.0Z".
func parseGeneralizedTime(s string) (time.Time, error) {
	if t, err := time.Parse("20060102150405Z0700", s); err == nil {
		return t, nil
	}
	return time.Parse("20060102150405.999999999Z0700", s)
}

package config

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// XMPP configures the XEP-0114 component: calendar presence for contacts,
// live presence for lookups, lookups and commands over XMPP. No component
// runs when the section is absent.
type XMPP struct {
	// Server is the XMPP server's component port, host:port.
	Server string `yaml:"server"`
	// JID is the component's address, a bare domain such as
	// calendar.example.com.
	JID string `yaml:"jid"`
	// The XEP-0114 handshake secret, from a file or an environment
	// variable (one of them), never from the config itself.
	SecretFile string `yaml:"secret_file"`
	SecretEnv  string `yaml:"secret_env"`
	// Hosts are the users' domains: overlays are set there and only their
	// users' presence is learnt. Default: the parent domain of JID.
	Hosts []string `yaml:"hosts"`
	// Admins are the bare JIDs allowed the admin commands (resolve, sync).
	Admins []string `yaml:"admins"`
	// SendRate bounds overlay requests per second (default 200); Burst is
	// how many may go at once (default 50).
	SendRate float64 `yaml:"send_rate"`
	Burst    int     `yaml:"burst"`
	// ReconnectMax caps the reconnect backoff. Default 1m.
	ReconnectMax Duration `yaml:"reconnect_max"`
	// Grace is how long live presence learnt before the link dropped is
	// still believed. Default 2m.
	Grace Duration `yaml:"grace"`
	// Visibility is what local users see of a person in lookups over
	// XMPP: state, status (default) or calendar.
	Visibility string `yaml:"visibility"`
	// SessionsAPI is ejabberd's mod_http_api base URL (loopback, e.g.
	// http://127.0.0.1:5280/api): ejabberd 23.01 sends no presence
	// snapshot when the component connects, so the gateway reads who is
	// online from connected_users_info. Not needed for Prosody.
	SessionsAPI string `yaml:"sessions_api"`
	// ClientServer is the c2s address (host:port) the ejabberd calendar
	// sessions log in at, when the module is missing; default: the
	// sessions API's host, port 5222.
	ClientServer string `yaml:"client_server"`
	// ClientCAFile is a PEM bundle trusted, besides the system's roots,
	// for the calendar sessions' STARTTLS; ClientTLSName the name their
	// certificate must carry (default: the user's domain). Either one
	// makes the sessions require STARTTLS, also on loopback.
	ClientCAFile  string `yaml:"client_ca_file"`
	ClientTLSName string `yaml:"client_tls_name"`
	// ShadowContacts allows the shadow-contact fallback (a "<name>
	// (calendar)" item in each contact's roster, written with the
	// XEP-0356 roster permission) where neither the overlay module nor an
	// ejabberd calendar session is available. Off by default: it changes
	// people's rosters. Turned off again, the items are removed.
	ShadowContacts bool `yaml:"shadow_contacts"`
	// ScheduledOverlays (default true) sends each person's next calendar
	// state ahead, with its start time, to a module that takes scheduled
	// overlays, so a boundary shared by thousands costs the server only
	// its own broadcast at that instant. false sends each state when it
	// starts: for a chat server whose clock cannot be trusted.
	ScheduledOverlays *bool `yaml:"scheduled_overlays"`
}

func (c *Config) applyXMPPDefaults() {
	x := c.XMPP
	if x == nil {
		return
	}
	// A key written with 0 is a mistake to report, not a default to fill.
	set := func(key string) bool { return c.lines["xmpp."+key] > 0 }
	if x.SendRate == 0 && !set("send_rate") {
		x.SendRate = 200
	}
	if x.Burst == 0 && !set("burst") {
		x.Burst = 50
	}
	if x.ReconnectMax == 0 && !set("reconnect_max") {
		x.ReconnectMax = Duration(time.Minute)
	}
	if x.Grace == 0 && !set("grace") {
		x.Grace = Duration(2 * time.Minute)
	}
	def(&x.Visibility, "status")
	if len(x.Hosts) == 0 && !set("hosts") && !strings.ContainsAny(x.JID, "@/") && domainProblem(x.JID) == "" {
		if parent, ok := parentDomain(x.JID); ok {
			x.Hosts = []string{parent}
		}
	}
	c.relative(&x.SecretFile, &x.ClientCAFile)
}

// parentDomain is the users' domain a component JID belongs to:
// calendar.example.com → example.com. It follows xmppbot's rule, so a
// config this package accepts is one the component accepts.
func parentDomain(jid string) (string, bool) {
	_, parent, ok := strings.Cut(strings.ToLower(jid), ".")
	if !ok || parent == "" || !strings.Contains(parent, ".") && parent != "localhost" && !strings.HasSuffix(parent, "test") {
		return "", false
	}
	return parent, true
}

func (c *Config) validateXMPP(p *Problems) {
	x := c.XMPP
	if x == nil {
		c.emptySection(p, "xmpp", "set server, jid and secret_file or secret_env")
		return
	}
	switch host, port, err := net.SplitHostPort(x.Server); {
	case x.Server == "":
		p.Add("xmpp.server", "is required: the XMPP server's component port as host:port, e.g. 127.0.0.1:5347")
	case err != nil:
		p.Add("xmpp.server", "%q must be host:port (the component port, e.g. 127.0.0.1:5347)", x.Server)
	case host == "":
		p.Add("xmpp.server", "%q has no host", x.Server)
	default:
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			p.Add("xmpp.server", "port %q is not a port number", port)
		}
	}
	switch {
	case x.JID == "":
		p.Add("xmpp.jid", "is required: the component's address, e.g. calendar.example.com")
	case strings.ContainsAny(x.JID, "@/"):
		p.Add("xmpp.jid", "%q must be a bare domain such as calendar.example.com (no @ or /)", x.JID)
	default:
		if why := domainProblem(x.JID); why != "" {
			p.Add("xmpp.jid", "%q is not a domain: %s", x.JID, why)
		} else if len(x.Hosts) == 0 && c.lines["xmpp.hosts"] == 0 {
			if _, ok := parentDomain(x.JID); !ok {
				p.Add("xmpp.hosts", "is required: the users' domain cannot be derived from jid %q", x.JID)
			}
		}
	}
	if (x.SecretFile == "") == (x.SecretEnv == "") {
		p.Add("xmpp", "set secret_file or secret_env (one of them): the component's handshake secret")
	}
	checkFile(p, "xmpp.secret_file", x.SecretFile)
	checkEnv(p, "xmpp.secret_env", x.SecretEnv)
	if c.lines["xmpp.hosts"] > 0 && len(x.Hosts) == 0 {
		p.Add("xmpp.hosts", "is empty: list the users' domains, or remove the key for jid's parent domain")
	}
	seen := map[string]string{}
	for i, h := range x.Hosts {
		path := fmt.Sprintf("xmpp.hosts[%d]", i)
		k := strings.ToLower(h)
		switch why := domainProblem(h); {
		case why != "":
			p.Add(path, "%q is not a domain: %s", h, why)
		case k == strings.ToLower(x.JID):
			p.Add(path, "%q is the component's own jid: hosts are the users' domains", h)
		case seen[k] != "":
			p.Add(path, "%q is already listed as %s", h, seen[k])
		}
		seen[k] = path
	}
	seen = map[string]string{}
	for i, a := range x.Admins {
		path := fmt.Sprintf("xmpp.admins[%d]", i)
		k := strings.ToLower(a)
		if why := bareJIDProblem(a); why != "" {
			p.Add(path, "%q is not a bare JID (like admin@example.com): %s", a, why)
		} else if seen[k] != "" {
			p.Add(path, "%q is already listed as %s", a, seen[k])
		}
		seen[k] = path
	}
	if !(x.SendRate > 0) || math.IsInf(x.SendRate, 0) {
		p.Add("xmpp.send_rate", "must be a number of overlay requests per second above 0 (default 200)")
	}
	if x.Burst < 1 {
		p.Add("xmpp.burst", "must be at least 1 (default 50)")
	}
	if d := x.ReconnectMax.D(); d < time.Second || d > time.Hour {
		p.Add("xmpp.reconnect_max", "must be between 1s and 1h (default 1m)")
	}
	if d := x.Grace.D(); d < time.Second || d > time.Hour {
		p.Add("xmpp.grace", "must be between 1s and 1h (default 2m)")
	}
	if x.SessionsAPI != "" {
		if u, err := url.Parse(x.SessionsAPI); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Add("xmpp.sessions_api", "%q must be an http(s) URL, e.g. http://127.0.0.1:5280/api", x.SessionsAPI)
		} else if u.User != nil {
			p.Add("xmpp.sessions_api", "must not carry credentials in the URL")
		}
	}
	for _, kv := range [][2]string{{"client_server", x.ClientServer}, {"client_ca_file", x.ClientCAFile}, {"client_tls_name", x.ClientTLSName}} {
		if kv[1] != "" && x.SessionsAPI == "" {
			p.Add("xmpp."+kv[0], "is only used by the ejabberd calendar sessions, which need sessions_api")
		}
	}
	checkFile(p, "xmpp.client_ca_file", x.ClientCAFile)
	if x.ClientTLSName != "" {
		if why := domainProblem(x.ClientTLSName); why != "" {
			p.Add("xmpp.client_tls_name", "%q is not a domain: %s", x.ClientTLSName, why)
		}
	}
	if x.ClientServer != "" {
		if host, port, err := net.SplitHostPort(x.ClientServer); err != nil || host == "" || port == "" {
			p.Add("xmpp.client_server", "%q must be host:port, e.g. 127.0.0.1:5222", x.ClientServer)
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			p.Add("xmpp.client_server", "%q: port must be 1-65535", x.ClientServer)
		}
	}
	if !slices.Contains([]string{"state", "status", "calendar"}, x.Visibility) {
		p.Add("xmpp.visibility", "must be state, status or calendar, not %q", x.Visibility)
	}
}

// domainProblem says why s is not a DNS-style domain (a JID's domain
// part), or "" when it is one.
func domainProblem(s string) string {
	switch {
	case s == "":
		return "empty"
	case len(s) > 1023:
		return "longer than 1023 bytes"
	case !utf8.ValidString(s):
		return "not UTF-8"
	case strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, ".."):
		return "empty label"
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) > 63 {
			return "a label is longer than 63 bytes"
		}
		if strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return "a label starts or ends with '-'"
		}
		for _, r := range label {
			if r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				return fmt.Sprintf("%q is not allowed", r)
			}
		}
	}
	return ""
}

// bareJIDProblem says why s is not a bare JID with a local part, or "".
func bareJIDProblem(s string) string {
	local, domain, ok := strings.Cut(s, "@")
	switch {
	case !ok || local == "":
		return "no local part"
	case strings.Contains(domain, "/"):
		return "a resource is not allowed"
	case len(local) > 1023:
		return "local part longer than 1023 bytes"
	case strings.ContainsAny(local, "\"&'/:<>@") || strings.ContainsFunc(local, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		// RFC 7622 §3.3.1 forbids these in the local part.
		return "forbidden character in the local part"
	}
	if why := domainProblem(domain); why != "" {
		return "domain: " + why
	}
	return ""
}

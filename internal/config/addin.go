package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Addin configures the Outlook add-in the gateway serves under /addin/:
// its manifest (/addin/manifest.xml, presencegw manifest) and the task
// pane's sign-in. Off when absent.
type Addin struct {
	// BaseURL is where Outlook reaches this gateway, such as
	// https://gw.example.com (behind a proxy: the public URL, with any
	// path prefix). Required. Every URL in the manifest is under it.
	BaseURL string `yaml:"base_url"`
	// ID is the add-in's GUID in the manifest. Default: derived from
	// base_url, so it stays the same across restarts and upgrades.
	ID string `yaml:"id"`
	// ClientID is the application (client) ID of the add-in's Entra app
	// registration, with which the task pane gets a token for the API by
	// Nested App Authentication. Required unless web.anonymous opens
	// presence and stream.
	ClientID string `yaml:"client_id"`
	// Tenant is the sign-in tenant: a tenant ID, a verified domain, or
	// organizations. Default: web.entra's tenant when it lists exactly
	// one, else organizations.
	Tenant string `yaml:"tenant"`
	// Scope is the API scope the task pane asks for. Default
	// api://AUDIENCE/SCOPE from web.entra's first audience and its scope.
	Scope string `yaml:"scope"`
	// ChatURL is a web chat link template with {jid} and/or {email}
	// (filled in URL-escaped), such as
	// https://chat.example.com/#/converse/chats?jid={jid}. Default: the
	// xmpp: URI, which opens the desktop chat client.
	ChatURL string `yaml:"chat_url"`
	// FrameAncestors are extra origins that may frame the task pane, such
	// as an on-premises Outlook on the web (https://mail.example.com).
	// Microsoft's Outlook on the web origins are always allowed.
	FrameAncestors []string `yaml:"frame_ancestors"`
}

// tenantDomain is a verified domain used as a tenant, such as
// contoso.onmicrosoft.com.
var tenantDomain = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)

func (c *Config) applyAddinDefaults() {
	a := c.Web.Addin
	if a == nil {
		return
	}
	a.BaseURL = strings.TrimRight(a.BaseURL, "/")
	a.Tenant = strings.ToLower(a.Tenant)
	if e := c.Web.Entra; e != nil {
		if a.Tenant == "" && len(e.Tenants) == 1 {
			a.Tenant = strings.ToLower(e.Tenants[0])
		}
		if a.Scope == "" && len(e.Audiences) > 0 {
			a.Scope = "api://" + e.Audiences[0] + "/" + e.Scope
		}
	}
	def(&a.Tenant, "organizations")
}

func (c *Config) validateAddin(p *Problems) {
	a := c.Web.Addin
	if a == nil {
		c.emptySection(p, "web.addin", "set base_url")
		return
	}
	if a.BaseURL == "" {
		p.Add("web.addin.base_url", "is required: the URL Outlook reaches the gateway at, such as https://gw.example.com")
	} else if msg := checkAddinURL(a.BaseURL, false); msg != "" {
		p.Add("web.addin.base_url", "%q %s", a.BaseURL, msg)
	}
	if a.ID != "" && !guid.MatchString(a.ID) {
		p.Add("web.addin.id", "%q is not a GUID (the add-in's id in the manifest; leave it out for one derived from base_url)", a.ID)
	}
	anonymous := slices.Contains(c.Web.Anonymous, "presence") && slices.Contains(c.Web.Anonymous, "stream")
	switch {
	case a.ClientID == "" && !anonymous:
		p.Add("web.addin.client_id", "is required (the add-in's Entra application ID, for its token to the API) unless web.anonymous opens presence and stream")
	case a.ClientID != "" && !guid.MatchString(a.ClientID):
		p.Add("web.addin.client_id", "%q is not a GUID (the add-in's Entra application (client) ID)", a.ClientID)
	case a.ClientID != "" && c.Web.Entra == nil:
		p.Add("web.addin.client_id", "the API accepts no Entra ID tokens: add a web.entra section (tenants, audiences) for the add-in's tokens")
	}
	if a.Tenant != "organizations" && a.Tenant != "common" && !guid.MatchString(a.Tenant) && !tenantDomain.MatchString(a.Tenant) {
		p.Add("web.addin.tenant", "%q must be a tenant ID (GUID), a verified domain such as contoso.onmicrosoft.com, or organizations", a.Tenant)
	}
	switch {
	case a.ClientID != "" && a.Scope == "":
		p.Add("web.addin.scope", "is required with client_id: the API scope the add-in asks for, such as api://API-CLIENT-ID/access_as_user")
	case strings.ContainsAny(a.Scope, " \t"):
		p.Add("web.addin.scope", "%q: give one scope, such as api://API-CLIENT-ID/access_as_user", a.Scope)
	}
	if t := a.ChatURL; t != "" {
		filled := strings.NewReplacer("{jid}", "alice%40chat.example.com", "{email}", "alice%40example.com").Replace(t)
		switch {
		case !strings.Contains(t, "{jid}") && !strings.Contains(t, "{email}"):
			p.Add("web.addin.chat_url", "%q must contain {jid} or {email}", t)
		case strings.ContainsAny(filled, "{}"):
			p.Add("web.addin.chat_url", "%q: the placeholders are {jid} and {email}", t)
		default:
			if msg := checkAddinURL(filled, true); msg != "" {
				p.Add("web.addin.chat_url", "%q %s", t, msg)
			}
		}
	}
	for i, o := range a.FrameAncestors {
		u, err := url.Parse(o)
		if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.ContainsAny(o, " ;,'") {
			p.Add(fmt.Sprintf("web.addin.frame_ancestors[%d]", i), "%q must be an https:// origin, such as https://mail.example.com", o)
		}
	}
}

// checkAddinURL says what is wrong with a URL the add-in uses ("" when
// nothing): https, or http to a loopback host (a developer's machine).
// withQuery allows a query and fragment (a chat link's).
func checkAddinURL(raw string, withQuery bool) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return "must be an https:// URL"
	case u.Scheme != "https" && u.Scheme != "http":
		return "must be an https:// URL"
	case u.User != nil:
		return "must not hold a user name or password"
	case !withQuery && (u.RawQuery != "" || u.ForceQuery || u.Fragment != ""):
		return "must have no query or fragment"
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return "must be https: Outlook loads add-ins over https only (http only for localhost)"
	}
	return ""
}

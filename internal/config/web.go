package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Web configures the HTTP API.
type Web struct {
	// Anonymous lists the endpoint groups open without credentials
	// (presence, stream, badge, openfire). Default none: nothing about a
	// person leaks to an unauthenticated caller unless this opts in.
	Anonymous []string `yaml:"anonymous"`
	// AnonymousVisibility is what anonymous callers see: state (default),
	// status or calendar.
	AnonymousVisibility string `yaml:"anonymous_visibility"`
	// APIKeys are the services allowed to ask, each with the SHA-256 of
	// its key (presencegw token --api-key prints one) and what it may see.
	APIKeys []APIKey `yaml:"api_keys"`
	// CORSOrigins may call the API from a browser.
	CORSOrigins []string `yaml:"cors_origins"`
	// MaxBatch is the most addresses one batch lookup takes. Default 500.
	MaxBatch int `yaml:"max_batch"`
	// Kopano serves kopano-presence's endpoint (on "/") when set.
	Kopano *Kopano `yaml:"kopano"`
	// RatePerSecond and Burst limit each caller. Default 50/s, burst 100.
	RatePerSecond float64 `yaml:"rate_per_second"`
	Burst         int     `yaml:"burst"`
	// Entra accepts Entra ID access tokens, such as those an Outlook
	// add-in gets with Nested App Authentication. Off when absent.
	Entra *Entra `yaml:"entra"`
	// Openfire configures the Openfire presence plugin's endpoint,
	// /plugins/presence/status (endpoint group openfire).
	Openfire Openfire `yaml:"openfire"`
	// Addin serves the Outlook add-in (manifest and task pane) under
	// /addin/. Off when absent.
	Addin *Addin `yaml:"addin"`
}

// Openfire configures /plugins/presence/status.
type Openfire struct {
	// Mode is subscribed (default): presence only for a req_jid that is
	// the authenticated caller's own JID, so every other answer is the
	// forbidden one; or public: for every caller the openfire endpoint
	// group admits, cut to what that caller may see.
	Mode string `yaml:"mode"`
	// UnavailableText is the status of an offline person who has none
	// (text and XML answers). Default Unavailable.
	UnavailableText string `yaml:"unavailable_text"`
	// ImageHosts are the hosts images= and the per-state image parameters
	// may redirect to. Default none: built-in images only, no open redirect.
	ImageHosts []string `yaml:"image_hosts"`
}

// Entra configures Entra ID access tokens as credentials of the API.
type Entra struct {
	// Tenants are the tenant IDs (GUIDs) whose users may ask. Required.
	Tenants []string `yaml:"tenants"`
	// Audiences are the API's application (client) IDs accepted in aud:
	// v2.0 access tokens carry the GUID. Required.
	Audiences []string `yaml:"audiences"`
	// Scope must be in the token's scp. Default access_as_user.
	Scope string `yaml:"scope"`
	// Authority is the sign-in host. Default https://login.microsoftonline.com.
	Authority string `yaml:"authority"`
	// ClientApps, when set, are the only client applications (azp, the
	// add-in's client ID) whose tokens are accepted.
	ClientApps []string `yaml:"client_apps"`
	// Visibility is what these callers see: state, status (default) or
	// calendar.
	Visibility string `yaml:"visibility"`
}

// Kopano configures the kopano-presence compatible endpoint: the shared
// secret its clients sign tokens with (from a file or the environment),
// how long a token lives, and when a reported status turns unavailable.
type Kopano struct {
	SecretFile    string   `yaml:"secret_file"`
	SecretEnv     string   `yaml:"secret_env"`
	TokenExpire   Duration `yaml:"token_expire"`   // default 5m (server_token_expire)
	SpreedTimeout Duration `yaml:"spreed_timeout"` // default 2m (spreed_auto_unavailable)
	// Visibility is what a token holder sees of colleagues: state
	// (default), status or calendar.
	Visibility string `yaml:"visibility"`
}

// APIKey is one service's key.
type APIKey struct {
	Name       string `yaml:"name"`
	SHA256     string `yaml:"sha256"`
	Visibility string `yaml:"visibility"` // state, status (default) or calendar
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (c *Config) applyWebDefaults() {
	w := &c.Web
	def(&w.AnonymousVisibility, "state")
	if w.MaxBatch == 0 {
		w.MaxBatch = 500
	}
	if w.RatePerSecond == 0 {
		w.RatePerSecond = 50
	}
	if w.Burst == 0 {
		w.Burst = 100
	}
	for i := range w.APIKeys {
		def(&w.APIKeys[i].Visibility, "status")
	}
	if e := w.Entra; e != nil {
		def(&e.Scope, "access_as_user")
		def(&e.Authority, "https://login.microsoftonline.com")
		def(&e.Visibility, "status")
	}
	c.applyAddinDefaults()
	def(&w.Openfire.Mode, "subscribed")
	def(&w.Openfire.UnavailableText, "Unavailable")
	if k := w.Kopano; k != nil {
		if k.TokenExpire == 0 {
			k.TokenExpire = Duration(5 * time.Minute)
		}
		if k.SpreedTimeout == 0 {
			k.SpreedTimeout = Duration(2 * time.Minute)
		}
		def(&k.Visibility, "state")
		if k.SecretFile != "" && !filepath.IsAbs(k.SecretFile) && c.path != "" {
			k.SecretFile = filepath.Join(filepath.Dir(c.path), k.SecretFile)
		}
	}
}

func (c *Config) validateWeb(p *Problems) {
	w := c.Web
	visibilities := []string{"state", "status", "calendar"}
	for i, g := range w.Anonymous {
		if !slices.Contains([]string{"presence", "stream", "badge", "openfire"}, g) {
			p.Add(fmt.Sprintf("web.anonymous[%d]", i), "%q: the endpoint groups are presence, stream, badge and openfire", g)
		}
	}
	if !slices.Contains(visibilities, w.AnonymousVisibility) {
		p.Add("web.anonymous_visibility", "must be state, status or calendar, not %q", w.AnonymousVisibility)
	}
	names := map[string]bool{}
	for i, k := range w.APIKeys {
		path := fmt.Sprintf("web.api_keys[%d]", i)
		switch {
		case k.Name == "":
			p.Add(path+".name", "is required")
		case names[k.Name]:
			p.Add(path+".name", "%q is used twice", k.Name)
		}
		names[k.Name] = true
		if !sha256Hex.MatchString(k.SHA256) {
			p.Add(path+".sha256", "must be the key's SHA-256 as 64 lower-case hex digits (the key itself never goes in the config)")
		}
		if !slices.Contains(visibilities, k.Visibility) {
			p.Add(path+".visibility", "must be state, status or calendar, not %q", k.Visibility)
		}
	}
	if k := w.Kopano; k != nil {
		if (k.SecretFile == "") == (k.SecretEnv == "") {
			p.Add("web.kopano", "set secret_file or secret_env (one of them)")
		}
		checkFile(p, "web.kopano.secret_file", k.SecretFile)
		checkEnv(p, "web.kopano.secret_env", k.SecretEnv)
		if k.TokenExpire.D() < 10*time.Second || k.TokenExpire.D() > 24*time.Hour {
			p.Add("web.kopano.token_expire", "must be between 10s and 24h")
		}
		if k.SpreedTimeout.D() < 10*time.Second {
			p.Add("web.kopano.spreed_timeout", "must be at least 10s")
		}
		if !slices.Contains(visibilities, k.Visibility) {
			p.Add("web.kopano.visibility", "must be state, status or calendar, not %q", k.Visibility)
		}
	}
	if o := w.Openfire; o.Mode != "subscribed" && o.Mode != "public" {
		p.Add("web.openfire.mode", "must be subscribed or public, not %q", o.Mode)
	}
	if t := w.Openfire.UnavailableText; utf8.RuneCountInString(t) > 200 || strings.ContainsFunc(t, unicode.IsControl) {
		p.Add("web.openfire.unavailable_text", "must be one line of at most 200 characters")
	}
	if w.MaxBatch < 1 || w.MaxBatch > 5000 {
		p.Add("web.max_batch", "must be between 1 and 5000")
	}
	if w.RatePerSecond < 0 || w.Burst < 1 {
		p.Add("web.rate_per_second", "rate must not be negative and burst at least 1")
	}
	c.validateEntra(p)
	c.validateAddin(p)
}

// emptySection reports an optional section written with nothing under it,
// which YAML decodes as if it were absent; hint says what to set.
func (c *Config) emptySection(p *Problems, path, hint string) {
	if c.lines[path] > 0 {
		p.Add(path, "is empty: %s, or remove the section", hint)
	}
}

// guid is an Entra ID tenant or application ID.
var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (c *Config) validateEntra(p *Problems) {
	e := c.Web.Entra
	if e == nil {
		c.emptySection(p, "web.entra", "set tenants and audiences")
		return
	}
	guids := func(field, what string, list []string, required bool) {
		if required && len(list) == 0 {
			p.Add("web.entra."+field, "is required: the %s (GUIDs)", what)
		}
		for i, g := range list {
			if !guid.MatchString(g) {
				p.Add(fmt.Sprintf("web.entra.%s[%d]", field, i), "%q is not a GUID (the %s)", g, what)
			}
		}
	}
	guids("tenants", "tenant IDs whose users may ask", e.Tenants, true)
	guids("audiences", "API's application (client) ID, which v2.0 tokens carry in aud", e.Audiences, true)
	guids("client_apps", "client applications' (add-ins') client IDs", e.ClientApps, false)
	if strings.ContainsAny(e.Scope, " \t") {
		p.Add("web.entra.scope", "%q: give one scope name, such as access_as_user", e.Scope)
	}
	if u, err := url.Parse(e.Authority); err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		p.Add("web.entra.authority", "%q must be an https:// URL of the sign-in host, such as https://login.microsoftonline.com", e.Authority)
	}
	if !slices.Contains([]string{"state", "status", "calendar"}, e.Visibility) {
		p.Add("web.entra.visibility", "must be state, status or calendar, not %q", e.Visibility)
	}
}

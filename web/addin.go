package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// addinDist is the built task pane (web/addin, npm run build): committed,
// so the gateway builds and serves it without Node.
//
//go:embed addin/dist
var addinDist embed.FS

// OfficeJSURL is where the task pane loads Office.js: Microsoft's CDN, as
// every Office host requires. It is never bundled.
const OfficeJSURL = "https://appsforoffice.microsoft.com/lib/1/hosted/office.js"

// outlookOrigins may frame the task pane: Outlook on the web. The desktop
// hosts (new Outlook, classic Outlook's WebView2) load it unframed.
var outlookOrigins = []string{
	"https://outlook.office.com", "https://outlook.office365.com", "https://outlook.cloud.microsoft",
	"https://outlook.live.com",
}

// AddinOptions configure the Outlook add-in under /addin/: its manifest,
// icons and task pane.
type AddinOptions struct {
	// BaseURL is the gateway's public URL, as in the manifest. Empty: the
	// URL a request came in on (the demo), loopback hosts only.
	BaseURL string
	// ID is the add-in's GUID; empty derives it from BaseURL.
	ID string
	// ClientID, Authority and Scope are the pane's sign-in with Nested App
	// Authentication: the add-in's Entra application ID, the sign-in
	// authority (https://login.microsoftonline.com/TENANT) and the API
	// scope. Without a ClientID the pane asks without a token.
	ClientID, Authority, Scope string
	// ChatURL is the web chat link template ({jid}, {email}); empty
	// links to xmpp: URIs.
	ChatURL string
	// FrameAncestors are origins besides Outlook on the web's that may
	// frame the pane (an on-premises Outlook on the web).
	FrameAncestors []string
}

// paneConfig is what the pane reads from its <meta name="presencegw-config">.
type paneConfig struct {
	ClientID  string `json:"clientId"`
	Authority string `json:"authority"`
	Scope     string `json:"scope"`
	ChatURL   string `json:"chatUrl"`
	Anonymous bool   `json:"anonymous"`
}

type addinFile struct {
	data  []byte
	etag  string
	ctype string
	// gz is data gzipped, for text worth compressing (MSAL's chunk:
	// 330 kB, 87 kB gzipped), with its own ETag gzEtag; nil otherwise.
	gz     []byte
	gzEtag string
	// immutable files are named by their content (chunk-HASH.js).
	immutable bool
}

// addin serves /addin/.
type addin struct {
	opts     AddinOptions
	files    map[string]addinFile
	manifest []byte // nil: made per request (no BaseURL)
	pageCSP  string
}

func newAddinFile(name string, data []byte) addinFile {
	sum := sha256.Sum256(data)
	ctype := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".js":
		ctype = "text/javascript; charset=utf-8"
	case ".txt":
		ctype = "text/plain; charset=utf-8"
	}
	f := addinFile{data: data, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, ctype: ctype,
		immutable: strings.HasPrefix(name, "chunk-") && path.Ext(name) == ".js"}
	if len(data) > 1024 && (strings.HasPrefix(ctype, "text/") || strings.HasPrefix(ctype, "application/xml")) {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		_, _ = zw.Write(data) // to memory: no error
		_ = zw.Close()
		if b.Len() < len(data) {
			f.gz, f.gzEtag = b.Bytes(), strings.TrimSuffix(f.etag, `"`)+`-gz"`
		}
	}
	return f
}

// newAddin loads the embedded pane and fills in its settings.
func newAddin(o AddinOptions, anonymous bool) (*addin, error) {
	a := &addin{opts: o, files: map[string]addinFile{}}
	if o.BaseURL != "" {
		m, err := Manifest(ManifestConfig{BaseURL: o.BaseURL, ID: o.ID})
		if err != nil {
			return nil, fmt.Errorf("add-in: %w", err)
		}
		a.manifest = m
	}
	dist, err := fs.Sub(addinDist, "addin/dist")
	if err != nil {
		return nil, err
	}
	err = fs.WalkDir(dist, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name == "sources.sha256" { // the build's check list, not served
			return err
		}
		data, err := fs.ReadFile(dist, name)
		if err != nil {
			return err
		}
		a.files[name] = newAddinFile(name, data)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("add-in files: %w", err)
	}
	page, ok := a.files["taskpane.html"]
	if !ok {
		return nil, fmt.Errorf("add-in: taskpane.html is not embedded (build web/addin)")
	}
	tmpl, err := template.New("taskpane").Parse(string(page.data))
	if err != nil {
		return nil, fmt.Errorf("add-in: taskpane.html: %w", err)
	}
	cfg, err := json.Marshal(paneConfig{ClientID: o.ClientID, Authority: o.Authority, Scope: o.Scope, ChatURL: o.ChatURL, Anonymous: anonymous})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, map[string]string{"Config": string(cfg)}); err != nil {
		return nil, fmt.Errorf("add-in: taskpane.html: %w", err)
	}
	a.files["taskpane.html"] = newAddinFile("taskpane.html", b.Bytes())
	for _, n := range AddinIconSizes {
		name := "icon-" + strconv.Itoa(n) + ".png"
		a.files[name] = newAddinFile(name, AddinIcon(n))
	}
	a.pageCSP = addinCSP(o)
	return a, nil
}

// addinCSP is the pane's Content-Security-Policy: scripts from the
// gateway and Office.js's CDN only, no inline script or style, requests to
// the gateway (and the sign-in host for MSAL), framed by Outlook only.
func addinCSP(o AddinOptions) string {
	login := ""
	if o.ClientID != "" {
		if u, err := url.Parse(o.Authority); err == nil && u.Host != "" {
			login = " " + u.Scheme + "://" + u.Host
		}
	}
	ancestors := append([]string{"'self'"}, outlookOrigins...)
	ancestors = append(ancestors, o.FrameAncestors...)
	return "default-src 'none'; script-src 'self' https://appsforoffice.microsoft.com; style-src 'self'; " +
		"img-src 'self' data:; font-src 'self'; connect-src 'self'" + login + "; frame-src 'self'" + login + "; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors " + strings.Join(ancestors, " ")
}

// addinRoutes serves the add-in under /addin/.
func (s *Server) addinRoutes(m *http.ServeMux) error {
	a, err := newAddin(*s.opts.Addin, s.anonymous["presence"] && s.anonymous["stream"])
	if err != nil {
		return err
	}
	s.route(m, "GET /addin/{$}", func(w http.ResponseWriter, r *http.Request) { a.serveFile(w, r, "help.html") })
	s.route(m, "GET /addin/manifest.xml", a.serveManifest)
	s.route(m, "GET /addin/{file}", func(w http.ResponseWriter, r *http.Request) { a.serveFile(w, r, r.PathValue("file")) })
	return nil
}

func (a *addin) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := a.files[name]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no such add-in file: "+name)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	data, etag := f.data, f.etag
	if f.gz != nil {
		h.Set("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			data, etag = f.gz, f.gzEtag
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	if f.immutable {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		// Revalidated on every load: an upgraded gateway's pane is used
		// at once, an unchanged one costs a 304.
		h.Set("Cache-Control", "no-cache")
	}
	if strings.HasSuffix(name, ".html") {
		h.Set("Content-Security-Policy", a.pageCSP)
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, e := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(e, ";")
			if strings.EqualFold(strings.TrimSpace(name), "gzip") && !zeroWeight(params) {
				return true
			}
		}
	}
	return false
}

// zeroWeight reports whether a coding's parameters weigh it q=0, in any
// spelling RFC 9110 allows (0, 0.0, 0.000, Q=0): the client refuses it.
func zeroWeight(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(p, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q == 0
		}
	}
	return false
}

func (a *addin) serveManifest(w http.ResponseWriter, r *http.Request) {
	m := a.manifest
	if m == nil {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		var err error
		if m, err = Manifest(ManifestConfig{BaseURL: scheme + "://" + r.Host, ID: a.opts.ID}); err != nil {
			writeError(w, http.StatusNotFound, "not_configured", "no manifest for this address: set web.addin.base_url ("+err.Error()+")")
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/xml; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Disposition", `inline; filename="presencegw-manifest.xml"`)
	http.ServeContent(w, r, "manifest.xml", time.Time{}, bytes.NewReader(m))
}

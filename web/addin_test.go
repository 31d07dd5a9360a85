package web

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"html"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestAddinBundleUpToDate checks that the committed build (addin/dist,
// which the gateway embeds) was made from the sources as they are: every
// source file's SHA-256 is the one the build recorded, and no source file
// was added or removed since; and that dist/ holds exactly what the build
// wrote (no file edited by hand, left out of a commit or left over).
// After changing web/addin, run `npm ci && npm run build` there and
// commit dist/ with the change.
func TestAddinBundleUpToDate(t *testing.T) {
	const dir = "addin"
	f, err := os.Open(filepath.Join(dir, "dist", "sources.sha256"))
	if err != nil {
		t.Fatalf("the add-in was never built: %v", err)
	}
	defer f.Close()
	recorded := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("sources.sha256: bad line %q", sc.Text())
		}
		recorded[name] = sum
	}
	var sources []string
	for _, sub := range []string{"src", "static", "dist"} {
		err := filepath.WalkDir(filepath.Join(dir, sub), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				if rel = filepath.ToSlash(rel); rel != "dist/sources.sha256" {
					sources = append(sources, rel)
				}
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sources = append(sources, "build.mjs", "package.json", "package-lock.json", "tsconfig.json")
	const rebuild = "; rebuild: cd web/addin && npm ci && npm run build"
	for _, name := range sources {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		switch want, ok := recorded[name]; {
		case strings.HasPrefix(name, "dist/") && !ok:
			t.Errorf("web/addin/%s was not written by the last build%s", name, rebuild)
		case strings.HasPrefix(name, "dist/") && want != hex.EncodeToString(sum[:]):
			t.Errorf("web/addin/%s differs from what the last build wrote%s", name, rebuild)
		case !ok:
			t.Errorf("web/addin/%s is not in the last build%s", name, rebuild)
		case want != hex.EncodeToString(sum[:]):
			t.Errorf("web/addin/%s changed since the last build%s", name, rebuild)
		}
		delete(recorded, name)
	}
	for name := range recorded {
		if strings.HasPrefix(name, "dist/") {
			t.Errorf("web/addin/%s was built but is not committed%s", name, rebuild)
		} else {
			t.Errorf("web/addin/%s was built but is gone%s", name, rebuild)
		}
	}
}

// TestAddinBundleComplete checks that every module the pane imports is
// embedded, and that no script is inline (the CSP allows none).
func TestAddinBundleComplete(t *testing.T) {
	a, err := newAddin(AddinOptions{BaseURL: "https://gw.example.com"}, true)
	if err != nil {
		t.Fatal(err)
	}
	imports := regexp.MustCompile(`["']\./([A-Za-z0-9_-]+\.js)["']`)
	for name, f := range a.files {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		for _, m := range imports.FindAllSubmatch(f.data, -1) {
			if _, ok := a.files[string(m[1])]; !ok {
				t.Errorf("%s imports %s, which is not embedded", name, m[1])
			}
		}
	}
	page := string(a.files["taskpane.html"].data)
	scripts := regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1)
	want := []string{`<script src="` + OfficeJSURL + `">`, `<script type="module" src="taskpane.js">`}
	if !slices.Equal(scripts, want) {
		t.Errorf("scripts %q, want %q", scripts, want)
	}
	if strings.Contains(page, "style=") || strings.Contains(page, "<style") {
		t.Error("inline style in taskpane.html")
	}
	// Office.js is loaded from the CDN, never bundled.
	for name, f := range a.files {
		if bytes.Contains(f.data, []byte("OSF.DDA")) || bytes.Contains(f.data, []byte("Microsoft.Office.WebExtension")) {
			t.Errorf("%s contains Office.js", name)
		}
	}
	if js := a.files["taskpane.js"].data; len(js) > 64<<10 {
		t.Errorf("taskpane.js is %d bytes: the pane's own code should stay small (MSAL is a separate chunk)", len(js))
	}
}

func TestAddinServed(t *testing.T) {
	opts := AddinOptions{BaseURL: "https://gw.example.com/presence", ClientID: "0f4a5b6c-1d2e-4f30-8a9b-c0d1e2f3a4b5",
		Authority: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47",
		Scope:     "api://6e74172b-be56-4843-9ff4-e66a39bb12e3/access_as_user",
		ChatURL:   "https://chat.example.com/#/converse/chats?jid={jid}", FrameAncestors: []string{"https://mail.example.com"}}
	s := newServer(t, func(o *Options) { o.Addin = &opts })

	code, h, body := do(s, "GET", "/addin/taskpane.html", "", "")
	if code != http.StatusOK || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("taskpane.html: %d %s", code, h.Get("Content-Type"))
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self' https://appsforoffice.microsoft.com;", "style-src 'self';",
		"connect-src 'self' https://login.microsoftonline.com;", "frame-ancestors 'self' https://outlook.office.com",
		" https://mail.example.com", "base-uri 'none'", "form-action 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP allows unsafe sources: %q", csp)
	}
	m := regexp.MustCompile(`<meta name="presencegw-config" content="([^"]*)">`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no config in the page:\n%s", body)
	}
	var cfg paneConfig
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &cfg); err != nil {
		t.Fatal(err)
	}
	if want := (paneConfig{ClientID: opts.ClientID, Authority: opts.Authority, Scope: opts.Scope, ChatURL: opts.ChatURL}); cfg != want {
		t.Errorf("pane config %+v, want %+v", cfg, want)
	}

	code, h, body = do(s, "GET", "/addin/manifest.xml", "", "")
	want, _ := Manifest(ManifestConfig{BaseURL: opts.BaseURL})
	if code != http.StatusOK || body != string(want) || !strings.HasPrefix(h.Get("Content-Type"), "application/xml") {
		t.Errorf("manifest: %d %s\n%s", code, h.Get("Content-Type"), body)
	}

	for _, n := range AddinIconSizes {
		code, h, body := do(s, "GET", "/addin/icon-"+strconv.Itoa(n)+".png", "", "")
		img, err := png.Decode(strings.NewReader(body))
		if code != http.StatusOK || h.Get("Content-Type") != "image/png" || err != nil || img.Bounds().Dx() != n {
			t.Errorf("icon %d: %d %s %v", n, code, h.Get("Content-Type"), err)
		}
	}

	code, h, _ = do(s, "GET", "/addin/taskpane.js", "", "")
	if code != http.StatusOK || h.Get("Content-Type") != "text/javascript; charset=utf-8" || h.Get("Cache-Control") != "no-cache" || h.Get("ETag") == "" {
		t.Errorf("taskpane.js: %d %v", code, h)
	}
	req := httptest.NewRequest("GET", "/addin/taskpane.js", nil)
	req.Header.Set("If-None-Match", h.Get("ETag"))
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", w.Code)
	}
	// Compressed for clients that take gzip, with its own ETag.
	for _, name := range []string{"taskpane.js", "taskpane.css", "taskpane.html"} {
		req := httptest.NewRequest("GET", "/addin/"+name, nil)
		req.Header.Set("Accept-Encoding", "br, gzip;q=0.8")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		zr, err := gzip.NewReader(w.Body)
		if err != nil || w.Header().Get("Content-Encoding") != "gzip" || w.Header().Get("Vary") != "Accept-Encoding" {
			t.Fatalf("%s gzipped: %v %v", name, err, w.Header())
		}
		plain, _ := io.ReadAll(zr)
		_, h, body := do(s, "GET", "/addin/"+name, "", "")
		if string(plain) != body || h.Get("Content-Encoding") != "" || h.Get("ETag") == w.Header().Get("ETag") {
			t.Errorf("%s: gzipped and plain differ, or share an ETag", name)
		}
	}
	for name := range newAddinMust(t).files {
		if strings.HasPrefix(name, "chunk-") && strings.HasSuffix(name, ".js") {
			if _, h, _ := do(s, "GET", "/addin/"+name, "", ""); !strings.Contains(h.Get("Cache-Control"), "immutable") {
				t.Errorf("%s: Cache-Control %q", name, h.Get("Cache-Control"))
			}
		}
	}

	for _, p := range []string{"/addin/nope.js", "/addin/sources.sha256", "/addin/sub/taskpane.js"} {
		if code, _, body := do(s, "GET", p, "", ""); code != http.StatusNotFound || !strings.Contains(body, `"not_found"`) {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	if code, _, body := do(s, "GET", "/addin/", "", ""); code != http.StatusOK || !strings.Contains(body, "manifest.xml") {
		t.Errorf("/addin/: %d", code)
	}
	if code, _, _ := do(s, "POST", "/addin/taskpane.html", "", ""); code == http.StatusOK {
		t.Error("POST taskpane.html answered 200")
	}

	// Without the option nothing is served.
	plain := newServer(t, nil)
	if code, _, _ := do(plain, "GET", "/addin/taskpane.html", "", ""); code != http.StatusNotFound {
		t.Errorf("add-in served without being configured: %d", code)
	}
	// A bad base URL stops the server from starting.
	if _, err := New(Options{Addin: &AddinOptions{BaseURL: "http://gw.example.com"}}, fakeBackend{}, nil, prometheus.NewRegistry(), prometheus.NewRegistry()); err == nil {
		t.Error("New accepted an http:// add-in base URL")
	}
}

func TestAddinDemoManifest(t *testing.T) {
	s := newServer(t, func(o *Options) {
		o.Addin = &AddinOptions{}
		o.Anonymous = []string{"presence", "stream"}
	})
	req := httptest.NewRequest("GET", "http://127.0.0.1:8080/addin/manifest.xml", nil)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if want, _ := Manifest(ManifestConfig{BaseURL: "http://127.0.0.1:8080"}); w.Code != http.StatusOK || w.Body.String() != string(want) {
		t.Errorf("demo manifest: %d\n%s", w.Code, w.Body)
	}
	// Reached under a public name, the demo cannot know its https URL.
	req = httptest.NewRequest("GET", "http://gw.example.com/addin/manifest.xml", nil)
	w = httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "web.addin.base_url") {
		t.Errorf("demo manifest for a public host: %d %s", w.Code, w.Body)
	}
	_, _, body := do(s, "GET", "/addin/taskpane.html", "", "")
	if !strings.Contains(body, "&#34;anonymous&#34;:true") {
		t.Errorf("the pane is not told it may ask anonymously:\n%s", body)
	}
}

func newAddinMust(t *testing.T) *addin {
	a, err := newAddin(AddinOptions{BaseURL: "https://gw.example.com"}, false)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAcceptsGzip: gzip is sent when the client lists it, in any case,
// with any weight but zero (however it is written).
func TestAcceptsGzip(t *testing.T) {
	for _, tt := range []struct {
		header []string
		want   bool
	}{
		{nil, false},
		{[]string{"br, gzip;q=0.8"}, true},
		{[]string{"identity", "GZip"}, true},
		{[]string{"deflate, gzip ; q=0"}, false},
		{[]string{"gzip;q = 0"}, false},
		{[]string{"gzip;q=0.0"}, false},
		{[]string{"gzip; Q=0.000"}, false},
		{[]string{"gzip;q=0.001"}, true},
		{[]string{"gzip;level=1;q=0"}, false},
		{[]string{"gzip;q=bogus"}, true}, // a weight we cannot read refuses nothing
		{[]string{"x-gzip, br"}, false},
	} {
		r := httptest.NewRequest("GET", "/addin/taskpane.js", nil)
		for _, v := range tt.header {
			r.Header.Add("Accept-Encoding", v)
		}
		if got := acceptsGzip(r); got != tt.want {
			t.Errorf("Accept-Encoding %q: acceptsGzip = %v, want %v", tt.header, got, tt.want)
		}
	}
}

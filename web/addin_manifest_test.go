package web

import (
	"bytes"
	"encoding/xml"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// manifestCases are the deployments the manifest tests write manifests for.
var manifestCases = []ManifestConfig{
	{BaseURL: "https://gw.example.com"},
	{BaseURL: "https://intranet.example.com/presence/", ID: "8A3B6F0E-52C4-4B7D-9E1A-2F6C8D0B4E71"},
	{BaseURL: "http://127.0.0.1:8080"},
	{BaseURL: "https://gw.example.com/a&b\"<x>"},
}

// xmllint finds xmllint (Debian libxml2-utils): missing fails the test,
// it does not skip it.
func xmllint(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("xmllint")
	if err != nil {
		t.Fatalf("xmllint (Debian package libxml2-utils) is needed to validate the manifest against Microsoft's schemas: %v", err)
	}
	return p
}

func TestManifestValidatesAgainstSchema(t *testing.T) {
	lint := xmllint(t)
	schema, err := filepath.Abs("testdata/office-addin-schemas/OfficeAppManifestV1_1.xsd")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i, mc := range manifestCases {
		b, err := Manifest(mc)
		if err != nil {
			t.Fatalf("%+v: %v", mc, err)
		}
		f := filepath.Join(dir, "manifest.xml")
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(lint, "--noout", "--nonet", "--schema", schema, f).CombinedOutput()
		if err != nil {
			t.Errorf("case %d (%s): xmllint: %v\n%s", i, mc.BaseURL, err, out)
		}
	}
	// The check can fail: a manifest the schema refuses (the README's
	// example, SupportsPinning "yes") is refused.
	b, _ := Manifest(manifestCases[0])
	bad := bytes.Replace(b, []byte("<SupportsPinning>true<"), []byte("<SupportsPinning>yes<"), 1)
	f := filepath.Join(dir, "bad.xml")
	if err := os.WriteFile(f, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(lint, "--noout", "--nonet", "--schema", schema, f).CombinedOutput(); err == nil {
		t.Errorf("xmllint accepted SupportsPinning=yes:\n%s", out)
	}
}

// manifestDoc is what the structure test reads of a manifest.
type manifestDoc struct {
	XMLName     xml.Name `xml:"http://schemas.microsoft.com/office/appforoffice/1.1 OfficeApp"`
	ID          string   `xml:"Id"`
	Permissions string   `xml:"Permissions"`
	Sets        []struct {
		Name       string `xml:"Name,attr"`
		MinVersion string `xml:"MinVersion,attr"`
	} `xml:"Requirements>Sets>Set"`
}

func TestManifestStructure(t *testing.T) {
	for _, mc := range manifestCases {
		b, err := Manifest(mc)
		if err != nil {
			t.Fatal(err)
		}
		var doc manifestDoc
		if err := xml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: not well-formed: %v", mc.BaseURL, err)
		}
		wantID := strings.ToLower(mc.ID)
		if wantID == "" {
			wantID = StableAddinID(mc.BaseURL)
		}
		if doc.ID != wantID {
			t.Errorf("%s: id %q, want %q", mc.BaseURL, doc.ID, wantID)
		}
		if doc.Permissions != "ReadItem" {
			t.Errorf("%s: permissions %q", mc.BaseURL, doc.Permissions)
		}
		if len(doc.Sets) != 1 || doc.Sets[0].Name != "Mailbox" || doc.Sets[0].MinVersion != "1.1" {
			t.Errorf("%s: requirement sets %+v, want Mailbox 1.1", mc.BaseURL, doc.Sets)
		}
		// Every URL, wherever it is, lies under the base URL's /addin/.
		base := strings.TrimRight(mc.BaseURL, "/") + "/addin/"
		dec := xml.NewDecoder(bytes.NewReader(b))
		urls, pinned := 0, 0
		var path []string
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			switch el := tok.(type) {
			case xml.StartElement:
				path = append(path, el.Name.Local)
				for _, a := range el.Attr {
					if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
						continue
					}
					if strings.Contains(a.Value, "://") {
						urls++
						if !strings.HasPrefix(a.Value, base) {
							t.Errorf("%s: %s %s=%q is not under %s", mc.BaseURL, el.Name.Local, a.Name.Local, a.Value, base)
						}
					}
				}
			case xml.EndElement:
				path = path[:len(path)-1]
			case xml.CharData:
				s := strings.TrimSpace(string(el))
				if strings.Contains(s, "://") {
					t.Errorf("%s: URL %q in the text of %s", mc.BaseURL, s, strings.Join(path, ">"))
				}
				if s == "true" && path[len(path)-1] == "SupportsPinning" {
					pinned++
				}
			}
		}
		// Icon 64 and 128, support page, two form pages, per override
		// version three ribbon icons and the task pane.
		if urls != 13 {
			t.Errorf("%s: %d URLs, want 13", mc.BaseURL, urls)
		}
		if pinned != 2 {
			t.Errorf("%s: %d pinnable task panes, want 2 (read and compose)", mc.BaseURL, pinned)
		}
		for _, ep := range []string{"MessageReadCommandSurface", "MessageComposeCommandSurface"} {
			if n := bytes.Count(b, []byte(`xsi:type="`+ep+`"`)); n != 2 {
				t.Errorf("%s: %s %d times, want 2 (1.0 and 1.1 overrides)", mc.BaseURL, ep, n)
			}
		}
	}
}

func TestStableAddinID(t *testing.T) {
	a, b := StableAddinID("https://gw.example.com"), StableAddinID("https://gw.example.com/")
	if a != b {
		t.Errorf("a trailing slash changes the id: %s, %s", a, b)
	}
	if c := StableAddinID("https://gw2.example.com"); c == a {
		t.Errorf("two gateways share the id %s", a)
	}
	if !guidRE.MatchString(a) || a[14] != '5' {
		t.Errorf("%q is not a version 5 UUID", a)
	}
	// Fixed forever: a changed id would make Outlook see another add-in.
	if a != "c5246d9d-99aa-58d3-b39c-19c7419ae4a4" {
		t.Errorf("the id of https://gw.example.com changed to %s", a)
	}
}

func TestManifestRefusesBadInput(t *testing.T) {
	for _, mc := range []ManifestConfig{
		{BaseURL: ""},
		{BaseURL: "gw.example.com"},
		{BaseURL: "http://gw.example.com"},
		{BaseURL: "https://gw.example.com/?a=1"},
		{BaseURL: "https://user:pw@gw.example.com"},
		{BaseURL: "ftp://gw.example.com"},
		{BaseURL: "https://gw.example.com", ID: "not-a-guid"},
	} {
		if b, err := Manifest(mc); err == nil {
			t.Errorf("%+v: accepted:\n%s", mc, b)
		}
	}
}

func TestAddinIcons(t *testing.T) {
	for _, size := range AddinIconSizes {
		img, err := png.Decode(bytes.NewReader(AddinIcon(size)))
		if err != nil {
			t.Fatalf("icon %d: %v", size, err)
		}
		if b := img.Bounds(); b.Dx() != size || b.Dy() != size {
			t.Errorf("icon %d is %v", size, b)
		}
		// Transparent corner, opaque blue centre of the disc, green dot.
		if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
			t.Errorf("icon %d: corner alpha %d", size, a)
		}
		if r, g, b, a := img.At(size*42/100, size*42/100).RGBA(); a>>8 != 0xff || b>>8 < 0xa0 || r>>8 > 0x40 || g>>8 > 0x80 {
			t.Errorf("icon %d: disc centre %x %x %x %x, want Outlook blue", size, r>>8, g>>8, b>>8, a>>8)
		}
		if r, g, b, _ := img.At(size*74/100, size*74/100).RGBA(); g>>8 < 0x80 || r>>8 > 0x40 || b>>8 > 0x40 {
			t.Errorf("icon %d: dot %x %x %x, want green", size, r>>8, g>>8, b>>8)
		}
	}
}

package web

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/url"
	"strings"
	"text/template"
)

// ManifestVersion is the add-in's version in the manifest. Centralized
// deployment only pushes a changed manifest to mailboxes when it rises, so
// it goes up whenever the manifest's content (not the task pane's code,
// which the gateway serves) changes.
const ManifestVersion = "1.0.0.0"

// ManifestConfig is what a deployment's manifest depends on.
type ManifestConfig struct {
	// BaseURL is where Outlook reaches the gateway, such as
	// https://gw.example.com (a path prefix is kept, a trailing slash is
	// not). Every URL in the manifest is under it.
	BaseURL string
	// ID is the add-in's GUID. Empty: StableAddinID(BaseURL), so the same
	// gateway always writes the same id and an admin's re-deployment
	// updates the add-in instead of adding a second one.
	ID string
}

// addinIDNamespace is the UUID namespace of StableAddinID (a random
// constant: the ids of presencegw add-ins collide with no one else's).
var addinIDNamespace = [16]byte{0x6b, 0x1f, 0x3a, 0x5e, 0x92, 0x4c, 0x4d, 0x0b, 0xa7, 0x21, 0x58, 0xe3, 0x0c, 0x96, 0xd4, 0x12}

// StableAddinID is the add-in id of a gateway when none is configured: a
// name-based (version 5) UUID of the base URL, stable across runs and
// machines and different for every deployment.
func StableAddinID(baseURL string) string {
	h := sha1.New()
	h.Write(addinIDNamespace[:])
	h.Write([]byte(strings.TrimRight(baseURL, "/")))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// CheckAddinBaseURL says what is wrong with a base URL for the add-in:
// Outlook loads add-ins over https only (http is accepted for a loopback
// host, which is how a developer sideloads against a local gateway).
func CheckAddinBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", raw)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "", u.Opaque != "":
		return fmt.Errorf("%q must be an https:// URL such as https://gw.example.com", raw)
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Errorf("%q must have no user, query or fragment", raw)
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		return fmt.Errorf("%q: Outlook loads add-ins over https only (http is allowed for localhost and loopback addresses)", raw)
	}
	return nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Manifest writes the add-in-only XML manifest of the Outlook add-in: a
// button on the message read surface and one on the compose surface, each
// opening the presence task pane (pinnable where the host supports
// VersionOverrides 1.1), ReadItem permission, icons and pages served by
// this gateway under /addin/.
//
// Requirement sets: the legacy part (FormSettings) needs Mailbox 1.1;
// add-in commands need 1.3 (VersionOverrides 1.0); pinning and ItemChanged
// need 1.5 (VersionOverrides 1.1). The pane asks for more (1.7,
// RecipientsChanged) only at run time and falls back without it.
func Manifest(c ManifestConfig) ([]byte, error) {
	if err := CheckAddinBaseURL(c.BaseURL); err != nil {
		return nil, fmt.Errorf("base URL %w", err)
	}
	id := strings.ToLower(c.ID)
	if id == "" {
		id = StableAddinID(c.BaseURL)
	}
	if !guidRE.MatchString(id) { // entra.go's, lower case
		return nil, fmt.Errorf("add-in id %q is not a GUID", c.ID)
	}
	var b bytes.Buffer
	err := manifestTmpl.Execute(&b, map[string]string{
		"ID": id, "Version": ManifestVersion,
		"Base": strings.TrimRight(c.BaseURL, "/") + "/addin/",
	})
	if err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// commandSurface is one ribbon button of the manifest ("surface" in
// manifestTmpl): Name is Read or Compose (the MessageReadCommandSurface or
// MessageComposeCommandSurface), Tip the resid of its description, Pin
// whether its task pane is pinnable (VersionOverrides 1.1 only).
type commandSurface struct {
	Name, Tip string
	Pin       bool
}

// manifestTmpl is the manifest. The outer VersionOverrides 1.0 serves
// hosts that know only add-in commands; hosts that know 1.1 take the
// nested one, whose task panes are pinnable.
var manifestTmpl = template.Must(template.New("manifest").Funcs(template.FuncMap{
	"attr": xmlAttr,
	"surface": func(name, tip string, pin bool) commandSurface {
		return commandSurface{Name: name, Tip: tip, Pin: pin}
	},
}).Parse(`<?xml version="1.0" encoding="UTF-8"?>
<!-- Outlook add-in manifest written by presencegw; deploy it in the Microsoft 365 admin center
     (Settings > Integrated apps > Upload custom apps) or sideload it for testing. -->
<OfficeApp xmlns="http://schemas.microsoft.com/office/appforoffice/1.1"
           xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
           xmlns:bt="http://schemas.microsoft.com/office/officeappbasictypes/1.0"
           xmlns:mailappor="http://schemas.microsoft.com/office/mailappversionoverrides/1.0"
           xsi:type="MailApp">
  <Id>{{.ID}}</Id>
  <Version>{{.Version}}</Version>
  <ProviderName>presencegw</ProviderName>
  <DefaultLocale>en-US</DefaultLocale>
  <DisplayName DefaultValue="Presence"/>
  <Description DefaultValue="Shows whether the sender and every recipient can be reached right now: chat presence, meetings and out of office, live."/>
  <IconUrl DefaultValue="{{attr .Base}}icon-64.png"/>
  <HighResolutionIconUrl DefaultValue="{{attr .Base}}icon-128.png"/>
  <SupportUrl DefaultValue="{{attr .Base}}help.html"/>
  <Hosts>
    <Host Name="Mailbox"/>
  </Hosts>
  <Requirements>
    <Sets>
      <Set Name="Mailbox" MinVersion="1.1"/>
    </Sets>
  </Requirements>
  <FormSettings>
    <Form xsi:type="ItemRead">
      <DesktopSettings>
        <SourceLocation DefaultValue="{{attr .Base}}taskpane.html"/>
        <RequestedHeight>250</RequestedHeight>
      </DesktopSettings>
    </Form>
    <Form xsi:type="ItemEdit">
      <DesktopSettings>
        <SourceLocation DefaultValue="{{attr .Base}}taskpane.html"/>
      </DesktopSettings>
    </Form>
  </FormSettings>
  <Permissions>ReadItem</Permissions>
  <Rule xsi:type="RuleCollection" Mode="Or">
    <Rule xsi:type="ItemIs" ItemType="Message" FormType="Read"/>
    <Rule xsi:type="ItemIs" ItemType="Message" FormType="Edit"/>
  </Rule>
  <DisableEntityHighlighting>false</DisableEntityHighlighting>
  <VersionOverrides xmlns="http://schemas.microsoft.com/office/mailappversionoverrides" xsi:type="VersionOverridesV1_0">
    <Requirements>
      <bt:Sets DefaultMinVersion="1.3">
        <bt:Set Name="Mailbox"/>
      </bt:Sets>
    </Requirements>
{{template "hosts" false}}
{{template "resources" .}}
    <VersionOverrides xmlns="http://schemas.microsoft.com/office/mailappversionoverrides/1.1" xsi:type="VersionOverridesV1_1">
      <Requirements>
        <bt:Sets DefaultMinVersion="1.5">
          <bt:Set Name="Mailbox"/>
        </bt:Sets>
      </Requirements>
{{template "hosts" true}}
{{template "resources" .}}
    </VersionOverrides>
  </VersionOverrides>
</OfficeApp>
{{define "hosts"}}    <Hosts>
      <Host xsi:type="MailHost">
        <DesktopFormFactor>
{{template "surface" (surface "Read" "ButtonTip" .)}}
{{template "surface" (surface "Compose" "ComposeTip" .)}}
        </DesktopFormFactor>
      </Host>
    </Hosts>{{end}}{{define "surface"}}          <ExtensionPoint xsi:type="Message{{.Name}}CommandSurface">
            <OfficeTab id="TabDefault">
              <Group id="presencegw{{.Name}}Group">
                <Label resid="GroupLabel"/>
                <Control xsi:type="Button" id="presencegw{{.Name}}Button">
                  <Label resid="ButtonLabel"/>
                  <Supertip>
                    <Title resid="ButtonLabel"/>
                    <Description resid="{{.Tip}}"/>
                  </Supertip>
                  <Icon>
                    <bt:Image size="16" resid="Icon16"/>
                    <bt:Image size="32" resid="Icon32"/>
                    <bt:Image size="80" resid="Icon80"/>
                  </Icon>
                  <Action xsi:type="ShowTaskpane">
                    <SourceLocation resid="TaskpaneURL"/>{{if .Pin}}
                    <SupportsPinning>true</SupportsPinning>{{end}}
                  </Action>
                </Control>
              </Group>
            </OfficeTab>
          </ExtensionPoint>{{end}}
{{define "resources"}}    <Resources>
      <bt:Images>
        <bt:Image id="Icon16" DefaultValue="{{attr .Base}}icon-16.png"/>
        <bt:Image id="Icon32" DefaultValue="{{attr .Base}}icon-32.png"/>
        <bt:Image id="Icon80" DefaultValue="{{attr .Base}}icon-80.png"/>
      </bt:Images>
      <bt:Urls>
        <bt:Url id="TaskpaneURL" DefaultValue="{{attr .Base}}taskpane.html"/>
      </bt:Urls>
      <bt:ShortStrings>
        <bt:String id="GroupLabel" DefaultValue="Presence"/>
        <bt:String id="ButtonLabel" DefaultValue="Presence"/>
      </bt:ShortStrings>
      <bt:LongStrings>
        <bt:String id="ButtonTip" DefaultValue="Show whether the sender and the recipients can be reached right now, with chat and mail links."/>
        <bt:String id="ComposeTip" DefaultValue="Show whether the recipients you are writing to can be reached right now."/>
      </bt:LongStrings>
    </Resources>{{end}}`))

// AddinIconSizes are the sizes of the add-in's icons, in pixels: 16, 32
// and 80 for the ribbon button, 64 and 128 for the add-in lists.
var AddinIconSizes = []int{16, 32, 64, 80, 128}

// AddinIcon draws the add-in's icon at size×size pixels as PNG: a blue
// disc (Outlook's accent) with a green presence dot ringed in white at
// the lower right, transparent around, anti-aliased by 4×4 supersampling.
func AddinIcon(size int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	blue := color.NRGBA{0x0f, 0x6c, 0xbd, 0xff}
	green := color.NRGBA{0x13, 0xa1, 0x0e, 0xff}
	white := color.NRGBA{0xff, 0xff, 0xff, 0xff}
	s := float64(size)
	type disc struct {
		cx, cy, r float64
		c         color.NRGBA
	}
	// Painted in order: later discs cover earlier ones.
	discs := []disc{
		{0.42 * s, 0.42 * s, 0.40 * s, blue},
		{0.74 * s, 0.74 * s, 0.25 * s, white},
		{0.74 * s, 0.74 * s, 0.17 * s, green},
	}
	const n = 4
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			var r, g, b, a float64
			for sy := 0; sy < n; sy++ {
				for sx := 0; sx < n; sx++ {
					px, py := float64(x)+(float64(sx)+0.5)/n, float64(y)+(float64(sy)+0.5)/n
					for i := len(discs) - 1; i >= 0; i-- {
						d := discs[i]
						if dx, dy := px-d.cx, py-d.cy; dx*dx+dy*dy <= d.r*d.r {
							r, g, b, a = r+float64(d.c.R), g+float64(d.c.G), b+float64(d.c.B), a+1
							break
						}
					}
				}
			}
			if a == 0 {
				continue
			}
			img.SetNRGBA(x, y, color.NRGBA{uint8(r / a), uint8(g / a), uint8(b / a), uint8(a * 255 / (n * n))})
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img) // writing to memory does not fail
	return buf.Bytes()
}

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/web"
)

// runManifest writes the Outlook add-in's XML manifest for a gateway's
// public URL: the file an admin uploads in the Microsoft 365 admin center
// or sideloads. The gateway serves the same file at /addin/manifest.xml
// when web.addin is configured.
func runManifest(_ context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlags("manifest", errOut)
	path := fs.String("c", "", "configuration file: take base_url and id from its web.addin section")
	baseURL := fs.String("base-url", "", "the URL Outlook reaches the gateway at, such as https://gw.example.com")
	id := fs.String("id", "", "the add-in's GUID (default: derived from the base URL, the same on every run)")
	outFile := fs.String("o", "", "write the manifest to this file instead of standard output")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	mc := web.ManifestConfig{BaseURL: *baseURL, ID: *id}
	if *path != "" {
		cfg, err := config.Load(*path)
		if err != nil {
			return err
		}
		a := cfg.Web.Addin
		if a == nil {
			return fmt.Errorf("%s has no web.addin section", *path)
		}
		if mc.BaseURL == "" {
			mc.BaseURL = a.BaseURL
		}
		if mc.ID == "" {
			mc.ID = a.ID
		}
	}
	if mc.BaseURL == "" {
		return fmt.Errorf("%w: give --base-url URL (or -c FILE with web.addin.base_url)", errUsage)
	}
	b, err := web.Manifest(mc)
	if err != nil {
		return err
	}
	if *outFile == "" {
		_, err = out.Write(b)
		return err
	}
	return os.WriteFile(*outFile, b, 0o644)
}

// addinOptions are the web server's add-in settings from the config: the
// pane signs in at the Entra authority of web.entra (the same cloud the
// API checks tokens from) in the configured tenant.
func addinOptions(a *config.Addin, e *config.Entra) *web.AddinOptions {
	authority := web.DefaultEntraAuthority
	if e != nil {
		authority = e.Authority
	}
	return &web.AddinOptions{BaseURL: a.BaseURL, ID: a.ID, ClientID: a.ClientID,
		Authority: strings.TrimRight(authority, "/") + "/" + a.Tenant, Scope: a.Scope,
		ChatURL: a.ChatURL, FrameAncestors: a.FrameAncestors}
}

package main

import (
	"log/slog"
	"reflect"
	"slices"
	"testing"

	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/web"
)

func TestWebOptionsEntra(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	c := config.Defaults().Web
	o, err := webOptions(t.Context(), c, false, log)
	if err != nil || o.Entra != nil {
		t.Fatalf("without an entra section: %v, %v", o.Entra, err)
	}
	// Nothing is fetched here: Microsoft need not be reachable.
	c.Entra = &config.Entra{Tenants: []string{"72f988bf-86f1-41af-91ab-2d7cd011db47"}, Audiences: []string{"6e74172b-be56-4843-9ff4-e66a39bb12e3"},
		Scope: "access_as_user", Authority: "https://login.microsoftonline.com", Visibility: "calendar"}
	if o, err = webOptions(t.Context(), c, false, log); err != nil || o.Entra == nil {
		t.Fatalf("with an entra section: %v, %v", o.Entra, err)
	}
	c.Entra.Visibility = "all"
	if _, err = webOptions(t.Context(), c, false, log); err == nil {
		t.Error("a bad visibility was accepted")
	}
}

func TestWebOptionsOpenfire(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	c := config.Defaults().Web
	want := web.OpenfireOptions{Public: false, UnavailableText: "Unavailable"}
	if o, err := webOptions(t.Context(), c, false, log); err != nil || !reflect.DeepEqual(o.Openfire, want) {
		t.Errorf("defaults: %+v, %v; want %+v", o.Openfire, err, want)
	}
	c.Openfire = config.Openfire{Mode: "public", UnavailableText: "Gone", ImageHosts: []string{"img.example.com"}}
	want = web.OpenfireOptions{Public: true, UnavailableText: "Gone", ImageHosts: []string{"img.example.com"}}
	if o, err := webOptions(t.Context(), c, false, log); err != nil || !reflect.DeepEqual(o.Openfire, want) {
		t.Errorf("public: %+v, %v; want %+v", o.Openfire, err, want)
	}
	// The demo's anonymous callers can prove no JID: its endpoint is public.
	o, err := webOptions(t.Context(), config.Defaults().Web, true, log)
	if err != nil || !o.Openfire.Public || !slices.Contains(o.Anonymous, "openfire") {
		t.Errorf("demo: %+v anonymous %v, %v", o.Openfire, o.Anonymous, err)
	}
}

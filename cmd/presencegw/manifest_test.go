package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/presencegw/presencegw/web"
)

func TestManifestCommand(t *testing.T) {
	want, err := web.Manifest(web.ManifestConfig{BaseURL: "https://gw.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli(t, "manifest", "--base-url", "https://gw.example.com")
	if code != 0 || out != string(want) {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	// From a config file, the id given there, written to a file.
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	const id = "8a3b6f0e-52c4-4b7d-9e1a-2f6c8d0b4e71"
	if err := os.WriteFile(cfg, []byte("web:\n  anonymous: [presence, stream]\n  addin:\n    base_url: https://gw.example.com/p\n    id: "+id+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "manifest.xml")
	if code, _, errOut := cli(t, "manifest", "-c", cfg, "-o", file); code != 0 {
		t.Fatalf("-c: exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); !strings.Contains(s, "<Id>"+id+"</Id>") || !strings.Contains(s, `"https://gw.example.com/p/addin/taskpane.html"`) {
		t.Errorf("manifest from the config:\n%s", s)
	}
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"manifest"}, 2, "give --base-url URL"},
		{[]string{"manifest", "--base-url", "http://gw.example.com"}, 1, "https only"},
		{[]string{"manifest", "--base-url", "https://gw.example.com", "--id", "x"}, 1, `add-in id "x" is not a GUID`},
		{[]string{"manifest", "-c", filepath.Join(dir, "missing.yaml")}, 1, "missing.yaml"},
	} {
		code, _, errOut := cli(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.msg) {
			t.Errorf("%v: exit %d, %q; want %d and %q", tt.args, code, errOut, tt.code, tt.msg)
		}
	}
}

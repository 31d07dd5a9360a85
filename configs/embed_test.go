package configs

import (
	"bytes"
	"os"
	"testing"
)

// The embedded module is the file itself, whole.
func TestProsodyModuleEmbedded(t *testing.T) {
	want, err := os.ReadFile("prosody/mod_presencegw.lua")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ProsodyModule, want) {
		t.Errorf("ProsodyModule (%d bytes) differs from prosody/mod_presencegw.lua (%d bytes)", len(ProsodyModule), len(want))
	}
	if !bytes.Contains(ProsodyModule, []byte(`module:add_feature(NS)`)) {
		t.Error("ProsodyModule lacks the overlay feature")
	}
}

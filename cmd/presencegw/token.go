package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"time"

	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/web"
)

// runToken prints credentials for scripts and tests: a kopano-presence
// token for USER signed with the configured secret, or (--api-key NAME) a
// new random API key with the line to put in the config.
func runToken(_ context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlags("token", errOut)
	path := fs.String("c", "", "configuration file (for the kopano secret)")
	apiKey := fs.String("api-key", "", "make a new API key with this name instead")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *apiKey != "" {
		raw := make([]byte, 24)
		if _, err := rand.Read(raw); err != nil {
			return err
		}
		key := base64.RawURLEncoding.EncodeToString(raw)
		fmt.Fprintf(out, "key (give it to the service, it is shown once): %s\n", key)
		fmt.Fprintf(out, "config:\n  web:\n    api_keys:\n      - name: %s\n        sha256: %s\n        visibility: status\n", *apiKey, web.HashKey(key))
		return nil
	}
	if len(pos) != 1 || *path == "" {
		return fmt.Errorf("%w: give -c FILE and one USER (or --api-key NAME)", errUsage)
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	k := cfg.Web.Kopano
	if k == nil {
		return fmt.Errorf("%s has no web.kopano section", *path)
	}
	secret, err := config.Secret(k.SecretFile, k.SecretEnv)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, web.KopanoToken([]byte(secret), pos[0], time.Now()))
	return nil
}

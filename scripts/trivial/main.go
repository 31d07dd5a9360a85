// Command trivial is the load test's ceiling: a plain net/http server
// that answers every request with a fixed presence-shaped JSON body, so
// scripts/bench-http can say how close presencegw comes to doing nothing.
package main

import (
	"flag"
	"log"
	"net/http"
)

var body = []byte(`{"email":"alice@example.com","state":"available","status":"In the office"}` + "\n")

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "listen address")
	flag.Parse()
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}

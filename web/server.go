// Package web is the gateway's HTTP face: the presence API (single and
// batch lookups), health (/healthz, /readyz) and Prometheus metrics. Every
// presence answer needs a caller the configuration knows (an API key) or
// an endpoint group the configuration opens to anonymous callers, and is
// cut to what that caller may see.
package web

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"
)

// ReadyFunc reports why the gateway cannot serve yet, or nil when it can.
type ReadyFunc func() error

// Options configure the server.
type Options struct {
	// Anonymous lists the endpoint groups open without credentials
	// ("presence", "stream", "badge", "openfire"); the demo opens them,
	// production normally does not.
	Anonymous []string
	// AnonymousVisibility is what anonymous callers see. Default SeeState.
	AnonymousVisibility Visibility
	// APIKeys are the services' keys.
	APIKeys []APIKey
	// Entra verifies Entra ID access tokens (bearer tokens shaped like a
	// JWT); nil accepts none.
	Entra *Entra
	// CORSOrigins may call the API from a browser.
	CORSOrigins []string
	// MaxStreams is how many SSE streams one caller may hold open.
	// Default 10.
	MaxStreams int
	// Kopano, when set, serves kopano-presence's endpoint on "/".
	Kopano *Kopano
	// Openfire configures the Openfire presence plugin's endpoint.
	Openfire OpenfireOptions
	// MaxBatch is the most addresses one batch takes. Default 500.
	MaxBatch int
	// RatePerSecond and Burst limit each caller; zero rate means no limit.
	RatePerSecond float64
	Burst         int
	// Addin, when set, serves the Outlook add-in under /addin/ (addin.go).
	Addin *AddinOptions
}

// Server serves the HTTP API.
type Server struct {
	opts      Options
	backend   Backend
	ready     ReadyFunc
	anonymous map[string]bool
	origins   map[string]bool
	keys      []apiKey
	limits    limiters
	latency   *prometheus.HistogramVec
	mux       *http.ServeMux
	hub       *hub
	stop      func()
	kopanoGet http.HandlerFunc
	answers   *answerCache // rendered single lookups
	handler   http.Handler // mux behind CORS, built once
	streamsMu sync.Mutex
	streams   map[string]int // open SSE streams per caller
}

// New builds the server; reg receives its request metrics and gatherer
// feeds /metrics.
func New(opts Options, backend Backend, ready ReadyFunc, reg prometheus.Registerer, gatherer prometheus.Gatherer) (*Server, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 500
	}
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = 10
	}
	keys, err := parseKeys(opts.APIKeys)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, backend: backend, ready: ready, keys: keys, streams: map[string]int{}, answers: newAnswerCache(backend),
		anonymous: map[string]bool{}, origins: map[string]bool{},
		limits: limiters{rate: rate.Limit(opts.RatePerSecond), burst: max(opts.Burst, 1), m: map[string]*limiterEntry{}}}
	for _, g := range opts.Anonymous {
		s.anonymous[g] = true
	}
	for _, o := range opts.CORSOrigins {
		s.origins[o] = true
	}
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "presencegw_http_request_duration_seconds", Help: "HTTP request latency by route and status code.",
		Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2},
	}, []string{"route", "code"})
	if err := reg.Register(s.latency); err != nil {
		return nil, err
	}
	m := http.NewServeMux()
	s.route(m, "GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.route(m, "GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(); err != nil {
			// The reason names directory hosts and errors: only for the
			// operator on the machine itself; probes need the status.
			body := map[string]string{"status": "not ready"}
			if ip := net.ParseIP(clientIP(r)); ip != nil && ip.IsLoopback() {
				body["error"] = err.Error()
			}
			writeJSON(w, http.StatusServiceUnavailable, body)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	m.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	s.route(m, "GET /api/v1/presence", s.authenticateCaller("presence", s.getPresence))
	s.route(m, "POST /api/v1/presence/batch", s.authenticateCaller("presence", s.postBatch))
	s.route(m, "GET /badge/{file}", s.authenticate("badge", s.getBadge))
	s.route(m, "/plugins/presence/status", openfireMethods(s.authenticate("openfire", s.getOpenfireStatus)))
	// Streams live long: not in the latency histogram.
	m.HandleFunc("GET /api/v1/presence/stream", s.authenticate("stream", s.getStream))
	changes, stop := backend.Changes(1024)
	s.hub, s.stop = newHub(), stop
	go s.hub.run(changes)
	if k := opts.Kopano; k != nil {
		// kopano-presence's URL was the root: PUT and POST there are its,
		// and a GET carrying a JSON body too.
		kh := s.limited(k.handle(s))
		s.route(m, "PUT /{$}", kh)
		s.route(m, "POST /{$}", kh)
		s.kopanoGet = kh
	}
	s.route(m, "GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		// kopano's clients send a body with GET, not always typed JSON.
		if s.kopanoGet != nil && (r.ContentLength > 0 || r.Header.Get("Transfer-Encoding") != "") {
			s.kopanoGet(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("presencegw: Outlook/Exchange ⇄ XMPP presence gateway\n" +
			"presence: GET /api/v1/presence?email=ADDR, POST /api/v1/presence/batch\n" +
			"health: /healthz  readiness: /readyz  metrics: /metrics\n"))
	})
	// The right path with the wrong method: 405 and what is allowed (the
	// catch-all below would say 404).
	for path, allow := range map[string]string{
		"/api/v1/presence":        "GET, HEAD",
		"/api/v1/presence/batch":  "POST",
		"/api/v1/presence/stream": "GET, HEAD",
		"/badge/{file}":           "GET, HEAD",
	} {
		m.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here; use "+allow)
		})
	}
	if opts.Addin != nil {
		if err := s.addinRoutes(m); err != nil {
			stop()
			return nil, err
		}
	}
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	s.mux = m
	s.handler = s.cors(m)
	return s, nil
}

// limited applies the per-client rate limit to an endpoint with its own
// authentication (by client address).
func (s *Server) limited(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.allow("ip:" + clientIP(r)) {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, "rate_limited", "too many requests; slow down")
			return
		}
		next(w, r)
	}
}

// Close stops following the backend's changes.
func (s *Server) Close() { s.stop() }

// route registers a handler that records its latency under the pattern.
// The histogram for status 200 is looked up once, on the first 200: the
// label lookup hashes both labels under a lock.
func (s *Server) route(m *http.ServeMux, pattern string, h http.HandlerFunc) {
	ok := sync.OnceValue(func() prometheus.Observer { return s.latency.WithLabelValues(pattern, "200") })
	m.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h(&rec, r)
		o := ok()
		if rec.code != http.StatusOK {
			o = s.latency.WithLabelValues(pattern, strconv.Itoa(rec.code))
		}
		o.Observe(time.Since(start).Seconds())
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Flush lets streaming handlers flush through the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Header values every answer (or every JSON answer) carries, shared:
// http.Header's methods replace or append to a value slice, never write
// into one, and nothing here indexes into a header's values to change
// them. One slice per response for each was a tenth of a lookup's cost.
var (
	hdrNoSniff     = []string{"nosniff"}
	hdrCSP         = []string{"default-src 'none'; frame-ancestors 'none'"}
	hdrNoReferrer  = []string{"no-referrer"}
	hdrJSON        = []string{"application/json"}
	hdrPrivateNone = []string{"private, no-store"}
)

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["X-Content-Type-Options"] = hdrNoSniff
	h["Content-Security-Policy"] = hdrCSP
	h["Referrer-Policy"] = hdrNoReferrer
	s.handler.ServeHTTP(w, r)
}

// apiError is the error object of every JSON error answer.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": apiError{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to tell it
}

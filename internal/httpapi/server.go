// Package httpapi serves the commands over HTTP: a JSON API through the
// same protocol.Handle as the ZeroMQ bridge (docs/protocol.md, "HTTP"),
// the commit and cycle events as Server-Sent Events, and whatever the
// caller mounts beside them (metrics, the web UI).
//
// # Security
//
// On a loopback address without a token, anyone on this machine may use
// it, as with the bridge; beyond loopback a token is required (as the
// bridge requires CURVE), sent as a bearer header or, for a browser, in
// a session cookie set by a login form. A request whose Host header is
// not this server's (DNS rebinding) is refused. A state-changing request
// from a browser (a POST carrying the session cookie, or any POST without
// a bearer token) must be same-origin (its Origin or Referer, when sent,
// is this server) and carry the CSRF token of its cookie in the
// X-Batos-CSRF header; a JSON body is required, so a cross-site form
// cannot post one.
package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"batos/internal/command"
	"batos/internal/protocol"
)

// Options configures a Server.
type Options struct {
	// Addr is where it listens; default 127.0.0.1:7424.
	Addr string
	// Token, when set, is required of every request: as
	// "Authorization: Bearer TOKEN", or through the session cookie the
	// login form sets. Beyond loopback it must be set.
	Token string
	// Limits bound request bodies; the zero value is DefaultLimits.
	Limits Limits
	// Mount adds handlers beside the API (metrics, the web UI), under
	// the same authentication.
	Mount  func(mux *http.ServeMux)
	Logger *slog.Logger
}

// ErrInsecure is returned for an address beyond loopback without a token.
var ErrInsecure = errors.New("httpapi: refusing to listen beyond loopback without a token (-http-token-file)")

// Server is the HTTP transport.
type Server struct {
	opts    Options
	service command.Service
	log     *slog.Logger
	events  *hub
	http    *http.Server
	ln      net.Listener
	// base is what requests run under; Close cancels it.
	base   context.Context
	cancel context.CancelFunc
}

// Listen binds the address. Beyond loopback it needs a token.
func Listen(service command.Service, o Options) (*Server, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:7424"
	}
	if o.Limits == (Limits{}) {
		o.Limits = DefaultLimits
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Token == "" && !loopbackHost(o.Addr) {
		return nil, fmt.Errorf("%w: %s", ErrInsecure, o.Addr)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", o.Addr, err)
	}
	s := &Server{opts: o, service: service, log: o.Logger, events: newHub(), ln: ln}
	s.base, s.cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/{command}", s.command)
	mux.HandleFunc("GET /api/v1/events", s.stream)
	mux.HandleFunc("GET /api/v1/session", s.session)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("GET /login", s.loginPage)
	if o.Mount != nil {
		o.Mount(mux)
	}
	s.http = &http.Server{
		Handler:           s.guard(mux),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return s.base },
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Addr is the address bound (with the port the system chose for :0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until Shutdown or Close.
func (s *Server) Serve() error {
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Publish sends an event to the event streams; it never blocks.
func (s *Server) Publish(topic string, payload map[string]any) { s.events.publish(topic, payload) }

// Shutdown stops taking requests and waits for those in flight until
// ctx ends; then it cancels them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.events.close() // streams end, or Shutdown would wait for them
	err := s.http.Shutdown(ctx)
	s.cancel()
	if err != nil {
		s.http.Close()
	}
	return err
}

// Close stops at once.
func (s *Server) Close() error {
	s.events.close()
	s.cancel()
	return s.http.Close()
}

// command serves POST /api/v1/{command}: the body is the command's
// arguments as a JSON object (with an optional "id", echoed).
func (s *Server) command(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("command")
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.reply(w, map[string]any{"id": nil, "ok": false, "error": protocol.ErrorMap(
			fmt.Errorf("%w: the body must be JSON (Content-Type: application/json), got %q", command.ErrBadRequest, clip(ct)))})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.opts.Limits.MaxBytes)))
	if err != nil {
		s.reply(w, map[string]any{"id": nil, "ok": false, "error": protocol.ErrorMap(
			fmt.Errorf("%w: the body is over %d bytes", command.ErrBadRequest, s.opts.Limits.MaxBytes))})
		return
	}
	req, err := decodeArgs(body, s.opts.Limits)
	if err != nil {
		s.reply(w, map[string]any{"id": nil, "ok": false, "error": protocol.ErrorMap(err)})
		return
	}
	if _, ok := req["command"]; ok {
		s.reply(w, map[string]any{"id": req["id"], "ok": false, "error": protocol.ErrorMap(
			fmt.Errorf("%w: the command is named by the path (/api/v1/%s), not by a \"command\" field", command.ErrBadRequest, clip(name)))})
		return
	}
	req["command"] = name
	if _, ok := req["id"]; !ok {
		req["id"] = nil
	}
	s.reply(w, protocol.Handle(protocol.WithTransport(r.Context(), "http"), s.service, req))
}

// reply writes a reply with the HTTP status its outcome calls for.
func (s *Server) reply(w http.ResponseWriter, reply map[string]any) {
	status := http.StatusOK
	if e, ok := reply["error"].(map[string]any); ok {
		kind, _ := e["kind"].(string)
		status = statusOf(command.Kind(kind))
	}
	b, err := appendJSON(nil, reply, 0)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = appendJSON(nil, map[string]any{"id": reply["id"], "ok": false,
			"error": map[string]any{"kind": string(command.KindInternal), "message": "encode reply: " + err.Error()}}, 0)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// statusOf is the HTTP status of an error kind; the body says the kind
// itself, which is what clients switch on.
func statusOf(k command.Kind) int {
	switch k {
	case command.KindBadRequest:
		return http.StatusBadRequest
	case command.KindUnknownCommand, command.KindNotFound:
		return http.StatusNotFound
	case command.KindConflict:
		return http.StatusConflict
	case command.KindLimit, command.KindMethodError, command.KindLearningFailed:
		return http.StatusUnprocessableEntity
	case command.KindStillLearning:
		return http.StatusGatewayTimeout
	case command.KindNoMind, command.KindShuttingDown, command.KindUnavailable:
		return http.StatusServiceUnavailable
	case command.KindReadOnly:
		return http.StatusForbidden
	case command.KindNoSpace:
		return http.StatusInsufficientStorage
	case command.KindCancelled:
		return 499 // the client went away or gave up; nginx's "client closed request"
	}
	return http.StatusInternalServerError
}

// constantTimeEqual compares a presented secret with the expected one
// without its timing telling how much of it was right.
func constantTimeEqual(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// loopbackHost reports whether addr's host is a loopback address (or
// localhost).
func loopbackHost(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

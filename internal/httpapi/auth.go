package httpapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
)

// The cookies: the CSRF token a browser's state-changing requests echo in
// the X-Batos-CSRF header, and, with a token configured, the session a
// login sets.
const (
	csrfCookie    = "batos_csrf"
	csrfHeader    = "X-Batos-CSRF"
	sessionCookie = "batos_session"
)

// guard checks every request before the mux sees it: the Host, the
// token, and for a state-changing request from a browser the origin and
// the CSRF token. Refusals say "unauthorised" or "forbidden" and no more.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "same-origin")
		w.Header().Set("X-Frame-Options", "DENY")
		if s.opts.Token == "" && !loopbackHost(r.Host) {
			// Without a token only loopback is served; a page elsewhere
			// whose name resolves here (DNS rebinding) is not.
			refuse(w, http.StatusForbidden, "forbidden")
			return
		}
		bearer := s.bearer(r)
		if s.opts.Token != "" && !bearer && !s.hasSession(r) && r.URL.Path != "/login" {
			if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/metrics" {
				// A browser opening a page: to the login form.
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			refuse(w, http.StatusUnauthorized, "unauthorised")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !bearer {
			if !sameOrigin(r) {
				refuse(w, http.StatusForbidden, "forbidden: cross-origin request")
				return
			}
			if r.URL.Path != "/login" && !s.csrfOK(r) {
				refuse(w, http.StatusForbidden, "forbidden: missing or wrong CSRF token (GET /api/v1/session gives it)")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// bearer reports whether the request carries the right bearer token.
func (s *Server) bearer(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && s.opts.Token != "" && constantTimeEqual(got, s.opts.Token)
}

// sessionValue is what the session cookie holds: derived from the token,
// so a restart with the same token keeps browsers logged in, and the
// cookie never holds the token itself.
func (s *Server) sessionValue() string {
	mac := hmac.New(sha256.New, []byte(s.opts.Token))
	mac.Write([]byte("batos web session"))
	return hex.EncodeToString(mac.Sum(nil))
}

func (s *Server) hasSession(r *http.Request) bool {
	c, err := r.Cookie(sessionCookie)
	return err == nil && constantTimeEqual(c.Value, s.sessionValue())
}

// csrfOK reports whether the request's CSRF header matches its cookie.
func (s *Server) csrfOK(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	h := r.Header.Get(csrfHeader)
	return err == nil && c.Value != "" && h != "" && constantTimeEqual(h, c.Value)
}

// sameOrigin reports whether a request's Origin (or, without one, its
// Referer) names this server; a request with neither (a script, curl) is
// left to the CSRF token.
func sameOrigin(r *http.Request) bool {
	from := r.Header.Get("Origin")
	switch from {
	case "null":
		return false // a sandboxed or opaque origin is never this server
	case "":
		if from = r.Header.Get("Referer"); from == "" {
			return true
		}
	}
	u, err := url.Parse(from)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// session serves GET /api/v1/session: the CSRF token for this browser
// (set as a cookie too when it has none).
func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	token := s.csrfToken(w, r)
	s.reply(w, map[string]any{"id": nil, "ok": true, "result": map[string]any{"csrf": token}})
}

// csrfToken is the browser's CSRF token, made and set now if it has none.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 64 {
		return c.Value
	}
	b := make([]byte, 32)
	rand.Read(b)
	token := hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return token
}

// login serves POST /login (a form with "token"): the session cookie, and
// back to where the browser came from. A wrong token is refused as
// "unauthorised", nothing more.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if s.opts.Token == "" || r.ParseForm() != nil || !constantTimeEqual(r.PostForm.Get("token"), s.opts.Token) {
		refuse(w, http.StatusUnauthorized, "unauthorised")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.sessionValue(), Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	s.csrfToken(w, r)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// loginForm is the login page: a form posting the token, no script.
const loginForm = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>batos: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><h1>batos</h1><p>This server needs its token.</p>
<form method="post" action="/login"><label>Token <input type="password" name="token" autocomplete="current-password" autofocus></label>
<button type="submit">Log in</button></form></body></html>
`

// loginPage serves GET /login.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(loginForm))
}

// refuse answers with a bare status and text.
func refuse(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(text + "\n"))
}

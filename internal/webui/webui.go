package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"
)

//go:embed static
var static embed.FS

// CSP is the Content-Security-Policy of every response: scripts, styles,
// images and connections from this origin only, no inline script or
// style, no plug-ins, no framing, no forms posting elsewhere.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// contentTypes are the types of the files the app is made of; a file of
// another kind is not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".ico":  "image/x-icon",
}

// asset is one embedded file, read once.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assets are the files by URL path ("/app.js"); "/" is index.html.
var assets = loadAssets()

func loadAssets() map[string]asset {
	out := map[string]asset{}
	err := fs.WalkDir(static, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return nil
		}
		body, err := static.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		out[name[len("static"):]] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("webui: reading the embedded files: " + err.Error()) // a broken build
	}
	out["/"] = out["/index.html"]
	return out
}

// Handler serves the app: "/" and the embedded files by their exact
// names, and 404 for every other path (the app routes by the fragment,
// which the server never sees, so no other path needs index.html). Mount
// it for GET /. It is safe for concurrent use.
func Handler() http.Handler { return http.HandlerFunc(serve) }

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a, ok := assets[r.URL.Path]
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	h.Set("Content-Type", a.contentType)
	// No build step names files by their content, so nothing may be
	// cached without asking: the ETag makes asking cheap.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// Mount serves Handler for GET / on mux (the API's own patterns are more
// specific, so they keep their paths); it fits httpapi.Options.Mount.
func Mount(mux *http.ServeMux) { mux.Handle("GET /", Handler()) }

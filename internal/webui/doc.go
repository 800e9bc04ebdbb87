// Package webui is batos's web UI: a single-page app of plain HTML, CSS
// and JavaScript modules, embedded in the binary and served by Handler
// beside the HTTP API (internal/httpapi), which it calls from the
// browser. There is no build step and nothing is fetched from elsewhere.
//
// # Pages
//
// The app routes by the URL's fragment: #/object/TARGET is the outliner
// of an object (a root name, a dotted path or an OID) with an evaluator
// bound to it (do it, print it, inspect it): slots added, edited and
// removed in place, the object cloned, and each method's provenance (the
// cycle, personas and tests that made it, the version it replaced as a
// diff, and revert). #/at/TID/TARGET is the object as a transaction left
// it, read-only; #/history/TARGET its revisions, each with the slots it
// added, removed or changed (methods as diffs); #/log the timeline of
// transactions, with each cycle's model calls under the transaction that
// recorded them, and undo (a refused one marks the transactions that
// block it); #/cycles and #/cycle/ID the cognitive cycles, updated
// from the event stream: a cycle's states drawn as a row that moves with
// its cycle.transition events, and retry and cancel. #/mind is the mind:
// the inference server, the base model and the personas with their
// usage and doctor's findings as this server sees them, and #/mind/NAME
// one persona's recent calls, charted as inline SVG. #/audits and #/audit/ID are ALFRED's audits and the proposals
// awaiting a decision (accept, reject); #/catalog searches the knowledge
// catalog. The evaluator links an error about a cycle to it, and offers
// "learn it" for a message nothing understands: the send again with
// learn "handle", which opens a cycle at once.
//
// # Security
//
// Handler serves only the embedded files, by exact name: no path is ever
// joined to a directory, so nothing outside them can be named. Every
// response carries a Content-Security-Policy allowing only this origin's
// scripts, styles and connections, and no inline script; the scripts
// render every value from the image as text, never as markup, and build
// links only from OIDs and IDs; charts are SVG elements made one by one.
package webui

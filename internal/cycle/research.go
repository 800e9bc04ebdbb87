package cycle

import (
	"context"
	"fmt"
	"strings"

	"batos/internal/catalog/library"
	"batos/internal/image"
	"batos/internal/store"
)

// Source is a passage of the knowledge catalog a persona was shown: the
// provenance a step records and an installed method keeps.
type Source struct {
	Chunk    store.OID `json:"chunk"`
	Doc      string    `json:"doc"`
	Title    string    `json:"title"`
	Position int       `json:"position"`
}

// Cite names the source as prompts do: "rivers.txt#3".
func (s Source) Cite() string { return fmt.Sprintf("%s#%d", s.Title, s.Position) }

const (
	// maxPassages is how many passages a researcher is shown per
	// sub-question.
	maxPassages = 4
	// maxPassageBytes bounds one quoted passage.
	maxPassageBytes = 1500
)

// catalog returns the knowledge catalog, or nil when the cycles have
// none or it cannot be opened (said in the log: research then goes on
// from the receiver alone).
func (m *Machine) catalog(ctx context.Context) *library.Library {
	if m.opts.Catalog == nil {
		return nil
	}
	lib, err := m.opts.Catalog(ctx)
	if err != nil {
		m.opts.Logger.Warn("knowledge catalog unavailable to the cycle", "err", err)
		return nil
	}
	return lib
}

// research finds the catalog's passages for a sub-question routed to
// the researcher: the hybrid search of the question and the mission.
// Each passage is quoted with its number, for the answer to cite.
func (m *Machine) research(ctx context.Context, c *Cycle, q SubQuestion, v *receiverView) ([]string, []Source) {
	if !strings.EqualFold(q.Persona, researcher) {
		return nil, nil
	}
	lib := m.catalog(ctx)
	if lib == nil {
		return nil, nil
	}
	// The question first: what the mission adds is clipped to keep the
	// query within a search's bound.
	query := clip(q.Question+"\n"+missionText(c, v), library.MaxQueryBytes/2)
	res, err := lib.Search(ctx, library.Query{Text: query, K: maxPassages, NoFragments: true})
	if err != nil {
		m.opts.Logger.Warn("knowledge catalog search failed", "cycle", c.ID, "err", err)
		return nil, nil
	}
	var lines []string
	var sources []Source
	for _, h := range res.Hits {
		s := Source{Chunk: h.Chunk, Doc: h.Doc.ID, Title: h.Doc.Title, Position: h.Position}
		sources = append(sources, s)
		lines = append(lines, fmt.Sprintf("[%d] %s: %s", len(sources), s.Cite(), clip(h.Text, maxPassageBytes)))
	}
	return lines, sources
}

// researcher is the persona that researches with the catalog.
const researcher = "BABS"

// similarFinder returns how a receiver view finds similar methods: the
// catalog's search of the image's methods when there is a catalog, else
// nil (viewReceiver then scans the root's objects).
func (m *Machine) similarFinder(ctx context.Context) similarFunc {
	lib := m.catalog(ctx)
	if lib == nil {
		return nil
	}
	return func(tx *image.Tx, selector string, shown map[store.OID]bool) []string {
		words := strings.ReplaceAll(selector, "_", " ")
		res, err := lib.SearchIn(ctx, tx, library.Query{Text: words, Methods: true, K: 4 * maxSimilar, NoFragments: true})
		if err != nil {
			m.opts.Logger.Warn("knowledge catalog method search failed", "err", err)
			return similarMethods(tx, selector, shown)
		}
		var out []string
		for _, h := range res.Hits {
			if shown[h.Object] || h.Selector == selector {
				continue
			}
			out = append(out, fmt.Sprintf("%s.%s:\n%s", h.Receiver, h.Selector, clip(h.Source, maxMethodSource/maxSimilar)))
			if len(out) == maxSimilar {
				break
			}
		}
		return out
	}
}

// sourcesValue is the installed method's record of the passages its
// cycle's researcher was shown, each with a reference to its chunk.
func sourcesValue(c *Cycle) image.Value {
	var out []image.Value
	seen := map[store.OID]bool{}
	for _, s := range c.Steps {
		for _, src := range s.Sources {
			if seen[src.Chunk] {
				continue
			}
			seen[src.Chunk] = true
			d := &image.Dict{}
			for _, kv := range []struct {
				k string
				v image.Value
			}{
				{"chunk", image.Ref(src.Chunk)}, {"doc", image.String(src.Doc)},
				{"title", image.String(src.Title)}, {"position", image.Int(src.Position)},
			} {
				d.Set(image.String(kv.k), kv.v)
			}
			out = append(out, d)
		}
	}
	return image.NewList(out...)
}

// Package catalog is the knowledge catalog: documents split into units
// (sentences, headings, code blocks, definitions) that are grouped into
// chunks to index and cite.
//
// # Documents
//
// Parse takes a document's bytes and its kind (plain text, Markdown or
// source code; KindOf guesses it from the file name) and gives its units,
// each with its byte span in the original bytes so that a citation can
// point into the file. Prose is split into sentences by punkt
// (github.com/neurosnap/sentences with its English model), which knows
// abbreviations ("Dr.", "e.g."), decimals, initials and ellipses. Markdown
// headings start sections and fenced code blocks stay whole; source code is
// split at top-level definitions (Go func and type, Python and Starlark def
// and class, blank-line separated blocks for other languages).
//
// Invalid UTF-8 is repaired (each bad byte becomes U+FFFD) and the offset of
// the first bad byte is reported; spans still count original bytes. Binary
// content is refused with ErrBinary. An empty document has no units.
//
// # Chunks
//
// Group gathers consecutive units into chunks between Bounds.MinTokens and
// Bounds.MaxTokens, never across a Markdown section, starting a chunk at a
// breakpoint (where the topic shifts) when the chunk before it is big
// enough. A unit over MaxTokens is cut at word boundaries first, so no chunk
// exceeds the maximum. Tokens are estimated as the llm package does: three
// bytes a token, which overestimates English prose (near four) so that
// chunks fit the embedding model's window.
//
// What grouping cannot do: a chunk under MinTokens remains when both of its
// neighbours in its section are too full to take it, or when its section
// holds less than MinTokens.
package catalog

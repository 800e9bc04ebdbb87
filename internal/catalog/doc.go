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
//
// The breakpoints come from Breakpoints: with an embedding model, every
// unit is embedded and a chunk starts where the cosine similarity of two
// neighbouring units is at or below a percentile (DefaultPercentile, 5)
// of all neighbour similarities, as the seed's semantic chunking did.
// Without one, Group gets no breakpoints and chunks are fixed-size windows
// of whole sentences.
//
// # In the image
//
// Documents and chunks are image objects under the root's
// knowledge_catalog (store.go): a dict from document ID to document
// object, each listing its chunk objects, each chunk with its text, byte
// span, token count and embedding (little-endian float32s, EncodeVector).
// Adding is two steps so that no model call happens inside a
// transaction: Prepare parses and chunks, the caller embeds (Chunk,
// SetVectors), and Write records the whole document in the caller's
// transaction; a crash leaves all of it or none. Current tells, before any
// embedding is paid for, whether the catalog already holds the document
// exactly so. The indexes that search the catalog are derived from these
// objects and live outside the image (catalog/index); catalog/library is
// what commands use.
package catalog

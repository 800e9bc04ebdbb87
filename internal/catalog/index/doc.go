// Package index keeps the knowledge catalog's search indexes: a BM25
// full-text index (catalog/fulltext) over the chunks and the image's
// methods, and an approximate nearest-neighbour index (catalog/vector)
// over the chunks' embeddings, searched together and fused by reciprocal
// rank fusion.
//
// # A cache of the image
//
// The image is the truth; the indexes are derived data kept in a
// directory beside it (live_image.db.index/). state.json there records
// the last transaction the indexes have seen and what they hold (each
// document's chunks, each object's methods). Sync brings them up to the
// image's newest transaction: it reads the log from the recorded
// transaction on, and re-indexes the documents and objects those
// transactions wrote (a document is indexed again when its object, the
// catalog's, or one of its chunks was written: a chunk edited by hand
// too). When the recorded transaction is not in the image's log (a
// packed or another image), or any file is missing or unreadable, Open
// rebuilds everything from the image and says why; so does Sync when a
// pack drops the transaction while the index is open. A rebuild first
// removes state.json, so that one a crash cuts short is not taken for
// whole. The directory is held by one Index at a time: Open refuses one
// another Index holds (ErrInUse) rather than rebuild it from under it.
//
// Every search first syncs, so an index never answers from before the
// newest commit; and the hits are only candidates: the caller reads each
// one's text from its own transaction (catalog.Get), so a hit the caller's
// snapshot does not have is dropped rather than shown.
//
// # What a crash can cost
//
// Index changes are applied at once; state.json and the vector file are
// saved together at most every FlushInterval and on Close, because the
// vector file is the size of all the embeddings, and only once the
// full-text index has made every change before them durable (it persists
// its batches in the background: a search's catch-up waits for no
// fsync). After a crash the
// indexes replay the transactions since the last save, which is safe
// because every change is an upsert or a delete by key. A full-text
// entry a crash left behind unrecorded is filtered out by the callers'
// check against the image and removed by the next rebuild.
package index

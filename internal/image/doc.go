// Package image is the object model over the store: objects with ordered
// slots, values, transactions.
//
// # Values
//
// A [Value] is one of a closed set of types: [None], [Bool], [Int],
// [Float], [String], [Bytes], [*List], [*Dict], [Tuple], [Ref], [*Method],
// [BlobRef] and [Primitive]. Values are trees: a container holds other
// values, and a [Ref] names another object instead of holding it, so
// object graphs may have cycles while values never do.
//
// # Codec
//
// Values and object states have one canonical binary encoding
// ([AppendValue], [EncodeState]). The same value always encodes to the same
// bytes and the decoder accepts only canonical input, so comparing
// encodings is a sound way to detect change.
package image

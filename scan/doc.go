// Package scan reads share pages back from paper: QR codes from scanned
// or photographed images, and PDF pages rasterised with pdftoppm.
//
// Decoding uses gozxing (a Go port of ZXing) with TRY_HARDER. A clean scan
// is read in one pass. When a pass finds nothing, locates a code it
// cannot decode, or leaves finder patterns (the big corner squares) that
// belong to no code it read, DecodeImage goes on with costlier readings:
// the other binarizer, the image at full resolution, inverted colours,
// quarter turns, small skews and enlargement. gozxing finds finder
// patterns at any angle, so when the upright readings see none at all,
// as on a page of typed text, the turned and skewed ones are skipped.
// Every distinct payload is returned once, in the order first found.
// Payloads are returned as read; checking them is package shares' job.
//
// # Damaged codes
//
// gozxing corrects errors only: at level H, 15 wrong codewords in a block
// of 45. A code with a quarter covered or stained has about a quarter of
// its codewords wrong, unevenly spread, and some blocks go over. So when
// a located code fails, its modules that lie in a blank area (a 5 x 5
// window of one colour, which random-looking QR data almost never has)
// mark their codewords as erasures, and a Reed-Solomon decoder written
// here corrects errors and erasures together: 2 x errors + erasures up to
// the 30 check codewords. A quarter covered in white or ink is read.
//
// A code whose finder pattern (one of the three big corner squares) is
// covered or torn cannot be located by gozxing at all; error correction
// does not help then.
//
// # Secrets
//
// Rendered pages are read from pdftoppm's standard output, never written
// to disk. Errors name the file but never quote a payload.
package scan

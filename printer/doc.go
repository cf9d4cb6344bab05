// Package printer lays out paper backups of key shares as PDF documents.
//
// A share page is for a custodian who may open it years later, alone and
// nervous, and for a successor who finds it with no one to ask. It shows
// whose share it is and of what (set ID, label, k of n, index, kind, check
// values, dealer key fingerprint, date), the share as QR codes and as
// typable text lines, plain instructions, and lines for signatures. Every
// page repeats the set ID, the share index and "page x of y", so loose
// pages can be matched.
//
// # Geometry
//
// Everything is drawn inside one 180 x 249.4 mm frame, centred on the
// sheet, that keeps at least 15 mm from every edge of both A4 and US
// Letter: a page still prints whole when the printer holds the other size.
// QR codes use error correction H, alphanumeric mode, and are drawn as
// vector rectangles (runs merged) starting on a 1/150-inch grid, each
// module 6 or 8 dots of 1/300 inch (0.508 or 0.677 mm), so that module
// edges fall on pixel edges at 150, 300 and 600 dpi. The 4-module quiet
// zone is kept clear. Codes go two to a
// row; a long share flows over several pages.
//
// # Fonts
//
// The Go fonts (golang.org/x/image/font/gofont) are embedded in the
// binary and cover Latin, Greek and Cyrillic. Characters they lack are
// drawn from the TrueType files in FallbackFonts, when installed (Debian's
// fonts-dejavu-core and fonts-droid-fallback, the latter for Chinese,
// Japanese and Korean). Text that no font covers, control and invisible
// characters, and scripts needing right-to-left layout or shaping (Arabic,
// Hebrew, the Indic scripts, Thai, ...) are refused with an
// UnprintableError naming the characters: a page is never printed with
// missing or misdrawn letters. Such names should be given transliterated.
//
// # Determinism
//
// The document's dates come from SharePage.Created and its catalogues are
// sorted, so the same page always gives the same bytes.
package printer

package printer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// runeRange is an inclusive range of code points that a font maps to glyphs.
type runeRange struct{ lo, hi rune }

// coverage is the set of code points a TrueType font has glyphs for, as
// sorted, non-overlapping ranges.
type coverage []runeRange

// has reports whether r has a glyph.
func (c coverage) has(r rune) bool {
	i := sort.Search(len(c), func(i int) bool { return c[i].hi >= r })
	return i < len(c) && c[i].lo <= r
}

var errBadFont = errors.New("not a usable TrueType font")

// requiredTables are the tables fpdf needs to embed a font; a font that
// lacks one (a CFF-flavoured OpenType font, say) is refused here rather than
// failing inside fpdf, which would only print a message.
var requiredTables = []string{"cmap", "glyf", "head", "hhea", "hmtx", "loca", "maxp"}

// parseCoverage reads the table directory and the Unicode cmap of a
// TrueType font (formats 4 and 12, as in the OpenType spec, "cmap" table).
func parseCoverage(font []byte) (coverage, error) {
	tables, err := tableDirectory(font)
	if err != nil {
		return nil, err
	}
	for _, tag := range requiredTables {
		if _, ok := tables[tag]; !ok {
			return nil, fmt.Errorf("%w: no %q table", errBadFont, tag)
		}
	}
	return parseCmap(tables["cmap"])
}

// tableDirectory maps each table tag to its bytes.
func tableDirectory(font []byte) (map[string][]byte, error) {
	if len(font) < 12 {
		return nil, fmt.Errorf("%w: too short", errBadFont)
	}
	switch binary.BigEndian.Uint32(font) {
	case 0x00010000, 0x74727565: // 1.0 or "true"
	default:
		return nil, fmt.Errorf("%w: not TrueType outlines", errBadFont)
	}

	n := int(binary.BigEndian.Uint16(font[4:]))
	if len(font) < 12+16*n {
		return nil, fmt.Errorf("%w: truncated table directory", errBadFont)
	}
	tables := make(map[string][]byte, n)
	for i := 0; i < n; i++ {
		rec := font[12+16*i:]
		off := uint64(binary.BigEndian.Uint32(rec[8:]))
		size := uint64(binary.BigEndian.Uint32(rec[12:]))
		if off+size > uint64(len(font)) {
			return nil, fmt.Errorf("%w: table %q out of bounds", errBadFont, rec[:4])
		}
		tables[string(rec[:4])] = font[off : off+size]
	}
	return tables, nil
}

// parseCmap picks the widest Unicode subtable: format 12 (full repertoire)
// before format 4 (Basic Multilingual Plane).
func parseCmap(cmap []byte) (coverage, error) {
	if len(cmap) < 4 {
		return nil, fmt.Errorf("%w: short cmap", errBadFont)
	}
	n := int(binary.BigEndian.Uint16(cmap[2:]))
	if len(cmap) < 4+8*n {
		return nil, fmt.Errorf("%w: truncated cmap", errBadFont)
	}

	var best []byte
	bestFormat := 0
	for i := 0; i < n; i++ {
		rec := cmap[4+8*i:]
		platform := binary.BigEndian.Uint16(rec)
		encoding := binary.BigEndian.Uint16(rec[2:])
		if !isUnicodeEncoding(platform, encoding) {
			continue
		}
		off := int(binary.BigEndian.Uint32(rec[4:]))
		if off < 0 || off+2 > len(cmap) {
			continue
		}
		format := int(binary.BigEndian.Uint16(cmap[off:]))
		if (format == 12 || format == 4) && format > bestFormat {
			best, bestFormat = cmap[off:], format
		}
	}

	switch bestFormat {
	case 12:
		return parseFormat12(best)
	case 4:
		return parseFormat4(best)
	}
	return nil, fmt.Errorf("%w: no Unicode cmap", errBadFont)
}

func isUnicodeEncoding(platform, encoding uint16) bool {
	switch platform {
	case 0: // Unicode
		return true
	case 3: // Windows: 1 is BMP, 10 is full repertoire
		return encoding == 1 || encoding == 10
	}
	return false
}

// parseFormat4 reads a segment-mapping subtable. Code points mapped to
// glyph 0 (.notdef) are not covered.
func parseFormat4(t []byte) (coverage, error) {
	if len(t) < 14 {
		return nil, fmt.Errorf("%w: short cmap format 4", errBadFont)
	}
	segs := int(binary.BigEndian.Uint16(t[6:])) / 2
	ends := 14
	starts := ends + 2*segs + 2
	deltas := starts + 2*segs
	offsets := deltas + 2*segs
	if len(t) < offsets+2*segs {
		return nil, fmt.Errorf("%w: truncated cmap format 4", errBadFont)
	}

	var c coverage
	for i := 0; i < segs; i++ {
		end := int(binary.BigEndian.Uint16(t[ends+2*i:]))
		start := int(binary.BigEndian.Uint16(t[starts+2*i:]))
		delta := int(binary.BigEndian.Uint16(t[deltas+2*i:]))
		ro := int(binary.BigEndian.Uint16(t[offsets+2*i:]))
		for ch := start; ch <= end && ch < 0xFFFF; ch++ {
			glyph := (ch + delta) & 0xFFFF
			if ro != 0 {
				at := offsets + 2*i + ro + 2*(ch-start)
				if at+2 > len(t) {
					break
				}
				glyph = int(binary.BigEndian.Uint16(t[at:]))
				if glyph != 0 {
					glyph = (glyph + delta) & 0xFFFF
				}
			}
			if glyph != 0 {
				c = c.add(rune(ch))
			}
		}
	}
	return c.normalize(), nil
}

// parseFormat12 reads a segmented-coverage subtable.
func parseFormat12(t []byte) (coverage, error) {
	if len(t) < 16 {
		return nil, fmt.Errorf("%w: short cmap format 12", errBadFont)
	}
	groups := uint64(binary.BigEndian.Uint32(t[12:]))
	if uint64(len(t)) < 16+12*groups {
		return nil, fmt.Errorf("%w: truncated cmap format 12", errBadFont)
	}

	var c coverage
	for i := uint64(0); i < groups; i++ {
		g := t[16+12*i:]
		lo := binary.BigEndian.Uint32(g)
		hi := binary.BigEndian.Uint32(g[4:])
		glyph := binary.BigEndian.Uint32(g[8:])
		if hi < lo || hi > 0x10FFFF {
			continue
		}
		if glyph == 0 {
			lo++ // the first code point maps to .notdef
		}
		if lo <= hi {
			c = append(c, runeRange{rune(lo), rune(hi)})
		}
	}
	return c.normalize(), nil
}

// add appends r, extending the last range when r follows it.
func (c coverage) add(r rune) coverage {
	if n := len(c); n > 0 && c[n-1].hi+1 == r {
		c[n-1].hi = r
		return c
	}
	return append(c, runeRange{r, r})
}

// normalize sorts the ranges and merges overlapping or touching ones.
func (c coverage) normalize() coverage {
	sort.Slice(c, func(i, j int) bool { return c[i].lo < c[j].lo })
	var out coverage
	for _, r := range c {
		if n := len(out); n > 0 && r.lo <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

package scan

import (
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // scans and phone photos
	_ "image/png"
	"io"
	"math"
	"os"
	"slices"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/common"
	multidetector "github.com/makiuchi-d/gozxing/multi/qrcode/detector"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	qrdetector "github.com/makiuchi-d/gozxing/qrcode/detector"
)

// NoCodeError reports an image in which no QR code could be read.
type NoCodeError struct {
	File string // the image file, or "" for an image passed in memory
}

func (e *NoCodeError) Error() string {
	if e.File == "" {
		return "no QR code found in image"
	}
	return "no QR code found in " + e.File
}

// ErrImageFormat is wrapped by errors about files that are not PNG or
// JPEG images, or are too large to decode safely.
var ErrImageFormat = errors.New("not a PNG or JPEG image")

// MaxPixels bounds the images DecodeFile accepts, so a hostile or broken
// file cannot make it allocate without limit. 150 megapixels is a page
// scanned at 1200 dpi.
const MaxPixels = 150_000_000

// workSide is the longest side images are reduced to for the first,
// quick passes. A page at 300 dpi stays whole; a 600 dpi scan or a phone
// photo is halved or so, which still leaves a 0.5 mm module 3 pixels wide.
const workSide = 3600

// DecodeFile reads every distinct QR payload in a PNG or JPEG file. It
// returns a *NoCodeError naming the file when none can be read, never an
// empty result.
func DecodeFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening image: %w", err)
	}
	defer f.Close()

	img, err := decodeImageFile(f, path)
	if err != nil {
		return nil, err
	}
	payloads, err := DecodeImage(img)
	wipeImage(img)
	var none *NoCodeError
	if errors.As(err, &none) {
		return nil, &NoCodeError{File: path}
	}
	if err != nil {
		return nil, fmt.Errorf("reading QR codes in %s: %w", path, err)
	}
	return payloads, nil
}

// decodeImageFile checks the image header before decoding the pixels.
func decodeImageFile(r io.ReadSeeker, path string) (image.Image, error) {
	cfg, format, err := image.DecodeConfig(r)
	if err != nil {
		return nil, fmt.Errorf("decoding image %s: %w (%v)", path,
			ErrImageFormat, err)
	}
	if format != "png" && format != "jpeg" {
		return nil, fmt.Errorf("decoding image %s: %w (it is %s)", path,
			ErrImageFormat, format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 ||
		int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return nil, fmt.Errorf("decoding image %s: %w (%d x %d pixels is "+
			"more than %d)", path, ErrImageFormat, cfg.Width, cfg.Height,
			MaxPixels)
	}

	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("decoding image %s: %w", path, err)
	}
	img, _, err := image.Decode(r)
	if err != nil {
		return nil, fmt.Errorf("decoding image %s: %w", path, err)
	}
	return img, nil
}

// DecodeImage reads every distinct QR payload in img, in the order first
// found. It returns a *NoCodeError when none can be read, never an empty
// result.
//
// It tries increasingly costly readings until one leaves nothing unread:
// both of gozxing's binarizers with TRY_HARDER, the image at full size,
// inverted colours, quarter turns, small skews and, for small images,
// enlargement. Within a reading, codes already read are cleared and the
// rest tried again, and a code that fails ordinary error correction is
// tried with its blank (covered) part as erasures. A reading has left
// something unread when it located a code it could not decode, or when
// three or more finder-pattern candidates remain outside the codes it
// read. Turns and skews are skipped when no upright reading saw a single
// candidate, so a page of typed text costs only the upright readings.
func DecodeImage(img image.Image) ([]string, error) {
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, &NoCodeError{}
	}
	if int64(b.Dx())*int64(b.Dy()) > MaxPixels {
		return nil, fmt.Errorf("reading QR codes: image of %d x %d pixels "+
			"is more than %d", b.Dx(), b.Dy(), MaxPixels)
	}

	r := readGray(toGray(img))
	if len(r.found) == 0 {
		return nil, &NoCodeError{}
	}
	return r.found, nil
}

// readGray climbs the ladder of readings for full until one leaves
// nothing unread, and wipes the images it made.
func readGray(full *image.Gray) *reader {
	steps, shared := ladder(full)
	defer func() {
		for _, g := range shared() {
			clear(g.Pix)
		}
	}()
	r := &reader{seen: map[string]bool{}}
	for _, s := range steps {
		if s.needsPatterns && !r.sawPatterns {
			continue
		}
		rd := s.reading()
		r.attempt(rd)
		if !slices.Contains(shared(), rd.img) {
			clear(rd.img.Pix) // a turned or skewed copy of the page
		}
		if r.done() {
			break
		}
	}
	return r
}

// reading is one way of looking at the image: the pixels and how to
// binarise them.
type reading struct {
	img    *image.Gray
	global bool // GlobalHistogram binarizer instead of Hybrid
}

// step is a reading on the ladder, built when it is reached.
type step struct {
	reading func() reading
	// needsPatterns marks a turned or skewed reading. gozxing finds
	// finder patterns at any angle, so these only help to sample a
	// located code again; they are skipped when no reading before them
	// saw a single finder-pattern candidate.
	needsPatterns bool
}

// ladder lists the readings to try, cheapest and likeliest first. They
// are built on demand, so a clean scan costs one or two passes. Turned
// and skewed readings use a half-size image when it is large: they are
// there for odd photos, and a page without codes must not take long.
// shared lists the images that several readings use, for wiping.
func ladder(full *image.Gray) (steps []step, shared func() []*image.Gray) {
	side := max(full.Rect.Dx(), full.Rect.Dy())
	factor := (side + workSide - 1) / workSide
	var work, half *image.Gray
	w := func() *image.Gray {
		if work == nil {
			work = shrink(full, factor)
		}
		return work
	}
	h := func() *image.Gray {
		if half == nil {
			half = w()
			if side/factor >= 2*halfSide {
				half = shrink(w(), 2)
			}
		}
		return half
	}

	shared = func() []*image.Gray {
		out := []*image.Gray{full}
		for _, g := range []*image.Gray{work, half} {
			if g != nil {
				out = append(out, g)
			}
		}
		return out
	}
	plain := func(f func() reading) step { return step{reading: f} }
	steps = []step{
		plain(func() reading { return reading{img: w()} }),
		plain(func() reading { return reading{img: w(), global: true} }),
	}
	if factor > 1 {
		steps = append(steps, plain(func() reading { return reading{img: full} }))
	}
	steps = append(steps, plain(func() reading {
		return reading{img: negate(w())} // light codes on dark
	}))
	for turns := 1; turns <= 3; turns++ {
		steps = append(steps, step{needsPatterns: true, reading: func() reading {
			return reading{img: rotate90(h(), turns)}
		}})
	}
	for _, deg := range []float64{-4, 4, -8, 8} {
		steps = append(steps, step{needsPatterns: true, reading: func() reading {
			return reading{img: rotate(h(), deg)}
		}})
	}
	if side < 1600 {
		// Modules of a pixel or less may show no finder pattern at all
		// until enlarged.
		steps = append(steps, plain(func() reading {
			return reading{img: enlarge(full, 2)}
		}))
	}
	return steps, shared
}

// halfSide is the least long side of a half-size reading, in pixels.
const halfSide = 1200

// reader collects payloads over several readings.
type reader struct {
	found []string
	seen  map[string]bool
	// missed says the last reading left something unread: a code it
	// located but could not decode, or finder-pattern candidates enough
	// for a code that it could not even locate.
	missed bool
	// sawPatterns says some reading found a finder-pattern candidate.
	sawPatterns bool
	tried       int // readings attempted
}

// done reports whether further readings are unlikely to add anything:
// something was read, and the last reading left nothing unexplained.
func (r *reader) done() bool { return len(r.found) > 0 && !r.missed }

var hints = map[gozxing.DecodeHintType]interface{}{
	gozxing.DecodeHintType_TRY_HARDER: true,
}

// attempt reads rd and notes whether it left a code unread.
func (r *reader) attempt(rd reading) {
	r.tried++
	left := r.read(rd)
	r.missed = left.failed > 0 || left.patterns >= 3
}

// leftover is what the last round of a reading could not account for.
type leftover struct {
	failed   int // codes located (a grid sampled) but not decoded
	patterns int // finder-pattern candidates outside the codes read
}

// read decodes the codes in rd one round at a time: after each round the
// codes it read are cleared from the binarised image, so that the finder
// patterns of codes still unread no longer compete with theirs. It
// returns what the last round left unread.
func (r *reader) read(rd reading) (left leftover) {
	defer func() {
		// gozxing is a port of Java code; a malformed image must not
		// take the ceremony down with an index panic.
		if recover() != nil {
			left.failed++
		}
	}()

	bmp, err := binarize(rd)
	if err != nil {
		return left
	}
	matrix, err := bmp.GetBlackMatrix() // cached: readSingle sees it too
	if err != nil {
		return left
	}
	defer matrix.Clear() // it is a picture of the share

	for round := 0; round < maxRounds; round++ {
		var read []*qrdetector.FinderPatternInfo
		read, left = r.readMulti(matrix)
		if len(read) == 0 && left.patterns >= 3 {
			// The multi-finder groups patterns by strict module size;
			// the single reader takes the best three it can find.
			if info := r.readSingle(bmp); info != nil {
				read = append(read, info)
			}
		}
		if len(read) == 0 {
			return left
		}
		for _, info := range read {
			paintOut(matrix, info)
		}
	}
	return left
}

// maxRounds bounds the rounds of one reading; a page holds a handful of
// codes, and every round that goes on has read at least one.
const maxRounds = 12

// readMulti decodes every code the multi-finder locates. It returns the
// finder patterns of those it read, and how many others it located but
// could not decode and how many finder-pattern candidates it saw.
func (r *reader) readMulti(m *gozxing.BitMatrix) (
	read []*qrdetector.FinderPatternInfo, left leftover) {
	finder := multidetector.NewMultiFinderPatternFinder(m, nil)
	located, _ := finder.FindMulti(hints)
	left.patterns = len(finder.GetPossibleCenters())
	r.sawPatterns = r.sawPatterns || left.patterns > 0

	det := qrdetector.NewDetector(m)
	for _, info := range located {
		grid, err := det.ProcessFinderPatternInfo(info)
		if err != nil {
			// Three patterns that do not make a code, or a code whose
			// version and size disagree: a later reading may do better.
			left.failed++
			continue
		}
		res, err := decodeGrid(grid.GetBits())
		if err != nil && len(grid.GetPoints()) > 3 {
			res, err = decodeUnaligned(m, info, grid.GetBits().GetWidth())
		}
		if err != nil {
			left.failed++
			continue
		}
		r.add(res.GetText())
		read = append(read, info)
	}
	return read, left
}

// decodeGrid decodes sampled modules, falling back to erasure decoding
// when plain error correction fails.
func decodeGrid(bits *gozxing.BitMatrix) (*common.DecoderResult, error) {
	// gozxing unmasks the matrix in place; keep the sampled one.
	res, err := decoder.NewDecoder().Decode(clone(bits), hints)
	if err == nil {
		return res, nil
	}
	if res, err2 := decodeWithErasures(bits); err2 == nil {
		return res, nil
	}
	return nil, err
}

// TODO: gozxing samples a whole code through one perspective transform
// set by a single alignment pattern; a curled page in a phone photo
// bends large codes (version 32 has 46 alignment patterns) beyond that.
// Sampling piecewise between alignment patterns would read them.

// decodeUnaligned samples a located code again from its three finder
// patterns alone. gozxing steers its sampling by the alignment pattern
// nearest the bottom-right corner; when that corner is damaged it may
// lock onto a look-alike nearby and misread the whole code, which a
// plain affine sampling of a flat scan avoids.
func decodeUnaligned(m *gozxing.BitMatrix, info *qrdetector.FinderPatternInfo,
	dim int) (*common.DecoderResult, error) {
	tf := qrdetector.Detector_createTransform(info.GetTopLeft(),
		info.GetTopRight(), info.GetBottomLeft(), nil, dim)
	bits, err := qrdetector.Detector_sampleGrid(m, tf, dim)
	if err != nil {
		return nil, err
	}
	return decodeGrid(bits)
}

// readSingle tries gozxing's single-code reader, which picks the three
// likeliest finder patterns in the whole image.
func (r *reader) readSingle(bmp *gozxing.BinaryBitmap) *qrdetector.FinderPatternInfo {
	res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
	if err != nil {
		return nil
	}
	r.add(res.GetText())

	var fp []*qrdetector.FinderPattern
	for _, p := range res.GetResultPoints() {
		if f, ok := p.(*qrdetector.FinderPattern); ok {
			fp = append(fp, f)
		}
	}
	if len(fp) < 3 {
		return nil
	}
	return qrdetector.NewFinderPatternInfo(fp[0], fp[1], fp[2])
}

func (r *reader) add(text string) {
	if text != "" && !r.seen[text] {
		r.seen[text] = true
		r.found = append(r.found, text)
	}
}

// paintOut clears the code whose finder patterns are info from m, with a
// margin of one module, so the next round cannot see it.
func paintOut(m *gozxing.BitMatrix, info *qrdetector.FinderPatternInfo) {
	tl, tr, bl := info.GetTopLeft(), info.GetTopRight(), info.GetBottomLeft()
	ms := (tl.GetEstimatedModuleSize() + tr.GetEstimatedModuleSize() +
		bl.GetEstimatedModuleSize()) / 3
	ux, uy := unit(tr.GetX()-tl.GetX(), tr.GetY()-tl.GetY())
	vx, vy := unit(bl.GetX()-tl.GetX(), bl.GetY()-tl.GetY())
	e := 4.5 * ms // a finder centre is 3.5 modules from the symbol's edge

	corner := func(x, y, su, sv float64) [2]float64 {
		return [2]float64{x + e*(su*ux+sv*vx), y + e*(su*uy+sv*vy)}
	}
	clearQuad(m, [4][2]float64{
		corner(tl.GetX(), tl.GetY(), -1, -1),
		corner(tr.GetX(), tr.GetY(), 1, -1),
		corner(tr.GetX()+bl.GetX()-tl.GetX(), tr.GetY()+bl.GetY()-tl.GetY(), 1, 1),
		corner(bl.GetX(), bl.GetY(), -1, 1),
	})
}

func unit(x, y float64) (float64, float64) {
	n := math.Hypot(x, y)
	if n == 0 {
		return 0, 0
	}
	return x / n, y / n
}

// clearQuad clears the pixels of m whose centres lie in the convex
// quadrilateral q, whose corners go round in either direction.
func clearQuad(m *gozxing.BitMatrix, q [4][2]float64) {
	minY, maxY := math.Inf(1), math.Inf(-1)
	for _, p := range q {
		if math.IsNaN(p[0]+p[1]) || math.IsInf(p[0]+p[1], 0) {
			return
		}
		minY, maxY = math.Min(minY, p[1]), math.Max(maxY, p[1])
	}
	y0 := max(0, int(math.Floor(minY)))
	y1 := min(m.GetHeight()-1, int(math.Ceil(maxY)))
	for y := y0; y <= y1; y++ {
		// The span of the row's centre line inside q: a convex shape
		// crosses it at two edges at most.
		cy := float64(y) + 0.5
		lo, hi := math.Inf(1), math.Inf(-1)
		for i := range q {
			a, b := q[i], q[(i+1)%4]
			if (a[1] <= cy) == (b[1] <= cy) {
				continue
			}
			x := a[0] + (cy-a[1])*(b[0]-a[0])/(b[1]-a[1])
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
		if lo > hi {
			continue
		}
		x0 := max(0, int(math.Ceil(lo-0.5)))
		x1 := min(m.GetWidth()-1, int(math.Floor(hi-0.5)))
		for x := x0; x <= x1; x++ {
			m.Unset(x, y)
		}
	}
}

// binarize wraps rd's pixels for gozxing without copying them.
func binarize(rd reading) (*gozxing.BinaryBitmap, error) {
	g := rd.img
	w, h := g.Rect.Dx(), g.Rect.Dy()
	src, err := gozxing.NewPlanarYUVLuminanceSource(g.Pix, g.Stride, h,
		0, 0, w, h, false)
	if err != nil {
		return nil, err
	}
	if rd.global {
		return gozxing.NewBinaryBitmap(gozxing.NewGlobalHistgramBinarizer(src))
	}
	return gozxing.NewBinaryBitmap(gozxing.NewHybridBinarizer(src))
}

// wipeImage overwrites the pixels of a decoded image file, best effort:
// a page's pixels carry the share as much as its payloads do.
func wipeImage(img image.Image) {
	switch m := img.(type) {
	case *image.Gray:
		clear(m.Pix)
	case *image.YCbCr:
		clear(m.Y)
		clear(m.Cb)
		clear(m.Cr)
	case *image.RGBA:
		clear(m.Pix)
	case *image.NRGBA:
		clear(m.Pix)
	case *image.Gray16:
		clear(m.Pix)
	case *image.RGBA64:
		clear(m.Pix)
	case *image.NRGBA64:
		clear(m.Pix)
	case *image.Paletted:
		clear(m.Pix)
	}
}

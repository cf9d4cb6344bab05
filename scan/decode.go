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
// It tries increasingly costly readings until every code it can locate
// has been read: both of gozxing's binarizers with TRY_HARDER, the image
// at full size, inverted colours, quarter turns, small skews and, for
// small images, enlargement. Within a reading, codes already read are
// painted out and the rest tried again, and a code that fails ordinary
// error correction is tried with its blank (covered) part as erasures.
func DecodeImage(img image.Image) ([]string, error) {
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, &NoCodeError{}
	}
	if int64(b.Dx())*int64(b.Dy()) > MaxPixels {
		return nil, fmt.Errorf("reading QR codes: image of %d x %d pixels "+
			"is more than %d", b.Dx(), b.Dy(), MaxPixels)
	}

	full := toGray(img)
	steps, shared := ladder(full)
	defer func() {
		for _, g := range shared() {
			clear(g.Pix)
		}
	}()
	r := &reader{seen: map[string]bool{}}
	for _, try := range steps {
		rd := try()
		r.attempt(rd)
		if !slices.Contains(shared(), rd.img) {
			clear(rd.img.Pix) // a turned or skewed copy of the page
		}
		if r.done() {
			break
		}
	}
	if len(r.found) == 0 {
		return nil, &NoCodeError{}
	}
	return r.found, nil
}

// reading is one way of looking at the image: the pixels and how to
// binarise them.
type reading struct {
	img    *image.Gray
	global bool // GlobalHistogram binarizer instead of Hybrid
	invert bool
}

// ladder lists the readings to try, cheapest and likeliest first. They
// are built on demand, so a clean scan costs one or two passes. Turned
// and skewed readings use a half-size image when it is large: they are
// there for odd photos, and a page without codes must not take long.
// shared lists the images that several readings use, for wiping.
func ladder(full *image.Gray) (steps []func() reading, shared func() []*image.Gray) {
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
	steps = []func() reading{
		func() reading { return reading{img: w()} },
		func() reading { return reading{img: w(), global: true} },
	}
	if factor > 1 {
		steps = append(steps, func() reading { return reading{img: full} })
	}
	steps = append(steps, func() reading { return reading{img: w(), invert: true} })
	for turns := 1; turns <= 3; turns++ {
		steps = append(steps, func() reading {
			return reading{img: rotate90(h(), turns)}
		})
	}
	for _, deg := range []float64{-4, 4, -8, 8} {
		steps = append(steps, func() reading {
			return reading{img: rotate(h(), deg)}
		})
	}
	if side < 1600 {
		steps = append(steps, func() reading {
			return reading{img: enlarge(full, 2)}
		})
	}
	return steps, shared
}

// halfSide is the least long side of a half-size reading, in pixels.
const halfSide = 1200

// reader collects payloads over several readings.
type reader struct {
	found  []string
	seen   map[string]bool
	missed bool // the last reading saw a code it could not decode
}

// done reports whether further readings are unlikely to add anything:
// something was read, and the last reading saw no code it failed on.
func (r *reader) done() bool { return len(r.found) > 0 && !r.missed }

var hints = map[gozxing.DecodeHintType]interface{}{
	gozxing.DecodeHintType_TRY_HARDER: true,
}

// attempt reads rd and notes whether it located a code it could not
// decode.
func (r *reader) attempt(rd reading) {
	r.missed = r.read(rd) > 0
}

// read decodes the codes in rd one round at a time: after each round the
// codes it read are painted out, so that the finder patterns of codes
// still unread no longer compete with theirs. It returns how many codes
// the last round located (sampled a grid for) but could not decode.
func (r *reader) read(rd reading) (failed int) {
	defer func() {
		// gozxing is a port of Java code; a malformed image must not
		// take the ceremony down with an index panic.
		if recover() != nil {
			failed++
		}
	}()

	g, owned := rd.img, false
	for round := 0; round < maxRounds; round++ {
		bmp, err := binarize(reading{img: g, global: rd.global,
			invert: rd.invert})
		if err != nil {
			return failed
		}
		matrix, err := bmp.GetBlackMatrix()
		if err != nil {
			return failed
		}

		var read []*qrdetector.FinderPatternInfo
		read, failed = r.readMulti(matrix)
		if len(read) == 0 {
			info := r.readSingle(bmp)
			if info == nil {
				return failed
			}
			read = append(read, info)
		}

		if !owned {
			g, owned = crop(g, g.Rect), true
			defer clear(g.Pix)
		}
		for _, info := range read {
			paintOut(g, info)
		}
	}
	return failed
}

// maxRounds bounds the rounds of one reading; a page holds a handful of
// codes, and every round that goes on has read at least one.
const maxRounds = 12

// readMulti decodes every code the multi-finder locates. It returns the
// finder patterns of those it read and how many others it located but
// could not decode.
func (r *reader) readMulti(m *gozxing.BitMatrix) (
	read []*qrdetector.FinderPatternInfo, failed int) {
	finder := multidetector.NewMultiFinderPatternFinder(m, nil)
	located, _ := finder.FindMulti(hints)
	det := qrdetector.NewDetector(m)
	for _, info := range located {
		grid, err := det.ProcessFinderPatternInfo(info)
		if err != nil {
			continue
		}
		res, err := decodeGrid(grid.GetBits())
		if err != nil && len(grid.GetPoints()) > 3 {
			res, err = decodeUnaligned(m, info, grid.GetBits().GetWidth())
		}
		if err != nil {
			failed++
			continue
		}
		r.add(res.GetText())
		read = append(read, info)
	}
	return read, failed
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

// paintOut whitens the code whose finder patterns are info, with a
// margin of one module, so the next round cannot see it.
func paintOut(g *image.Gray, info *qrdetector.FinderPatternInfo) {
	tl, tr, bl := info.GetTopLeft(), info.GetTopRight(), info.GetBottomLeft()
	ms := (tl.GetEstimatedModuleSize() + tr.GetEstimatedModuleSize() +
		bl.GetEstimatedModuleSize()) / 3
	ux, uy := unit(tr.GetX()-tl.GetX(), tr.GetY()-tl.GetY())
	vx, vy := unit(bl.GetX()-tl.GetX(), bl.GetY()-tl.GetY())
	e := 4.5 * ms // a finder centre is 3.5 modules from the symbol's edge

	corner := func(x, y, su, sv float64) [2]float64 {
		return [2]float64{x + e*(su*ux+sv*vx), y + e*(su*uy+sv*vy)}
	}
	fillQuad(g, [4][2]float64{
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

// fillQuad paints a convex quadrilateral white.
func fillQuad(g *image.Gray, q [4][2]float64) {
	minX, minY := math.Inf(1), math.Inf(1)
	maxX, maxY := math.Inf(-1), math.Inf(-1)
	for _, p := range q {
		minX, maxX = math.Min(minX, p[0]), math.Max(maxX, p[0])
		minY, maxY = math.Min(minY, p[1]), math.Max(maxY, p[1])
	}
	r := image.Rect(int(minX), int(minY), int(maxX)+1, int(maxY)+1).
		Intersect(g.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if inside(q, float64(x)+0.5, float64(y)+0.5) {
				g.Pix[y*g.Stride+x] = 255
			}
		}
	}
}

// inside reports whether (x, y) lies in the convex quadrilateral q, whose
// corners go round in either direction.
func inside(q [4][2]float64, x, y float64) bool {
	var pos, neg bool
	for i := range q {
		a, b := q[i], q[(i+1)%4]
		cross := (b[0]-a[0])*(y-a[1]) - (b[1]-a[1])*(x-a[0])
		pos = pos || cross > 0
		neg = neg || cross < 0
	}
	return !(pos && neg)
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
	if rd.invert {
		src = gozxing.NewInvertedLuminanceSource(src)
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

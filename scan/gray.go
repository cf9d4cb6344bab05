package scan

import (
	"image"
	"image/color"
	"math"
)

// toGray converts img to 8-bit luminance with the origin at (0, 0) and a
// stride equal to the width. Transparent parts are put on white, as on
// paper.
func toGray(img image.Image) *image.Gray {
	b := img.Bounds()
	g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	switch src := img.(type) {
	case *image.Gray:
		for y := 0; y < b.Dy(); y++ {
			i := src.PixOffset(b.Min.X, b.Min.Y+y)
			copy(g.Pix[y*g.Stride:], src.Pix[i:i+b.Dx()])
		}
	case *image.YCbCr:
		for y := 0; y < b.Dy(); y++ {
			i := src.YOffset(b.Min.X, b.Min.Y+y)
			copy(g.Pix[y*g.Stride:], src.Y[i:i+b.Dx()])
		}
	case *image.RGBA:
		for y := 0; y < b.Dy(); y++ {
			px := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			row := g.Pix[y*g.Stride:]
			for x := 0; x < b.Dx(); x++ {
				p := px[4*x : 4*x+4 : 4*x+4]
				row[x] = lumaPremul(p[0], p[1], p[2], p[3])
			}
		}
	case *image.NRGBA:
		for y := 0; y < b.Dy(); y++ {
			px := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			row := g.Pix[y*g.Stride:]
			for x := 0; x < b.Dx(); x++ {
				p := px[4*x : 4*x+4 : 4*x+4]
				a := uint32(p[3])
				r := uint32(p[0]) * a / 255
				gg := uint32(p[1]) * a / 255
				bb := uint32(p[2]) * a / 255
				row[x] = lumaPremul(uint8(r), uint8(gg), uint8(bb), p[3])
			}
		}
	default:
		for y := 0; y < b.Dy(); y++ {
			row := g.Pix[y*g.Stride:]
			for x := 0; x < b.Dx(); x++ {
				row[x] = luma(img.At(b.Min.X+x, b.Min.Y+y))
			}
		}
	}
	return g
}

// luma returns the luminance of c composited on white.
func luma(c color.Color) uint8 {
	r, g, b, a := c.RGBA() // premultiplied, 16 bits
	white := 0xffff - a
	y := (299*(r+white) + 587*(g+white) + 114*(b+white)) / 1000
	return uint8(y >> 8)
}

// lumaPremul is luma for 8-bit premultiplied components.
func lumaPremul(r, g, b, a uint8) uint8 {
	white := 255 - uint32(a)
	y := 299*(uint32(r)+white) + 587*(uint32(g)+white) +
		114*(uint32(b)+white)
	return uint8(y / 1000)
}

// shrink returns g reduced by an integer factor, each pixel the mean of a
// factor x factor block.
func shrink(g *image.Gray, factor int) *image.Gray {
	if factor <= 1 {
		return g
	}
	w, h := g.Rect.Dx()/factor, g.Rect.Dy()/factor
	out := image.NewGray(image.Rect(0, 0, w, h))
	area := uint32(factor * factor)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var sum uint32
			for dy := 0; dy < factor; dy++ {
				row := g.Pix[(y*factor+dy)*g.Stride+x*factor:]
				for dx := 0; dx < factor; dx++ {
					sum += uint32(row[dx])
				}
			}
			out.Pix[y*out.Stride+x] = uint8(sum / area)
		}
	}
	return out
}

// enlarge returns g scaled up by an integer factor, pixel by pixel.
func enlarge(g *image.Gray, factor int) *image.Gray {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	out := image.NewGray(image.Rect(0, 0, w*factor, h*factor))
	for y := 0; y < h*factor; y++ {
		src := g.Pix[(y/factor)*g.Stride:]
		dst := out.Pix[y*out.Stride:]
		for x := 0; x < w*factor; x++ {
			dst[x] = src[x/factor]
		}
	}
	return out
}

// negate returns a copy of g with dark and light swapped.
func negate(g *image.Gray) *image.Gray {
	out := image.NewGray(g.Rect)
	for i, v := range g.Pix {
		out.Pix[i] = 255 - v
	}
	return out
}

// rotate90 turns g a quarter turn clockwise, times times.
func rotate90(g *image.Gray, times int) *image.Gray {
	for ; times > 0; times-- {
		w, h := g.Rect.Dx(), g.Rect.Dy()
		out := image.NewGray(image.Rect(0, 0, h, w))
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				out.Pix[x*out.Stride+(h-1-y)] = g.Pix[y*g.Stride+x]
			}
		}
		g = out
	}
	return g
}

// rotate turns g by degrees about its centre with bilinear sampling,
// keeping its size and filling the corners with white.
func rotate(g *image.Gray, degrees float64) *image.Gray {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	out := image.NewGray(image.Rect(0, 0, w, h))
	sin, cos := math.Sincos(degrees * math.Pi / 180)
	cx, cy := float64(w-1)/2, float64(h-1)/2
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dx, dy := float64(x)-cx, float64(y)-cy
			sx := cos*dx + sin*dy + cx
			sy := -sin*dx + cos*dy + cy
			out.Pix[y*out.Stride+x] = sample(g, sx, sy)
		}
	}
	return out
}

// sample reads g at a fractional position, white outside.
func sample(g *image.Gray, x, y float64) uint8 {
	x0, y0 := math.Floor(x), math.Floor(y)
	fx, fy := x-x0, y-y0
	at := func(x, y int) float64 {
		if x < 0 || y < 0 || x >= g.Rect.Dx() || y >= g.Rect.Dy() {
			return 255
		}
		return float64(g.Pix[y*g.Stride+x])
	}
	ix, iy := int(x0), int(y0)
	top := at(ix, iy)*(1-fx) + at(ix+1, iy)*fx
	bottom := at(ix, iy+1)*(1-fx) + at(ix+1, iy+1)*fx
	return uint8(top*(1-fy) + bottom*fy + 0.5)
}

// crop returns a copy of the part of g inside r.
func crop(g *image.Gray, r image.Rectangle) *image.Gray {
	r = r.Intersect(g.Rect)
	out := image.NewGray(image.Rect(0, 0, r.Dx(), r.Dy()))
	for y := 0; y < r.Dy(); y++ {
		i := g.PixOffset(r.Min.X, r.Min.Y+y)
		copy(out.Pix[y*out.Stride:], g.Pix[i:i+r.Dx()])
	}
	return out
}

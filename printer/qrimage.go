package printer

import (
	"image"
	"image/color"
)

// QRImage draws the code WriteSharePDF prints for payload as an image,
// with its quiet zone, at pixels per module. A split reads it back when no
// PDF rasteriser is installed; it proves the code, not the page.
func QRImage(payload string, pixels int) (image.Image, error) {
	sym, err := encodeQR(payload)
	if err != nil {
		return nil, err
	}
	size := sym.size() * pixels
	img := image.NewGray(image.Rect(0, 0, size, size))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for _, r := range sym.rects() {
		x0, y0 := (r.x+quietModules)*pixels, (r.y+quietModules)*pixels
		for y := y0; y < y0+r.h*pixels; y++ {
			for x := x0; x < x0+r.w*pixels; x++ {
				img.SetGray(x, y, color.Gray{})
			}
		}
	}
	return img, nil
}

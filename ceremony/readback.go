package ceremony

import (
	"context"
	"errors"
	"fmt"
	"image"
	"path/filepath"

	"custos/printer"
	"custos/scan"
	"custos/shares"
)

// readBackDPI are the resolutions a split tries when reading its own pages:
// a coarse one first, as a cheap scanner would give, then a fine one.
var readBackDPI = []int{150, 300}

// readBackPDF rasterises a share page and decodes its QR codes into the
// share. When no rasteriser is installed it decodes the codes it drew
// instead and says so in warning.
func readBackPDF(ctx context.Context, path string, want *shares.Share) (got *shares.Share, warning string, err error) {
	var lastErr error
	for _, dpi := range readBackDPI {
		pages, err := scan.RasterizePDF(ctx, path, dpi)
		var missing *scan.ToolMissingError
		if errors.As(err, &missing) {
			s, err := readBackCodes(want, filepath.Base(path))
			return s, fmt.Sprintf("%s; read back share %d from the QR codes drawn, not from the rendered page", missing, want.Index), err
		}
		if err != nil {
			return nil, "", err
		}
		s, err := decodePages(pages, filepath.Base(path))
		if err == nil {
			return s, "", nil
		}
		lastErr = err
	}
	return nil, "", lastErr
}

// decodePages decodes every QR code on the pages into one share.
func decodePages(pages []image.Image, source string) (*shares.Share, error) {
	var parts shares.Parts
	for i, page := range pages {
		payloads, err := scan.DecodeImage(page)
		if err != nil {
			var none *scan.NoCodeError
			if errors.As(err, &none) {
				continue // an instructions page has no code
			}
			return nil, fmt.Errorf("page %d: %w", i+1, err)
		}
		for _, p := range payloads {
			if err := parts.Add(p, source); err != nil {
				return nil, err
			}
		}
		if parts.Complete() {
			break // the codes come first; the rest is the typed form
		}
	}
	return oneShare(&parts, source)
}

// oneShare returns the single share a set of parts makes.
func oneShare(parts *shares.Parts, source string) (*shares.Share, error) {
	got, err := parts.Shares()
	if err != nil {
		return nil, err
	}
	switch len(got) {
	case 0:
		return nil, &scan.NoCodeError{File: source}
	case 1:
		return got[0], nil
	}
	return nil, fmt.Errorf("%s holds %d different shares", source, len(got))
}

// readBackCodes decodes the share's codes drawn as images.
func readBackCodes(s *shares.Share, source string) (*shares.Share, error) {
	var parts shares.Parts
	for _, p := range s.QRPayloads() {
		img, err := printer.QRImage(p, 4)
		if err != nil {
			return nil, err
		}
		payloads, err := scan.DecodeImage(img)
		if err != nil {
			return nil, err
		}
		for _, got := range payloads {
			if err := parts.Add(got, source); err != nil {
				return nil, err
			}
		}
	}
	return oneShare(&parts, source)
}

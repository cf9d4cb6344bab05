package scan

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// ToolMissingError reports a helper program that is not installed.
type ToolMissingError struct {
	Tool    string // the program, e.g. "pdftoppm"
	Package string // the Debian package that provides it
}

func (e *ToolMissingError) Error() string {
	return fmt.Sprintf("%s not found: install %s", e.Tool, e.Package)
}

// RasterizePDF renders every page of a PDF file as a grey image at dpi
// dots per inch, with pdftoppm from poppler-utils. It returns a
// *ToolMissingError when pdftoppm is not installed.
//
// Pages are read from pdftoppm's standard output, never from files: a
// rendered share page is as secret as the share.
func RasterizePDF(ctx context.Context, pdfPath string, dpi int) ([]image.Image, error) {
	if dpi < 36 || dpi > 1200 {
		return nil, fmt.Errorf("rasterizing %s: %d dpi is outside 36..1200",
			pdfPath, dpi)
	}
	tool, err := exec.LookPath("pdftoppm")
	if err != nil {
		return nil, &ToolMissingError{Tool: "pdftoppm", Package: "poppler-utils"}
	}

	// A path starting with "-" would be taken for an option.
	arg := pdfPath
	if !filepath.IsAbs(arg) {
		arg = "." + string(filepath.Separator) + arg
	}
	// Raw PGM, not PNG: pdftoppm spends most of its time compressing
	// PNG, and nothing is stored.
	cmd := exec.CommandContext(ctx, tool, "-gray", "-r", strconv.Itoa(dpi),
		arg)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("rasterizing %s: %w", pdfPath, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("rasterizing %s: starting pdftoppm: %w",
			pdfPath, err)
	}

	pages, readErr := readPGMStream(bufio.NewReader(out))
	if readErr != nil {
		io.Copy(io.Discard, out) // let pdftoppm finish writing
	}
	waitErr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("rasterizing %s: %w", pdfPath, ctx.Err())
	case waitErr != nil:
		return nil, fmt.Errorf("rasterizing %s: pdftoppm: %w: %s", pdfPath,
			waitErr, strings.TrimSpace(stderr.String()))
	case readErr != nil:
		return nil, fmt.Errorf("rasterizing %s: reading pdftoppm output: %w",
			pdfPath, readErr)
	case len(pages) == 0:
		return nil, fmt.Errorf("rasterizing %s: pdftoppm gave no pages",
			pdfPath)
	}
	return pages, nil
}

// readPGMStream decodes binary PGM images (Netpbm P5, 8-bit) written one
// after another, as pdftoppm -gray does when it writes every page to
// standard output.
func readPGMStream(r *bufio.Reader) ([]image.Image, error) {
	var pages []image.Image
	for {
		if _, err := r.Peek(1); errors.Is(err, io.EOF) {
			return pages, nil
		}
		img, err := readPGM(r)
		if err != nil {
			return pages, fmt.Errorf("page %d: %w", len(pages)+1, err)
		}
		pages = append(pages, img)
	}
}

// maxPGMSide bounds a page's side in pixels: a Letter page at 1200 dpi is
// 13200 pixels long.
const maxPGMSide = 20000

func readPGM(r *bufio.Reader) (*image.Gray, error) {
	var magic string
	var w, h, maxval int
	fields := []any{&magic, &w, &h, &maxval}
	for _, f := range fields {
		if err := pnmToken(r, f); err != nil {
			return nil, fmt.Errorf("reading PGM header: %w", err)
		}
	}
	if magic != "P5" || maxval != 255 || w <= 0 || h <= 0 ||
		w > maxPGMSide || h > maxPGMSide || int64(w)*int64(h) > MaxPixels {
		return nil, fmt.Errorf("unexpected PGM header %s %d %d %d", magic,
			w, h, maxval)
	}
	if _, err := r.ReadByte(); err != nil { // the one whitespace byte
		return nil, err
	}
	img := image.NewGray(image.Rect(0, 0, w, h))
	if _, err := io.ReadFull(r, img.Pix); err != nil {
		return nil, fmt.Errorf("reading PGM pixels: %w", err)
	}
	return img, nil
}

// pnmToken reads one header field into dst, skipping white space and
// comments.
func pnmToken(r *bufio.Reader, dst any) error {
	var tok []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			return err
		}
		switch {
		case c == '#' && len(tok) == 0:
			if _, err := r.ReadString('\n'); err != nil {
				return err
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if len(tok) > 0 {
				r.UnreadByte()
				return scanToken(tok, dst)
			}
		default:
			if len(tok) > 16 {
				return errors.New("header field too long")
			}
			tok = append(tok, c)
		}
	}
}

func scanToken(tok []byte, dst any) error {
	switch d := dst.(type) {
	case *string:
		*d = string(tok)
		return nil
	case *int:
		n, err := strconv.Atoi(string(tok))
		*d = n
		return err
	}
	return errors.New("bad header field")
}

// limitedWriter keeps the first n bytes written to it and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

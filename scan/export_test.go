package scan

import (
	"bufio"
	"image"
	"strings"
)

// ReadPGMStreamForTest exposes the pdftoppm output parser to tests.
func ReadPGMStreamForTest(s string) ([]image.Image, error) {
	return readPGMStream(bufio.NewReader(strings.NewReader(s)))
}

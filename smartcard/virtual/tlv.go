package virtual

import "errors"

// errBadTLV reports data that is not well-formed BER-TLV as the PIV
// commands use it (SP 800-73-4 part 2, section 2.4.1 and annex).
var errBadTLV = errors.New("malformed tlv")

// tlv is one decoded BER-TLV element. The tag keeps its encoded bytes
// folded into an integer (0x7C, 0x5FC105, 0x7F49).
type tlv struct {
	tag   uint32
	value []byte
}

// parseTLVs decodes a sequence of BER-TLV elements. It accepts tags of
// up to three bytes and definite lengths of up to three length bytes.
func parseTLVs(b []byte) ([]tlv, error) {
	var out []tlv
	for len(b) > 0 {
		t, rest, err := parseTLV(b)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
		b = rest
	}
	return out, nil
}

// parseTLV decodes the first BER-TLV element of b and returns the rest.
func parseTLV(b []byte) (tlv, []byte, error) {
	tag, n, err := parseTag(b)
	if err != nil {
		return tlv{}, nil, err
	}
	b = b[n:]

	length, n, err := parseLength(b)
	if err != nil {
		return tlv{}, nil, err
	}
	b = b[n:]
	if length > len(b) {
		return tlv{}, nil, errBadTLV
	}
	return tlv{tag: tag, value: b[:length]}, b[length:], nil
}

// parseTag reads a BER tag of one to three bytes.
func parseTag(b []byte) (tag uint32, n int, err error) {
	if len(b) == 0 {
		return 0, 0, errBadTLV
	}
	tag = uint32(b[0])
	n = 1
	if b[0]&0x1f != 0x1f {
		return tag, n, nil
	}
	for {
		if n >= len(b) || n >= 3 {
			return 0, 0, errBadTLV
		}
		tag = tag<<8 | uint32(b[n])
		n++
		if b[n-1]&0x80 == 0 {
			return tag, n, nil
		}
	}
}

// parseLength reads a BER definite length (short form, 81 xx or 82 xx xx).
func parseLength(b []byte) (length, n int, err error) {
	if len(b) == 0 {
		return 0, 0, errBadTLV
	}
	switch {
	case b[0] < 0x80:
		return int(b[0]), 1, nil
	case b[0] == 0x81 && len(b) >= 2:
		return int(b[1]), 2, nil
	case b[0] == 0x82 && len(b) >= 3:
		return int(b[1])<<8 | int(b[2]), 3, nil
	case b[0] == 0x83 && len(b) >= 4:
		return int(b[1])<<16 | int(b[2])<<8 | int(b[3]), 4, nil
	}
	return 0, 0, errBadTLV
}

// find returns the value of the first element with the given tag.
func find(ts []tlv, tag uint32) ([]byte, bool) {
	for _, t := range ts {
		if t.tag == tag {
			return t.value, true
		}
	}
	return nil, false
}

// appendTLV appends tag, BER length and value to dst.
func appendTLV(dst []byte, tag uint32, value []byte) []byte {
	dst = appendTag(dst, tag)
	dst = appendLength(dst, len(value))
	return append(dst, value...)
}

// appendTag appends the encoded bytes of tag (one to three bytes).
func appendTag(dst []byte, tag uint32) []byte {
	switch {
	case tag > 0xffff:
		return append(dst, byte(tag>>16), byte(tag>>8), byte(tag))
	case tag > 0xff:
		return append(dst, byte(tag>>8), byte(tag))
	}
	return append(dst, byte(tag))
}

// appendLength appends a BER definite length in its shortest form.
func appendLength(dst []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(dst, byte(n))
	case n < 0x100:
		return append(dst, 0x81, byte(n))
	case n < 0x10000:
		return append(dst, 0x82, byte(n>>8), byte(n))
	}
	return append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
}

// tlvBytes encodes one element.
func tlvBytes(tag uint32, value []byte) []byte {
	return appendTLV(nil, tag, value)
}

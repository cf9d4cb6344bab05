package virtual

import "errors"

// Status words the card answers with (ISO/IEC 7816-4 section 5.6 and
// SP 800-73-4 part 2 table 6).
const (
	swOK                  = 0x9000
	swMoreData            = 0x6100 // 61xx: xx more bytes, GET RESPONSE
	swVerifyFail          = 0x63c0 // 63Cx: x tries left
	swMemoryFailure       = 0x6581
	swWrongLength         = 0x6700
	swLastCmdExpected     = 0x6883
	swSecurityStatus      = 0x6982
	swAuthBlocked         = 0x6983
	swConditionsNotMet    = 0x6985
	swIncorrectData       = 0x6a80
	swFuncNotSupported    = 0x6a81
	swNotFound            = 0x6a82
	swNotEnoughMemory     = 0x6a84
	swIncorrectP1P2       = 0x6a86
	swRefNotFound         = 0x6a88
	swINSNotSupported     = 0x6d00
	swCLANotSupported     = 0x6e00
	swNoPreciseDiagnostic = 0x6f00
)

// command is a parsed command APDU.
type command struct {
	cla, ins, p1, p2 byte
	data             []byte
	// ne is the maximum response length the host accepts: 0 when Le is
	// absent, 256 or 65536 when Le is 00 or 0000.
	ne       int
	extended bool
	// assembled is set on a command put together from a chain.
	assembled bool
}

// chained reports whether more chunks of this command follow
// (ISO/IEC 7816-4 section 5.1.1, CLA bit 0x10).
func (c command) chained() bool { return c.cla&0x10 != 0 }

var errBadAPDU = errors.New("malformed command apdu")

// parseCommand decodes the four ISO/IEC 7816-4 cases, short and
// extended.
func parseCommand(b []byte) (command, error) {
	if len(b) < 4 {
		return command{}, errBadAPDU
	}
	c := command{cla: b[0], ins: b[1], p1: b[2], p2: b[3]}
	body := b[4:]

	switch {
	case len(body) == 0: // case 1
		return c, nil
	case len(body) == 1: // case 2 short
		c.ne = short(body[0])
		return c, nil
	case body[0] != 0: // case 3 or 4 short
		lc := int(body[0])
		switch len(body) {
		case 1 + lc:
		case 2 + lc:
			c.ne = short(body[1+lc])
		default:
			return command{}, errBadAPDU
		}
		c.data = body[1 : 1+lc]
		return c, nil
	}

	// Extended length: body starts 00.
	c.extended = true
	if len(body) == 3 { // case 2 extended
		c.ne = extended(body[1], body[2])
		return c, nil
	}
	if len(body) < 3 {
		return command{}, errBadAPDU
	}
	lc := int(body[1])<<8 | int(body[2])
	switch len(body) {
	case 3 + lc:
	case 5 + lc:
		c.ne = extended(body[3+lc], body[4+lc])
	default:
		return command{}, errBadAPDU
	}
	if lc == 0 {
		return command{}, errBadAPDU
	}
	c.data = body[3 : 3+lc]
	return c, nil
}

func short(le byte) int {
	if le == 0 {
		return 256
	}
	return int(le)
}

func extended(hi, lo byte) int {
	n := int(hi)<<8 | int(lo)
	if n == 0 {
		return 65536
	}
	return n
}

// response is what a command handler returns: data and a status word.
type response struct {
	data []byte
	sw   uint16
}

func ok(data []byte) response { return response{data: data, sw: swOK} }

func status(sw uint16) response { return response{sw: sw} }

// bytes encodes the response APDU.
func (r response) bytes() []byte {
	out := make([]byte, 0, len(r.data)+2)
	out = append(out, r.data...)
	return append(out, byte(r.sw>>8), byte(r.sw))
}

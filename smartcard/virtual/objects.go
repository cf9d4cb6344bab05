package virtual

import "bytes"

// Data object tags the card knows (SP 800-73-4 part 1 table 3, and the
// Yubico range 5FFF00-5FFF15).
const (
	objDiscovery   = 0x7e
	objBITGroup    = 0x7f61
	objAttestation = 0x5fff01
)

// discoveryObject is the fixed discovery object of a YubiKey: the PIV AID
// and a PIN usage policy of "PIV Card Application PIN only" (SP 800-73-4
// part 1 section 3.3.2).
var discoveryObject = []byte{
	0x7e, 0x12,
	0x4f, 0x0b, 0xa0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
	0x5f, 0x2f, 0x02, 0x40, 0x00,
}

// validObject reports whether tag names an object the card may store.
func validObject(tag uint32) bool {
	switch {
	case tag == objBITGroup:
		return true
	case tag >= 0x5fc101 && tag <= 0x5fc123:
		return true
	case tag >= 0x5fff00 && tag <= 0x5fff15:
		return true
	}
	return false
}

// pinProtected reports whether reading the object needs the PIN:
// fingerprints, facial image, printed information and iris images
// (SP 800-73-4 part 1 table 3, access rule "PIN").
func pinProtected(tag uint32) bool {
	switch tag {
	case 0x5fc103, 0x5fc108, 0x5fc109, 0x5fc121:
		return true
	}
	return false
}

// objectTag reads the 5C tag list of GET DATA and PUT DATA: one tag of
// one to three bytes.
func objectTag(ts []tlv) (uint32, bool) {
	v, found := find(ts, 0x5c)
	if !found || len(v) < 1 || len(v) > 3 {
		return 0, false
	}
	var tag uint32
	for _, b := range v {
		tag = tag<<8 | uint32(b)
	}
	return tag, true
}

// getData handles GET DATA (SP 800-73-4 part 2 section 3.1.2).
func (c *Card) getData(cmd command) response {
	if cmd.p1 != 0x3f || cmd.p2 != 0xff {
		return status(swIncorrectP1P2)
	}
	ts, err := parseTLVs(cmd.data)
	if err != nil {
		return status(swIncorrectData)
	}
	tag, good := objectTag(ts)
	switch {
	case !good:
		return status(swIncorrectData)
	case tag == objDiscovery:
		return ok(bytes.Clone(discoveryObject))
	case !validObject(tag):
		return status(swNotFound)
	case pinProtected(tag) && !c.sess.pinOK:
		return status(swSecurityStatus)
	}

	content, found := c.st.Objects[objectName(tag)]
	if !found {
		return status(swNotFound)
	}
	return ok(tlvBytes(0x53, content))
}

// putData handles PUT DATA (SP 800-73-4 part 2 section 3.3.1). The
// object is replaced only here, once the whole (possibly chained)
// command arrived; an empty 53 deletes it.
func (c *Card) putData(cmd command) response {
	if !c.sess.mgmtOK {
		return status(swSecurityStatus)
	}
	if cmd.p1 != 0x3f || cmd.p2 != 0xff {
		return status(swIncorrectP1P2)
	}
	ts, err := parseTLVs(cmd.data)
	if err != nil {
		return status(swIncorrectData)
	}
	tag, good := objectTag(ts)
	if !good || tag == objDiscovery {
		return status(swIncorrectData)
	}
	if !validObject(tag) {
		return status(swNotFound)
	}
	content, found := find(ts, 0x53)
	if !found {
		return status(swIncorrectData)
	}
	if len(content) > maxObjectSize {
		return status(swNotEnoughMemory)
	}

	if len(content) == 0 {
		delete(c.st.Objects, objectName(tag))
	} else {
		c.st.Objects[objectName(tag)] = bytes.Clone(content)
	}
	c.dirty = true
	return ok(nil)
}

package virtual

import "fmt"

// The card also answers to the YubiKey management applet, just enough
// for hosts that read the device information (serial, firmware, form
// factor) there, as piv-go's FormFactor does.

// mgmtVersionText is what SELECT of the management applet returns.
func mgmtVersionText(v [3]byte) string {
	return fmt.Sprintf("custos virtual card - FW version %d.%d.%d", v[0], v[1], v[2])
}

// mgmtApplet handles commands while the management applet is selected.
func (c *Card) mgmtApplet(cmd command) response {
	if cmd.ins != insMgmtReadConfig {
		return status(swINSNotSupported)
	}
	v := c.st.Version
	info := tlvBytes(0x02, serialBytes(c.st.Serial))
	info = appendTLV(info, 0x04, []byte{formFactorUSBAKeychain})
	info = appendTLV(info, 0x05, []byte{v[0], v[1], v[2]})
	return ok(append([]byte{byte(len(info))}, info...))
}

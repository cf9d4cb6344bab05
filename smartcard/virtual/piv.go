package virtual

// PIV instructions (SP 800-73-4 part 2 table 5) and Yubico's extensions.
const (
	insVerify         = 0x20
	insChangeRef      = 0x24
	insResetRetry     = 0x2c
	insGenerate       = 0x47
	insAuthenticate   = 0x87
	insGetData        = 0xcb
	insPutData        = 0xdb
	insGetMetadata    = 0xf7
	insGetSerial      = 0xf8
	insAttest         = 0xf9
	insSetPINRetries  = 0xfa
	insReset          = 0xfb
	insGetVersion     = 0xfd
	insImportKey      = 0xfe
	insSetMgmtKey     = 0xff
	insMgmtReadConfig = 0x1d
)

// piv dispatches a command to the PIV applet.
func (c *Card) piv(cmd command) response {
	switch cmd.ins {
	case insGetVersion:
		v := c.st.Version
		return ok([]byte{v[0], v[1], v[2]})
	case insGetSerial:
		return ok(serialBytes(c.st.Serial))
	case insVerify:
		return c.verify(cmd)
	case insChangeRef:
		return c.changeReference(cmd)
	case insResetRetry:
		return c.resetRetryCounter(cmd)
	case insAuthenticate:
		return c.generalAuthenticate(cmd)
	case insGenerate:
		return c.generate(cmd)
	case insImportKey:
		return c.importKey(cmd)
	case insGetData:
		return c.getData(cmd)
	case insPutData:
		return c.putData(cmd)
	case insGetMetadata:
		return c.metadata(cmd)
	case insAttest:
		return c.attest(cmd)
	case insSetMgmtKey:
		return c.setManagementKey(cmd)
	case insSetPINRetries:
		return c.setPINRetries(cmd)
	case insReset:
		return c.reset(cmd)
	}
	return status(swINSNotSupported)
}

package virtual

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"crypto/subtle"
)

// PIV key references for the PIN and PUK (SP 800-73-4 part 1 table 4).
const (
	refPIN = 0x80
	refPUK = 0x81
)

// Management key algorithms (SP 800-78-4 table 6-2).
const (
	alg3DES   = 0x03
	algAES128 = 0x08
	algAES192 = 0x0a
	algAES256 = 0x0c
)

// mgmtKeyLen is the key length of each management key algorithm.
var mgmtKeyLen = map[byte]int{alg3DES: 24, algAES128: 16, algAES192: 24, algAES256: 32}

// defaultMgmtAlg is the management key algorithm a fresh card of firmware
// v has: AES-192 from 5.7, Triple-DES before.
func defaultMgmtAlg(v [3]byte) byte {
	if atLeast(v, 5, 7, 0) {
		return algAES192
	}
	return alg3DES
}

// atLeast reports whether version v is major.minor.patch or later.
func atLeast(v [3]byte, major, minor, patch byte) bool {
	if v[0] != major {
		return v[0] > major
	}
	if v[1] != minor {
		return v[1] > minor
	}
	return v[2] >= patch
}

// padPIN pads a PIN or PUK with FF to eight bytes (SP 800-73-4 part 2
// section 2.4.3). A value longer than eight bytes is cut, which makes it
// wrong, never right.
func padPIN(p []byte) []byte {
	out := bytes.Repeat([]byte{0xff}, 8)
	copy(out, p)
	return out
}

// validNewPIN reports whether a padded value is acceptable as a new PIN
// or PUK: six to eight bytes, then FF padding only.
func validNewPIN(v []byte) bool {
	if len(v) != 8 {
		return false
	}
	n := bytes.IndexByte(v, 0xff)
	if n == -1 {
		n = 8
	}
	for _, b := range v[n:] {
		if b != 0xff {
			return false
		}
	}
	return n >= 6
}

// retriesStatus is 63Cx with x the tries left (capped at 15, as four
// bits carry it).
func retriesStatus(left int) response {
	return status(swVerifyFail | uint16(min(left, 15)))
}

// tryRef checks a presented value against a PIN or PUK and counts the
// try. It returns the status to answer when the value is refused.
func (c *Card) tryRef(r *secretRef, presented []byte) (response, bool) {
	if r.Remaining == 0 {
		return status(swAuthBlocked), false
	}
	if subtle.ConstantTimeCompare(r.Value, presented) != 1 {
		r.Remaining--
		c.dirty = true
		return retriesStatus(r.Remaining), false
	}
	if r.Remaining != r.Retries {
		r.Remaining = r.Retries
		c.dirty = true
	}
	return response{}, true
}

// verify handles VERIFY (SP 800-73-4 part 2 section 3.2.1).
func (c *Card) verify(cmd command) response {
	if cmd.p2 != refPIN {
		return status(swRefNotFound)
	}
	switch {
	case cmd.p1 == 0xff && len(cmd.data) == 0:
		c.sess.pinOK, c.sess.pinFresh = false, false
		return ok(nil)
	case cmd.p1 != 0x00:
		return status(swIncorrectP1P2)
	}

	pin := &c.st.PIN
	if len(cmd.data) == 0 {
		switch {
		case pin.Remaining == 0:
			return status(swAuthBlocked)
		case c.sess.pinOK:
			return ok(nil)
		}
		return retriesStatus(pin.Remaining)
	}
	if len(cmd.data) != 8 {
		return status(swIncorrectData)
	}

	r, good := c.tryRef(pin, cmd.data)
	c.sess.pinOK, c.sess.pinFresh = good, good
	if !good {
		return r
	}
	return ok(nil)
}

// changeReference handles CHANGE REFERENCE DATA for the PIN and PUK
// (SP 800-73-4 part 2 section 3.2.2). The old value is checked, and the
// try counted, before the new one is looked at.
func (c *Card) changeReference(cmd command) response {
	var r *secretRef
	var def []byte
	switch {
	case cmd.p1 != 0x00:
		return status(swIncorrectP1P2)
	case cmd.p2 == refPIN:
		r, def = &c.st.PIN, DefaultPIN
	case cmd.p2 == refPUK:
		r, def = &c.st.PUK, DefaultPUK
	default:
		return status(swRefNotFound)
	}
	if len(cmd.data) != 16 {
		return status(swIncorrectData)
	}

	old, next := cmd.data[:8], cmd.data[8:]
	if resp, good := c.tryRef(r, old); !good {
		if cmd.p2 == refPIN {
			c.sess.pinOK, c.sess.pinFresh = false, false
		}
		return resp
	}
	if !validNewPIN(next) {
		return status(swIncorrectData)
	}

	r.Value = bytes.Clone(next)
	r.IsDefault = bytes.Equal(next, padPIN(def))
	c.dirty = true
	return ok(nil)
}

// resetRetryCounter handles RESET RETRY COUNTER: the PUK unblocks the PIN
// and sets a new one (SP 800-73-4 part 2 section 3.2.3).
func (c *Card) resetRetryCounter(cmd command) response {
	if cmd.p1 != 0x00 || cmd.p2 != refPIN {
		return status(swIncorrectP1P2)
	}
	if len(cmd.data) != 16 {
		return status(swIncorrectData)
	}
	puk, next := cmd.data[:8], cmd.data[8:]
	if resp, good := c.tryRef(&c.st.PUK, puk); !good {
		return resp
	}
	if !validNewPIN(next) {
		return status(swIncorrectData)
	}

	pin := &c.st.PIN
	pin.Value = bytes.Clone(next)
	pin.Remaining = pin.Retries
	pin.IsDefault = bytes.Equal(next, padPIN(DefaultPIN))
	c.dirty = true
	return ok(nil)
}

// setPINRetries handles the Yubico SET PIN RETRIES command: new retry
// counts for PIN (P1) and PUK (P2). Like a YubiKey it needs the
// management key and the PIN, and it resets PIN and PUK to defaults.
func (c *Card) setPINRetries(cmd command) response {
	if !c.sess.mgmtOK || !c.sess.pinOK {
		return status(swSecurityStatus)
	}
	if cmd.p1 == 0 || cmd.p2 == 0 {
		return status(swIncorrectP1P2)
	}
	mgmt := c.st.Mgmt
	c.st.resetCredentials(int(cmd.p1), int(cmd.p2))
	c.st.Mgmt = mgmt
	c.sess.pinOK, c.sess.pinFresh = false, false
	c.dirty = true
	return ok(nil)
}

// reset handles the Yubico RESET command: only once both PIN and PUK are
// blocked, it wipes every key but the attestation key, every object but
// the attestation certificate, and restores the default credentials.
func (c *Card) reset(cmd command) response {
	if c.st.PIN.Remaining != 0 || c.st.PUK.Remaining != 0 {
		return status(swConditionsNotMet)
	}
	for name := range c.st.Keys {
		if name != slotName(slotAttestation) {
			delete(c.st.Keys, name)
		}
	}
	for name := range c.st.Objects {
		if name != objectName(objAttestation) {
			delete(c.st.Objects, name)
		}
	}
	c.st.resetCredentials(defaultRetries, defaultRetries)
	c.sess = session{applet: appletPIV}
	c.dirty = true
	return ok(nil)
}

// setManagementKey handles the Yubico SET MANAGEMENT KEY command
// (FF FF FF, or FF FF FE for a key that requires touch).
func (c *Card) setManagementKey(cmd command) response {
	if !c.sess.mgmtOK {
		return status(swSecurityStatus)
	}
	if cmd.p1 != 0xff || (cmd.p2 != 0xff && cmd.p2 != 0xfe) {
		return status(swIncorrectP1P2)
	}
	d := cmd.data
	if len(d) < 3 || d[1] != slotCardManagement || int(d[2]) != len(d)-3 {
		return status(swIncorrectData)
	}
	alg, key := d[0], d[3:]
	if n, known := mgmtKeyLen[alg]; !known || n != len(key) {
		return status(swIncorrectData)
	}
	if alg != alg3DES && !atLeast(c.st.Version, 5, 4, 0) {
		return status(swIncorrectData)
	}

	touch := byte(touchNever)
	if cmd.p2 == 0xfe {
		touch = touchAlways
	}
	c.st.Mgmt = mgmtKey{Alg: alg, Key: bytes.Clone(key), Touch: touch,
		IsDefault: bytes.Equal(key, DefaultManagementKey) && alg == defaultMgmtAlg(c.st.Version)}
	c.dirty = true
	return ok(nil)
}

// mgmtChallenge is a management key authentication under way: the clear
// witness the host must send back, or the challenge it must encrypt.
type mgmtChallenge struct {
	witness   []byte
	challenge []byte
}

// mgmtCipher returns the block cipher of the management key.
func (c *Card) mgmtCipher() (cipher.Block, error) {
	if c.st.Mgmt.Alg == alg3DES {
		return des.NewTripleDESCipher(c.st.Mgmt.Key)
	}
	return aes.NewCipher(c.st.Mgmt.Key)
}

// authenticateMgmt handles GENERAL AUTHENTICATE with the management key
// (SP 800-73-4 part 2 appendix A.1 and A.2): mutual authentication with a
// witness, or one-way authentication with a challenge. The touch policy is
// recorded but a virtual card has no button: touch is always satisfied.
func (c *Card) authenticateMgmt(cmd command, dyn []tlv) response {
	if cmd.p1 != c.st.Mgmt.Alg {
		return status(swIncorrectP1P2)
	}
	block, err := c.mgmtCipher()
	if err != nil {
		return status(swNoPreciseDiagnostic)
	}
	n := block.BlockSize()
	pending := c.sess.challenge
	c.sess.challenge = nil

	witness, hasWitness := find(dyn, 0x80)
	challenge, hasChallenge := find(dyn, 0x81)
	resp, hasResp := find(dyn, 0x82)

	switch {
	case hasWitness && len(witness) == 0 && !hasChallenge:
		// Step 1 of mutual authentication: send an encrypted witness.
		w := make([]byte, n)
		rand.Read(w)
		enc := make([]byte, n)
		block.Encrypt(enc, w)
		c.sess.challenge = &mgmtChallenge{witness: w}
		return ok(tlvBytes(0x7c, tlvBytes(0x80, enc)))

	case hasChallenge && len(challenge) == 0 && !hasWitness:
		// Step 1 of one-way authentication: send a clear challenge.
		ch := make([]byte, n)
		rand.Read(ch)
		c.sess.challenge = &mgmtChallenge{challenge: ch}
		return ok(tlvBytes(0x7c, tlvBytes(0x81, ch)))

	case hasWitness && hasChallenge && len(challenge) == n:
		// Step 2 of mutual: check the decrypted witness, answer the
		// host's challenge.
		if pending == nil || pending.witness == nil ||
			subtle.ConstantTimeCompare(pending.witness, witness) != 1 {
			c.sess.mgmtOK = false
			return status(swSecurityStatus)
		}
		enc := make([]byte, n)
		block.Encrypt(enc, challenge)
		c.sess.mgmtOK = true
		return ok(tlvBytes(0x7c, tlvBytes(0x82, enc)))

	case hasResp && len(resp) == n && !hasWitness && !hasChallenge:
		// Step 2 of one-way: the host encrypted our challenge.
		if pending == nil || pending.challenge == nil {
			c.sess.mgmtOK = false
			return status(swSecurityStatus)
		}
		want := make([]byte, n)
		block.Encrypt(want, pending.challenge)
		if subtle.ConstantTimeCompare(want, resp) != 1 {
			c.sess.mgmtOK = false
			return status(swSecurityStatus)
		}
		c.sess.mgmtOK = true
		return ok(nil)
	}
	return status(swIncorrectData)
}

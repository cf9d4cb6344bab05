package virtual

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
)

// Key slots (SP 800-73-4 part 1 section 3.1 and Yubico's extensions).
const (
	slotAuthentication     = 0x9a
	slotCardManagement     = 0x9b
	slotSignature          = 0x9c
	slotKeyManagement      = 0x9d
	slotCardAuthentication = 0x9e
	slotAttestation        = 0xf9
)

// Asymmetric algorithms (SP 800-78-4 table 6-2; E0 and E1 are Yubico's,
// from firmware 5.7).
const (
	algP256    = 0x11
	algP384    = 0x14
	algEd25519 = 0xe0
	algX25519  = 0xe1
)

// PIN and touch policies (Yubico PIV extensions).
const (
	pinDefault  = 0x00
	pinNever    = 0x01
	pinOnce     = 0x02
	pinAlways   = 0x03
	touchNever  = 0x01
	touchAlways = 0x02
	touchCached = 0x03

	originGenerated = 0x01
	originImported  = 0x02
)

// isKeySlot reports whether slot holds an asymmetric key.
func isKeySlot(slot byte) bool {
	switch {
	case slot == slotAuthentication, slot == slotSignature,
		slot == slotKeyManagement, slot == slotCardAuthentication,
		slot == slotAttestation:
		return true
	}
	return slot >= 0x82 && slot <= 0x95
}

// defaultPINPolicy is the PIN policy a slot gets when the host asks for
// the default, as a YubiKey chooses it.
func defaultPINPolicy(slot byte) byte {
	switch slot {
	case slotSignature:
		return pinAlways
	case slotCardAuthentication, slotAttestation:
		return pinNever
	}
	return pinOnce
}

// supportedAlg reports whether the card's firmware offers alg.
func (c *Card) supportedAlg(alg byte) bool {
	switch alg {
	case algP256, algP384:
		return true
	case algEd25519, algX25519:
		return atLeast(c.st.Version, 5, 7, 0)
	}
	return false
}

// keyOps is a decoded private key.
type keyOps interface {
	// point is the public key as the 86 element of a 7F49 template holds
	// it: the uncompressed point, or the 32 bytes of an Edwards or
	// Montgomery key.
	point() []byte
}

type ecKey struct{ k *ecdsa.PrivateKey }
type edKey struct{ k ed25519.PrivateKey }
type xKey struct{ k *ecdh.PrivateKey }

func (e ecKey) point() []byte {
	b, _ := e.k.PublicKey.Bytes()
	return b
}
func (e edKey) point() []byte { return bytes.Clone(e.k.Public().(ed25519.PublicKey)) }
func (e xKey) point() []byte  { return e.k.PublicKey().Bytes() }

// curve returns the NIST curve of a P-256 or P-384 algorithm.
func curve(alg byte) elliptic.Curve {
	if alg == algP384 {
		return elliptic.P384()
	}
	return elliptic.P256()
}

// signer decodes the stored private key.
func (k *slotKey) signer() (keyOps, error) {
	switch k.Alg {
	case algP256, algP384:
		priv, err := ecdsa.ParseRawPrivateKey(curve(k.Alg), k.Private)
		if err != nil {
			return nil, err
		}
		return ecKey{priv}, nil
	case algEd25519:
		if len(k.Private) != ed25519.SeedSize {
			return nil, errors.New("bad ed25519 seed length")
		}
		return edKey{ed25519.NewKeyFromSeed(k.Private)}, nil
	case algX25519:
		priv, err := ecdh.X25519().NewPrivateKey(k.Private)
		if err != nil {
			return nil, err
		}
		return xKey{priv}, nil
	}
	return nil, fmt.Errorf("unsupported algorithm %02x", k.Alg)
}

// generatePrivate makes a new private key of alg in its stored form.
func generatePrivate(alg byte) ([]byte, error) {
	switch alg {
	case algP256, algP384:
		k, err := ecdsa.GenerateKey(curve(alg), rand.Reader)
		if err != nil {
			return nil, err
		}
		return k.Bytes()
	case algEd25519:
		seed := make([]byte, ed25519.SeedSize)
		_, err := rand.Read(seed)
		return seed, err
	case algX25519:
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return k.Bytes(), nil
	}
	return nil, fmt.Errorf("unsupported algorithm %02x", alg)
}

// policies reads the PIN (AA) and touch (AB) policies of GENERATE and
// IMPORT, resolving "default" as a YubiKey does.
func policies(slot byte, ts []tlv) (pin, touch byte, good bool) {
	pin, touch = defaultPINPolicy(slot), touchNever
	if v, found := find(ts, 0xaa); found {
		if len(v) != 1 || v[0] > pinAlways {
			return 0, 0, false
		}
		if v[0] != pinDefault {
			pin = v[0]
		}
	}
	if v, found := find(ts, 0xab); found {
		if len(v) != 1 || v[0] > touchCached {
			return 0, 0, false
		}
		if v[0] != 0 {
			touch = v[0]
		}
	}
	return pin, touch, true
}

// generate handles GENERATE ASYMMETRIC KEY PAIR (SP 800-73-4 part 2
// section 3.3.2) with Yubico's PIN and touch policy elements.
func (c *Card) generate(cmd command) response {
	if !c.sess.mgmtOK {
		return status(swSecurityStatus)
	}
	slot := cmd.p2
	if cmd.p1 != 0x00 || !isKeySlot(slot) || slot == slotAttestation {
		return status(swIncorrectP1P2)
	}
	outer, err := parseTLVs(cmd.data)
	if err != nil {
		return status(swIncorrectData)
	}
	tmpl, found := find(outer, 0xac)
	if !found {
		return status(swIncorrectData)
	}
	ts, err := parseTLVs(tmpl)
	if err != nil {
		return status(swIncorrectData)
	}
	alg, found := find(ts, 0x80)
	if !found || len(alg) != 1 || !c.supportedAlg(alg[0]) {
		return status(swIncorrectData)
	}
	pin, touch, good := policies(slot, ts)
	if !good {
		return status(swIncorrectData)
	}

	priv, err := generatePrivate(alg[0])
	if err != nil {
		return status(swNoPreciseDiagnostic)
	}
	k := &slotKey{Alg: alg[0], Private: priv, PINPolicy: pin,
		TouchPolicy: touch, Origin: originGenerated}
	ops, err := k.signer()
	if err != nil {
		return status(swNoPreciseDiagnostic)
	}
	c.st.Keys[slotName(slot)] = k
	c.dirty = true
	return ok(tlvBytes(0x7f49, tlvBytes(0x86, ops.point())))
}

// importKey handles the Yubico IMPORT ASYMMETRIC KEY command: P1 the
// algorithm, P2 the slot, data the private key (06 EC scalar, 07 Ed25519
// seed, 08 X25519 scalar) and optional policies.
func (c *Card) importKey(cmd command) response {
	if !c.sess.mgmtOK {
		return status(swSecurityStatus)
	}
	slot, alg := cmd.p2, cmd.p1
	if !isKeySlot(slot) {
		return status(swIncorrectP1P2)
	}
	if !c.supportedAlg(alg) {
		return status(swIncorrectP1P2)
	}
	ts, err := parseTLVs(cmd.data)
	if err != nil {
		return status(swIncorrectData)
	}

	tag := map[byte]uint32{algP256: 0x06, algP384: 0x06, algEd25519: 0x07, algX25519: 0x08}[alg]
	priv, found := find(ts, tag)
	if !found {
		return status(swIncorrectData)
	}
	pin, touch, good := policies(slot, ts)
	if !good {
		return status(swIncorrectData)
	}
	k := &slotKey{Alg: alg, Private: bytes.Clone(priv), PINPolicy: pin,
		TouchPolicy: touch, Origin: originImported}
	if _, err := k.signer(); err != nil {
		return status(swIncorrectData)
	}
	c.st.Keys[slotName(slot)] = k
	c.dirty = true
	return ok(nil)
}

// generalAuthenticate handles GENERAL AUTHENTICATE (SP 800-73-4 part 2
// section 3.2.4): management key authentication in slot 9b, signing
// (81 challenge) and key agreement (85 exponentiation) in key slots.
func (c *Card) generalAuthenticate(cmd command) response {
	outer, err := parseTLVs(cmd.data)
	if err != nil {
		return status(swIncorrectData)
	}
	tmpl, found := find(outer, 0x7c)
	if !found {
		return status(swIncorrectData)
	}
	dyn, err := parseTLVs(tmpl)
	if err != nil {
		return status(swIncorrectData)
	}
	if cmd.p2 == slotCardManagement {
		return c.authenticateMgmt(cmd, dyn)
	}
	c.sess.challenge = nil
	return c.privateKeyOp(cmd, dyn)
}

// privateKeyOp signs or agrees a key with the private key in a slot,
// after checking the slot's PIN policy.
func (c *Card) privateKeyOp(cmd command, dyn []tlv) response {
	slot := cmd.p2
	if !isKeySlot(slot) {
		return status(swIncorrectP1P2)
	}
	k, found := c.st.Keys[slotName(slot)]
	if !found || k.Alg != cmd.p1 {
		return status(swIncorrectP1P2)
	}
	if r, ready := find(dyn, 0x82); !ready || len(r) != 0 {
		return status(swIncorrectData)
	}
	ops, err := k.signer()
	if err != nil {
		return status(swNoPreciseDiagnostic)
	}

	switch k.PINPolicy {
	case pinOnce:
		if !c.sess.pinOK {
			return status(swSecurityStatus)
		}
	case pinAlways:
		if !c.sess.pinFresh {
			return status(swSecurityStatus)
		}
		c.sess.pinFresh = false
	}

	var out []byte
	if msg, found := find(dyn, 0x81); found {
		out, err = sign(ops, msg)
	} else if peer, found := find(dyn, 0x85); found {
		out, err = agree(ops, peer)
	} else {
		return status(swIncorrectData)
	}
	if err != nil {
		return status(swIncorrectData)
	}
	return ok(tlvBytes(0x7c, tlvBytes(0x82, out)))
}

// sign makes an ECDSA signature (DER) of a digest no longer than the
// curve order, or an Ed25519 signature of a message.
func sign(ops keyOps, msg []byte) ([]byte, error) {
	switch k := ops.(type) {
	case ecKey:
		if len(msg) == 0 || len(msg) > (k.k.Curve.Params().BitSize+7)/8 {
			return nil, errors.New("bad digest length")
		}
		return ecdsa.SignASN1(rand.Reader, k.k, msg)
	case edKey:
		return ed25519.Sign(k.k, msg), nil
	}
	return nil, errors.New("key cannot sign")
}

// agree does ECDH with a peer's public point and returns the shared
// secret (the X coordinate for NIST curves).
func agree(ops keyOps, peer []byte) ([]byte, error) {
	var priv *ecdh.PrivateKey
	switch k := ops.(type) {
	case ecKey:
		p, err := k.k.ECDH()
		if err != nil {
			return nil, err
		}
		priv = p
	case xKey:
		priv = k.k
	default:
		return nil, errors.New("key cannot agree")
	}
	pub, err := priv.Curve().NewPublicKey(peer)
	if err != nil {
		return nil, err
	}
	return priv.ECDH(pub)
}

// metadata handles the Yubico GET METADATA command for the PIN (80), PUK
// (81), management key (9b) and key slots.
func (c *Card) metadata(cmd command) response {
	if !atLeast(c.st.Version, 5, 3, 0) {
		return status(swINSNotSupported)
	}
	if cmd.p1 != 0x00 {
		return status(swIncorrectP1P2)
	}
	switch slot := cmd.p2; {
	case slot == refPIN || slot == refPUK:
		r := c.st.PIN
		if slot == refPUK {
			r = c.st.PUK
		}
		out := tlvBytes(0x01, []byte{0xff})
		out = appendTLV(out, 0x05, []byte{boolByte(r.IsDefault)})
		out = appendTLV(out, 0x06, []byte{byte(r.Retries), byte(r.Remaining)})
		return ok(out)

	case slot == slotCardManagement:
		m := c.st.Mgmt
		out := tlvBytes(0x01, []byte{m.Alg})
		out = appendTLV(out, 0x02, []byte{0x00, m.Touch})
		out = appendTLV(out, 0x05, []byte{boolByte(m.IsDefault)})
		return ok(out)

	case isKeySlot(slot):
		k, found := c.st.Keys[slotName(slot)]
		if !found {
			return status(swRefNotFound)
		}
		ops, err := k.signer()
		if err != nil {
			return status(swNoPreciseDiagnostic)
		}
		out := tlvBytes(0x01, []byte{k.Alg})
		out = appendTLV(out, 0x02, []byte{k.PINPolicy, k.TouchPolicy})
		out = appendTLV(out, 0x03, []byte{k.Origin})
		out = appendTLV(out, 0x04, tlvBytes(0x86, ops.point()))
		return ok(out)
	}
	return status(swIncorrectP1P2)
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

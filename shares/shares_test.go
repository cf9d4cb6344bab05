package shares

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"
)

func policy(k, n int) Policy {
	names := []string{"Ana", "Bo", "Chen", "Dmitri", "Eve", "Fatima", "Gu"}
	return Policy{Threshold: k, Count: n, Custodians: names[:n], Label: "test master key"}
}

func mustSplit(t testing.TB, secret []byte, p Policy) *Dealt {
	t.Helper()
	d, err := Split(secret, p)
	if err != nil {
		t.Fatalf("Split: %v", err)
	}
	return d
}

// reparse sends a share through its binary encoding, as a card would.
func reparse(t testing.TB, s *Share, source string) *Share {
	t.Helper()
	p, err := Parse(s.Marshal(), source)
	if err != nil {
		t.Fatalf("Parse(%s): %v", source, err)
	}
	return p
}

func recoverInline(t testing.TB, shares []*Share) *Secret {
	t.Helper()
	q, err := Combine(shares, nil)
	if err != nil {
		t.Fatalf("Combine: %v", err)
	}
	defer q.Wipe()
	sec, err := q.Open(nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return sec
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTripKinds(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	pemOf := func(typ string, der []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	}
	leadingZeros := append([]byte{0, 0, 0}, randBytes(t, 29)...)
	ecDER, _ := x509.MarshalECPrivateKey(p384)

	tests := []struct {
		name   string
		secret []byte
		kind   Kind
		want   Kind
		alg    string
		method CheckMethod
	}{
		{"aes-256", randBytes(t, 32), KindAES, KindAES, "AES-256", CheckKCV},
		{"aes-128", randBytes(t, 16), KindAES, KindAES, "AES-128", CheckKCV},
		{"aes-192", randBytes(t, 24), KindAES, KindAES, "AES-192", CheckKCV},
		{"raw leading zeros", leadingZeros, 0, KindRaw, "raw", CheckKeyed},
		{"raw one byte", []byte{0}, KindRaw, KindRaw, "raw", CheckKeyed},
		{"hmac", randBytes(t, 64), KindHMAC, KindHMAC, "HMAC", CheckHMAC},
		{"rsa pkcs1 pem", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), 0, KindPrivateKey, "RSA-2048", CheckSPKI},
		{"p256 pkcs8 pem", pemOf("PRIVATE KEY", pkcs8(p256)), 0, KindPrivateKey, "EC P-256", CheckSPKI},
		{"p384 sec1 der", ecDER, 0, KindPrivateKey, "EC P-384", CheckSPKI},
		{"ed25519 pkcs8 der", pkcs8(edKey), KindPrivateKey, KindPrivateKey, "Ed25519", CheckSPKI},
		{"inline limit", randBytes(t, InlineLimit), KindRaw, KindRaw, "raw", CheckKeyed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policy(3, 5)
			p.Kind = tt.kind
			d := mustSplit(t, tt.secret, p)
			if d.Detected.Kind != tt.want || d.Detected.Algorithm != tt.alg {
				t.Fatalf("detected %v %q, want %v %q", d.Detected.Kind, d.Detected.Algorithm, tt.want, tt.alg)
			}
			if d.Checks[0].Method != tt.method {
				t.Fatalf("check method %v, want %v", d.Checks[0].Method, tt.method)
			}
			got := recoverInline(t, []*Share{
				reparse(t, d.Shares[4], "e"), reparse(t, d.Shares[0], "a"), reparse(t, d.Shares[2], "c"),
			})
			if !bytes.Equal(got.Bytes, tt.secret) {
				t.Fatalf("rebuilt secret differs (%d bytes, want %d)", len(got.Bytes), len(tt.secret))
			}
			if !EqualChecks(got.Checks, d.Checks) {
				t.Fatalf("checks %v, split said %v", got.Checks, d.Checks)
			}
		})
	}
}

func TestEveryQuorumRebuilds(t *testing.T) {
	secret := randBytes(t, 32)
	d := mustSplit(t, secret, Policy{Threshold: 3, Count: 6, Kind: KindAES})
	count := 0
	forEachSubset(6, 3, func(idx []int) bool {
		got := recoverInline(t, pick(d.Shares, idx))
		if !bytes.Equal(got.Bytes, secret) {
			t.Fatalf("subset %v rebuilt a different secret", idx)
		}
		count++
		return true
	})
	if count != 20 {
		t.Fatalf("tried %d subsets, want C(6,3) = 20", count)
	}
}

// Known answers from outside this code: RFC 4493 section 4 (AES-CMAC) and
// the AES-128 zero-key, zero-block ciphertext of FIPS-197 style tables.
func TestCheckValueKnownAnswers(t *testing.T) {
	key, _ := hex.DecodeString("2b7e151628aed2a6abf7158809cf4f3c")
	vectors := []struct{ msg, mac string }{
		{"", "bb1d6929e95937287fa37d129b756746"},
		{"6bc1bee22e409f96e93d7e117393172a", "070a16b46b4d4144f79bdd9dd04a287c"},
		{"6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411",
			"dfa66747de9ae63030ca32611497c827"},
	}
	for _, v := range vectors {
		msg, _ := hex.DecodeString(v.msg)
		got, err := aesCMAC(key, msg)
		if err != nil || hex.EncodeToString(got) != v.mac {
			t.Errorf("CMAC(%s) = %x, want %s", v.msg, got, v.mac)
		}
	}

	checks, err := CheckValues(make([]byte, 16), KindAES, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.Method == CheckECB && hex.EncodeToString(c.Value) != "66e94b" {
			t.Errorf("ECB check of the zero AES-128 key = %x, want 66e94b", c.Value)
		}
	}
	// The KCV is the first three bytes of CMAC of one zero block.
	full, _ := aesCMAC(key, make([]byte, 16))
	checks, _ = CheckValues(key, KindAES, nil)
	if !bytes.Equal(checks[0].Value, full[:3]) || checks[0].Method != CheckKCV {
		t.Errorf("KCV %v, want first three bytes of %x", checks[0], full)
	}
}

func TestKeyedFingerprintHidesShortSecrets(t *testing.T) {
	// Two splits of the same one-byte secret must not share a check value:
	// otherwise the record alone would reveal it by a 256-way guess.
	a := mustSplit(t, []byte{7}, policy(2, 3))
	b := mustSplit(t, []byte{7}, policy(2, 3))
	if bytes.Equal(a.Checks[0].Value, b.Checks[0].Value) {
		t.Fatal("the keyed fingerprint of a raw secret does not depend on the split")
	}
}

func TestSplitRefusesBadPolicies(t *testing.T) {
	tests := []struct {
		name   string
		secret []byte
		p      Policy
		want   string
	}{
		{"k=1", []byte("x"), Policy{Threshold: 1, Count: 3}, "threshold 1 is too low"},
		{"k>n", []byte("x"), Policy{Threshold: 4, Count: 3}, "threshold 4 is more than the 3 shares"},
		{"n>255", []byte("x"), Policy{Threshold: 2, Count: 256}, "256 shares is too many"},
		{"empty", nil, Policy{Threshold: 2, Count: 3}, "the secret is empty"},
		{"names", []byte("x"), Policy{Threshold: 2, Count: 3, Custodians: []string{"a"}}, "1 custodian names for 3 shares"},
		{"aes length", randBytes(t, 20), Policy{Threshold: 2, Count: 3, Kind: KindAES}, "16, 24 or 32 bytes"},
		{"too big", make([]byte, InlineLimit+1), Policy{Threshold: 2, Count: 3}, "separate file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Split(tt.secret, tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Split = %v, want error containing %q", err, tt.want)
			}
			if d != nil {
				t.Fatal("Split returned shares with its error")
			}
		})
	}
}

func TestSplitMaxShares(t *testing.T) {
	d := mustSplit(t, []byte("secret"), Policy{Threshold: 2, Count: 255})
	seen := map[byte]bool{}
	for _, s := range d.Shares {
		if s.X() == 0 || seen[s.X()] {
			t.Fatalf("share %d has x %d", s.Index, s.X())
		}
		seen[s.X()] = true
	}
	got := recoverInline(t, []*Share{d.Shares[254], d.Shares[0]})
	if string(got.Bytes) != "secret" {
		t.Fatal("255-share split does not rebuild")
	}
}

// resign alters a share and signs it again with the dealer key, as only a
// compromised dealer could: it tests the checks behind the signature.
func resign(d *Dealt, s *Share, f func(*Share)) *Share {
	c := *s
	f(&c)
	c.sign(d.Dealer)
	return &c
}

func TestValidationNamesTheCulprit(t *testing.T) {
	secret := randBytes(t, 32)
	d := mustSplit(t, secret, policy(3, 5))
	other := mustSplit(t, secret, policy(3, 5))
	sh := func(i int, src string) *Share { return reparse(t, d.Shares[i], src) }

	t.Run("other set", func(t *testing.T) {
		q, err := Combine([]*Share{sh(0, "a.txt"), sh(1, "b.png"), reparse(t, other.Shares[2], "stray.png")}, nil)
		wantQuorumErr(t, q, err, 3, 2, "stray.png", "belongs to set "+other.SetID().Short()+", not "+d.SetID().Short())
	})
	t.Run("same paper twice", func(t *testing.T) {
		q, err := Combine([]*Share{sh(0, "a.txt"), sh(1, "b.png"), sh(1, "b-again.jpg")}, nil)
		wantQuorumErr(t, q, err, 3, 2, "b-again.jpg", "is the same share as b.png")
	})
	t.Run("fewer than k", func(t *testing.T) {
		q, err := Combine([]*Share{sh(0, "a.txt"), sh(3, "d.txt")}, nil)
		wantQuorumErr(t, q, err, 3, 2, "", "need 3 shares, have 2")
	})
	t.Run("conflicting index", func(t *testing.T) {
		fake := resign(d, d.Shares[1], func(s *Share) { s.Index = 1 })
		fake.Source = "odd.txt"
		q, err := Combine([]*Share{sh(0, "a.txt"), fake, sh(2, "c.txt"), sh(3, "d.txt")}, nil)
		if err == nil || !strings.Contains(err.Error(), "need 3 shares, have 2") || !strings.Contains(err.Error(), "odd.txt") {
			t.Fatalf("Combine = %v, %v; want both sides of index 1 refused", q, err)
		}
	})
	t.Run("mismatched header", func(t *testing.T) {
		odd := resign(d, d.Shares[2], func(s *Share) { s.Threshold, s.Count = 2, 3 })
		odd.Source = "c.txt"
		q, err := Combine([]*Share{sh(0, "a.txt"), sh(1, "b.txt"), odd, sh(3, "d.txt")}, nil)
		if err != nil {
			t.Fatalf("Combine: %v", err)
		}
		wantRejected(t, q.Rejected, "c.txt", "says 2-of-3, the others 3-of-5")
	})
	t.Run("mismatched label", func(t *testing.T) {
		odd := resign(d, d.Shares[2], func(s *Share) { s.Label = "other" })
		odd.Source = "c.txt"
		q, err := Combine([]*Share{sh(0, "a.txt"), sh(1, "b.txt"), odd}, nil)
		wantQuorumErr(t, q, err, 3, 2, "c.txt", `has label "other", the others "test master key"`)
	})
	t.Run("forged dealer", func(t *testing.T) {
		forged := *d.Shares[2]
		_, forger, _ := ed25519.GenerateKey(rand.Reader)
		forged.DealerKey = forger.Public().(ed25519.PublicKey)
		forged.sign(forger)
		forged.Source = "forged.txt"
		q, err := Combine([]*Share{sh(0, "a.txt"), sh(1, "b.txt"), reparse(t, &forged, "forged.txt")},
			&Expect{SetID: d.SetID(), DealerKey: d.DealerKey})
		wantQuorumErr(t, q, err, 3, 2, "forged.txt", "is signed by dealer key")
	})
	t.Run("ties between sets", func(t *testing.T) {
		_, err := Combine([]*Share{sh(0, "a"), sh(1, "b"), reparse(t, other.Shares[0], "x"), reparse(t, other.Shares[1], "y")}, nil)
		if err == nil || !strings.Contains(err.Error(), "different sets") {
			t.Fatalf("Combine = %v, want a refusal to guess between sets", err)
		}
	})
}

func wantQuorumErr(t *testing.T, q *Quorum, err error, need, have int, culprit, reason string) {
	t.Helper()
	var qe *QuorumError
	if !errors.As(err, &qe) {
		t.Fatalf("Combine = %v, %v; want a QuorumError", q, err)
	}
	if qe.Need != need || qe.Have != have {
		t.Fatalf("QuorumError need %d have %d, want %d and %d", qe.Need, qe.Have, need, have)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Fatalf("error %q does not say %q", err, reason)
	}
	if culprit != "" {
		wantRejected(t, qe.Rejected, culprit, reason)
	}
}

func wantRejected(t *testing.T, rej []Rejection, culprit, reason string) {
	t.Helper()
	for _, r := range rej {
		if strings.Contains(r.Share, culprit) && strings.Contains(r.Reason, reason) {
			return
		}
	}
	t.Fatalf("no rejection of %s saying %q in %v", culprit, reason, rej)
}

func TestParseRefusesDamagedShares(t *testing.T) {
	d := mustSplit(t, randBytes(t, 32), policy(2, 3))
	good := d.Shares[0].Marshal()
	zero := resign(d, d.Shares[0], func(s *Share) { s.Index = 0 }).Marshal()
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"truncated", good[:len(good)-10], "truncated"},
		{"one byte", good[:1], "not a custos share"},
		{"extra", append(bytes.Clone(good), 0), "unexpected bytes"},
		{"altered label", bytes.Replace(bytes.Clone(good), []byte("test master"), []byte("best master"), 1), "altered or forged"},
		{"altered key share", flip(good, len(good)-70), "altered or forged"},
		{"index 0", zero, "index 0 is not a valid share index"},
		{"version", flip(good, 4), "format version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.b, "card 1234")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "card 1234") {
				t.Fatalf("Parse = %v, %v; want an error naming card 1234 and saying %q", s, err, tt.want)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

func TestMoreThanKWithOneBadShare(t *testing.T) {
	secret := randBytes(t, 32)
	d := mustSplit(t, secret, policy(3, 5))
	// A share whose key share is wrong yet signed: only the agreement check
	// can catch it.
	bad := resign(d, d.Shares[4], func(s *Share) {
		s.KeyShare = bytes.Clone(s.KeyShare)
		s.KeyShare[0] ^= 0x5a
	})
	bad.Source = "eve.png"
	shares := []*Share{d.Shares[0], d.Shares[1], bad, d.Shares[2], d.Shares[3]}
	q, err := Combine(shares, nil)
	if err != nil {
		t.Fatalf("Combine: %v", err)
	}
	wantRejected(t, q.Rejected, "eve.png", "disagrees")
	if len(q.Shares) != 4 {
		t.Fatalf("used %d shares, want the 4 good ones", len(q.Shares))
	}
	sec, err := q.Open(nil)
	if err != nil || !bytes.Equal(sec.Bytes, secret) {
		t.Fatalf("Open = %v; want the secret", err)
	}

	// With only k shares, one of them bad, nothing may be rebuilt.
	_, err = Combine([]*Share{d.Shares[0], d.Shares[1], bad}, nil)
	if err == nil || !strings.Contains(err.Error(), "disagree") {
		t.Fatalf("Combine with a bad share among k = %v, want a refusal", err)
	}
}

func TestExpectedCheckMismatch(t *testing.T) {
	d := mustSplit(t, randBytes(t, 32), Policy{Threshold: 2, Count: 2, Kind: KindAES})
	q, err := Combine(d.Shares, nil)
	if err != nil {
		t.Fatal(err)
	}
	wrong := []CheckValue{{CheckKCV, []byte{1, 2, 3}}}
	_, err = q.Open(&Expect{SetID: d.SetID(), DealerKey: d.DealerKey, Checks: wrong})
	var ce *CheckMismatchError
	if !errors.As(err, &ce) {
		t.Fatalf("Open = %v, want a CheckMismatchError", err)
	}
}

func TestCreatedAndFields(t *testing.T) {
	when := time.Date(2026, 12, 4, 10, 30, 15, 999, time.UTC)
	p := policy(2, 3)
	p.Created = when
	d := mustSplit(t, []byte("x"), p)
	s := reparse(t, d.Shares[1], "b")
	if !s.Created.Equal(when.Truncate(time.Second)) || s.Custodian != "Bo" || s.Index != 2 ||
		s.Threshold != 2 || s.Count != 3 || s.Label != "test master key" {
		t.Fatalf("fields did not survive: %+v", s)
	}
	if s.Name() != "share 2 (Bo, b)" {
		t.Fatalf("Name = %q", s.Name())
	}
}

func TestAlteredRecordIsCaught(t *testing.T) {
	d := mustSplit(t, randBytes(t, 32), Policy{Threshold: 2, Count: 3, Kind: KindAES, Label: "root"})
	base := Expect{SetID: d.SetID(), DealerKey: d.DealerKey, Checks: d.Checks, Threshold: 2, Count: 3, Kind: KindAES, Label: "root"}
	if _, err := Combine(d.Shares[:2], &base); err != nil {
		t.Fatalf("the true record: %v", err)
	}
	for name, alter := range map[string]func(*Expect){
		"threshold": func(e *Expect) { e.Threshold = 1 },
		"count":     func(e *Expect) { e.Count = 9 },
		"kind":      func(e *Expect) { e.Kind = KindRaw },
		"label":     func(e *Expect) { e.Label = "other" },
		"check value": func(e *Expect) {
			e.Checks = []CheckValue{{d.Checks[0].Method, flip(d.Checks[0].Value, 0)}}
		},
	} {
		e := base
		alter(&e)
		_, err := Combine(d.Shares[:2], &e)
		var rm *RecordMismatchError
		if !errors.As(err, &rm) || rm.Field != name {
			t.Errorf("record with altered %s: %v", name, err)
		}
	}
}

package hsm

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// uriCases reads testdata/uris.txt: "ok URI" and "bad URI" lines.
func uriCases(t testing.TB) (ok, bad []string) {
	f, err := os.Open("testdata/uris.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		verdict, uri, found := strings.Cut(sc.Text(), " ")
		switch {
		case !found || strings.HasPrefix(verdict, "#"):
		case verdict == "ok":
			ok = append(ok, uri)
		case verdict == "bad":
			bad = append(bad, uri)
		default:
			t.Fatalf("uris.txt: bad line %q", sc.Text())
		}
	}
	if len(ok) < 10 || len(bad) < 10 {
		t.Fatalf("uris.txt: only %d ok and %d bad cases", len(ok), len(bad))
	}
	return ok, bad
}

func TestParseURICases(t *testing.T) {
	ok, bad := uriCases(t)
	for _, s := range ok {
		u, err := ParseURI(s)
		if err != nil {
			t.Errorf("ParseURI(%q): %v", s, err)
			continue
		}
		roundTrip(t, s, u)
	}
	for _, s := range bad {
		if u, err := ParseURI(s); err == nil {
			t.Errorf("ParseURI(%q) = %+v, want an error", s, u)
		}
	}
}

// roundTrip checks that String gives a URI that parses to the same value
// and formats to itself.
func roundTrip(t *testing.T, s string, u *URI) {
	t.Helper()
	out := u.String()
	u2, err := ParseURI(out)
	if err != nil {
		t.Errorf("%q formats as %q, which does not parse: %v", s, out, err)
		return
	}
	if !reflect.DeepEqual(u, u2) {
		t.Errorf("%q -> %q: %+v != %+v", s, out, u, u2)
	}
	if out2 := u2.String(); out2 != out {
		t.Errorf("String not stable: %q then %q", out, out2)
	}
}

func TestParseURIFields(t *testing.T) {
	u, err := ParseURI("pkcs11:token=My%20token%25%20created%20by%20Joe;" +
		"library-version=3;id=%01%02%03%Ba%dd%Ef%08;object=my-certificate" +
		"?module-path=/usr/lib/x.so&pin-source=file:/etc/pin")
	if err != nil {
		t.Fatal(err)
	}
	want := &URI{Token: "My token% created by Joe", LibraryVersion: "3",
		ID:     []byte{1, 2, 3, 0xba, 0xdd, 0xef, 8},
		Object: "my-certificate", ModulePath: "/usr/lib/x.so",
		PINSource: "file:/etc/pin"}
	if !reflect.DeepEqual(u, want) {
		t.Errorf("got %+v\nwant %+v", u, want)
	}

	u, err = ParseURI("pkcs11:token=A%20name%20with%20a%20substring%20%25%3B")
	if err != nil || u.Token != "A name with a substring %;" {
		t.Errorf("token with %%3B: %+v, %v", u, err)
	}
}

func TestURIStringEncodes(t *testing.T) {
	u := &URI{Token: "a;b?c/d e", ID: []byte("AB"), ModulePath: "/x y/m.so",
		PINSource: "file:/p&q"}
	got := u.String()
	want := "pkcs11:token=a%3Bb%3Fc%2Fd%20e;id=%41%42" +
		"?module-path=/x%20y/m.so&pin-source=file:/p%26q"
	if got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	roundTrip(t, got, u)
}

func TestPINValueRefused(t *testing.T) {
	_, err := ParseURI("pkcs11:token=a?pin-value=s3cret-pin")
	if !errors.Is(err, ErrPINInURI) {
		t.Fatalf("err = %v, want ErrPINInURI", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error repeats the PIN: %v", err)
	}
	if !strings.Contains(err.Error(), "pin-source") {
		t.Errorf("error gives no hint: %v", err)
	}
}

func TestPINSourcePath(t *testing.T) {
	for src, want := range map[string]string{
		"file:/etc/pin":      "/etc/pin",
		"file:///etc/pin":    "/etc/pin",
		"/etc/pin":           "/etc/pin",
		"file:relative/pin":  "relative/pin",
		"|/bin/echo 1234":    "",
		"file://host/etc/p":  "",
		"https://example/p":  "",
		"builtin-dialog:x:y": "",
	} {
		got, err := pinSourcePath(src)
		if want == "" {
			if err == nil {
				t.Errorf("pinSourcePath(%q) = %q, want an error", src, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("pinSourcePath(%q) = %q, %v; want %q", src, got, err,
				want)
		}
	}
}

func TestReadPINSource(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		"123456\n": "123456", "123456\r\n": "123456", "12 34": "12 34",
	} {
		path := dir + "/pin"
		os.Remove(path)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := readPINSource("file:" + path)
		if err != nil || !bytes.Equal(got, []byte(want)) {
			t.Errorf("pin file %q read as %q, %v", content, got, err)
		}
	}
	os.WriteFile(dir+"/empty", []byte("\n"), 0o600)
	if _, err := readPINSource(dir + "/empty"); err == nil {
		t.Error("empty pin file accepted")
	}
}

// FuzzParseURI checks that whatever parses formats back to a URI that
// parses to the same value, and that nothing panics.
func FuzzParseURI(f *testing.F) {
	ok, bad := uriCases(f)
	for _, s := range append(ok, bad...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			if errors.Is(err, ErrPINInURI) && strings.Contains(s, "?") &&
				strings.Contains(err.Error(), s[strings.Index(s, "?"):]) {
				t.Errorf("error echoes the query: %v", err)
			}
			return
		}
		roundTrip(t, s, u)
	})
}

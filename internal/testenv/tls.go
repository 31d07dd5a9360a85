package testenv

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"
)

// tlsMaterial is the PEM-encoded certificate material a TLS slapd uses
// (see SlapdOptions.TLS).
type tlsMaterial struct {
	// caPEM is the self-signed CA that issued the server certificate.
	caPEM []byte
	// certPEM and keyPEM are the server certificate, for IP 127.0.0.1 and
	// DNS localhost, and its PKCS #8 private key.
	certPEM, keyPEM []byte
	// wrongCAPEM is a second CA, unrelated to the server certificate.
	wrongCAPEM []byte
}

var (
	tlsOnce sync.Once
	tlsMat  *tlsMaterial
	tlsErr  error
)

// testTLS returns the certificate material, generating it on first use.
// RSA 2048 keys cost about 100 ms each (several times that under -race),
// so the material is made once per test binary and shared by every TLS
// slapd it starts; it is never written anywhere but the slapds' temporary
// directories and expires after a week.
func testTLS() (*tlsMaterial, error) {
	tlsOnce.Do(func() { tlsMat, tlsErr = generateTLS() })
	return tlsMat, tlsErr
}

// generateTLS makes a CA, a server certificate it signs and an unrelated
// second CA. RSA rather than ECDSA keys: the most conservative choice for
// Debian's GnuTLS-based slapd and ldap-utils, and for any client.
func generateTLS() (*tlsMaterial, error) {
	now := time.Now()
	notBefore, notAfter := now.Add(-time.Hour), now.Add(7*24*time.Hour)
	tag := rand.Text()[:8]

	ca, caKey, caPEM, err := newCA("presencegw testenv CA "+tag, notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	_, _, wrongPEM, err := newCA("presencegw testenv unrelated CA "+tag, notBefore, notAfter)
	if err != nil {
		return nil, err
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("server key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"presencegw testenv"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("server key: %w", err)
	}
	return &tlsMaterial{
		caPEM:      caPEM,
		certPEM:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		wrongCAPEM: wrongPEM,
	}, nil
}

// newCA makes a self-signed CA certificate and returns it parsed, with its
// key, and PEM-encoded.
func newCA(cn string, notBefore, notAfter time.Time) (*x509.Certificate, *rsa.PrivateKey, []byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"presencegw testenv"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("CA certificate: %w", err)
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// serialNumber returns a random positive 128-bit certificate serial.
func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

//! TLS for both ends: the server's certificate (generated on first start or
//! supplied), and the client-side verifiers that pin it by SHA-256 or trust a
//! CA file. Everything runs on rustls with the ring provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::digest;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no certificate found in {0}")]
    NoCertificate(PathBuf),
    #[error("no private key found in {0}")]
    NoKey(PathBuf),
    #[error("certificate generation: {0}")]
    Generate(String),
    #[error("tls configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("bad fingerprint {0:?}: want 64 hex digits")]
    BadFingerprint(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A loaded server identity.
pub struct ServerIdentity {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl ServerIdentity {
    /// SHA-256 of the leaf certificate's DER, lowercase hex: what register
    /// codes carry so agents can pin the server.
    pub fn fingerprint(&self) -> String {
        self.certs
            .first()
            .map(|c| fingerprint_of(c.as_ref()))
            .unwrap_or_default()
    }

    pub fn server_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.certs.clone(), self.key.clone_key())?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

pub fn fingerprint_of(der: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, der))
}

/// Loads DIR/tls/{cert,key}.pem, generating a self-signed pair on first use.
pub fn load_or_generate(data_dir: &Path) -> Result<ServerIdentity, TlsError> {
    let dir = data_dir.join("tls");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if !cert.exists() || !key.exists() {
        generate(&dir, &cert, &key)?;
    }
    load(&cert, &key)
}

fn generate(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if let Some(h) = hostname() {
        if !names.contains(&h) {
            names.push(h);
        }
    }
    let mut params =
        rcgen::CertificateParams::new(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "drover server");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    crate::fsutil::write_private(key_path, key.serialize_pem().as_bytes())
        .map_err(io_err(key_path))?;
    std::fs::write(cert_path, cert.pem()).map_err(io_err(cert_path))?;
    Ok(())
}

pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Loads a PEM certificate chain and private key.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<ServerIdentity, TlsError> {
    let certs = read_certs(cert_path)?;
    let key_pem = std::fs::read(key_path).map_err(io_err(key_path))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(io_err(key_path))?
        .ok_or_else(|| TlsError::NoKey(key_path.to_path_buf()))?;
    Ok(ServerIdentity { certs, key })
}

pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(io_err(path))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_err(path))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

/// How a client decides to trust the server.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The leaf certificate's SHA-256 must match (register-code pinning).
    Pinned([u8; 32]),
    /// Standard WebPKI validation against the certificates in a PEM file.
    CaFile(PathBuf),
}

impl Trust {
    pub fn pinned_hex(hex_fp: &str) -> Result<Trust, TlsError> {
        let bytes = hex::decode(hex_fp).map_err(|_| TlsError::BadFingerprint(hex_fp.into()))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| TlsError::BadFingerprint(hex_fp.into()))?;
        Ok(Trust::Pinned(arr))
    }

    pub fn client_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let cfg = match self {
            Trust::Pinned(fp) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                    fingerprint: *fp,
                    provider: provider(),
                }))
                .with_no_client_auth(),
            Trust::CaFile(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in read_certs(path)? {
                    roots.add(c)?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        };
        Ok(cfg)
    }
}

/// Accepts exactly one certificate, by the SHA-256 of its DER, and still
/// checks that the peer holds its key (handshake signatures are verified).
#[derive(Debug)]
struct PinnedVerifier {
    fingerprint: [u8; 32],
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = digest::digest(&digest::SHA256, end_entity.as_ref());
        if crate::crypto::ct_eq(got.as_ref(), &self.fingerprint) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

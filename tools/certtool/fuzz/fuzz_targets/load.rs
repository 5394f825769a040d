//! Fuzzes certtool's loading path: certificate and key parsing, then every check that
//! runs on a parsed certificate, with the input as its own CA. Nothing may panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rampart_pki::checks::{self, Findings};
use rampart_pki::{load, store_audit, verify};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.pem");
    let _ = load::parse_private_key(path, data);
    let _ = store_audit::private_key_markers(data);
    let Ok(certs) = load::parse_certificates(path, data) else {
        return;
    };
    let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    for der in &certs {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            continue;
        };
        let mut out = Findings::default();
        checks::validity(&cert, now, time::Duration::days(30), &mut out);
        checks::san(&cert, Some(&[rampart_pki::SanName::parse("a.example")]), &mut out);
        checks::eku(&cert, Some(rampart_pki::Eku::ServerAuth), &mut out);
        checks::key_strength(&cert, &mut out);
        checks::signature_algorithm(&cert, &mut out);
        checks::serial(&cert, &mut out);
        checks::ca_constraints(&cert, Some(&cert), &mut out);
        checks::leaf_constraints(&cert, &mut out);
        checks::name_constraints(&cert, &cert, &mut out);
        checks::ca_outlives_leaf(&cert, &cert, &mut out);
        verify::chain_to(der, der, &[], now, &mut out);
    }
});

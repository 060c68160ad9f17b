//! A lenient DER walker: enough of X.509 to recover the serial, the subject and
//! issuer common names and the SAN entries from certificates that a strict
//! parser rejects. It decodes strings lossily and never panics.

use crate::error::{Error, Result};

/// One TLV: its tag byte (class, constructed bit and low tag) and its value.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
}

/// Reads one TLV from the front of `input`, returning it and the rest.
pub fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8])> {
    let bad = |d: &str| Error::invalid("DER", d.to_owned());
    let (&tag, rest) = input.split_first().ok_or_else(|| bad("empty"))?;
    if tag & 0x1f == 0x1f {
        return Err(bad("high tag numbers are not used in certificates"));
    }
    let (&first, mut rest) = rest.split_first().ok_or_else(|| bad("missing length"))?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad("unsupported length"));
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err(Error::Truncated {
            what: "DER value",
            need: len,
            have: rest.len(),
        });
    }
    let (value, rest) = rest.split_at(len);
    Ok((Tlv { tag, value }, rest))
}

/// The TLVs inside a constructed value.
pub fn children(mut value: &[u8]) -> Result<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !value.is_empty() {
        let (tlv, rest) = read_tlv(value)?;
        out.push(tlv);
        value = rest;
    }
    Ok(out)
}

/// Decodes a directory string of any ASN.1 string type, replacing what does
/// not decode.
pub fn lossy_string(tag: u8, value: &[u8]) -> String {
    match tag {
        // BMPString: UTF-16BE.
        0x1e => {
            let units: Vec<u16> = value
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        // UniversalString: UTF-32BE.
        0x1c => value
            .chunks(4)
            .map(|c| {
                let mut b = [0u8; 4];
                b[..c.len()].copy_from_slice(c);
                char::from_u32(u32::from_be_bytes(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
            })
            .collect(),
        // T61String: treat as Latin-1 when it is not UTF-8.
        0x14 => match std::str::from_utf8(value) {
            Ok(s) => s.to_owned(),
            Err(_) => value.iter().map(|&b| char::from(b)).collect(),
        },
        _ => String::from_utf8_lossy(value).into_owned(),
    }
}

const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];

/// What the lenient walk recovers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LenientCert {
    pub serial: Vec<u8>,
    pub subject_cn: Vec<String>,
    pub issuer_cn: Vec<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
}

/// Walks a Certificate or a bare TBSCertificate.
pub fn lenient_parse(der: &[u8]) -> Result<LenientCert> {
    let (outer, _) = read_tlv(der)?;
    let items = children(outer.value)?;
    // A Certificate is SEQUENCE { tbs SEQUENCE, algorithm SEQUENCE, BIT STRING };
    // a TBSCertificate starts with [0] version or the serial INTEGER.
    let tbs_items = match items.first() {
        Some(first) if first.tag == 0x30 => children(first.value)?,
        _ => items,
    };
    let mut it = tbs_items.into_iter().peekable();
    if it.peek().is_some_and(|t| t.tag == 0xa0) {
        it.next();
    }
    let serial = it
        .next()
        .filter(|t| t.tag == 0x02)
        .ok_or_else(|| Error::invalid("TBSCertificate", "no serial number"))?;
    let _signature = it.next();
    let issuer = it.next();
    let _validity = it.next();
    let subject = it.next();
    let mut out = LenientCert {
        serial: serial.value.to_vec(),
        ..LenientCert::default()
    };
    if let Some(issuer) = issuer {
        out.issuer_cn = name_cns(issuer.value);
    }
    if let Some(subject) = subject {
        out.subject_cn = name_cns(subject.value);
    }
    for item in it {
        if item.tag == 0xa3 {
            collect_san(item.value, &mut out);
        }
    }
    Ok(out)
}

fn name_cns(name: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rdns) = children(name) else {
        return out;
    };
    for rdn in rdns {
        let Ok(atvs) = children(rdn.value) else {
            continue;
        };
        for atv in atvs {
            let Ok(parts) = children(atv.value) else {
                continue;
            };
            if let [oid, value, ..] = parts.as_slice()
                && oid.tag == 0x06
                && oid.value == OID_CN
            {
                out.push(lossy_string(value.tag, value.value));
            }
        }
    }
    out
}

fn collect_san(explicit: &[u8], out: &mut LenientCert) {
    let Ok((exts, _)) = read_tlv(explicit) else {
        return;
    };
    let Ok(exts) = children(exts.value) else {
        return;
    };
    for ext in exts {
        let Ok(parts) = children(ext.value) else {
            continue;
        };
        let Some(oid) = parts.first() else { continue };
        if oid.tag != 0x06 || oid.value != OID_SAN {
            continue;
        }
        let Some(octets) = parts.iter().rev().find(|p| p.tag == 0x04) else {
            continue;
        };
        let Ok((names, _)) = read_tlv(octets.value) else {
            continue;
        };
        let Ok(names) = children(names.value) else {
            continue;
        };
        for gn in names {
            match gn.tag {
                0x82 => out
                    .dns_names
                    .push(String::from_utf8_lossy(gn.value).into_owned()),
                0x87 => {
                    if let Some(ip) = ip_string(gn.value) {
                        out.ip_addresses.push(ip);
                    }
                }
                _ => {}
            }
        }
    }
}

/// Formats a SAN iPAddress (4 or 16 bytes).
pub fn ip_string(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => {
            let b: [u8; 4] = bytes.try_into().ok()?;
            Some(std::net::Ipv4Addr::from(b).to_string())
        }
        16 => {
            let b: [u8; 16] = bytes.try_into().ok()?;
            Some(std::net::Ipv6Addr::from(b).to_string())
        }
        _ => None,
    }
}

/// Lowercase hex of an INTEGER's content bytes without leading zeros ("0" for zero).
pub fn serial_hex(bytes: &[u8]) -> String {
    let s = hex::encode(bytes);
    let trimmed = s.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

//! A reader and writer for the TLS presentation language used by RFC 6962 and
//! static-ct-api: big-endian integers and length-prefixed `opaque` vectors.

use crate::error::{Error, Result};

/// Reads fields from a byte slice, borrowing the bytes it returns.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes exactly `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(Error::Truncated {
                what,
                need: n,
                have: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Reads an unsigned big-endian integer of `width` bytes (1..=8).
    pub fn uint(&mut self, width: usize, what: &'static str) -> Result<u64> {
        let bytes = self.take(width, what)?;
        Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16> {
        // The value fits: two bytes were read.
        Ok(self.uint(2, what)? as u16)
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64> {
        self.uint(8, what)
    }

    /// Reads `opaque<..>` with a length prefix of `len_width` bytes.
    pub fn opaque(&mut self, len_width: usize, what: &'static str) -> Result<&'a [u8]> {
        let len = self.uint(len_width, what)?;
        let len = usize::try_from(len).map_err(|_| Error::invalid(what, "length overflows"))?;
        self.take(len, what)
    }

    /// Fails when bytes are left.
    pub fn finish(&self, what: &'static str) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::Trailing {
                what,
                count: self.buf.len(),
            })
        }
    }
}

/// Appends an unsigned big-endian integer of `width` bytes.
pub fn put_uint(out: &mut Vec<u8>, value: u64, width: usize) {
    out.extend_from_slice(&value.to_be_bytes()[8 - width..]);
}

/// Appends `opaque<..>` with a length prefix of `len_width` bytes.
///
/// # Panics
/// When `data` is longer than the prefix can express: callers build these
/// from their own structures, never from input.
pub fn put_opaque(out: &mut Vec<u8>, data: &[u8], len_width: usize) {
    assert!(
        len_width >= 8 || (data.len() as u64) < (1u64 << (8 * len_width)),
        "opaque field too long for a {len_width}-byte length"
    );
    put_uint(out, data.len() as u64, len_width);
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut out = Vec::new();
        put_uint(&mut out, 0x0102_0304, 3);
        put_opaque(&mut out, b"abc", 2);
        let mut r = Reader::new(&out);
        assert_eq!(r.uint(3, "x").unwrap(), 0x02_0304);
        assert_eq!(r.opaque(2, "y").unwrap(), b"abc");
        r.finish("z").unwrap();
    }

    #[test]
    fn truncated() {
        let mut r = Reader::new(&[0, 5, 1]);
        assert!(matches!(r.opaque(2, "v"), Err(Error::Truncated { .. })));
    }
}

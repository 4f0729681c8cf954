//! GGUF header fields checked before a file reaches candle (issue 14, class 5): candle's
//! reader divides by `general.alignment` (0 panics) and its tensor loader multiplies
//! dimensions without overflow checks. [`check_metadata`] walks the metadata with its own
//! bounded reader before candle sees the file; [`check_tensors`] checks the tensor directory
//! candle read (element counts, block sizes, data within the file) before any tensor is
//! loaded. Every error names the file's field.

use anyhow::{bail, Result};
use candle_core::quantized::gguf_file;
use std::io::{Read, Seek, SeekFrom};

/// Deepest nesting of arrays accepted in metadata.
const MAX_DEPTH: usize = 8;
/// Largest `general.alignment` accepted (bytes).
const MAX_ALIGNMENT: u64 = 1 << 20;

struct Walker<R> {
    r: R,
    size: u64,
    v1: bool,
}

impl<R: Read + Seek> Walker<R> {
    fn u32(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        self.r.read_exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> Result<u64> {
        let mut b = [0u8; 8];
        self.r.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn len(&mut self) -> Result<u64> {
        if self.v1 {
            Ok(self.u32()?.into())
        } else {
            self.u64()
        }
    }
    fn left(&mut self) -> Result<u64> {
        Ok(self.size.saturating_sub(self.r.stream_position()?))
    }
    /// Skips `n` bytes that must lie inside the file.
    fn skip(&mut self, n: u64, what: &str) -> Result<()> {
        if n > self.left()? {
            bail!("{what} is longer than the rest of the file");
        }
        self.r.seek(SeekFrom::Current(n as i64))?;
        Ok(())
    }
    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.len()?;
        if n > self.left()?.min(1 << 20) {
            bail!("{what}: a string of {n} bytes is longer than the file allows");
        }
        let mut b = vec![0u8; n as usize];
        self.r.read_exact(&mut b)?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }
    /// Bytes of one value of a fixed-size type, or None for strings and arrays.
    fn fixed(t: u32) -> Result<Option<u64>> {
        Ok(match t {
            0 | 1 | 7 => Some(1),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            8 | 9 => None,
            other => bail!("unknown metadata value type {other}"),
        })
    }
    /// Reads an integer value (for `general.alignment`), skipping anything else.
    fn value(&mut self, t: u32, depth: usize, key: &str) -> Result<Option<i128>> {
        if depth > MAX_DEPTH {
            bail!("metadata '{key}': arrays nested deeper than {MAX_DEPTH}");
        }
        if let Some(n) = Self::fixed(t)? {
            let mut b = [0u8; 8];
            self.r.read_exact(&mut b[..n as usize])?;
            let v = match t {
                0 => i128::from(b[0]),
                1 => i128::from(b[0] as i8),
                2 => i128::from(u16::from_le_bytes([b[0], b[1]])),
                3 => i128::from(i16::from_le_bytes([b[0], b[1]])),
                4 => i128::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                5 => i128::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                10 => i128::from(u64::from_le_bytes(b)),
                11 => i128::from(i64::from_le_bytes(b)),
                _ => return Ok(None),
            };
            return Ok(Some(v));
        }
        if t == 8 {
            let n = self.len()?;
            self.skip(n, &format!("metadata '{key}'"))?;
            return Ok(None);
        }
        let elem = self.u32()?;
        let n = self.len()?;
        match Self::fixed(elem)? {
            Some(size) => {
                let bytes = n.checked_mul(size).ok_or_else(|| {
                    anyhow::anyhow!("metadata '{key}': array length {n} overflows")
                })?;
                self.skip(bytes, &format!("metadata '{key}'"))?;
            }
            None => {
                // strings and arrays take at least one length prefix each
                if n > self.left()? {
                    bail!("metadata '{key}': array of {n} entries is longer than the file");
                }
                for _ in 0..n {
                    self.value(elem, depth + 1, key)?;
                }
            }
        }
        Ok(None)
    }
}

/// Walks the header and metadata of a GGUF file: magic, version, counts that fit the file,
/// every value inside the file, and `general.alignment` (if present) an integer between 1
/// and 1 MiB that is a power of two.
pub fn check_metadata<R: Read + Seek>(mut r: R) -> Result<()> {
    let size = r.seek(SeekFrom::End(0))?;
    r.seek(SeekFrom::Start(0))?;
    let mut w = Walker { r, size, v1: false };
    let magic = w.u32()?;
    if magic != 0x4655_4747 {
        bail!("not a GGUF file (magic 0x{magic:08x})");
    }
    let version = w.u32()?;
    if !(1..=3).contains(&version) {
        bail!("GGUF version {version} is not supported (1, 2 or 3)");
    }
    w.v1 = version == 1;
    let _tensors = w.len()?;
    let kvs = w.len()?;
    if kvs > w.left()? {
        bail!("header declares {kvs} metadata entries, more than the file can hold");
    }
    for _ in 0..kvs {
        let key = w.string("metadata key")?;
        let t = w.u32()?;
        let v = w.value(t, 0, &key)?;
        if key == "general.alignment" {
            match v {
                Some(a) if a > 0 && a as u64 <= MAX_ALIGNMENT && (a as u64).is_power_of_two() => {}
                Some(a) => bail!(
                    "general.alignment = {a}: expected a power of two between 1 and {MAX_ALIGNMENT}"
                ),
                None => bail!("general.alignment is not an integer"),
            }
        }
    }
    Ok(())
}

/// Checks the tensor directory candle read against the file: element counts that do not
/// overflow, whole quantization blocks, and every tensor's bytes inside the file.
pub fn check_tensors(ct: &gguf_file::Content, file_size: u64) -> Result<()> {
    for (name, t) in &ct.tensor_infos {
        let mut elems: u64 = 1;
        for &d in t.shape.dims() {
            elems = elems.checked_mul(d as u64).ok_or_else(|| {
                anyhow::anyhow!("tensor '{name}': dimensions {:?} overflow", t.shape.dims())
            })?;
        }
        let block = t.ggml_dtype.block_size() as u64;
        if block == 0 || !elems.is_multiple_of(block) {
            bail!(
                "tensor '{name}': {elems} elements are not whole blocks of {block} ({:?})",
                t.ggml_dtype
            );
        }
        let bytes = (elems / block)
            .checked_mul(t.ggml_dtype.type_size() as u64)
            .ok_or_else(|| anyhow::anyhow!("tensor '{name}': size overflows"))?;
        let end = ct
            .tensor_data_offset
            .checked_add(t.offset)
            .and_then(|s| s.checked_add(bytes));
        match end {
            Some(e) if e <= file_size => {}
            _ => bail!(
                "tensor '{name}': {bytes} bytes at offset {} lie past the end of the file ({file_size} bytes)",
                t.offset
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A v3 header with the given metadata entries (key, type, value bytes) and no tensors.
    fn header(kvs: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(0x4655_4747u32.to_le_bytes());
        b.extend(3u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend((kvs.len() as u64).to_le_bytes());
        for (k, t, v) in kvs {
            b.extend((k.len() as u64).to_le_bytes());
            b.extend(k.as_bytes());
            b.extend(t.to_le_bytes());
            b.extend(v);
        }
        b
    }

    #[test]
    fn alignment_zero_is_refused_before_candle() {
        let bad = header(&[("general.alignment", 4, 0u32.to_le_bytes().to_vec())]);
        let e = check_metadata(Cursor::new(&bad)).unwrap_err().to_string();
        assert!(e.contains("general.alignment = 0"), "{e}");
        let odd = header(&[("general.alignment", 4, 24u32.to_le_bytes().to_vec())]);
        assert!(check_metadata(Cursor::new(&odd)).is_err());
        let ok = header(&[("general.alignment", 4, 32u32.to_le_bytes().to_vec())]);
        check_metadata(Cursor::new(&ok)).unwrap();
        // and candle reads the accepted one
        gguf_file::Content::read(&mut Cursor::new(&ok)).unwrap();
    }

    #[test]
    fn lengths_past_the_end_are_refused() {
        let mut s = Vec::new();
        s.extend(u64::MAX.to_le_bytes());
        let e = check_metadata(Cursor::new(header(&[("k", 8, s)])))
            .unwrap_err()
            .to_string();
        assert!(e.contains("metadata 'k'"), "{e}");
        let mut arr = 4u32.to_le_bytes().to_vec();
        arr.extend(u64::MAX.to_le_bytes());
        assert!(check_metadata(Cursor::new(header(&[("a", 9, arr)]))).is_err());
        assert!(check_metadata(Cursor::new(b"GGUF".to_vec())).is_err());
        assert!(check_metadata(Cursor::new(b"nope nope nope nope".to_vec())).is_err());
        // every truncation of a valid header is an error, never a panic
        let ok = header(&[("general.name", 8, {
            let mut v = 3u64.to_le_bytes().to_vec();
            v.extend(b"abc");
            v
        })]);
        for n in 0..ok.len() {
            assert!(check_metadata(Cursor::new(&ok[..n])).is_err(), "{n}");
        }
    }
}

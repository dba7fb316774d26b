//! JSON scalars appended to a byte buffer, byte for byte as `serde_json` writes them, for
//! exporters that write JSON by hand instead of building `Value` trees.
//!
//! Numbers are most of an annotation file (every shape's coordinates), so [`put_f64`] has a fast
//! path for the values annotation tools produce (at most three decimals) and falls back to
//! serde_json's shortest round-trip formatting for everything else.

/// Appends `v` exactly as `serde_json` writes an `f64` (shortest representation that reads back
/// as `v`, `"1.0"` for whole numbers, `null` for NaN and infinities).
pub fn put_f64(out: &mut Vec<u8>, v: f64) {
    let a = v.abs();
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
        return;
    }
    // Below 1e9 the doubles are closer together than 0.001, so at most one `k / 1000` reads back
    // as `a`. When one does, it is the shortest representation (any shorter one would be another
    // `k' / 1000` reading back as `a`), which is what serde_json writes; the division is
    // correctly rounded, so the comparison is exactly "the decimal k/1000 reads back as a".
    if (1e-3..1e9).contains(&a) {
        let k = (a * 1000.0 + 0.5) as u64;
        if k as f64 / 1000.0 == a {
            let (len, end) = room(out);
            let buf = &mut out[len..];
            let mut n = usize::from(v < 0.0);
            buf[0] = b'-';
            n += digits(&mut buf[n..], k / 1000);
            let frac = (k % 1000) as u16;
            let d = [
                b'0' + (frac / 100) as u8,
                b'0' + (frac / 10 % 10) as u8,
                b'0' + (frac % 10) as u8,
            ];
            let frac_len = if d[2] != b'0' {
                3
            } else if d[1] != b'0' {
                2
            } else {
                1
            };
            buf[n] = b'.';
            buf[n + 1..n + 4].copy_from_slice(&d);
            n += 1 + frac_len;
            debug_assert!(len + n <= end);
            out.truncate(len + n);
            return;
        }
    }
    serde_json::to_writer(&mut *out, &v).expect("JSON into memory cannot fail");
}

/// Makes room for a number: 24 more bytes, to be written in place (through a buffer on the
/// stack they were stored byte by byte, then loaded 16 at a time, which stalls the core) and
/// truncated to what was written. Returns the old and the new length.
fn room(out: &mut Vec<u8>) -> (usize, usize) {
    let len = out.len();
    out.resize(len + 24, 0);
    (len, len + 24)
}

/// Writes the decimal digits of `v` at the start of `buf` (at least 20 bytes); returns how many.
fn digits(buf: &mut [u8], mut v: u64) -> usize {
    let mut n = 1;
    let mut t = v;
    while t >= 10 {
        t /= 10;
        n += 1;
    }
    for i in (0..n).rev() {
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    n
}

/// Appends an unsigned integer.
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    let (len, _) = room(out);
    let n = digits(&mut out[len..], v);
    out.truncate(len + n);
}

/// Appends a signed integer.
pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    let (len, _) = room(out);
    let buf = &mut out[len..];
    buf[0] = b'-';
    let sign = usize::from(v < 0);
    let n = sign + digits(&mut buf[sign..], v.unsigned_abs());
    out.truncate(len + n);
}

/// Appends `true` or `false`.
pub fn put_bool(out: &mut Vec<u8>, v: bool) {
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// Appends `s` as a JSON string, escaped as serde_json escapes it.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("JSON into memory cannot fail");
    }
}

/// Appends `v` as Python's `str(float)` writes it (`repr`: the shortest digits that read back,
/// `"1.0"` for whole numbers, exponent form `1e-05`, `1e+16` outside `[1e-4, 1e16)`, `nan`,
/// `inf`), as Datumaro's text formats (`str(x)`) write coordinates and attribute values.
pub fn put_py_float(out: &mut String, v: f64) {
    use std::fmt::Write as _;
    if v.is_nan() {
        out.push_str("nan");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "inf" } else { "-inf" });
        return;
    }
    let a = v.abs();
    if a == 0.0 || (1e-4..1e16).contains(&a) {
        let start = out.len();
        let _ = write!(out, "{v}");
        if !out[start..].contains('.') {
            out.push_str(".0");
        }
        return;
    }
    let start = out.len();
    let _ = write!(out, "{v:e}");
    let e_at = start + out[start..].find('e').expect("exponent form");
    let exp: i32 = out[e_at + 1..].parse().expect("an exponent");
    out.truncate(e_at);
    let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde(v: f64) -> String {
        serde_json::to_string(&v).unwrap()
    }

    fn ours(v: f64) -> String {
        let mut out = Vec::new();
        put_f64(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_are_written_as_serde_json_writes_them() {
        let fixed = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            0.001,
            0.0015,
            0.0009999,
            12.34,
            -12.34,
            100.0,
            1234.5,
            999_999_999.999,
            1e9,
            1e9 - 0.001,
            123_456_789.0,
            0.1 + 0.2,
            1.0 / 3.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::EPSILON,
            1e16,
            1e-7,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for v in fixed {
            assert_eq!(ours(v), serde(v), "{v:?}");
        }
        // Decimals as annotation tools round them, and values that are not round at all.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..300_000 {
            let r = next();
            let scale = [1.0, 10.0, 100.0, 1000.0, 10_000.0][(r % 5) as usize];
            let mag = [1e1, 1e3, 1e5, 1e8, 2e9][((r >> 8) % 5) as usize];
            let raw = (next() as f64 / u64::MAX as f64) * mag;
            let v = if r & 1 << 20 == 0 { -raw } else { raw };
            for v in [v, (v * scale).round() / scale, f64::from_bits(next())] {
                assert_eq!(ours(v), serde(v), "{v:?}");
            }
        }
    }

    #[test]
    fn strings_and_integers() {
        for s in [
            "",
            "car",
            "a\"b",
            "back\\slash",
            "tab\there",
            "é ü 漢字",
            "\u{1}",
        ] {
            let mut out = Vec::new();
            put_str(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
        let mut out = Vec::new();
        for v in [0, 7, 10, 99, 12345, i64::MAX, i64::MIN, -1] {
            put_i64(&mut out, v);
            out.push(b' ');
            if v >= 0 {
                put_u64(&mut out, v as u64);
                out.push(b' ');
            }
        }
        assert_eq!(
            String::from_utf8(std::mem::take(&mut out)).unwrap(),
            "0 0 7 7 10 10 99 99 12345 12345 9223372036854775807 9223372036854775807 \
             -9223372036854775808 -1 "
        );
        put_i64(&mut out, -42);
        out.push(b',');
        put_u64(&mut out, u64::MAX);
        out.push(b',');
        put_bool(&mut out, true);
        assert_eq!(out, b"-42,18446744073709551615,true");
    }
}

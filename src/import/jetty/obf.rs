//! Jetty's password forms: `OBF:` obfuscation undone, one-way hashes
//! (`MD5:`, `CRYPT:`) refused, anything else taken as the password.

use crate::tls::keystore::Password;

/// Jetty's `OBF:` obfuscation undone (`org.eclipse.jetty.util.security.
/// Password.deobfuscate`): four base-36 digits per byte, or `U` and four
/// digits for a byte of a multi-byte character.
pub fn deobfuscate(obf: &str) -> Result<String, String> {
    let s = obf.strip_prefix("OBF:").unwrap_or(obf).as_bytes();
    let bad = |why: &str| format!("the OBF: string does not decode ({why})");
    let digits = |chunk: &[u8]| -> Result<u32, String> {
        let t = std::str::from_utf8(chunk).map_err(|_| bad("not ASCII"))?;
        u32::from_str_radix(t, 36).map_err(|_| bad(&format!("{t:?} is not base 36")))
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'U' {
            let chunk = s.get(i + 1..i + 5).ok_or_else(|| bad("it ends short"))?;
            out.push((digits(chunk)? >> 8) as u8);
            i += 5;
        } else {
            let chunk = s.get(i..i + 4).ok_or_else(|| bad("it ends short"))?;
            let n = digits(chunk)?;
            let (hi, lo) = (n / 256, n % 256);
            let sum = (hi + lo)
                .checked_sub(254)
                .ok_or_else(|| bad("a group is out of range"))?;
            if sum % 2 != 0 || sum / 2 > 255 {
                return Err(bad("a group is out of range"));
            }
            out.push((sum / 2) as u8);
            i += 4;
        }
    }
    if out.is_empty() {
        return Err(bad("it is empty"));
    }
    String::from_utf8(out).map_err(|_| bad("the result is not UTF-8"))
}
/// The password a Jetty setting `name` gives in `v`.
pub(super) fn password(name: &str, v: &str) -> Result<Password, String> {
    if v.starts_with("OBF:") {
        return deobfuscate(v)
            .map(Password::new)
            .map_err(|e| format!("{name}: {e}"));
    }
    if v.starts_with("MD5:") || v.starts_with("CRYPT:") {
        return Err(format!(
            "{name} is a one-way hash ({}…), which cannot open a keystore: give the password (plain or OBF:)",
            &v[..v.find(':').unwrap_or(0) + 1]
        ));
    }
    Ok(Password::new(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jettys_stock_obf_passwords_decode() {
        assert_eq!(
            deobfuscate("OBF:1vny1zlo1x8e1vnw1vn61x8g1zlu1vn4").unwrap(),
            "storepwd"
        );
        assert_eq!(
            deobfuscate("OBF:1u2u1wml1z7s1z7a1wnl1u2g").unwrap(),
            "keypwd"
        );
    }

    #[test]
    fn an_obf_string_that_does_not_decode_is_refused() {
        assert_eq!(
            deobfuscate("OBF:1vny1zl").unwrap_err(),
            "the OBF: string does not decode (it ends short)"
        );
        assert_eq!(
            deobfuscate("OBF:1vn!").unwrap_err(),
            "the OBF: string does not decode (\"1vn!\" is not base 36)"
        );
        assert_eq!(
            deobfuscate("OBF:").unwrap_err(),
            "the OBF: string does not decode (it is empty)"
        );
    }

    #[test]
    fn an_md5_password_is_refused_as_a_hash() {
        assert_eq!(
            password("KeyStorePassword", "MD5:abc").unwrap_err(),
            "KeyStorePassword is a one-way hash (MD5:…), which cannot open a keystore: give the password (plain or OBF:)"
        );
    }
}

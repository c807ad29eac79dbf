//! Cipher-block chaining (NIST SP 800-38A section 6.2) with PKCS #7 padding
//! (RFC 5652 section 6.3) over the 64-bit legacy block ciphers that PBES2 and
//! PKCS #12 files still use: DES-EDE3 (RFC 8018 appendix B.2.2) and RC2
//! (RFC 2268, RFC 8018 appendix B.2.3).
//!
//! AES-CBC goes through aws-lc-rs; these two ciphers are not in its default
//! feature set, so they come from RustCrypto `des` and `rc2` and the chaining
//! is done here.

use des::cipher::{Block, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use zeroize::Zeroizing;

/// Block size of DES-EDE3 and RC2, in bytes.
pub(crate) const BLOCK_LEN: usize = 8;

/// A legacy 64-bit block cipher with its key schedule.
pub(crate) enum LegacyCipher {
    /// Three-key triple DES, `DES-EDE3`.
    TripleDes(Box<des::TdesEde3>),
    /// RC2 with an explicit effective key length (RFC 2268 section 2).
    Rc2(Box<rc2::Rc2>),
}

/// The legacy block cipher could not be keyed or the data was not block aligned
/// or badly padded; callers turn this into their own error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CbcError;

impl LegacyCipher {
    /// Three-key triple DES from a 24-byte key. A 16-byte key is read as the
    /// two-key variant `K1 K2 K1`.
    pub(crate) fn triple_des(key: &[u8]) -> Result<Self, CbcError> {
        let full: Zeroizing<Vec<u8>> = match key.len() {
            24 => Zeroizing::new(key.to_vec()),
            16 => {
                let mut k = Zeroizing::new(key.to_vec());
                k.extend_from_slice(key.get(..8).ok_or(CbcError)?);
                k
            }
            _ => return Err(CbcError),
        };
        let cipher = des::TdesEde3::new_from_slice(&full).map_err(|_| CbcError)?;
        Ok(Self::TripleDes(Box::new(cipher)))
    }

    /// RC2 with `key` and an effective key length of `effective_bits`
    /// (40 or 128 in PKCS #12).
    pub(crate) fn rc2(key: &[u8], effective_bits: usize) -> Result<Self, CbcError> {
        // rc2 indexes a 128-byte buffer with the key length.
        if key.is_empty() || key.len() > 128 || effective_bits == 0 || effective_bits > 1024 {
            return Err(CbcError);
        }
        Ok(Self::Rc2(Box::new(rc2::Rc2::new_with_eff_key_len(key, effective_bits))))
    }

    fn encrypt_block(&self, block: &mut [u8; BLOCK_LEN]) {
        match self {
            Self::TripleDes(c) => {
                let mut b = Block::<des::TdesEde3>::from(*block);
                c.encrypt_block(&mut b);
                block.copy_from_slice(&b);
            }
            Self::Rc2(c) => {
                let mut b = Block::<rc2::Rc2>::from(*block);
                c.encrypt_block(&mut b);
                block.copy_from_slice(&b);
            }
        }
    }

    fn decrypt_block(&self, block: &mut [u8; BLOCK_LEN]) {
        match self {
            Self::TripleDes(c) => {
                let mut b = Block::<des::TdesEde3>::from(*block);
                c.decrypt_block(&mut b);
                block.copy_from_slice(&b);
            }
            Self::Rc2(c) => {
                let mut b = Block::<rc2::Rc2>::from(*block);
                c.decrypt_block(&mut b);
                block.copy_from_slice(&b);
            }
        }
    }

    /// Pads `plaintext` (PKCS #7) and encrypts it in CBC mode with `iv`.
    pub(crate) fn cbc_encrypt(&self, iv: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CbcError> {
        let mut chain: [u8; BLOCK_LEN] = iv.try_into().map_err(|_| CbcError)?;
        let pad = BLOCK_LEN - plaintext.len() % BLOCK_LEN;
        let mut padded = Zeroizing::new(Vec::with_capacity(plaintext.len() + pad));
        padded.extend_from_slice(plaintext);
        // `pad` is 1..=8, so it fits in a byte.
        padded.resize(plaintext.len() + pad, u8::try_from(pad).map_err(|_| CbcError)?);
        let mut out = Vec::with_capacity(padded.len());
        for chunk in padded.chunks_exact(BLOCK_LEN) {
            for (c, p) in chain.iter_mut().zip(chunk) {
                *c ^= p;
            }
            self.encrypt_block(&mut chain);
            out.extend_from_slice(&chain);
        }
        Ok(out)
    }

    /// Decrypts `ciphertext` in CBC mode with `iv` and removes the PKCS #7
    /// padding. Bad padding (the usual sign of a wrong key) is an error.
    pub(crate) fn cbc_decrypt(&self, iv: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, CbcError> {
        let mut chain: [u8; BLOCK_LEN] = iv.try_into().map_err(|_| CbcError)?;
        if ciphertext.is_empty() || ciphertext.len() % BLOCK_LEN != 0 {
            return Err(CbcError);
        }
        let mut out = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
        for chunk in ciphertext.chunks_exact(BLOCK_LEN) {
            let mut block: [u8; BLOCK_LEN] = chunk.try_into().map_err(|_| CbcError)?;
            self.decrypt_block(&mut block);
            for (b, c) in block.iter_mut().zip(chain.iter()) {
                *b ^= c;
            }
            out.extend_from_slice(&block);
            chain.copy_from_slice(chunk);
        }
        strip_pkcs7(&mut out, BLOCK_LEN)?;
        Ok(out)
    }
}

/// Removes PKCS #7 padding (RFC 5652 section 6.3) in place.
fn strip_pkcs7(data: &mut Zeroizing<Vec<u8>>, block_len: usize) -> Result<(), CbcError> {
    let pad = usize::from(*data.last().ok_or(CbcError)?);
    if pad == 0 || pad > block_len || pad > data.len() {
        return Err(CbcError);
    }
    let start = data.len() - pad;
    let tail = data.get(start..).ok_or(CbcError)?;
    // Fold instead of short-circuiting, so the check does not leak where it failed.
    let bad = tail.iter().fold(0u8, |acc, &b| acc | (b ^ u8::try_from(pad).unwrap_or(0)));
    if bad != 0 {
        return Err(CbcError);
    }
    data.truncate(start);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn triple_des_cbc_matches_openssl() {
        // printf 'hello world, 3des' | openssl enc -des-ede3-cbc -K <key> -iv <iv> | xxd -p
        let key = hex::decode("0123456789abcdef23456789abcdef01456789abcdef0123").unwrap();
        let iv = hex::decode("1122334455667788").unwrap();
        let c = LegacyCipher::triple_des(&key).unwrap();
        let ct = c.cbc_encrypt(&iv, b"hello world, 3des").unwrap();
        assert_eq!(hex::encode(&ct), "0849f260c6de330e474ea678804bd26c8e9a479f74239bea");
        assert_eq!(&c.cbc_decrypt(&iv, &ct).unwrap()[..], b"hello world, 3des");
        let mut bad = ct.clone();
        bad[23] ^= 1;
        // A flipped last byte almost always breaks the padding.
        assert!(c.cbc_decrypt(&iv, &bad).map(|p| p.len() != 17).unwrap_or(true));
    }

    #[test]
    fn rc2_40_matches_openssl_and_rejects_unaligned() {
        // printf 'hello rc2' | openssl enc -rc2-40-cbc -K 0102030405 -iv 0000000000000000
        let c = LegacyCipher::rc2(&[1, 2, 3, 4, 5], 40).unwrap();
        let ct = c.cbc_encrypt(&[0; 8], b"hello rc2").unwrap();
        assert_eq!(hex::encode(&ct), "4d5462fd3fc96618d748e4e0cc45c417");
        assert_eq!(&c.cbc_decrypt(&[0; 8], &ct).unwrap()[..], b"hello rc2");
        let ct = c.cbc_encrypt(&[0; 8], b"").unwrap();
        assert_eq!(ct.len(), 8);
        assert!(c.cbc_decrypt(&[0; 8], &ct).unwrap().is_empty());
        assert_eq!(c.cbc_decrypt(&[0; 8], &ct[..7]), Err(CbcError));
        assert!(LegacyCipher::rc2(&[0; 129], 40).is_err());
    }
}

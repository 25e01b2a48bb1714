//! SHA-256 digests in hex: of a config's resolved text (the config hash), and of a data file or a
//! command's input, read in blocks so that a big file is never held whole.

use sha2::{Digest, Sha256};

/// Hex SHA-256 of bytes.
pub fn hex_sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The SHA-256 of a file's bytes, in hex, read in blocks (a data file is never held whole).
pub fn hex_sha256_of_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut block) {
            Ok(0) => return Ok(hex(&hasher.finalize())),
            Ok(read) => hasher.update(&block[..read]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_hashed_in_blocks_has_the_hash_of_its_bytes() {
        // The known SHA-256 of "abc", then a file over one block long, then an empty one.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.bin");
        std::fs::write(&path, b"abc").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hex_sha256_of_file(&path).unwrap(), abc);
        let bytes: Vec<u8> = (0..(1 << 20) + 12_345)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(hex_sha256_of_file(&path).unwrap(), hex_sha256(&bytes));
        std::fs::write(&path, b"").unwrap();
        assert_eq!(hex_sha256_of_file(&path).unwrap(), hex_sha256(b""));
        assert!(hex_sha256_of_file(&dir.path().join("missing")).is_err());
    }
}

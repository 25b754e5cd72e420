//! How numbers read for people, in one place for the CLI, the report and the logs' help:
//! byte counts in binary units (`3.4 MiB`), exact byte counts with separators
//! (`48,213 bytes (47.1 KiB)`), and counted nouns (`1 file`, `3 files`). No I/O here.

/// A byte count for people: `3.4 MiB`, `912 B` (binary units, one decimal).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// An exact byte count with thousands separators, and the same in [`human_bytes`] when it
/// is 1 KiB or more: `48,213 bytes (47.1 KiB)`, `912 bytes`.
pub fn exact_bytes(bytes: u64) -> String {
    let digits = bytes.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let noun = if bytes == 1 { "byte" } else { "bytes" };
    if bytes < 1024 {
        format!("{grouped} {noun}")
    } else {
        format!("{grouped} {noun} ({})", human_bytes(bytes))
    }
}

/// `n` with its noun, in the singular for one: `1 problem`, `3 problems`.
pub fn plural(n: u64, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_a_person_writes_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(9 * 1024 * 1024 + 512 * 1024), "9.5 MiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(
            human_bytes(u64::MAX),
            "16384.0 PiB",
            "PiB is the largest unit"
        );
        assert_eq!(exact_bytes(1023), "1,023 bytes");
        assert_eq!(exact_bytes(1024), "1,024 bytes (1.0 KiB)");
        assert_eq!(exact_bytes(1), "1 byte");
        assert_eq!(exact_bytes(912), "912 bytes");
        assert_eq!(exact_bytes(48_213), "48,213 bytes (47.1 KiB)");
        assert_eq!(exact_bytes(1_000_000), "1,000,000 bytes (976.6 KiB)");
        assert_eq!(plural(1, "file", "files"), "1 file");
        assert_eq!(plural(0, "file", "files"), "0 files");
        assert_eq!(plural(2, "file", "files"), "2 files");
    }
}

//! Sizes of the release binaries, with their architecture and whether they are stripped.

use std::path::Path;

use crate::report::{Report, megabytes};

/// Largest acceptable size of the deployed binary.
const TARGET: u64 = 10_000_000;

/// ELF `e_machine` values.
const X86_64: u16 = 62;
const AARCH64: u16 = 183;

/// What the ELF header and section table of a binary say.
struct Elf {
    machine: u16,
    stripped: bool,
}

/// Reads the 64-bit little-endian ELF header and section headers of `bytes`.
fn elf(bytes: &[u8]) -> Option<Elf> {
    if bytes.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    let sections = usize::try_from(u64_at(0x28)?).ok()?;
    let size = usize::from(u16_at(0x3A)?);
    let count = usize::from(u16_at(0x3C)?);
    // SHT_SYMTAB (2): the symbol table that stripping removes.
    let mut has_symtab = false;
    for i in 0..count {
        has_symtab |= u32_at(sections + i * size + 4)? == 2;
    }
    Some(Elf {
        machine: u16_at(0x12)?,
        stripped: !has_symtab,
    })
}

/// Reports each binary's size; the `deployed` one (aarch64 if it was built, else x86-64) is
/// checked against the target.
pub fn run(report: &mut Report, binaries: &[(&str, &Path)]) -> Result<(), String> {
    report.section(
        "Release binary size",
        "as built by the release profile; the aarch64 bootstrap is what Lambda runs (arm64)",
    );
    let mut measured = Vec::new();
    for (label, path) in binaries {
        let Ok(bytes) = std::fs::read(path) else {
            report.info(label, format!("not built ({})", path.display()));
            continue;
        };
        let elf = elf(&bytes).ok_or_else(|| format!("{}: not a 64-bit ELF", path.display()))?;
        let arch = match elf.machine {
            X86_64 => "x86-64",
            AARCH64 => "aarch64",
            _ => "other",
        };
        let strip = if elf.stripped {
            "stripped"
        } else {
            "NOT stripped"
        };
        report.info(
            &format!("{label} ({arch}, {strip})"),
            megabytes(bytes.len() as u64),
        );
        measured.push((*label, elf, bytes.len() as u64));
    }
    let bootstraps = measured
        .iter()
        .filter(|(label, ..)| label.starts_with("bootstrap"));
    let deployed = bootstraps
        .clone()
        .find(|(_, elf, _)| elf.machine == AARCH64)
        .or_else(|| bootstraps.clone().next())
        .ok_or("no bootstrap binary was built")?;
    let (_, elf, size) = deployed;
    let arch = if elf.machine == AARCH64 {
        "aarch64"
    } else {
        "x86-64"
    };
    report.check(
        &format!("stripped bootstrap, {arch}"),
        megabytes(*size),
        &format!("<= {} MB", TARGET / 1_000_000),
        elf.stripped && *size <= TARGET,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 header for `machine` followed by section headers of `types`.
    fn image(machine: u16, types: &[u32]) -> Vec<u8> {
        let mut bytes = vec![0u8; 64 + 64 * types.len()];
        bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
        bytes[0x12..0x14].copy_from_slice(&machine.to_le_bytes());
        bytes[0x28..0x30].copy_from_slice(&64u64.to_le_bytes());
        bytes[0x3A..0x3C].copy_from_slice(&64u16.to_le_bytes());
        bytes[0x3C..0x3E].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for (i, kind) in types.iter().enumerate() {
            let at = 64 + 64 * i + 4;
            bytes[at..at + 4].copy_from_slice(&kind.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn a_symbol_table_means_not_stripped() {
        let stripped = elf(&image(AARCH64, &[0, 1, 3])).expect("an ELF");
        assert_eq!(stripped.machine, AARCH64);
        assert!(stripped.stripped);
        let full = elf(&image(X86_64, &[0, 1, 2, 3])).expect("an ELF");
        assert_eq!(full.machine, X86_64);
        assert!(!full.stripped);
    }

    #[test]
    fn truncated_or_foreign_files_are_not_elf() {
        assert!(elf(b"#!/bin/sh\n").is_none());
        let mut cut = image(X86_64, &[0, 2]);
        cut.truncate(100);
        assert!(elf(&cut).is_none());
    }
}

//! Reading the firmware's ELF files: section sizes and the SMLAD count.

use std::collections::BTreeMap;
use std::path::Path;

use crate::boards::{build_firmware, elf_path, BOARDS, PROGRAMS};
use crate::tools::{add_targets, fail};

/// One section header of an ELF32 file.
struct Section {
    name: String,
    kind: usize,
    flags: usize,
    addr: usize,
    offset: usize,
    size: usize,
    link: usize,
}

fn le16(b: &[u8], o: usize) -> Option<usize> {
    b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]) as usize)
}

fn le32(b: &[u8], o: usize) -> Option<usize> {
    b.get(o..o + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

/// The bytes and section headers of an ELF32 file.
fn elf(path: &Path) -> (Vec<u8>, Vec<Section>) {
    let b = std::fs::read(path).unwrap_or_else(|e| fail(format!("cannot read {}: {e}", path.display())));
    let parse = || -> Option<Vec<Section>> {
        if b.get(..5)? != b"\x7fELF\x01" {
            return None;
        }
        let (shoff, shentsize, shnum, shstrndx) = (le32(&b, 0x20)?, le16(&b, 0x2E)?, le16(&b, 0x30)?, le16(&b, 0x32)?);
        let sh = |i: usize| shoff + i * shentsize;
        let stroff = le32(&b, sh(shstrndx) + 16)?;
        (0..shnum)
            .map(|i| {
                let name_off = stroff + le32(&b, sh(i))?;
                let end = b.get(name_off..)?.iter().position(|&c| c == 0)?;
                Some(Section {
                    name: String::from_utf8_lossy(&b[name_off..name_off + end]).into_owned(),
                    kind: le32(&b, sh(i) + 4)?,
                    flags: le32(&b, sh(i) + 8)?,
                    addr: le32(&b, sh(i) + 12)?,
                    offset: le32(&b, sh(i) + 16)?,
                    size: le32(&b, sh(i) + 20)?,
                    link: le32(&b, sh(i) + 24)?,
                })
            })
            .collect()
    };
    let sections = parse().unwrap_or_else(|| fail(format!("{} is not a 32-bit ELF file", path.display())));
    (b, sections)
}

/// The ARM mapping symbols (`$t`, `$a`: code starts; `$d`: data starts) of
/// section `index`, as (file offset, is code), sorted by offset.
fn mapping_symbols(b: &[u8], sections: &[Section], index: usize) -> Vec<(usize, bool)> {
    let Some(sec) = sections.get(index) else { return Vec::new() };
    let mut out = Vec::new();
    for symtab in sections.iter().filter(|s| s.kind == 2) {
        // SHT_SYMTAB: 16-byte entries; names in the string table it links to.
        let Some(strtab) = sections.get(symtab.link) else { continue };
        for e in (symtab.offset..symtab.offset + symtab.size).step_by(16) {
            let (Some(name), Some(value), Some(shndx)) = (le32(b, e), le32(b, e + 4), le16(b, e + 14)) else {
                break;
            };
            if shndx != index {
                continue;
            }
            let at = strtab.offset + name;
            let code = match b.get(at..at + 3) {
                Some([b'$', b't' | b'a', 0 | b'.']) => true,
                Some([b'$', b'd', 0 | b'.']) => false,
                _ => continue,
            };
            // Thumb symbols may carry bit 0; mapping symbols should not, but mask it.
            let addr = value & !1;
            if (sec.addr..sec.addr + sec.size).contains(&addr) {
                out.push((sec.offset + addr - sec.addr, code));
            }
        }
    }
    out.sort_unstable();
    out
}

/// Count Thumb-2 `SMLAD` instructions (`1111 1011 0010 nnnn | aaaa dddd 0000 mmmm`,
/// `aaaa` ≠ 1111) in the executable sections of an ELF32 file, decoding the
/// instruction stream in order (a halfword starting `11101`, `11110` or `11111`
/// opens a 32-bit instruction), so halves of other instructions do not count.
/// Only code is decoded: the ARM mapping symbols mark where literal pools and
/// jump tables (`$d`) sit inside `.text`, and a constant there that happens to
/// look like an SMLAD (a Cortex-M0 build once had one) is not an instruction.
/// A section without mapping symbols is decoded whole.
pub fn count_smlad(path: &Path) -> usize {
    let (b, sections) = elf(path);
    let mut n = 0;
    for (index, sec) in sections.iter().enumerate().filter(|(_, s)| s.flags & 4 != 0) {
        // SHF_EXECINSTR
        let end = sec.offset + sec.size;
        let marks = mapping_symbols(&b, &sections, index);
        let regions: Vec<(usize, usize)> = if marks.is_empty() {
            vec![(sec.offset, end)]
        } else {
            marks
                .iter()
                .enumerate()
                .filter(|(_, m)| m.1)
                .map(|(i, m)| (m.0, marks.get(i + 1).map_or(end, |next| next.0)))
                .collect()
        };
        for (start, stop) in regions {
            let mut k = start;
            while k + 4 <= stop {
                let (Some(h1), Some(h2)) = (le16(&b, k), le16(&b, k + 2)) else { break };
                if matches!(h1 >> 11, 0b11101..=0b11111) {
                    if h1 & 0xFFF0 == 0xFB20 && h2 & 0x00F0 == 0 && h2 >> 12 != 0xF {
                        n += 1;
                    }
                    k += 4;
                } else {
                    k += 2;
                }
            }
        }
    }
    n
}

/// Sizes of the sections that occupy flash or RAM (SHF_ALLOC): name -> bytes.
fn elf_sections(path: &Path) -> BTreeMap<String, u64> {
    elf(path).1.into_iter().filter(|s| s.flags & 2 != 0).map(|s| (s.name, s.size as u64)).collect()
}

/// Flash / RAM figures of one program.
#[derive(Clone, Copy)]
pub struct Sizes {
    /// `.text`.
    pub text: u64,
    /// `.rodata` (the models).
    pub rodata: u64,
    /// `.data`.
    pub data: u64,
    /// `.bss` and `.uninit`.
    pub bss: u64,
    /// `.vector_table`.
    pub vector: u64,
}

pub fn sizes(elf: &Path) -> Sizes {
    let s = elf_sections(elf);
    let get = |k: &str| s.get(k).copied().unwrap_or(0);
    Sizes {
        text: get(".text"),
        rodata: get(".rodata"),
        data: get(".data"),
        bss: get(".bss") + get(".uninit"),
        vector: get(".vector_table"),
    }
}

/// `cargo xtask size`: build the firmware and print its sections.
pub fn size() {
    let targets: Vec<&str> = BOARDS.iter().map(|b| b.target).collect();
    add_targets(&targets);
    println!("| target | program | .vector_table | .text | .rodata | .data | .bss | flash | RAM (static) |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for board in &BOARDS {
        build_firmware(board.target, &[]);
        for p in PROGRAMS {
            let z = sizes(&elf_path(board.target, p));
            println!(
                "| {} | {p} | {} | {} | {} | {} | {} | {} | {} |",
                board.target,
                z.vector,
                z.text,
                z.rodata,
                z.data,
                z.bss,
                z.vector + z.text + z.rodata + z.data,
                z.data + z.bss
            );
        }
    }
}

//! Is a tool statically linked? The tools image is FROM scratch and the
//! same files are mounted into any other image, so a tool that needs a
//! program interpreter (ld-linux) or shared libraries cannot run there: the
//! image is refused before it is built rather than failing in every node.
//!
//! Only the ELF headers are read: the program headers, and the dynamic
//! section when there is one. A static-pie binary (what `crt-static` gives
//! on x86_64-unknown-linux-gnu) has a dynamic section for its own
//! relocations but no interpreter and no `DT_NEEDED`: it is static.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;

/// A dynamic section larger than this is not read further (real ones are
/// a few hundred bytes; a hostile file must not cost memory).
const DYNAMIC_MAX: u64 = 1 << 20;
/// As many program headers as a sane executable could have.
const PHNUM_MAX: u64 = 4096;

/// Why a file cannot run without a dynamic loader or libraries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linkage {
    /// No interpreter, no needed library: runs anywhere on this kernel.
    Static,
    /// It names a program interpreter (e.g. /lib64/ld-linux-x86-64.so.2).
    Interpreter(String),
    /// Its dynamic section needs this many shared libraries (DT_NEEDED).
    Needs(usize),
    /// Not an ELF file this check understands.
    NotElf(&'static str),
}

impl Linkage {
    /// What is wrong, in a few words, or `None` when static.
    pub fn problem(&self) -> Option<String> {
        match self {
            Linkage::Static => None,
            Linkage::Interpreter(interp) => Some(format!(
                "dynamically linked, needs the interpreter {interp}"
            )),
            Linkage::Needs(libraries) => Some(format!(
                "dynamically linked, needs {libraries} shared libraries"
            )),
            Linkage::NotElf(why) => Some(format!("not a static ELF executable ({why})")),
        }
    }
}

/// Reads `path`'s ELF headers.
pub fn linkage(path: &Path) -> io::Result<Linkage> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    Elf::read(&file, len)
}

struct Elf<'a> {
    file: &'a File,
    len: u64,
    wide: bool,
    little: bool,
}

impl Elf<'_> {
    fn read(file: &File, len: u64) -> io::Result<Linkage> {
        let mut ident = [0u8; 16];
        if len < 16 || file.read_exact_at(&mut ident, 0).is_err() {
            return Ok(Linkage::NotElf("too short"));
        }
        if &ident[..4] != b"\x7fELF" {
            return Ok(Linkage::NotElf("no ELF magic number"));
        }
        let wide = match ident[4] {
            1 => false,
            2 => true,
            _ => return Ok(Linkage::NotElf("unknown ELF class")),
        };
        let little = match ident[5] {
            1 => true,
            2 => false,
            _ => return Ok(Linkage::NotElf("unknown byte order")),
        };
        let elf = Elf {
            file,
            len,
            wide,
            little,
        };
        match elf.scan() {
            Ok(linkage) => Ok(linkage),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Ok(Linkage::NotElf("truncated headers"))
            }
            Err(e) => Err(e),
        }
    }

    fn scan(&self) -> io::Result<Linkage> {
        let (phoff, phentsize, phnum) = if self.wide {
            (self.u64_at(0x20)?, self.u16_at(0x36)?, self.u16_at(0x38)?)
        } else {
            (
                u64::from(self.u32_at(0x1c)?),
                self.u16_at(0x2a)?,
                self.u16_at(0x2c)?,
            )
        };
        let (phentsize, phnum) = (u64::from(phentsize), u64::from(phnum));
        if phnum > PHNUM_MAX || phentsize < if self.wide { 56 } else { 32 } {
            return Ok(Linkage::NotElf("malformed program headers"));
        }
        let mut dynamic = None;
        for i in 0..phnum {
            let at = phoff.saturating_add(i * phentsize);
            let kind = self.u32_at(at)?;
            // (p_offset, p_filesz) of this segment.
            let segment = if self.wide {
                (self.u64_at(at + 8)?, self.u64_at(at + 32)?)
            } else {
                (
                    u64::from(self.u32_at(at + 4)?),
                    u64::from(self.u32_at(at + 16)?),
                )
            };
            match kind {
                PT_INTERP => return Ok(Linkage::Interpreter(self.string(segment.0, segment.1)?)),
                PT_DYNAMIC => dynamic = Some(segment),
                _ => {}
            }
        }
        let Some((offset, size)) = dynamic else {
            return Ok(Linkage::Static);
        };
        let entry = if self.wide { 16 } else { 8 };
        let mut needed = 0;
        let mut at = offset;
        while at.saturating_add(entry) <= offset.saturating_add(size.min(DYNAMIC_MAX)) {
            let tag = if self.wide {
                self.u64_at(at)?
            } else {
                u64::from(self.u32_at(at)?)
            };
            match tag {
                DT_NULL => break,
                DT_NEEDED => needed += 1,
                _ => {}
            }
            at += entry;
        }
        // Naming the libraries would mean reading the string table too;
        // the count says enough.
        Ok(if needed == 0 {
            Linkage::Static
        } else {
            Linkage::Needs(needed)
        })
    }

    fn bytes<const N: usize>(&self, at: u64) -> io::Result<[u8; N]> {
        let mut buf = [0u8; N];
        if at.saturating_add(N as u64) > self.len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.file.read_exact_at(&mut buf, at)?;
        Ok(buf)
    }

    fn u16_at(&self, at: u64) -> io::Result<u16> {
        let b = self.bytes::<2>(at)?;
        Ok(if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    fn u32_at(&self, at: u64) -> io::Result<u32> {
        let b = self.bytes::<4>(at)?;
        Ok(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn u64_at(&self, at: u64) -> io::Result<u64> {
        let b = self.bytes::<8>(at)?;
        Ok(if self.little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    }

    /// The NUL-terminated string of a segment (the interpreter's path),
    /// at most 4 KiB of it.
    fn string(&self, at: u64, size: u64) -> io::Result<String> {
        let size = size.min(4096).min(self.len.saturating_sub(at));
        let mut buf = vec![0u8; size as usize];
        self.file.read_exact_at(&mut buf, at)?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `bytes`, read back through [`linkage`].
    fn linkage_of(bytes: &[u8]) -> Linkage {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tool");
        std::fs::write(&path, bytes).unwrap();
        linkage(&path).unwrap()
    }

    #[test]
    fn a_dynamically_linked_system_binary_needs_its_interpreter() {
        // /bin/ls of any glibc distribution.
        let Ok(found) = linkage(Path::new("/bin/ls")) else {
            eprintln!("SKIPPED: no /bin/ls on this machine");
            return;
        };
        match found {
            Linkage::Interpreter(interp) => assert!(interp.contains("ld-"), "{interp}"),
            other => panic!("/bin/ls read as {other:?}"),
        }
        assert!(found_problem("/bin/ls").contains("dynamically linked, needs the interpreter"));
    }

    fn found_problem(path: &str) -> String {
        linkage(Path::new(path))
            .unwrap()
            .problem()
            .unwrap_or_default()
    }

    #[test]
    fn this_crt_static_build_is_static() {
        // The test binary is built like the tools (.cargo/config.toml:
        // crt-static, a static-pie with a dynamic section of its own).
        let me = std::env::current_exe().unwrap();
        assert_eq!(linkage(&me).unwrap(), Linkage::Static, "{}", me.display());
        assert_eq!(Linkage::Static.problem(), None);
    }

    #[test]
    fn a_static_non_pie_binary_is_static() {
        // busybox-static (ci/setup installs it): ET_EXEC, no dynamic section.
        match linkage(Path::new("/bin/busybox")) {
            Ok(found) => assert_eq!(found, Linkage::Static),
            Err(e) => eprintln!("SKIPPED: /bin/busybox: {e} (ci/setup installs busybox-static)"),
        }
    }

    #[test]
    fn needed_libraries_without_an_interpreter_are_dynamic() {
        // A minimal ELF64: one PT_DYNAMIC segment with one DT_NEEDED entry
        // and no interpreter.
        let mut elf = vec![0u8; 64 + 56 + 32];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2; // 64-bit
        elf[5] = 1; // little-endian
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        let ph = 64;
        elf[ph..ph + 4].copy_from_slice(&PT_DYNAMIC.to_le_bytes());
        elf[ph + 8..ph + 16].copy_from_slice(&120u64.to_le_bytes()); // p_offset
        elf[ph + 32..ph + 40].copy_from_slice(&32u64.to_le_bytes()); // p_filesz
        elf[120..128].copy_from_slice(&DT_NEEDED.to_le_bytes());
        let found = linkage_of(&elf);
        assert_eq!(found, Linkage::Needs(1));
        // The same file with the entry's tag cleared is static.
        elf[120..128].copy_from_slice(&DT_NULL.to_le_bytes());
        assert_eq!(linkage_of(&elf), Linkage::Static);
    }

    #[test]
    fn scripts_and_truncated_files_are_not_static_executables() {
        assert!(matches!(
            linkage_of(b"#!/bin/sh\necho hi\n"),
            Linkage::NotElf(_)
        ));
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(linkage_of(&me[..40]), Linkage::NotElf("truncated headers"));
        assert_eq!(linkage_of(b""), Linkage::NotElf("too short"));
        // A huge program header count is refused, not looped over.
        let mut bad = me[..64].to_vec();
        bad[0x38..0x3a].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(
            linkage_of(&bad),
            Linkage::NotElf("malformed program headers")
        );
    }
}

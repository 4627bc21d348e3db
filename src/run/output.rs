//! Step output in bounded memory: the pieces that let the run keep only
//! the end of what a step printed while the whole goes to its file, and
//! look at every line of it (readiness, checks) without holding it.
//!
//! - [`Tail`]: the last [`WINDOW_BYTES`] of a stream.
//! - [`LineSplitter`]: bytes in, lines out, each line cut at
//!   [`LINE_BYTES`] (the rest of a longer line is not looked at).
//! - [`Finder`]: a substring search over a stream fed in pieces.

use std::path::{Path, PathBuf};

/// How much of each stream of a step memory keeps: the end of it, for the
/// reports (junit.xml carries as much); the whole is in the step's file.
pub const WINDOW_BYTES: usize = 64 * 1024;

/// How much of one line readiness and `match` checks look at: a line is
/// matched over its first 64 KiB, so a 200 MB line costs no more memory
/// than a short one.
pub const LINE_BYTES: usize = 64 * 1024;

/// The last [`WINDOW_BYTES`] (or `limit`) bytes of a stream, and how many
/// came before them.
#[derive(Debug, Clone)]
pub struct Tail {
    limit: usize,
    bytes: Vec<u8>,
    /// Bytes written in all.
    total: u64,
}

impl Default for Tail {
    fn default() -> Self {
        Tail::new(WINDOW_BYTES)
    }
}

impl Tail {
    pub fn new(limit: usize) -> Tail {
        Tail {
            limit,
            bytes: Vec::new(),
            total: 0,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        if data.len() >= self.limit {
            self.bytes.clear();
            self.bytes
                .extend_from_slice(&data[data.len() - self.limit..]);
            return;
        }
        self.bytes.extend_from_slice(data);
        // Drop the front only once twice the limit is held: each byte is
        // moved at most once, whatever the chunks' sizes.
        if self.bytes.len() >= 2 * self.limit {
            let cut = self.bytes.len() - self.limit;
            self.bytes.drain(..cut);
        }
    }

    /// The bytes kept (at most the limit) and how many before them are not.
    pub fn kept(&self) -> (&[u8], u64) {
        let start = self.bytes.len().saturating_sub(self.limit);
        (
            &self.bytes[start..],
            self.total - (self.bytes.len() - start) as u64,
        )
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept bytes as text, and how many bytes of the stream's
    /// beginning it lacks (see [`window_text`]).
    pub fn text(&self) -> (String, u64) {
        let (kept, cut) = self.kept();
        window_text(kept, cut)
    }
}

/// The end of a stream, `cut` bytes of whose beginning are gone, as text.
/// When some are gone it starts after its first line break, so it never
/// begins mid-line, unless that break ends it (the end of one long line:
/// then it starts at a character boundary).
pub fn window_text(bytes: &[u8], cut: u64) -> (String, u64) {
    let (mut kept, mut cut) = (bytes, cut);
    if cut > 0 {
        let skip = match memchr::memchr(b'\n', kept) {
            Some(nl) if nl + 1 < kept.len() => nl + 1,
            // UTF-8 continuation bytes of a character cut in two.
            _ => kept
                .iter()
                .take(3)
                .take_while(|b| (0x80..0xc0).contains(*b))
                .count(),
        };
        cut += skip as u64;
        kept = &kept[skip..];
    }
    (String::from_utf8_lossy(kept).into_owned(), cut)
}

/// Splits a stream fed in pieces into lines (without `\n`, and without a
/// `\r` before it, as [`str::lines`] does), each cut at `cap` bytes.
#[derive(Debug, Clone)]
pub struct LineSplitter {
    cap: usize,
    line: Vec<u8>,
    /// The current line is longer than `cap` (its rest is skipped).
    overflowed: bool,
    /// Bytes in the current line so far, kept or not.
    line_len: usize,
}

impl Default for LineSplitter {
    fn default() -> Self {
        LineSplitter::new(LINE_BYTES)
    }
}

impl LineSplitter {
    pub fn new(cap: usize) -> LineSplitter {
        LineSplitter {
            cap,
            line: Vec::new(),
            overflowed: false,
            line_len: 0,
        }
    }

    /// Calls `f` with each line `data` completes.
    pub fn feed(&mut self, mut data: &[u8], f: &mut dyn FnMut(&[u8])) {
        while !data.is_empty() {
            let (piece, complete) = match memchr::memchr(b'\n', data) {
                Some(nl) => (&data[..nl], Some(nl + 1)),
                None => (data, None),
            };
            self.take(piece);
            match complete {
                Some(n) => {
                    self.emit(f);
                    data = &data[n..];
                }
                None => break,
            }
        }
    }

    /// The line begun and not yet ended (cut at the cap).
    pub fn partial(&self) -> &[u8] {
        &self.line
    }

    /// Bytes in the partial line so far, including any past the cap.
    pub fn partial_len(&self) -> usize {
        self.line_len
    }

    /// The end of the stream: a last line without `\n` is a line too.
    pub fn finish(&mut self, f: &mut dyn FnMut(&[u8])) {
        if self.line_len > 0 {
            self.emit(f);
        }
    }

    fn take(&mut self, piece: &[u8]) {
        self.line_len = self.line_len.saturating_add(piece.len());
        let room = self.cap.saturating_sub(self.line.len());
        if piece.len() > room {
            self.overflowed = true;
        }
        self.line.extend_from_slice(&piece[..piece.len().min(room)]);
    }

    fn emit(&mut self, f: &mut dyn FnMut(&[u8])) {
        let mut line = &self.line[..];
        if !self.overflowed {
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
        }
        f(line);
        self.line.clear();
        self.overflowed = false;
        self.line_len = 0;
    }
}

/// Whether `needle` occurs in a stream fed in pieces (an occurrence may
/// span pieces); keeps `needle.len() - 1` bytes between them.
#[derive(Debug, Clone)]
pub struct Finder {
    needle: Vec<u8>,
    carry: Vec<u8>,
    found: bool,
}

impl Finder {
    pub fn new(needle: &str) -> Finder {
        Finder {
            needle: needle.as_bytes().to_vec(),
            carry: Vec::new(),
            found: needle.is_empty(),
        }
    }

    pub fn found(&self) -> bool {
        self.found
    }

    pub fn feed(&mut self, data: &[u8]) {
        if self.found {
            return;
        }
        let keep = self.needle.len() - 1;
        // An occurrence across the boundary: the carry and the start of
        // `data` are enough to see it.
        if !self.carry.is_empty() {
            let head = &data[..data.len().min(keep)];
            let mut seam = self.carry.clone();
            seam.extend_from_slice(head);
            if memchr::memmem::find(&seam, &self.needle).is_some() {
                self.found = true;
                return;
            }
        }
        if memchr::memmem::find(data, &self.needle).is_some() {
            self.found = true;
            return;
        }
        if data.len() >= keep {
            self.carry.clear();
            self.carry.extend_from_slice(&data[data.len() - keep..]);
        } else {
            self.carry.extend_from_slice(data);
            let excess = self.carry.len().saturating_sub(keep);
            self.carry.drain(..excess);
        }
    }
}

/// The files of step `index` (0-based) in `dir`: `NN-name.stdout` and
/// `NN-name.stderr`, the name's characters other than ASCII letters,
/// digits and `-` made `_`.
pub fn step_files(dir: &Path, index: usize, name: &str) -> [PathBuf; 2] {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = dir.join(format!("{:02}-{slug}", index + 1));
    [base.with_extension("stdout"), base.with_extension("stderr")]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(cap: usize, pieces: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::new(cap);
        let mut out = Vec::new();
        for p in pieces {
            s.feed(p, &mut |l| out.push(l.to_vec()));
        }
        s.finish(&mut |l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn lines_split_as_str_lines_does_across_pieces() {
        let text = "a\r\nbb\n\nlast";
        let expected: Vec<Vec<u8>> = text.lines().map(|l| l.as_bytes().to_vec()).collect();
        for split in 0..text.len() {
            let (x, y) = text.as_bytes().split_at(split);
            assert_eq!(lines_of(100, &[x, y]), expected, "split at {split}");
        }
        assert_eq!(lines_of(100, &[b"one\n"]), vec![b"one".to_vec()]);
        assert!(lines_of(100, &[b""]).is_empty());
    }

    #[test]
    fn a_long_line_is_cut_at_the_cap_and_the_next_line_is_whole() {
        let long = vec![b'x'; 1000];
        let got = lines_of(16, &[&long[..300], &long[300..], b"\nshort\n"]);
        assert_eq!(got, vec![vec![b'x'; 16], b"short".to_vec()]);
    }

    #[test]
    fn the_tail_keeps_the_end_and_counts_what_it_dropped() {
        let mut t = Tail::new(8);
        for chunk in [&b"0123"[..], b"4567", b"89\nabcdef", b"g"] {
            t.push(chunk);
        }
        let (kept, cut) = t.kept();
        assert_eq!(kept, b"\nabcdefg");
        assert_eq!(cut, 10);
        assert_eq!(t.total(), 18);
        // The text starts after the first line break.
        assert_eq!(t.text(), ("abcdefg".to_owned(), 11));
        let mut big = Tail::new(4);
        big.push(b"0123456789");
        assert_eq!(big.kept(), (&b"6789"[..], 6));
        // The end of one long line is kept, from a character boundary.
        let mut line = Tail::new(3);
        line.push("xxxxé!\n".as_bytes());
        assert_eq!(line.text(), ("!\n".to_owned(), 6));
        let mut whole = Tail::new(100);
        whole.push(b"a\nb");
        assert_eq!(whole.text(), ("a\nb".to_owned(), 0));
    }

    #[test]
    fn the_finder_sees_a_needle_across_pieces() {
        let text = b"one two three";
        for split in 0..text.len() {
            for needle in ["two", "o t", "three", "one two three", "e"] {
                let mut f = Finder::new(needle);
                let (x, y) = text.split_at(split);
                f.feed(x);
                f.feed(y);
                assert!(f.found(), "{needle:?} split at {split}");
            }
            let mut f = Finder::new("four");
            let (x, y) = text.split_at(split);
            f.feed(x);
            f.feed(y);
            assert!(!f.found());
        }
        // Pieces shorter than the needle.
        let mut f = Finder::new("abcd");
        for b in b"xxabcdxx" {
            f.feed(&[*b]);
        }
        assert!(f.found());
    }

    #[test]
    fn step_files_are_numbered_and_named() {
        let [out, err] = step_files(Path::new("r/steps"), 1, "pong answered");
        assert_eq!(out, Path::new("r/steps/02-pong_answered.stdout"));
        assert_eq!(err, Path::new("r/steps/02-pong_answered.stderr"));
    }
}

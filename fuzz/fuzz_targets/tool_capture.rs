//! lab-capture: its whole capture loop (`capture::run`) over the
//! fuzzer's frames, both directions, into a pcap file and its events.
//! The pcap file reads back with exactly the frames received, in order;
//! the summary counts them all, the malformed ones as decode says; JSON
//! lines parse.
#![no_main]

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use labctl::tools::capture::{self, CaptureOptions};
use labctl::tools::frames;
use labctl::tools::output::{Format, Output};
use labctl_fuzz::{human_lines, json_events, records, MemLink};
use libfuzzer_sys::fuzz_target;
use pcap_file::pcap::PcapReader;

/// One file per fuzzing process, rewritten by every input (tmpfs when
/// there is one: no disk I/O per input).
fn pcap_path() -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("labctl-fuzz-capture-{}.pcap", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let (options, records) = records(data);
    let format = if options & 1 != 0 {
        Format::Json
    } else {
        Format::Human
    };
    let path = pcap_path();
    let capture_options = CaptureOptions {
        iface: "fuzz0".into(),
        pcap: Some(path.clone()),
        count: None,
        duration: None,
        quiet: options & 2 != 0,
    };
    let mut link = MemLink::new(records.iter().map(|r| (r.frame.clone(), r.direction)));
    let mut out = Output::new(format, Vec::new());
    let summary = capture::run(
        &mut link,
        &capture_options,
        &mut out,
        &AtomicBool::new(false),
    )
    .expect("a capture into a writable file ends with its summary");
    assert_eq!(summary.captured, records.len() as u64);
    let malformed = records
        .iter()
        .filter(|r| frames::decode(&r.frame).is_err())
        .count();
    assert_eq!(summary.malformed, malformed as u64);

    let output = out.into_inner();
    match format {
        Format::Json => {
            let events = json_events(&output);
            assert_eq!(events.last().map(String::as_str), Some("summary"));
        }
        Format::Human => human_lines(&output),
    }

    let file = std::fs::File::open(&path).expect("the pcap file exists");
    let mut reader = PcapReader::new(file).expect("the pcap file has its header");
    let mut read = Vec::new();
    while let Some(packet) = reader.next_packet() {
        let packet = packet.expect("every packet of the pcap file reads back");
        assert_eq!(packet.orig_len as usize, packet.data.len());
        read.push(packet.data.into_owned());
    }
    let sent: Vec<&Vec<u8>> = records.iter().map(|r| &r.frame).collect();
    assert_eq!(read.iter().collect::<Vec<_>>(), sent);
});

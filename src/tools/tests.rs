//! The one tool list against the binaries the package builds and the
//! Dockerfile that puts them in the tools image.

use std::collections::BTreeSet;

use super::TOOLS;

const DOCKERFILE: &str = include_str!("../../Dockerfile");

#[test]
fn every_binary_in_src_bin_is_a_listed_tool_and_back() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/bin");
    let binaries: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let listed: BTreeSet<String> = TOOLS.iter().map(|tool| tool.to_string()).collect();
    assert_eq!(listed.len(), TOOLS.len(), "a tool listed twice: {TOOLS:?}");
    assert_eq!(binaries, listed, "src/bin/ and tools::TOOLS differ");
}

#[test]
fn the_dockerfile_copies_every_tool_into_lab_bin_and_nothing_else() {
    let copies: Vec<&str> = DOCKERFILE
        .lines()
        .filter_map(|line| line.strip_prefix("COPY "))
        .collect();
    let [copy] = copies[..] else {
        panic!("one COPY line expected, found {copies:?}");
    };
    let mut words: Vec<&str> = copy.split_whitespace().collect();
    assert_eq!(words.pop(), Some("/lab/bin/"), "COPY {copy}");
    let copied = |name: &str| words.iter().any(|source| matches(source, name));
    for tool in TOOLS {
        assert!(copied(tool), "COPY {copy} leaves {tool} out of the image");
    }
    // The build context holds the Dockerfile and the tools, nothing else.
    assert!(!copied("Dockerfile"), "COPY {copy} copies the Dockerfile");
    let entrypoint = DOCKERFILE
        .lines()
        .find_map(|line| line.strip_prefix("ENTRYPOINT "))
        .expect("an ENTRYPOINT");
    assert!(
        TOOLS
            .iter()
            .any(|tool| entrypoint == format!("[\"/lab/bin/{tool}\"]")),
        "ENTRYPOINT {entrypoint} is not a listed tool"
    );
}

#[test]
fn the_copy_pattern_matches_as_docker_does() {
    assert!(matches("lab-*", "lab-ping"));
    assert!(matches("lab-ping", "lab-ping"));
    assert!(!matches("lab-*", "Dockerfile"));
    assert!(!matches("lab-ping", "lab-pong"));
    assert!(!matches("lab-*-x", "lab-x"));
}

/// A COPY source against a file name: a literal, or one `*` (the only
/// wildcard this Dockerfile uses).
fn matches(source: &str, name: &str) -> bool {
    assert!(
        !source.contains(['?', '[']),
        "{source}: only * is understood here"
    );
    match source.split_once('*') {
        None => source == name,
        Some((before, after)) => {
            assert!(!after.contains('*'), "{source}: one * at most");
            name.len() >= before.len() + after.len()
                && name.starts_with(before)
                && name.ends_with(after)
        }
    }
}

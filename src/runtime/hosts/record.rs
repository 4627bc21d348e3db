//! The local record of a lab spread over several hosts: which hosts an
//! instance uses, written before anything is created on any of them and
//! removed once a teardown found every host and left nothing. It is how
//! `labctl destroy NAME` (or `--all`) reaches every host after a crash,
//! with no lab file at hand: the labels on each host say what is the
//! lab's, the record says where to look.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::runtime::error::RuntimeError;
use crate::runtime::names::Scope;

/// Where records live; `LABCTL_HOSTS_DIR` moves them (tests).
pub const DIR: &str = "/var/lib/labctl/hosts";
const DIR_ENV: &str = "LABCTL_HOSTS_DIR";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub lab: String,
    pub instance: String,
    /// The deploy's run id.
    pub run: String,
    pub hosts: Vec<RecordedHost>,
}

/// A host as the lab file named it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordedHost {
    pub name: String,
    /// The Docker endpoint, as written.
    pub docker: String,
    pub tls: Option<PathBuf>,
    pub underlay: Option<IpAddr>,
}

pub fn dir() -> PathBuf {
    std::env::var_os(DIR_ENV)
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from(DIR), PathBuf::from)
}

fn path_of(dir: &Path, instance: &str) -> PathBuf {
    dir.join(format!("{instance}.json"))
}

/// Writes `record` (replacing the instance's previous one).
pub fn write(record: &Record) -> Result<(), RuntimeError> {
    let dir = dir();
    let write = |cause| RuntimeError::Write {
        path: dir.clone(),
        cause,
    };
    std::fs::create_dir_all(&dir).map_err(write)?;
    let path = path_of(&dir, &record.instance);
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec_pretty(record).map_err(|e| write(e.into()))?;
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|cause| RuntimeError::Write { path, cause })
}

/// Every record in `scope`; an unreadable one is skipped (it names no
/// host labctl could reach anyway).
pub fn in_scope(scope: &Scope) -> Vec<Record> {
    let Ok(entries) = std::fs::read_dir(dir()) else {
        return Vec::new();
    };
    let mut records: Vec<Record> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|bytes| serde_json::from_slice::<Record>(&bytes).ok())
        .filter(|r| scope.has(&r.lab, &r.instance, &r.run))
        .collect();
    records.sort_by(|a, b| a.instance.cmp(&b.instance));
    records
}

/// Removes the record of `instance`; gone already is fine.
pub fn remove(instance: &str) -> Result<(), RuntimeError> {
    let path = path_of(&dir(), instance);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(cause) => Err(RuntimeError::Write { path, cause }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_found_by_scope_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: this test alone reads or writes LABCTL_HOSTS_DIR.
        unsafe { std::env::set_var(DIR_ENV, dir.path()) };
        let record = |instance: &str| Record {
            lab: "x".into(),
            instance: instance.into(),
            run: "r1".into(),
            hosts: vec![RecordedHost {
                name: "a".into(),
                docker: "unix:///tmp/a.sock".into(),
                tls: None,
                underlay: Some("198.19.0.1".parse().unwrap()),
            }],
        };
        write(&record("x")).unwrap();
        write(&record("x-2")).unwrap();
        std::fs::write(dir.path().join("junk.json"), "{").unwrap();
        assert_eq!(in_scope(&Scope::Named("x".into())).len(), 2);
        assert_eq!(in_scope(&Scope::Instance("x-2".into())), [record("x-2")]);
        remove("x").unwrap();
        remove("x").unwrap();
        assert_eq!(
            in_scope(&Scope::All {
                prefix: String::new()
            }),
            [record("x-2")]
        );
    }
}

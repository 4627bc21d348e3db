//! Whether this process may build labs at all: network namespaces, veths
//! and netlink in other namespaces need CAP_NET_ADMIN and CAP_SYS_ADMIN
//! (root has both). Checked before anything is created, so an
//! unprivileged user gets one line instead of a failure deep in a deploy.

use super::RuntimeError;

/// The capabilities labctl itself needs, with their bit numbers
/// (linux/capability.h).
const NEEDED: [(&str, u32); 2] = [("CAP_NET_ADMIN", 12), ("CAP_SYS_ADMIN", 21)];

/// Ok when this process has every capability `labctl verb` needs.
pub fn check_host_privileges(verb: &'static str) -> Result<(), RuntimeError> {
    // Without /proc the check cannot be made; the deploy will say what fails.
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return Ok(());
    };
    match missing_in(&status) {
        Some(missing) if !missing.is_empty() => Err(RuntimeError::NotPrivileged {
            verb,
            uid: effective_uid(),
            missing,
        }),
        _ => Ok(()),
    }
}

/// The needed capabilities that the `CapEff:` line of a
/// /proc/<pid>/status text lacks; `None` if there is no such line.
fn missing_in(status: &str) -> Option<Vec<String>> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    let effective = u64::from_str_radix(hex, 16).ok()?;
    Some(
        NEEDED
            .iter()
            .filter(|(_, bit)| effective & (1 << bit) == 0)
            .map(|(name, _)| (*name).to_owned())
            .collect(),
    )
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_what_it_needs_and_a_user_lacks_both() {
        let root = "Name:\tlabctl\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(missing_in(root), Some(vec![]));
        let user = "CapEff:\t0000000000000000\n";
        assert_eq!(
            missing_in(user),
            Some(vec!["CAP_NET_ADMIN".to_owned(), "CAP_SYS_ADMIN".to_owned()])
        );
        // CAP_NET_ADMIN only (bit 12).
        assert_eq!(
            missing_in("CapEff:\t0000000000001000\n"),
            Some(vec!["CAP_SYS_ADMIN".to_owned()])
        );
        assert_eq!(missing_in("Name:\tx\n"), None);
    }

    #[test]
    fn the_refusal_is_one_line_saying_what_to_do() {
        let e = RuntimeError::NotPrivileged {
            verb: "run",
            uid: 65534,
            missing: vec!["CAP_NET_ADMIN".into(), "CAP_SYS_ADMIN".into()],
        };
        let line = e.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.contains("lacks CAP_NET_ADMIN and CAP_SYS_ADMIN"),
            "{line}"
        );
        assert!(line.starts_with("`labctl run` needs root"), "{line}");
        assert!(line.contains("sudo"), "{line}");
    }
}

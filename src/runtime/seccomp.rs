//! labctl's own seccomp profile for af_xdp nodes under Docker, sent as
//! `HostConfig.SecurityOpt: ["seccomp=<json>"]` (the API takes the JSON
//! text). Other nodes keep Docker's default profile.
//!
//! Why one of our own: Docker's default profile allows bpf() only with
//! CAP_SYS_ADMIN, and an af_xdp node gets CAP_BPF instead. The profile
//! keeps the default profile's semantics: an allowlist (anything not
//! named fails with EPERM, so a syscall added to the kernel later is
//! refused), x86_64 only (32-bit entry points are refused). It is written
//! here as data, not copied: [`ALLOWED`] is the x86_64 syscall table of
//! Linux 6.x minus [`REFUSED`], and a unit test keeps the two lists
//! apart. The few allowed with conditions are in [`profile`]:
//! - `bpf` only for the four commands the af_xdp datalink uses (create
//!   the XSKMAP, update it, load the program, create the XDP link);
//! - `clone` only without namespace flags, `clone3` fails with ENOSYS (its
//!   flags sit in memory seccomp cannot read, so glibc falls back to
//!   `clone`), `unshare` and `setns` are refused;
//! - `personality` only for the values programs use.
//!
//! What stays refused, even if a node had the capability the kernel asks
//! for (a `privileged: true` node gets CAP_SYS_ADMIN on a host without
//! CAP_BPF and still gets this profile): mounts of every kind (the old and
//! the new mount API, pivot_root), namespaces, modules and kexec, reboot,
//! swap, clocks, the kernel keyring, perf_event_open, userfaultfd,
//! io_uring, file handles (open_by_handle_at), other processes' memory,
//! quotas, hostname, syslog, ioperm/iopl.

use serde_json::{json, Value};

use super::privilege::AfXdpGrant;

/// Syscalls allowed without conditions.
#[rustfmt::skip]
pub const ALLOWED: &[&str] = &[
    // files and descriptors
    "read", "write", "open", "close", "stat", "fstat", "lstat", "poll", "lseek", "pread64",
    "pwrite64", "readv", "writev", "access", "pipe", "select", "dup", "dup2", "dup3", "pipe2",
    "sendfile", "fcntl", "flock", "fsync", "fdatasync", "truncate", "ftruncate", "getdents",
    "getdents64", "getcwd", "chdir", "fchdir", "rename", "mkdir", "rmdir", "creat", "link",
    "unlink", "symlink", "readlink", "chmod", "fchmod", "chown", "fchown", "lchown", "umask",
    "utime", "utimes", "mknod", "statfs", "fstatfs", "sysfs", "ustat", "readahead", "setxattr",
    "lsetxattr", "fsetxattr", "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr",
    "flistxattr", "removexattr", "lremovexattr", "fremovexattr", "openat", "mkdirat", "mknodat",
    "fchownat", "futimesat", "newfstatat", "unlinkat", "renameat", "linkat", "symlinkat",
    "readlinkat", "fchmodat", "faccessat", "pselect6", "ppoll", "splice", "tee",
    "sync_file_range", "vmsplice", "utimensat", "fallocate", "preadv", "pwritev", "syncfs",
    "renameat2", "copy_file_range", "preadv2", "pwritev2", "statx", "close_range", "openat2",
    "faccessat2", "sync", "fadvise64", "inotify_init", "inotify_init1", "inotify_add_watch",
    "inotify_rm_watch", "fanotify_mark", "memfd_create", "chroot", "fchmodat2",
    // memory
    "mmap", "mprotect", "munmap", "brk", "mremap", "msync", "mincore", "madvise", "mlock",
    "munlock", "mlockall", "munlockall", "mlock2", "remap_file_pages", "membarrier",
    "pkey_mprotect", "pkey_alloc", "pkey_free", "get_mempolicy", "memfd_secret",
    "map_shadow_stack", "mseal",
    // processes, threads, signals
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
    "rt_sigqueueinfo", "rt_sigsuspend", "rt_tgsigqueueinfo", "sigaltstack", "pause",
    "nanosleep", "getitimer", "alarm", "setitimer", "getpid", "fork", "vfork", "execve",
    "execveat", "exit", "exit_group", "wait4", "waitid", "kill", "tkill", "tgkill", "uname",
    "getrlimit", "setrlimit", "prlimit64", "getrusage", "sysinfo", "times", "ptrace", "getuid",
    "getgid", "setuid", "setgid", "geteuid", "getegid", "setpgid", "getppid", "getpgrp",
    "setsid", "setreuid", "setregid", "getgroups", "setgroups", "setresuid", "getresuid",
    "setresgid", "getresgid", "getpgid", "setfsuid", "setfsgid", "getsid", "capget", "capset",
    "getpriority", "setpriority", "sched_setparam", "sched_getparam", "sched_setscheduler",
    "sched_getscheduler", "sched_get_priority_max", "sched_get_priority_min",
    "sched_rr_get_interval", "sched_setaffinity", "sched_getaffinity", "sched_setattr",
    "sched_getattr", "sched_yield", "prctl", "arch_prctl", "gettid", "set_tid_address",
    "set_thread_area", "get_thread_area", "set_robust_list", "get_robust_list", "futex",
    "futex_waitv", "futex_wake", "futex_wait", "futex_requeue", "restart_syscall", "rseq",
    "seccomp", "getcpu", "getrandom", "ioprio_set", "ioprio_get", "pidfd_open",
    "pidfd_send_signal", "process_mrelease", "landlock_create_ruleset", "landlock_add_rule",
    "landlock_restrict_self",
    // time (reading; setting the clocks is refused)
    "gettimeofday", "time", "clock_gettime", "clock_getres", "clock_nanosleep", "adjtimex",
    "timer_create", "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete",
    "timerfd_create", "timerfd_settime", "timerfd_gettime",
    // events and IPC
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "eventfd", "eventfd2", "signalfd", "signalfd4", "shmget", "shmat", "shmctl", "shmdt",
    "semget", "semop", "semctl", "semtimedop", "msgget", "msgsnd", "msgrcv", "msgctl",
    "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
    "io_setup", "io_destroy", "io_getevents", "io_pgetevents", "io_submit", "io_cancel",
    // sockets
    "socket", "socketpair", "connect", "accept", "accept4", "sendto", "recvfrom", "sendmsg",
    "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "bind", "listen", "getsockname",
    "getpeername", "setsockopt", "getsockopt",
    // devices (the kernel checks each ioctl)
    "ioctl",
];

/// Syscalls of the x86_64 table that the profile does not allow (or
/// allows only with conditions, in [`profile`]). The profile needs only
/// [`ALLOWED`] (anything else is refused); this list is the proof, in the
/// unit tests, that nothing was forgotten.
#[rustfmt::skip]
#[cfg_attr(not(test), allow(dead_code))]
pub const REFUSED: &[&str] = &[
    // mounts, old and new API
    "mount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr",
    // namespaces (clone is allowed without namespace flags)
    "unshare", "setns", "clone", "clone3",
    // the kernel itself
    "init_module", "finit_module", "delete_module", "create_module", "query_module",
    "get_kernel_syms", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "acct",
    "_sysctl", "syslog", "uselib", "quotactl", "quotactl_fd", "nfsservctl", "lookup_dcookie",
    "vhangup", "ioperm", "iopl", "modify_ldt", "personality",
    // clocks
    "settimeofday", "clock_settime", "clock_adjtime",
    // the kernel keyring (not namespaced)
    "add_key", "request_key", "keyctl",
    // tracing, other processes, exploit helpers
    "bpf", "perf_event_open", "userfaultfd", "process_vm_readv", "process_vm_writev", "kcmp",
    "pidfd_getfd", "process_madvise", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "fanotify_init", "name_to_handle_at", "open_by_handle_at",
    // NUMA placement (CAP_SYS_NICE in Docker's default)
    "mbind", "set_mempolicy", "migrate_pages", "move_pages", "set_mempolicy_home_node",
    // host identity
    "sethostname", "setdomainname",
    // unimplemented entries of the table
    "getpmsg", "putpmsg", "afs_syscall", "tuxcall", "security", "vserver", "epoll_ctl_old",
    "epoll_wait_old",
];

/// The bpf() commands the af_xdp datalink uses when it loads the program
/// itself (enum bpf_cmd).
pub const BPF_COMMANDS: [(u64, &str); 4] = [
    (0, "BPF_MAP_CREATE"),
    (2, "BPF_MAP_UPDATE_ELEM"),
    (5, "BPF_PROG_LOAD"),
    (28, "BPF_LINK_CREATE"),
];

/// The bpf() commands it uses on the map labctl pinned for it
/// ([`AfXdpGrant::Pinned`]): open the pin, put its socket in, take it out.
/// No map creation, no program load, no link.
pub const PINNED_BPF_COMMANDS: [(u64, &str); 3] = [
    (2, "BPF_MAP_UPDATE_ELEM"),
    (3, "BPF_MAP_DELETE_ELEM"),
    (7, "BPF_OBJ_GET"),
];

/// The bpf() commands a node with `grant` may make.
pub fn bpf_commands(grant: AfXdpGrant) -> &'static [(u64, &'static str)] {
    match grant {
        AfXdpGrant::Pinned => &PINNED_BPF_COMMANDS,
        AfXdpGrant::CapBpf | AfXdpGrant::SysAdmin | AfXdpGrant::Refused => &BPF_COMMANDS,
    }
}

/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
/// CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET.
const CLONE_NAMESPACES: u64 = 0x7E02_0000;

/// personality(2) values programs use: PER_LINUX, PER_LINUX32,
/// UNAME26, their combination, and the query.
const PERSONALITIES: [u64; 5] = [0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// The profile, as the JSON Docker's `seccomp=` option takes, for a node
/// given af_xdp as `grant`.
pub fn profile(grant: AfXdpGrant) -> Value {
    let allow = |name: &str, args: Value| json!({ "names": [name], "action": "SCMP_ACT_ALLOW", "args": args });
    let mut rules = vec![json!({ "names": ALLOWED, "action": "SCMP_ACT_ALLOW" })];
    // Several rules for one syscall: any of them allows it.
    rules.extend(bpf_commands(grant).iter().map(|(cmd, _)| {
        allow(
            "bpf",
            json!([{ "index": 0, "value": cmd, "op": "SCMP_CMP_EQ" }]),
        )
    }));
    rules.push(allow(
        "clone",
        json!([{ "index": 0, "value": CLONE_NAMESPACES, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" }]),
    ));
    rules.push(json!({
        "names": ["clone3"],
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": libc::ENOSYS,
    }));
    rules.extend(PERSONALITIES.iter().map(|p| {
        allow(
            "personality",
            json!([{ "index": 0, "value": p, "op": "SCMP_CMP_EQ" }]),
        )
    }));
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": rules,
    })
}

/// The `HostConfig.SecurityOpt` entry for [`profile`].
pub fn security_opt(grant: AfXdpGrant) -> String {
    format!("seccomp={}", profile(grant))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The x86_64 syscall table of Linux 6.x (asm/unistd_64.h), by name.
    const TABLE: &str = "read write open close stat fstat lstat poll lseek mmap mprotect munmap \
        brk rt_sigaction rt_sigprocmask rt_sigreturn ioctl pread64 pwrite64 readv writev access \
        pipe select sched_yield mremap msync mincore madvise shmget shmat shmctl dup dup2 pause \
        nanosleep getitimer alarm setitimer getpid sendfile socket connect accept sendto recvfrom \
        sendmsg recvmsg shutdown bind listen getsockname getpeername socketpair setsockopt \
        getsockopt clone fork vfork execve exit wait4 kill uname semget semop semctl shmdt msgget \
        msgsnd msgrcv msgctl fcntl flock fsync fdatasync truncate ftruncate getdents getcwd chdir \
        fchdir rename mkdir rmdir creat link unlink symlink readlink chmod fchmod chown fchown \
        lchown umask gettimeofday getrlimit getrusage sysinfo times ptrace getuid syslog getgid \
        setuid setgid geteuid getegid setpgid getppid getpgrp setsid setreuid setregid getgroups \
        setgroups setresuid getresuid setresgid getresgid getpgid setfsuid setfsgid getsid capget \
        capset rt_sigpending rt_sigtimedwait rt_sigqueueinfo rt_sigsuspend sigaltstack utime mknod \
        uselib personality ustat statfs fstatfs sysfs getpriority setpriority sched_setparam \
        sched_getparam sched_setscheduler sched_getscheduler sched_get_priority_max \
        sched_get_priority_min sched_rr_get_interval mlock munlock mlockall munlockall vhangup \
        modify_ldt pivot_root _sysctl prctl arch_prctl adjtimex setrlimit chroot sync acct \
        settimeofday mount umount2 swapon swapoff reboot sethostname setdomainname iopl ioperm \
        create_module init_module delete_module get_kernel_syms query_module quotactl nfsservctl \
        getpmsg putpmsg afs_syscall tuxcall security gettid readahead setxattr lsetxattr fsetxattr \
        getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr removexattr lremovexattr \
        fremovexattr tkill time futex sched_setaffinity sched_getaffinity set_thread_area \
        io_setup io_destroy io_getevents io_submit io_cancel get_thread_area lookup_dcookie \
        epoll_create epoll_ctl_old epoll_wait_old remap_file_pages getdents64 set_tid_address \
        restart_syscall semtimedop fadvise64 timer_create timer_settime timer_gettime \
        timer_getoverrun timer_delete clock_settime clock_gettime clock_getres clock_nanosleep \
        exit_group epoll_wait epoll_ctl tgkill utimes vserver mbind set_mempolicy get_mempolicy \
        mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify mq_getsetattr kexec_load waitid \
        add_key request_key keyctl ioprio_set ioprio_get inotify_init inotify_add_watch \
        inotify_rm_watch migrate_pages openat mkdirat mknodat fchownat futimesat newfstatat \
        unlinkat renameat linkat symlinkat readlinkat fchmodat faccessat pselect6 ppoll unshare \
        set_robust_list get_robust_list splice tee sync_file_range vmsplice move_pages utimensat \
        epoll_pwait signalfd timerfd_create eventfd fallocate timerfd_settime timerfd_gettime \
        accept4 signalfd4 eventfd2 epoll_create1 dup3 pipe2 inotify_init1 preadv pwritev \
        rt_tgsigqueueinfo perf_event_open recvmmsg fanotify_init fanotify_mark prlimit64 \
        name_to_handle_at open_by_handle_at clock_adjtime syncfs sendmmsg setns getcpu \
        process_vm_readv process_vm_writev kcmp finit_module sched_setattr sched_getattr \
        renameat2 seccomp getrandom memfd_create kexec_file_load bpf execveat userfaultfd \
        membarrier mlock2 copy_file_range preadv2 pwritev2 pkey_mprotect pkey_alloc pkey_free \
        statx io_pgetevents rseq pidfd_send_signal io_uring_setup io_uring_enter \
        io_uring_register open_tree move_mount fsopen fsconfig fsmount fspick pidfd_open clone3 \
        close_range openat2 pidfd_getfd faccessat2 process_madvise epoll_pwait2 mount_setattr \
        quotactl_fd landlock_create_ruleset landlock_add_rule landlock_restrict_self memfd_secret \
        process_mrelease futex_waitv set_mempolicy_home_node";

    /// Newer than that table: allowed (libseccomp skips names it does not
    /// know, so older hosts are not affected).
    const NEWER: [&str; 6] = [
        "fchmodat2",
        "map_shadow_stack",
        "futex_wake",
        "futex_wait",
        "futex_requeue",
        "mseal",
    ];

    #[test]
    fn every_syscall_of_the_table_is_either_allowed_or_refused_never_both() {
        let allowed: BTreeSet<&str> = ALLOWED.iter().copied().collect();
        let refused: BTreeSet<&str> = REFUSED.iter().copied().collect();
        assert_eq!(allowed.len(), ALLOWED.len(), "a name allowed twice");
        assert_eq!(refused.len(), REFUSED.len(), "a name refused twice");
        assert!(
            allowed.is_disjoint(&refused),
            "{:?}",
            allowed.intersection(&refused)
        );
        let table: BTreeSet<&str> = TABLE.split_whitespace().chain(NEWER).collect();
        let listed: BTreeSet<&str> = allowed.union(&refused).copied().collect();
        assert_eq!(
            table.symmetric_difference(&listed).collect::<Vec<_>>(),
            Vec::<&&str>::new()
        );
    }

    #[test]
    fn the_profile_is_an_allowlist_with_bpf_only_for_the_datalinks_commands() {
        let p = profile(AfXdpGrant::CapBpf);
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(p["architectures"], json!(["SCMP_ARCH_X86_64"]));
        let rules = p["syscalls"].as_array().unwrap();
        let rules_for = |name: &str| -> Vec<&Value> {
            rules
                .iter()
                .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
                .collect()
        };
        let bpf = rules_for("bpf");
        let commands: Vec<u64> = bpf
            .iter()
            .map(|r| r["args"][0]["value"].as_u64().unwrap())
            .collect();
        assert_eq!(commands, [0, 2, 5, 28]);
        assert!(bpf.iter().all(|r| r["args"][0]["op"] == "SCMP_CMP_EQ"));
        for refused in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "open_by_handle_at",
            "keyctl",
        ] {
            assert!(rules_for(refused).is_empty(), "{refused} has a rule");
        }
        let clone = rules_for("clone");
        assert_eq!(clone[0]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(clone[0]["args"][0]["valueTwo"], 0);
        let clone3 = rules_for("clone3");
        assert_eq!(clone3[0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(clone3[0]["errnoRet"], libc::ENOSYS);
        assert!(security_opt(AfXdpGrant::SysAdmin).starts_with("seccomp={\""));
        // labctl attached the program: open the pin, update and delete.
        let pinned = profile(AfXdpGrant::Pinned);
        let commands: Vec<u64> = pinned["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == "bpf"))
            .map(|r| r["args"][0]["value"].as_u64().unwrap())
            .collect();
        assert_eq!(commands, [2, 3, 7]);
    }
}

//! The OCI runtime configuration of a sprite's sandbox.
//!
//! Isolation comes from the runtime; this file only states the policy:
//! every namespace including user (root inside is an unprivileged id range
//! outside), the default capability set minus MKNOD, no host devices beyond
//! the standard pseudo devices, masked and read-only kernel interfaces, cgroup
//! limits, and a seccomp filter that refuses the calls a tenant could use
//! against the host kernel (modules, kexec, mounts, new namespaces, keyrings,
//! bpf, perf, clock changes, swap, reboot).

use serde_json::{json, Value};

use super::SandboxSpec;

const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Refused with EPERM whatever the arguments.
const DENIED_SYSCALLS: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "quotactl",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "syslog",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "vm86",
    "vm86old",
];

/// clone() flags that would create namespaces: refused so a tenant cannot
/// reach the kernel's user-namespace attack surface from inside.
const NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

/// Refused besides [`DENIED_SYSCALLS`] under the `minimal` profile: other
/// processes' memory and tracing, and io_uring.
const MINIMAL_DENIED: &[&str] = &[
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
];

fn seccomp(minimal: bool) -> Value {
    let mut rules = vec![json!({
        "names": DENIED_SYSCALLS,
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": libc::EPERM,
    })];
    if minimal {
        rules.push(json!({
            "names": MINIMAL_DENIED,
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": libc::EPERM,
        }));
    }
    for flag in NAMESPACE_FLAGS {
        rules.push(json!({
            "names": ["clone"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": libc::EPERM,
            "args": [{ "index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ" }],
        }));
    }
    // clone3 passes its flags in memory a filter cannot read; ENOSYS makes
    // the C library fall back to clone(), which the rules above see.
    rules
        .push(json!({ "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS }));
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules,
    })
}

/// The file systems every sandbox has.
fn base_mounts(spec: &SandboxSpec) -> Vec<Value> {
    let mounts = json!([
        { "destination": "/proc", "type": "proc", "source": "proc" },
        { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
          "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
        { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
          "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
        { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
          "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
        { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
          "options": ["nosuid", "noexec", "nodev"] },
        { "destination": "/sys", "type": "sysfs", "source": "sysfs",
          "options": ["nosuid", "noexec", "nodev", "ro"] },
        { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
          "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] },
        { "destination": "/.sprite/bin/sprite-init", "type": "bind", "source": spec.init_binary,
          "options": ["bind", "ro", "nosuid", "nodev"] },
        { "destination": "/.sprite/checkpoints", "type": "bind", "source": spec.checkpoints_dir,
          "options": ["rbind", "ro", "nosuid", "nodev"] },
        // The same binary answers to `sprite-env`, the sprite's own
        // command for the management socket beside it.
        { "destination": "/.sprite/bin/sprite-env", "type": "bind", "source": spec.init_binary,
          "options": ["bind", "ro", "nosuid", "nodev"] },
        { "destination": "/.sprite/run", "type": "bind", "source": spec.mgmt_dir,
          "options": ["bind", "ro", "nosuid", "nodev", "noexec"] },
        { "destination": "/etc/resolv.conf", "type": "bind", "source": spec.resolv_conf,
          "options": ["bind", "ro", "nosuid", "nodev", "noexec"] },
        { "destination": "/etc/hostname", "type": "bind", "source": spec.names_dir.join("hostname"),
          "options": ["bind", "rw", "nosuid", "nodev", "noexec"] },
        { "destination": "/etc/hosts", "type": "bind", "source": spec.names_dir.join("hosts"),
          "options": ["bind", "rw", "nosuid", "nodev", "noexec"] },
    ]);
    match mounts {
        Value::Array(all) => all,
        _ => unreachable!("a JSON array"),
    }
}

/// The `config.json` of the sandbox described by `spec`.
pub fn config(spec: &SandboxSpec, cgroup_path: &str) -> Value {
    let l = &spec.limits;
    let mut cpu = json!({ "shares": 1024 });
    if l.cpu_quota_us > 0 {
        cpu["quota"] = json!(l.cpu_quota_us);
        cpu["period"] = json!(100_000);
    }
    // Raising a hard limit needs CAP_SYS_RESOURCE, which a host may lack.
    let nofile = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| hard.min(1 << 20))
        .unwrap_or(1024);
    let map = json!([{ "containerID": 0, "hostID": spec.ids.base, "size": spec.ids.size }]);
    let p = &spec.privileges;
    let mut allowed = vec![json!({ "allow": false, "access": "rwm" })];
    allowed.extend(spec.devices.iter().map(|d| {
        json!({ "allow": true, "type": "c", "major": d.major, "minor": d.minor, "access": "rw" })
    }));
    let mut mounts = base_mounts(spec);
    mounts.extend(spec.devices.iter().map(|d| {
        json!({ "destination": d.path, "type": "bind", "source": d.node,
                "options": ["bind", "rw", "nosuid", "noexec"] })
    }));
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["/.sprite/bin/sprite-init"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "container=sprite"],
            "cwd": "/",
            "capabilities": {
                "bounding": CAPABILITIES,
                "effective": CAPABILITIES,
                "permitted": CAPABILITIES,
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile }],
            "noNewPrivileges": p.no_new_privileges || p.minimal(),
            "oomScoreAdj": 500,
        },
        "root": { "path": spec.rootfs, "readonly": false },
        "hostname": spec.hostname,
        "mounts": mounts,
        "linux": {
            "uidMappings": map,
            "gidMappings": map,
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" },
                { "type": "mount" }, { "type": "user" }, { "type": "cgroup" },
            ],
            "cgroupsPath": cgroup_path,
            "resources": {
                "devices": allowed,
                "memory": { "limit": l.memory_bytes },
                "pids": { "limit": l.pids },
                "cpu": cpu,
            },
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
            "seccomp": seccomp(p.minimal()),
        },
    })
}

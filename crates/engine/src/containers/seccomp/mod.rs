//! Docker's seccomp profiles turned into the OCI `linux.seccomp` section.
//!
//! Docker's profile format is the OCI one plus what makes one profile fit every
//! container: `archMap` (the native architecture and its compat ABIs), and per rule
//! `includes`/`excludes` on capabilities, architectures and the kernel version. The
//! conversion keeps the rules that apply to the container (its bounding capabilities,
//! the host's architecture and kernel), as dockerd does before handing the spec to the
//! runtime.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// Docker's default profile, in Docker's format.
pub const DEFAULT_PROFILE: &str = include_str!("default.json");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(default)]
    default_action: String,
    default_errno_ret: Option<u32>,
    architectures: Option<Vec<String>>,
    arch_map: Option<Vec<ArchMap>>,
    flags: Option<Vec<String>>,
    listener_path: Option<String>,
    listener_metadata: Option<String>,
    syscalls: Option<Vec<Syscall>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    /// The legacy single-name form.
    #[serde(default)]
    name: String,
    names: Option<Vec<String>>,
    action: String,
    errno_ret: Option<u32>,
    args: Option<Vec<Arg>>,
    includes: Option<Filter>,
    excludes: Option<Filter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    caps: Option<Vec<String>>,
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
}

/// libseccomp's name of the native architecture.
fn native_scmp_arch(go: &str) -> Option<&'static str> {
    Some(match go {
        "amd64" => "SCMP_ARCH_X86_64",
        "386" => "SCMP_ARCH_X86",
        "arm64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "ppc64" => "SCMP_ARCH_PPC64",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "mips64" => "SCMP_ARCH_MIPS64",
        "mips64le" => "SCMP_ARCH_MIPSEL64",
        "mips" => "SCMP_ARCH_MIPS",
        "mipsle" => "SCMP_ARCH_MIPSEL",
        _ => return None,
    })
}

/// `major.minor` of a version string such as `6.1.0-13-amd64` or `4.8`.
fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// The running kernel's `major.minor`.
fn host_kernel() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    parse_kernel(release.trim())
}

/// What the conversion depends on besides the profile.
struct Host<'a> {
    /// Go's name of the architecture.
    arch: &'a str,
    kernel: Option<(u32, u32)>,
    /// The container's bounding capabilities (`CAP_*`).
    caps: &'a [String],
}

impl Host<'_> {
    fn kernel_at_least(&self, v: &str) -> Result<bool> {
        let want = parse_kernel(v)
            .filter(|_| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| {
                Error::InvalidParameter(format!(
                    "Decoding seccomp profile failed: invalid kernel version: {v}"
                ))
            })?;
        // An unreadable version counts as new: the rules gated this way allow calls.
        Ok(self.kernel.is_none_or(|k| k >= want))
    }

    fn has_cap(&self, c: &str) -> bool {
        self.caps.iter().any(|x| x == c)
    }

    /// Whether a rule applies, as dockerd decides it.
    fn applies(&self, call: &Syscall) -> Result<bool> {
        if let Some(ex) = &call.excludes {
            if ex
                .arches
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|a| a == self.arch)
            {
                return Ok(false);
            }
            if ex
                .caps
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|c| self.has_cap(c))
            {
                return Ok(false);
            }
            if let Some(v) = &ex.min_kernel {
                if self.kernel_at_least(v)? {
                    return Ok(false);
                }
            }
        }
        if let Some(inc) = &call.includes {
            let arches = inc.arches.as_deref().unwrap_or_default();
            if !arches.is_empty() && !arches.iter().any(|a| a == self.arch) {
                return Ok(false);
            }
            if !inc
                .caps
                .as_deref()
                .unwrap_or_default()
                .iter()
                .all(|c| self.has_cap(c))
            {
                return Ok(false);
            }
            if let Some(v) = &inc.min_kernel {
                if !self.kernel_at_least(v)? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

/// The OCI seccomp section for a profile in Docker's format (`json`, as given to
/// `--security-opt seccomp=`) and a container whose bounding set is `caps`.
pub fn convert(json: &str, caps: &[String]) -> Result<Value> {
    let host = Host {
        arch: image::config::host_platform().0,
        kernel: host_kernel(),
        caps,
    };
    convert_for(json, &host)
}

/// [`convert`] of Docker's default profile.
pub fn default_profile(caps: &[String]) -> Result<Value> {
    convert(DEFAULT_PROFILE, caps)
}

fn convert_for(json: &str, host: &Host) -> Result<Value> {
    let p: Profile = serde_json::from_str(json)
        .map_err(|e| Error::InvalidParameter(format!("Decoding seccomp profile failed: {e}")))?;
    let archs = p.architectures.unwrap_or_default();
    let arch_map = p.arch_map.unwrap_or_default();
    if !archs.is_empty() && !arch_map.is_empty() {
        return Err(Error::InvalidParameter(
            "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'".into(),
        ));
    }
    let mut architectures = archs;
    if let Some(native) = native_scmp_arch(host.arch) {
        for a in arch_map.iter().filter(|a| a.architecture == native) {
            architectures.push(a.architecture.clone());
            architectures.extend(a.sub_architectures.iter().flatten().cloned());
        }
    }
    let mut syscalls = Vec::new();
    for call in p.syscalls.unwrap_or_default() {
        let mut names = call.names.clone().unwrap_or_default();
        if !call.name.is_empty() {
            if !names.is_empty() {
                return Err(Error::InvalidParameter(
                    "use either 'name' or 'names'".into(),
                ));
            }
            names.push(call.name.clone());
        }
        if !host.applies(&call)? {
            continue;
        }
        let mut s = json!({"names": names, "action": call.action});
        if let Some(e) = call.errno_ret {
            s["errnoRet"] = json!(e);
        }
        if let Some(args) = &call.args {
            s["args"] = args
                .iter()
                .map(|a| {
                    json!({"index": a.index, "value": a.value, "valueTwo": a.value_two, "op": a.op})
                })
                .collect();
        }
        syscalls.push(s);
    }
    let mut out = json!({"defaultAction": p.default_action, "syscalls": syscalls});
    if !architectures.is_empty() {
        out["architectures"] = json!(architectures);
    }
    if let Some(e) = p.default_errno_ret {
        out["defaultErrnoRet"] = json!(e);
    }
    if let Some(f) = p.flags.filter(|f| !f.is_empty()) {
        out["flags"] = json!(f);
    }
    if let Some(l) = p.listener_path.filter(|l| !l.is_empty()) {
        out["listenerPath"] = json!(l);
    }
    if let Some(m) = p.listener_metadata.filter(|m| !m.is_empty()) {
        out["listenerMetadata"] = json!(m);
    }
    // The runtime must accept what it will be given: a bad action or operator is the
    // user's error, reported at create rather than at start.
    serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(out.clone())
        .map_err(|e| Error::InvalidParameter(format!("Decoding seccomp profile failed: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    fn names(v: &Value) -> Vec<String> {
        v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["names"].as_array().unwrap().clone())
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    }

    fn host<'a>(c: &'a [String], kernel: (u32, u32)) -> Host<'a> {
        Host {
            arch: "amd64",
            kernel: Some(kernel),
            caps: c,
        }
    }

    #[test]
    fn default_for_default_caps() {
        let c = caps(crate::containers::spec::DEFAULT_CAPS);
        let v = convert_for(DEFAULT_PROFILE, &host(&c, (6, 1))).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(v["defaultErrnoRet"], 1);
        assert_eq!(
            v["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        let n = names(&v);
        for want in [
            "read",
            "chroot",
            "arch_prctl",
            "modify_ldt",
            "ptrace",
            "clone",
            "clone3",
        ] {
            assert!(n.iter().any(|x| x == want), "{want} missing");
        }
        for absent in [
            "mount",
            "unshare",
            "setns",
            "reboot",
            "s390_runtime_instr",
            "set_tls",
        ] {
            assert!(!n.iter().any(|x| x == absent), "{absent} present");
        }
        // clone only with the namespace flags masked out, clone3 refused with ENOSYS.
        let sys = v["syscalls"].as_array().unwrap();
        let clone = sys.iter().find(|s| s["names"] == json!(["clone"])).unwrap();
        assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        let clone3 = sys
            .iter()
            .find(|s| s["names"] == json!(["clone3"]))
            .unwrap();
        assert_eq!(clone3["errnoRet"], 38);
        // The runtime compiles it.
        let oci: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(v).unwrap();
        assert!(!oci.syscalls().as_ref().unwrap().is_empty());
    }

    #[test]
    fn caps_and_kernel_gate_rules() {
        let c = caps(&["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]);
        let v = convert_for(DEFAULT_PROFILE, &host(&c, (4, 4))).unwrap();
        let n = names(&v);
        assert!(n.iter().any(|x| x == "mount") && n.iter().any(|x| x == "kcmp"));
        assert!(!n.iter().any(|x| x == "chroot"));
        // With CAP_SYS_ADMIN clone is allowed outright: no masked rule, no ENOSYS.
        let sys = v["syscalls"].as_array().unwrap();
        assert!(!sys.iter().any(|s| s["names"] == json!(["clone3"])));
        assert!(!sys.iter().any(|s| s["names"] == json!(["clone"])));
        // ptrace comes from CAP_SYS_PTRACE only: the kernel is older than 4.8.
        let none: Vec<String> = Vec::new();
        let v = convert_for(DEFAULT_PROFILE, &host(&none, (4, 4))).unwrap();
        assert!(!names(&v).iter().any(|x| x == "ptrace"));
    }

    #[test]
    fn custom_profiles() {
        let c = caps(&[]);
        let h = host(&c, (6, 1));
        let v = convert_for(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
                "syscalls":[{"name":"chmod","action":"SCMP_ACT_ERRNO"},
                            {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","excludes":{"arches":["amd64"]}}]}"#,
            &h,
        )
        .unwrap();
        assert_eq!(names(&v), ["chmod"]);
        assert_eq!(v["architectures"], json!(["SCMP_ARCH_X86_64"]));
        let bad = |j: &str| match convert_for(j, &h) {
            Err(Error::InvalidParameter(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(bad("{nope").starts_with("Decoding seccomp profile failed"));
        assert_eq!(
            bad(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#),
            "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'"
        );
        assert_eq!(
            bad(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}"#
            ),
            "use either 'name' or 'names'"
        );
        assert!(bad(r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#).starts_with("Decoding"));
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel("6.18.44-fc-v769"), Some((6, 18)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("5"), Some((5, 0)));
        assert_eq!(parse_kernel("x"), None);
    }
}

//! `/_ping`, `/version`, `/info`.

use std::collections::BTreeMap;

use api::models::{Component, Info, Platform, Plugins, Runtime, Swarm, Version};
use api::ApiError;
use hyper::Response;

use crate::router::json;
use crate::server::{full, Body};

pub fn ping(head: bool) -> Response<Body> {
    Response::builder()
        .status(200)
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Cache-Control", "no-cache, no-store, must-revalidate")
        .header("Pragma", "no-cache")
        .header("Builder-Version", "1")
        .header("Swarm", "inactive")
        .body(full(if head { "" } else { "OK" }))
        .expect("valid response")
}

pub fn version(engine: &engine::Engine) -> Result<Response<Body>, ApiError> {
    let info = engine.info();
    let api_version = api::version::CURRENT.to_string();
    let min = api::version::MIN.to_string();
    let details = BTreeMap::from([
        ("ApiVersion".to_string(), api_version.clone()),
        ("MinAPIVersion".to_string(), min.clone()),
        ("Os".to_string(), "linux".to_string()),
        ("Arch".to_string(), go_arch(&info.architecture)),
        ("KernelVersion".to_string(), info.kernel_version.clone()),
        ("Experimental".to_string(), "false".to_string()),
    ]);
    json(&Version {
        platform: Platform {
            name: "berth".into(),
        },
        components: vec![Component {
            name: "Engine".into(),
            version: engine::system::VERSION.into(),
            details,
        }],
        version: engine::system::VERSION.into(),
        api_version,
        min_api_version: min,
        os: "linux".into(),
        arch: go_arch(&info.architecture),
        kernel_version: info.kernel_version,
        ..Version::default()
    })
}

/// Docker names architectures as Go does.
fn go_arch(rust: &str) -> String {
    match rust {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
    .to_string()
}

pub fn info(engine: &engine::Engine) -> Result<Response<Body>, ApiError> {
    let i = engine.info();
    let now = std::time::SystemTime::now();
    json(&Info {
        id: i.id,
        containers: i.containers,
        containers_running: i.containers_running,
        containers_paused: i.containers_paused,
        containers_stopped: i.containers_stopped,
        images: i.images,
        driver: "overlay2".into(),
        driver_status: vec![["Backing Filesystem".into(), "extfs".into()]],
        plugins: Plugins {
            volume: vec!["local".into()],
            network: vec!["bridge".into(), "host".into(), "none".into()],
            authorization: None,
            log: vec!["json-file".into(), "none".into()],
        },
        memory_limit: true,
        swap_limit: true,
        cpu_cfs_period: true,
        cpu_cfs_quota: true,
        cpu_shares: true,
        cpu_set: true,
        pids_limit: true,
        system_time: humantime::format_rfc3339_nanos(now).to_string(),
        logging_driver: i.log_driver,
        cgroup_driver: "cgroupfs".into(),
        cgroup_version: i.cgroup_version,
        kernel_version: i.kernel_version,
        operating_system: i.operating_system,
        os_version: i.os_version,
        os_type: "linux".into(),
        architecture: i.architecture,
        index_server_address: "https://index.docker.io/v1/".into(),
        ncpu: i.ncpu,
        mem_total: i.mem_total,
        docker_root_dir: i.data_root,
        name: i.hostname,
        server_version: engine::system::VERSION.into(),
        runtimes: i
            .runtimes
            .into_iter()
            .map(|(k, p)| (k, Runtime { path: p }))
            .collect(),
        default_runtime: i.default_runtime,
        swarm: Swarm {
            local_node_state: "inactive".into(),
            ..Swarm::default()
        },
        live_restore_enabled: i.live_restore,
        isolation: String::new(),
        security_options: i.security_options,
        ..Info::default()
    })
}

/// `GET /system/check` (a berth extension): verifies blobs, snapshots and metadata.
pub async fn check(engine: std::sync::Arc<engine::Engine>) -> Result<Response<Body>, ApiError> {
    let report = crate::error::blocking(move || engine.check()).await?;
    json(&report)
}

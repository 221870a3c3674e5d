//! `/_ping`, `/version`, `/info`, `/system/check`, `/system/df`.

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
        ("Arch".to_string(), engine::system::go_arch().to_string()),
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
        arch: engine::system::go_arch().to_string(),
        kernel_version: info.kernel_version,
        ..Version::default()
    })
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

/// `GET /system/df[?type=container&type=image&type=volume&type=build-cache]`: Docker's
/// `DiskUsage` as API versions before 1.52 give it. Volumes and the build cache are not
/// tracked yet and come back empty.
pub async fn df(
    engine: std::sync::Arc<engine::Engine>,
    req: &hyper::Request<hyper::body::Incoming>,
) -> Result<Response<Body>, ApiError> {
    let q = crate::query::Query::parse(req.uri().query());
    let types = q.all("type");
    for t in &types {
        if !matches!(t.as_str(), "container" | "image" | "volume" | "build-cache") {
            return Err(ApiError::bad_request(format!("unknown object type: {t}")));
        }
    }
    let want = |t: &str| types.is_empty() || types.iter().any(|x| x == t);
    let du = crate::error::blocking(move || engine.disk_usage()).await?;
    let images: Vec<serde_json::Value> = du
        .images
        .iter()
        .map(|i| {
            serde_json::json!({
                "Id": i.image.id,
                "ParentId": i.image.parent_id,
                "RepoTags": i.image.repo_tags,
                "RepoDigests": i.image.repo_digests,
                "Created": i.image.created,
                "Size": i.image.size,
                "SharedSize": i.shared_size,
                "Labels": i.image.labels,
                "Containers": i.containers,
            })
        })
        .collect();
    let containers: Vec<serde_json::Value> = du
        .containers
        .iter()
        .map(|u| {
            let c = &u.container;
            let command = std::iter::once(c.path.as_str())
                .chain(c.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ");
            serde_json::json!({
                "Id": c.id,
                "Names": [c.name],
                "Image": c.config.image,
                "ImageID": c.image_id,
                "Command": command,
                "Created": rfc3339_secs(&c.created),
                "Ports": [],
                "SizeRw": u.size_rw,
                "SizeRootFs": u.size_root_fs,
                "Labels": c.config.labels,
                "State": c.state.status.as_str(),
                "Status": status_text(c),
                "HostConfig": {"NetworkMode": c.host_config.network_mode},
                "NetworkSettings": {"Networks": {}},
                "Mounts": [],
            })
        })
        .collect();
    let empty = Vec::<serde_json::Value>::new;
    json(&serde_json::json!({
        "LayersSize": if want("image") { du.layers_size } else { 0 },
        "Images": want("image").then_some(images),
        "Containers": want("container").then_some(containers),
        "Volumes": want("volume").then(empty),
        "BuildCache": want("build-cache").then(empty),
        "BuilderSize": 0,
    }))
}

fn rfc3339_secs(t: &str) -> i64 {
    humantime::parse_rfc3339_weak(t)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

/// The `Status` column of `docker ps` (and `system df -v`).
fn status_text(c: &engine::containers::Container) -> String {
    use engine::containers::Status;
    let ago = |t: &str| {
        let d = humantime::parse_rfc3339_weak(t)
            .ok()
            .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
            .unwrap_or_default();
        super::containers::human_duration(d)
    };
    match c.state.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", ago(&c.state.started_at)),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            c.state.exit_code,
            ago(&c.state.finished_at)
        ),
    }
}

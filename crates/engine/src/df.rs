//! Disk usage (`docker system df`): images with the bytes they share with others,
//! containers with the size of their writable layer.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use image::Digest;

use crate::containers::{Container, ListOptions};
use crate::error::Result;
use crate::images::{ImageSummary, ListFilters};
use crate::Engine;

/// An image and what it costs on disk.
#[derive(Debug, Clone)]
pub struct ImageUsage {
    pub image: ImageSummary,
    /// Bytes of its layers that other images use too.
    pub shared_size: u64,
    /// Containers made from it.
    pub containers: u64,
}

/// A container and what it costs on disk.
#[derive(Debug, Clone)]
pub struct ContainerUsage {
    pub container: Container,
    /// Bytes written to its writable layer.
    pub size_rw: u64,
    /// Its writable layer plus its image's layers.
    pub size_root_fs: u64,
}

/// What `docker system df` reports.
#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    /// Bytes of all image layers, each counted once.
    pub layers_size: u64,
    pub images: Vec<ImageUsage>,
    pub containers: Vec<ContainerUsage>,
}

/// Bytes of the non-directory entries under `dir` (hard links once, symlinks not
/// followed); 0 when it does not exist.
fn dir_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.nlink() <= 1 || seen.insert((m.dev(), m.ino())) {
                total += m.size();
            }
        }
    }
    total
}

impl Engine {
    fn container_usage(&self, c: &Container, image_size: &HashMap<&str, u64>) -> ContainerUsage {
        let size_rw = dir_size(&self.container_dir(&c.id).join("upper"));
        let base = image_size.get(c.image_id.as_str()).copied().unwrap_or(0);
        ContainerUsage {
            container: c.clone(),
            size_rw,
            size_root_fs: size_rw + base,
        }
    }

    /// The sizes `ps -s` shows for `containers`.
    pub fn container_sizes(&self, containers: &[Container]) -> Result<Vec<ContainerUsage>> {
        let images = self.list_images(&ListFilters::default())?;
        let image_size: HashMap<&str, u64> =
            images.iter().map(|i| (i.id.as_str(), i.size)).collect();
        Ok(containers
            .iter()
            .map(|c| self.container_usage(c, &image_size))
            .collect())
    }

    /// Disk usage of images and containers. Volumes and the build cache are not
    /// tracked yet; the daemon reports them empty.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let images = self.list_images(&ListFilters::default())?;
        let containers = self.list_containers(&ListOptions {
            all: true,
            ..Default::default()
        })?;
        let mut per_image: HashMap<&str, u64> = HashMap::new();
        for c in &containers {
            *per_image.entry(c.image_id.as_str()).or_default() += 1;
        }
        // Layers by chain id: their size and how many images use them.
        let mut layers: HashMap<Digest, (u64, u64)> = HashMap::new();
        let mut image_layers: HashMap<String, Vec<Digest>> = HashMap::new();
        for (id, _) in self.db.list(crate::store::IMAGES)? {
            let Some(config) = Digest::parse(&id)
                .ok()
                .and_then(|d| self.images.config(&d).ok())
            else {
                continue;
            };
            let chains = config.chain_ids();
            for (chain, diff) in chains.iter().zip(config.diff_ids()) {
                let size = self.images.content().size(diff).unwrap_or(0);
                layers.entry(chain.clone()).or_insert((size, 0)).1 += 1;
            }
            image_layers.insert(id, chains);
        }
        let layers_size = layers.values().map(|(size, _)| size).sum();
        let images = images
            .into_iter()
            .map(|image| {
                let shared_size = image_layers
                    .get(&image.id)
                    .map(|chains| {
                        chains
                            .iter()
                            .filter_map(|c| layers.get(c))
                            .filter(|(_, users)| *users > 1)
                            .map(|(size, _)| size)
                            .sum()
                    })
                    .unwrap_or(0);
                let containers = per_image.get(image.id.as_str()).copied().unwrap_or(0);
                ImageUsage {
                    image,
                    shared_size,
                    containers,
                }
            })
            .collect::<Vec<_>>();
        let image_size: HashMap<&str, u64> = images
            .iter()
            .map(|i| (i.image.id.as_str(), i.image.size))
            .collect();
        let containers = containers
            .iter()
            .map(|c| self.container_usage(c, &image_size))
            .collect();
        Ok(DiskUsage {
            layers_size,
            images,
            containers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_of_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a"), b"12345").unwrap();
        std::fs::write(dir.path().join("sub/b"), b"123").unwrap();
        std::fs::hard_link(dir.path().join("a"), dir.path().join("sub/a2")).unwrap();
        assert_eq!(dir_size(dir.path()), 8);
        assert_eq!(dir_size(&dir.path().join("missing")), 0);
    }
}

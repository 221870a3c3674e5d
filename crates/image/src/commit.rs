//! `docker commit`: a new image made of a parent image and, as its top layer, the diff
//! of a container's overlay upper dir.
//!
//! As Docker's `NewChildImage`: the parent's layers and history are kept, the diff is
//! appended as a layer unless it is empty (then the history entry is marked
//! `empty_layer`), and the history entry carries the author, the comment and the
//! container's command as `created_by`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use oci_spec::image::History;

use crate::archive::LoadedImage;
use crate::config::{self, ConfigError, NewConfig, RunConfig};
use crate::content::ContentError;
use crate::digest::{Algorithm, Digest};
use crate::layer;
use crate::store::{ImageStore, StoreError};

/// Errors of [`commit`].
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Writing the container's diff failed.
    #[error("exporting the container's changes: {0}")]
    Diff(#[source] layer::Error),
    /// Building the config failed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Storing the layer or config failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ContentError> for CommitError {
    fn from(e: ContentError) -> Self {
        CommitError::Store(e.into())
    }
}

/// What a commit is made of besides the container's upper dir.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `--author`.
    pub author: Option<String>,
    /// `--message`.
    pub comment: Option<String>,
    /// The new image's container defaults.
    pub config: RunConfig,
    /// The history entry's `created_by` (the container's command).
    pub created_by: String,
    /// Paths in the upper dir (relative) left out of the layer, with what is below.
    pub skip: Vec<PathBuf>,
}

/// The diff id of a layer with no entries: the two zero blocks of an empty tar.
pub fn empty_layer_diff_id() -> Digest {
    Digest::sha256_of(&[0u8; 1024])
}

/// Commits `upper` (a container's overlay upper dir, not written to meanwhile) on top
/// of image `parent` (`None`: no parent). Nothing is kept if it fails.
pub fn commit(
    store: &ImageStore,
    parent: Option<&Digest>,
    upper: &Path,
    opts: &CommitOptions,
) -> Result<LoadedImage, CommitError> {
    let (mut diff_ids, mut history) = match parent {
        Some(p) => {
            let c = store.config(p)?;
            (c.diff_ids().to_vec(), c.history().to_vec())
        }
        None => (Vec::new(), Vec::new()),
    };
    let mut txn = store.txn();
    let mut ingest = store.content().ingest(Algorithm::Sha256)?;
    layer::diff_skipping(upper, &mut ingest, &opts.skip).map_err(CommitError::Diff)?;
    let empty = ingest.digest() == empty_layer_diff_id();
    if empty {
        drop(ingest);
    } else {
        let existed = store.content().exists(&ingest.digest());
        let diff_id = ingest.commit(None)?;
        if !existed {
            txn.record_blob(&diff_id);
        }
        let parent_chain = config::chain_id(&diff_ids);
        diff_ids.push(diff_id.clone());
        let chain = config::chain_id(&diff_ids).expect("at least one layer");
        let blob = store.content().open_blob(&diff_id)?;
        store.unpack_layer(
            &mut txn,
            "container layer",
            &diff_id,
            &chain,
            parent_chain.as_ref(),
            blob,
        )?;
    }

    let created = SystemTime::now();
    let mut h = History::default();
    h.set_created(Some(config::format_time(created)));
    h.set_created_by(Some(opts.created_by.clone()));
    h.set_author(opts.author.clone().filter(|a| !a.is_empty()));
    h.set_comment(opts.comment.clone().filter(|c| !c.is_empty()));
    if empty {
        h.set_empty_layer(Some(true));
    }
    history.push(h);
    let config = NewConfig {
        created,
        author: opts.author.clone().filter(|a| !a.is_empty()),
        // Docker keeps the message in the history only and shows it from there;
        // berth's inspect reads the top-level field, so it goes there too.
        comment: opts.comment.clone().filter(|c| !c.is_empty()),
        config: opts.config.clone(),
        diff_ids: diff_ids.clone(),
        history,
    }
    .build()?;
    store.put_config(&mut txn, &config)?;
    txn.commit();
    let chains = config.chain_ids();
    Ok(LoadedImage {
        id: config.id().clone(),
        tags: Vec::new(),
        layers: diff_ids.into_iter().zip(chains).collect(),
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tar_digest_is_dockers() {
        assert_eq!(
            empty_layer_diff_id().as_str(),
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        );
    }

    #[test]
    fn commit_appends_a_layer_and_history() {
        let t = tempfile::tempdir().unwrap();
        let store = ImageStore::open(t.path().join("root")).unwrap();
        let upper = t.path().join("upper");
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("file"), b"data").unwrap();
        std::fs::write(upper.join("etc/hosts"), b"").unwrap();
        let opts = CommitOptions {
            author: Some("me".into()),
            comment: Some("msg".into()),
            created_by: "sh -c x".into(),
            skip: vec!["etc/hosts".into()],
            ..CommitOptions::default()
        };
        let img = commit(&store, None, &upper, &opts).unwrap();
        assert_eq!(img.layers.len(), 1);
        assert!(store.has_image(&img.id));
        let h = img.config.history();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].comment().as_deref(), Some("msg"));
        assert_eq!(h[0].author().as_deref(), Some("me"));
        let fs = store.snapshots().fs_path(img.layers[0].1.as_str()).unwrap();
        assert_eq!(std::fs::read(fs.join("file")).unwrap(), b"data");
        assert!(!fs.join("etc/hosts").exists(), "skipped path left out");

        // Nothing changed: an empty layer, only a history entry.
        let empty = t.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let child = commit(&store, Some(&img.id), &empty, &CommitOptions::default()).unwrap();
        assert_eq!(child.config.diff_ids(), img.config.diff_ids());
        assert_eq!(child.config.history().len(), 2);
        assert_eq!(child.config.history()[1].empty_layer(), Some(true));
    }
}

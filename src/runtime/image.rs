//! The tools image: the static packet tools and lab-init in a FROM-scratch
//! image, built locally from the repository's Dockerfile (nothing is ever
//! pulled) and tagged by the hash of its build context, so it is rebuilt
//! exactly when the tools or the Dockerfile change.
//!
//! Nodes with their own image get the same files through a named volume,
//! `labctl-tools-<hash>`, that Docker fills from the tools image the first
//! time a container mounts it empty. That works with any image and with a
//! daemon on another machine, where a bind mount of our files would not.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::error::{is_not_found, RuntimeError};
use super::names::{self, RunId};
use super::progress::Progress;

/// The binaries the image carries, all from this package.
pub const TOOLS: [&str; 4] = ["lab-init", "lab-ping", "lab-pong", "lab-capture"];

/// The repository's Dockerfile, part of the build context.
pub const DOCKERFILE: &str = include_str!("../../Dockerfile");

/// Where the tools are, in the tools image and in every node.
pub const TOOLS_PATH: &str = "/lab/bin";

/// Overrides where labctl looks for the tools.
pub const TOOLS_DIR_ENV: &str = "LABCTL_TOOLS_DIR";

/// The repository part of the image's tag.
const REPOSITORY: &str = "labctl-tools";

/// The directory holding the tool binaries.
#[derive(Clone, Debug)]
pub struct ToolsDir(PathBuf);

impl ToolsDir {
    /// `$LABCTL_TOOLS_DIR`, else the directory of labctl's own executable
    /// (cargo puts every binary of the package in the same place).
    pub fn locate() -> Result<Self, RuntimeError> {
        let dir = match std::env::var_os(TOOLS_DIR_ENV).filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => std::env::current_exe()
                .map_err(RuntimeError::io("finding labctl's own executable"))?
                .parent()
                .map(Path::to_owned)
                .unwrap_or_default(),
        };
        Self::at(dir)
    }

    /// `dir`, if every tool is in it.
    pub fn at(dir: PathBuf) -> Result<Self, RuntimeError> {
        let missing: Vec<String> = TOOLS
            .iter()
            .filter(|t| !dir.join(t).is_file())
            .map(|t| t.to_string())
            .collect();
        if missing.is_empty() {
            Ok(ToolsDir(dir))
        } else {
            Err(RuntimeError::ToolsMissing { dir, missing })
        }
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    fn read(&self, tool: &str) -> Result<Vec<u8>, RuntimeError> {
        let path = self.0.join(tool);
        std::fs::read(&path).map_err(RuntimeError::io(format!("reading {}", path.display())))
    }
}

/// The build context: the Dockerfile and the tools, read once.
pub struct Context {
    files: Vec<(&'static str, Vec<u8>)>,
}

impl Context {
    pub fn read(tools: &ToolsDir) -> Result<Self, RuntimeError> {
        let mut files = vec![("Dockerfile", DOCKERFILE.as_bytes().to_vec())];
        for tool in TOOLS {
            files.push((tool, tools.read(tool)?));
        }
        Ok(Context { files })
    }

    /// A short SHA-256 of every file's name, length and bytes.
    pub fn hash(&self) -> String {
        let mut sha = Sha256::new();
        for (name, bytes) in &self.files {
            sha.update(name.as_bytes());
            sha.update([0]);
            sha.update((bytes.len() as u64).to_le_bytes());
            sha.update(bytes);
        }
        sha.finalize()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The context as the tar stream Docker's build endpoint takes; fixed
    /// owners, modes and times, so equal inputs give equal bytes.
    pub fn tar(&self) -> Result<Vec<u8>, RuntimeError> {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, bytes) in &self.files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(if *name == "Dockerfile" { 0o644 } else { 0o755 });
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_cksum();
            tar.append_data(&mut header, name, bytes.as_slice())
                .map_err(RuntimeError::io("packing the tools image's build context"))?;
        }
        tar.into_inner()
            .map_err(RuntimeError::io("packing the tools image's build context"))
    }
}

/// The tools image of the current tools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolsImage {
    /// `labctl-tools:<hash>`.
    pub tag: String,
    /// The named volume that carries the same tools into other images.
    pub volume: String,
}

impl ToolsImage {
    pub fn for_hash(hash: &str) -> Self {
        ToolsImage {
            tag: format!("{REPOSITORY}:{hash}"),
            volume: format!("{REPOSITORY}-{hash}"),
        }
    }
}

/// Returns the tools image, building it first if the daemon lacks it.
pub async fn ensure_tools_image(
    docker: &Docker,
    progress: &dyn Progress,
) -> Result<ToolsImage, RuntimeError> {
    let tools = ToolsDir::locate()?;
    let context = tokio::task::spawn_blocking(move || Context::read(&tools))
        .await
        .map_err(|e| RuntimeError::io("reading the packet tools")(e.into()))??;
    let image = ToolsImage::for_hash(&context.hash());
    match docker.inspect_image(&image.tag).await {
        Ok(_) => return Ok(image),
        Err(e) if is_not_found(&e) => {}
        Err(e) => {
            return Err(RuntimeError::docker(format!(
                "looking up image {}",
                image.tag
            ))(e));
        }
    }
    build(docker, &image, &context, progress).await?;
    Ok(image)
}

async fn build(
    docker: &Docker,
    image: &ToolsImage,
    context: &Context,
    progress: &dyn Progress,
) -> Result<(), RuntimeError> {
    let started = Instant::now();
    progress.building_image(&image.tag);
    let doing = || format!("building image {}", image.tag);
    let labels = HashMap::from([("labctl.tools", image.tag.as_str())]);
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(&image.tag)
        .labels(&labels)
        .rm(true)
        .forcerm(true)
        .build();
    let body = bollard::body_full(context.tar()?.into());
    let mut output = docker.build_image(options, None, Some(body));
    while let Some(info) = output.next().await {
        let info = info.map_err(RuntimeError::docker(doing()))?;
        if let Some(line) = info.stream.as_deref().map(str::trim_end) {
            if !line.is_empty() {
                progress.build_output(line);
            }
        }
    }
    progress.image_built(&image.tag, started.elapsed());
    Ok(())
}

/// Makes sure the tools volume holds the tools: a container of the tools
/// image that mounts the volume (never started) makes Docker copy
/// /lab/bin into it if it is empty; a filled volume is left as it is. The
/// container carries the lab's labels so `destroy` finds it after a crash.
pub async fn fill_tools_volume(
    docker: &Docker,
    image: &ToolsImage,
    lab: &str,
    run: &RunId,
) -> Result<(), RuntimeError> {
    let name = format!("labctl-{lab}-tools-fill-{run}");
    let labels = HashMap::from([
        (names::LABEL_LAB.to_owned(), lab.to_owned()),
        (names::LABEL_RUN.to_owned(), run.to_string()),
        (
            names::LABEL_ROLE.to_owned(),
            names::ROLE_TOOLS_FILL.to_owned(),
        ),
    ]);
    let body = ContainerCreateBody {
        image: Some(image.tag.clone()),
        labels: Some(labels),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            mounts: Some(vec![Mount {
                target: Some(TOOLS_PATH.into()),
                source: Some(image.volume.clone()),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    docker
        .create_container(Some(options), body)
        .await
        .map_err(RuntimeError::docker(format!(
            "filling volume {}",
            image.volume
        )))?;
    let remove = RemoveContainerOptionsBuilder::default().force(true).build();
    docker
        .remove_container(&name, Some(remove))
        .await
        .map_err(RuntimeError::docker(format!("removing {name}")))
}

/// The `PATH` a local image sets, or `None` when it sets none. Fails with
/// [`RuntimeError::ImageMissing`] when the image is not in the local store.
pub async fn image_path_env(
    docker: &Docker,
    node: &str,
    image: &str,
) -> Result<Option<String>, RuntimeError> {
    let inspect = docker.inspect_image(image).await.map_err(|e| {
        if is_not_found(&e) {
            RuntimeError::ImageMissing {
                node: node.to_owned(),
                image: image.to_owned(),
            }
        } else {
            RuntimeError::docker(format!("looking up image {image} of node {node}"))(e)
        }
    })?;
    Ok(inspect
        .config
        .and_then(|c| c.env)
        .unwrap_or_default()
        .into_iter()
        .find_map(|kv| kv.strip_prefix("PATH=").map(str::to_owned)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_tools(content: &[u8]) -> (tempfile::TempDir, ToolsDir) {
        let dir = tempfile::tempdir().unwrap();
        for tool in TOOLS {
            std::fs::write(dir.path().join(tool), content).unwrap();
        }
        let tools = ToolsDir::at(dir.path().to_owned()).unwrap();
        (dir, tools)
    }

    #[test]
    fn missing_tools_are_named_with_how_to_build_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lab-init"), b"x").unwrap();
        let err = ToolsDir::at(dir.path().to_owned()).unwrap_err().to_string();
        assert!(err.contains("lab-ping, lab-pong, lab-capture"), "{err}");
        assert!(err.contains("cargo build --release"), "{err}");
    }

    #[test]
    fn the_tag_follows_the_tools_content() {
        let (_a, tools_a) = fake_tools(b"one");
        let (_b, tools_b) = fake_tools(b"two");
        let (_c, tools_c) = fake_tools(b"one");
        let hash = |t: &ToolsDir| Context::read(t).unwrap().hash();
        assert_eq!(hash(&tools_a), hash(&tools_c));
        assert_ne!(hash(&tools_a), hash(&tools_b));
        let image = ToolsImage::for_hash(&hash(&tools_a));
        assert!(image.tag.starts_with("labctl-tools:"));
        assert_eq!(image.tag.len(), "labctl-tools:".len() + 12);
    }

    #[test]
    fn the_context_is_a_reproducible_tar_with_every_file() {
        let (_d, tools) = fake_tools(b"binary");
        let context = Context::read(&tools).unwrap();
        let bytes = context.tar().unwrap();
        assert_eq!(bytes, context.tar().unwrap());
        let mut archive = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "Dockerfile",
                "lab-init",
                "lab-ping",
                "lab-pong",
                "lab-capture"
            ]
        );
    }
}

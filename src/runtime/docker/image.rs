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
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::error::is_not_found;
use crate::runtime::error::RuntimeError;
use crate::runtime::names::{self, RunId};
use crate::runtime::node::ToolsImage;
use crate::runtime::progress::Progress;
use crate::runtime::tools_dir::{ToolsDir, TOOLS_PATH};
use crate::tools::TOOLS;

/// The repository's Dockerfile, part of the build context.
pub const DOCKERFILE: &str = include_str!("../../../Dockerfile");

/// The build context: the Dockerfile and the tools. A release build of the
/// tools weighs over 100 MiB and every deploy needs the context's hash, so
/// the tools are hashed as streams, behind a cache keyed by their metadata
/// ([`Context::cached_hash`]), and streamed through a file to build the image.
pub struct Context {
    tools: ToolsDir,
}

impl Context {
    pub fn of(tools: &ToolsDir) -> Self {
        Context {
            tools: tools.clone(),
        }
    }

    /// A short SHA-256 of every file's name, length and bytes.
    pub fn hash(&self) -> Result<String, RuntimeError> {
        let mut sha = Sha256::new();
        add_file(&mut sha, "Dockerfile", DOCKERFILE.len() as u64);
        sha.update(DOCKERFILE.as_bytes());
        for tool in TOOLS {
            let path = self.tools.path().join(tool);
            let reading = || format!("reading {}", path.display());
            let mut file = File::open(&path).map_err(RuntimeError::io(reading()))?;
            let len = file.metadata().map_err(RuntimeError::io(reading()))?.len();
            add_file(&mut sha, tool, len);
            let copied = io::copy(&mut file, &mut sha).map_err(RuntimeError::io(reading()))?;
            if copied != len {
                let changed = io::Error::other("it changed while being read; build it again");
                return Err(RuntimeError::io(reading())(changed));
            }
        }
        Ok(short_hex(&sha.finalize()))
    }

    /// [`Context::hash`], from the cache in `$XDG_CACHE_HOME/labctl` (else
    /// `~/.cache/labctl`) while no file changed: same paths, sizes,
    /// modification times and inodes, as a build tool decides what to
    /// rebuild. Saves a deploy reading the tools (0.13 s and 120 MiB for a
    /// release build, docs/performance.md). A cache that cannot be read or
    /// written only costs that time.
    pub fn cached_hash(&self) -> Result<String, RuntimeError> {
        self.cached_hash_in(default_cache_dir().as_deref())
    }

    fn cached_hash_in(&self, cache_dir: Option<&Path>) -> Result<String, RuntimeError> {
        let fingerprint = self.fingerprint()?;
        let cache = cache_dir.map(|dir| {
            dir.join(format!(
                "tools-{}",
                short_hex(&Sha256::digest(
                    self.tools.path().as_os_str().as_encoded_bytes()
                ))
            ))
        });
        if let Some(cached) = cache
            .as_deref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|text| text.strip_prefix(&fingerprint).map(str::to_owned))
        {
            return Ok(cached);
        }
        let hash = self.hash()?;
        if let Some(path) = cache {
            let _ = write_atomically(&path, &format!("{fingerprint}{hash}"));
        }
        Ok(hash)
    }

    /// Every input of the hash, by metadata: one line per file.
    fn fingerprint(&self) -> Result<String, RuntimeError> {
        let mut text = format!("Dockerfile {}\n", short_hex(&Sha256::digest(DOCKERFILE)));
        for tool in TOOLS {
            let path = self.tools.path().join(tool);
            let meta = std::fs::metadata(&path)
                .map_err(RuntimeError::io(format!("reading {}", path.display())))?;
            text.push_str(&format!(
                "{} {} {}.{:09} {}:{}\n",
                path.display(),
                meta.len(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.dev(),
                meta.ino()
            ));
        }
        Ok(text)
    }

    /// The context as the tar stream Docker's build endpoint takes; fixed
    /// owners, modes and times, so equal inputs give equal bytes.
    /// Writes the tar to `out`, each tool streamed from its file: the
    /// tools of a debug build weigh over a GiB, which must not sit in
    /// memory.
    pub fn write_tar<W: io::Write>(&self, out: W) -> Result<W, RuntimeError> {
        let packing = || RuntimeError::io("packing the tools image's build context");
        let mut tar = tar::Builder::new(out);
        let dockerfile = DOCKERFILE.as_bytes();
        tar.append_data(
            &mut header(dockerfile.len() as u64, 0o644),
            "Dockerfile",
            dockerfile,
        )
        .map_err(packing())?;
        for tool in TOOLS {
            let path = self.tools.path().join(tool);
            let reading = || RuntimeError::io(format!("reading {}", path.display()));
            let file = File::open(&path).map_err(reading())?;
            let len = file.metadata().map_err(reading())?.len();
            // At most the length the header announces, whatever the file
            // does meanwhile.
            tar.append_data(&mut header(len, 0o755), tool, io::Read::take(file, len))
                .map_err(packing())?;
        }
        tar.into_inner().map_err(packing())
    }
}

/// A reproducible tar header: no owner, no time.
fn header(len: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(len);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_cksum();
    header
}

/// The build context in a file of its own that no directory names
/// (O_TMPFILE; else one unlinked at once), read back as a stream.
fn context_file(context: &Context) -> Result<File, RuntimeError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    let creating = || RuntimeError::io(format!("writing the build context in {}", dir.display()));
    let file = match File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(&dir)
    {
        Ok(file) => file,
        Err(_) => {
            let path = dir.join(format!("labctl-context-{}", std::process::id()));
            let file = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(creating())?;
            std::fs::remove_file(&path).map_err(creating())?;
            file
        }
    };
    let mut file = context
        .write_tar(io::BufWriter::new(file))?
        .into_inner()
        .map_err(|e| creating()(e.into_error()))?;
    io::Seek::rewind(&mut file).map_err(creating())?;
    Ok(file)
}

fn add_file(sha: &mut Sha256, name: &str, len: u64) {
    sha.update(name.as_bytes());
    sha.update([0]);
    sha.update(len.to_le_bytes());
}

fn short_hex(digest: &[u8]) -> String {
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
    Some(base.join("labctl"))
}

/// Writes `text` to `path` through a temporary file and a rename, so a
/// concurrent labctl reads the old cache or the new one, never half.
fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

/// The Docker runtime's preflight: the tools labctl would put in the tools
/// image are there and statically linked.
pub fn check_tools_static() -> Result<(), RuntimeError> {
    ToolsDir::locate()?.check_static()
}

/// Returns the tools image, building it first if the daemon lacks it.
pub async fn ensure_tools_image(
    docker: &Docker,
    progress: &dyn Progress,
) -> Result<ToolsImage, RuntimeError> {
    let context = Context::of(&ToolsDir::locate()?);
    let tools = context.tools.clone();
    // Before the image is looked up: one built from these files (by an
    // older labctl) would be as broken.
    tools.check_static()?;
    let hash = tokio::task::spawn_blocking(move || Context::of(&tools).cached_hash())
        .await
        .map_err(|e| RuntimeError::io("reading the packet tools")(e.into()))??;
    let image = ToolsImage::for_hash(&hash);
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
    let file = context_file(context)?;
    let body = bollard::body_try_stream(tokio_util::io::ReaderStream::new(
        tokio::fs::File::from_std(file),
    ));
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
///
/// Docker skips the copy into a volume that is not empty, so two runs
/// filling it at once (or a labctl killed mid-copy) could leave a run
/// with half the tools: fills of one volume take turns under a host lock,
/// and a volume found incomplete afterwards is removed and filled again.
pub async fn fill_tools_volume(
    docker: &Docker,
    image: &ToolsImage,
    lab: &str,
    instance: &names::Instance,
    run: &RunId,
) -> Result<(), RuntimeError> {
    let volume = image.volume.clone();
    let _turn = tokio::task::spawn_blocking(move || lock_volume(Path::new(LOCK_DIR), &volume))
        .await
        .map_err(|e| RuntimeError::io("waiting for the tools volume's lock")(e.into()))??;
    let tools = ToolsDir::locate()?;
    create_fill_container(docker, image, lab, instance, run).await?;
    if volume_is_whole(docker, &image.volume, &tools).await? {
        return Ok(());
    }
    // Left half-filled (a labctl killed mid-copy): empty it and fill again.
    remove_volume_if_there(docker, &image.volume)
        .await
        .map_err(RuntimeError::docker(format!(
            "removing the incomplete tools volume {} (is a lab still using it? \
             `labctl destroy --all` then run again)",
            image.volume
        )))?;
    create_fill_container(docker, image, lab, instance, run).await?;
    if volume_is_whole(docker, &image.volume, &tools).await? {
        Ok(())
    } else {
        Err(RuntimeError::io(format!(
            "filling the tools volume {}",
            image.volume
        ))(io::Error::other(
            "Docker left it without every tool; remove it with `docker volume rm`",
        )))
    }
}

/// Removes `volume`. One already gone is not an error: removed from
/// outside labctl (`docker volume rm`) while it was being looked at, it is
/// made anew by the fill that follows.
async fn remove_volume_if_there(
    docker: &Docker,
    volume: &str,
) -> Result<(), bollard::errors::Error> {
    match docker
        .remove_volume(volume, None::<RemoveVolumeOptions>)
        .await
    {
        Err(e) if is_not_found(&e) => Ok(()),
        result => result,
    }
}

/// Where the tools volumes' fill locks live (tmpfs: gone at boot, as the
/// processes that held them).
const LOCK_DIR: &str = "/run/labctl/locks";

/// Waits for this host's turn to fill `volume`. flock(2): the kernel
/// releases it when the file closes, so a labctl that dies frees it.
fn lock_volume(dir: &Path, volume: &str) -> Result<File, RuntimeError> {
    use std::os::fd::AsRawFd;
    let doing = || format!("locking {}", dir.join(volume).display());
    std::fs::create_dir_all(dir).map_err(RuntimeError::io(doing()))?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{volume}.lock")))
        .map_err(RuntimeError::io(doing()))?;
    loop {
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(file);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(RuntimeError::io(doing())(e));
        }
    }
}

/// Whether the volume holds every tool at its full size. A daemon on
/// another machine keeps its volumes out of our sight: trusted then.
async fn volume_is_whole(
    docker: &Docker,
    volume: &str,
    tools: &ToolsDir,
) -> Result<bool, RuntimeError> {
    let inspect = docker
        .inspect_volume(volume)
        .await
        .map_err(RuntimeError::docker(format!("looking up volume {volume}")))?;
    let mountpoint = PathBuf::from(inspect.mountpoint);
    if !mountpoint.is_dir() {
        return Ok(true);
    }
    Ok(holds_every_tool(&mountpoint, tools.path()))
}

fn holds_every_tool(copy: &Path, tools: &Path) -> bool {
    TOOLS.iter().all(|tool| {
        match (
            std::fs::metadata(copy.join(tool)),
            std::fs::metadata(tools.join(tool)),
        ) {
            (Ok(have), Ok(want)) => have.is_file() && have.len() == want.len(),
            _ => false,
        }
    })
}

async fn create_fill_container(
    docker: &Docker,
    image: &ToolsImage,
    lab: &str,
    instance: &names::Instance,
    run: &RunId,
) -> Result<(), RuntimeError> {
    let name = names::tools_fill_name(instance.as_str(), run);
    let labels = HashMap::from([
        (names::LABEL_LAB.to_owned(), lab.to_owned()),
        (names::LABEL_INSTANCE.to_owned(), instance.to_string()),
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

/// What a local image says about how it runs, as labctl uses it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// Its `PATH`, `None` when it sets none.
    pub path: Option<String>,
    /// Its ENTRYPOINT and CMD, as Docker stores them (shell forms already
    /// `/bin/sh -c ...`).
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// Its USER, `None` when it sets none (root).
    pub user: Option<String>,
}

/// The [`ImageConfig`] of a local image. Fails with
/// [`RuntimeError::ImageMissing`] when the image is not in the local store.
pub async fn image_config(
    docker: &Docker,
    node: &str,
    image: &str,
) -> Result<ImageConfig, RuntimeError> {
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
    let config = inspect.config.unwrap_or_default();
    Ok(ImageConfig {
        path: config
            .env
            .unwrap_or_default()
            .into_iter()
            .find_map(|kv| kv.strip_prefix("PATH=").map(str::to_owned)),
        entrypoint: config.entrypoint.unwrap_or_default(),
        cmd: config.cmd.unwrap_or_default(),
        user: config.user.filter(|u| !u.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the real daemon: a volume removed by someone else is gone
    /// as asked; one a container uses is still an error.
    #[test]
    fn removing_a_volume_already_gone_is_no_error_and_one_in_use_is() {
        use bollard::models::VolumeCreateRequest;
        use bollard::query_parameters::{RemoveContainerOptionsBuilder, RemoveImageOptions};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let docker = match super::super::connect::connect().await {
                Ok(docker) => docker,
                Err(e) => {
                    crate::runtime::skip::skip(&format!("no Docker daemon: {e}"));
                    return;
                }
            };
            let volume = format!("labctl-test-gone-{}", std::process::id());
            let create = VolumeCreateRequest {
                name: Some(volume.clone()),
                ..Default::default()
            };
            docker.create_volume(create).await.unwrap();
            // Someone else removes it first.
            docker
                .remove_volume(&volume, None::<RemoveVolumeOptions>)
                .await
                .unwrap();
            remove_volume_if_there(&docker, &volume).await.unwrap();
            // In use by a container (created, never started): still refused.
            // Its image: FROM scratch, built here (no registry, and on a
            // fresh machine no local image yet).
            let image = format!("labctl-test-empty:{}", std::process::id());
            let dockerfile = b"FROM scratch\nCMD [\"/none\"]\n";
            let mut header = tar::Header::new_gnu();
            header.set_size(dockerfile.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            let mut context = tar::Builder::new(Vec::new());
            context
                .append_data(&mut header, "Dockerfile", &dockerfile[..])
                .unwrap();
            let context = context.into_inner().unwrap();
            let options = BuildImageOptionsBuilder::default()
                .dockerfile("Dockerfile")
                .t(&image)
                .rm(true)
                .build();
            let mut output =
                docker.build_image(options, None, Some(bollard::body_full(context.into())));
            while let Some(info) = output.next().await {
                info.unwrap();
            }
            let name = format!("{volume}-user");
            let body = ContainerCreateBody {
                image: Some(image.clone()),
                network_disabled: Some(true),
                host_config: Some(HostConfig {
                    network_mode: Some("none".into()),
                    mounts: Some(vec![Mount {
                        target: Some("/labctl-test".into()),
                        source: Some(volume.clone()),
                        typ: Some(MountType::VOLUME),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let options = CreateContainerOptionsBuilder::default().name(&name).build();
            docker.create_container(Some(options), body).await.unwrap();
            let in_use = remove_volume_if_there(&docker, &volume).await;
            let remove = RemoveContainerOptionsBuilder::default().force(true).build();
            docker.remove_container(&name, Some(remove)).await.unwrap();
            let cleaned = docker
                .remove_volume(&volume, None::<RemoveVolumeOptions>)
                .await;
            docker
                .remove_image(&image, None::<RemoveImageOptions>, None)
                .await
                .unwrap();
            assert!(in_use.is_err(), "removing a volume in use reported success");
            cleaned.unwrap();
        });
    }

    #[test]
    fn a_volume_missing_a_tool_or_holding_a_cut_one_is_not_whole() {
        let tools = tempfile::tempdir().unwrap();
        let copy = tempfile::tempdir().unwrap();
        for tool in TOOLS {
            std::fs::write(tools.path().join(tool), b"0123456789").unwrap();
            std::fs::write(copy.path().join(tool), b"0123456789").unwrap();
        }
        assert!(holds_every_tool(copy.path(), tools.path()));
        // Cut short, as a copy killed midway leaves it.
        std::fs::write(copy.path().join(TOOLS[3]), b"01234").unwrap();
        assert!(!holds_every_tool(copy.path(), tools.path()));
        std::fs::remove_file(copy.path().join(TOOLS[3])).unwrap();
        assert!(!holds_every_tool(copy.path(), tools.path()));
    }

    #[test]
    fn fills_of_one_volume_take_turns() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let first = lock_volume(dir.path(), "labctl-tools-x").unwrap();
        let released = Arc::new(AtomicBool::new(false));
        let second = {
            let (dir, released) = (dir.path().to_owned(), released.clone());
            std::thread::spawn(move || {
                let _turn = lock_volume(&dir, "labctl-tools-x").unwrap();
                released.load(Ordering::SeqCst)
            })
        };
        // Another volume's lock is free meanwhile.
        drop(lock_volume(dir.path(), "labctl-tools-y").unwrap());
        std::thread::sleep(std::time::Duration::from_millis(100));
        released.store(true, Ordering::SeqCst);
        drop(first);
        assert!(
            second.join().unwrap(),
            "the second fill went before the first ended"
        );
    }

    fn fake_tools(content: &[u8]) -> (tempfile::TempDir, ToolsDir) {
        let dir = tempfile::tempdir().unwrap();
        for tool in TOOLS {
            std::fs::write(dir.path().join(tool), content).unwrap();
        }
        let tools = ToolsDir::at(dir.path().to_owned()).unwrap();
        (dir, tools)
    }

    #[test]
    fn the_tag_follows_the_tools_content() {
        let (_a, tools_a) = fake_tools(b"one");
        let (_b, tools_b) = fake_tools(b"two");
        let (_c, tools_c) = fake_tools(b"one");
        let hash = |t: &ToolsDir| Context::of(t).hash().unwrap();
        assert_eq!(hash(&tools_a), hash(&tools_c));
        assert_ne!(hash(&tools_a), hash(&tools_b));
        let image = ToolsImage::for_hash(&hash(&tools_a));
        assert!(image.tag.starts_with("labctl-tools:"));
        assert_eq!(image.tag.len(), "labctl-tools:".len() + 12);
    }

    #[test]
    fn the_cached_hash_is_the_hash_until_a_tool_changes() {
        let (dir, tools) = fake_tools(b"one");
        let cache = tempfile::tempdir().unwrap();
        let context = Context::of(&tools);
        let first = context.cached_hash_in(Some(cache.path())).unwrap();
        assert_eq!(first, context.hash().unwrap());
        let entries = std::fs::read_dir(cache.path()).unwrap().count();
        assert_eq!(entries, 1, "one cache file");
        // Unchanged: the cache answers (a corrupted hash in it shows that).
        let file = std::fs::read_dir(cache.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replace(&first, "cached")).unwrap();
        assert_eq!(
            context.cached_hash_in(Some(cache.path())).unwrap(),
            "cached"
        );
        // A tool rebuilt: hashed again, and the cache follows.
        std::fs::write(dir.path().join("lab-ping"), b"a new build").unwrap();
        let second = context.cached_hash_in(Some(cache.path())).unwrap();
        assert_ne!(second, "cached");
        assert_eq!(second, context.hash().unwrap());
        assert_ne!(second, first);
        // No cache directory: the plain hash.
        assert_eq!(context.cached_hash_in(None).unwrap(), second);
    }

    #[test]
    fn the_context_is_a_reproducible_tar_with_every_file() {
        let (_d, tools) = fake_tools(b"binary");
        let context = Context::of(&tools);
        let bytes = context.write_tar(Vec::new()).unwrap();
        assert_eq!(bytes, context.write_tar(Vec::new()).unwrap());
        // What the build streams: the same bytes, from a file no
        // directory names.
        let mut streamed = Vec::new();
        io::Read::read_to_end(&mut context_file(&context).unwrap(), &mut streamed).unwrap();
        assert_eq!(streamed, bytes);
        let mut archive = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        let expected: Vec<&str> = std::iter::once("Dockerfile").chain(TOOLS).collect();
        assert_eq!(names, expected);
    }
}

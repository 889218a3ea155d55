//! Templates: what a new sprite can start from besides the blank base.
//!
//! - The **gallery**: one directory per template under the server's
//!   templates directory (`templates/` of the repository): `template.toml`
//!   (title, description, extra Debian packages, services, the note to
//!   open), `files/` (copied into the root, `files/root/x` to `/root/x`)
//!   and `picture.svg`. Each becomes a recipe, built once into a read-only
//!   image in the background after the server starts, and again when the
//!   recipe (files included) changes. The build's progress is visible in
//!   the listing.
//! - **Saved** templates: a checkpoint of a sprite kept as an image, for
//!   its maker or the whole organization.
//! - **Imported** images: a root file system from a tar archive, checked
//!   entry by entry (see `vmhost::image::import`).
//!
//! Creating a sprite from any of them is one snapshot of its image, as fast
//! as a blank one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use serde::Deserialize;
use sprites_wire::api::{SaveTemplate, Template, TemplateList};
use sprites_wire::SpriteName;
use vmhost::image::{Recipe, RecipeFile};

use crate::db::{is_unique_violation, iso_ms, new_id, now_ms};
use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::AppState;

/// `template.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    title: String,
    description: String,
    /// Place in the gallery, smallest first.
    #[serde(default)]
    order: u32,
    /// `debian` (the default) or `busybox` (tests).
    #[serde(default)]
    base: Option<String>,
    /// Debian packages on top of the base image's.
    #[serde(default)]
    packages: Vec<String>,
    /// The note opened in the editor of a new sprite.
    #[serde(default)]
    open: Option<String>,
    #[serde(default)]
    services: Vec<ServiceManifest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceManifest {
    name: String,
    #[serde(flatten)]
    spec: vmhost::ServiceSpec,
}

/// One template of the gallery.
#[derive(Debug, Clone)]
struct GalleryTemplate {
    name: String,
    title: String,
    description: String,
    open: Option<String>,
    picture: Option<String>,
    recipe: Recipe,
}

impl GalleryTemplate {
    fn image(&self) -> String {
        format!("template-{}", self.name)
    }
}

#[derive(Debug, Clone)]
enum Build {
    Queued,
    Building(String),
    Ready,
    Failed(String),
}

/// The gallery and the state of its builds.
#[derive(Clone, Default)]
pub struct Catalog {
    gallery: Arc<Vec<GalleryTemplate>>,
    builds: Arc<Mutex<HashMap<String, Build>>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.gallery.iter().map(|t| &t.name))
            .finish()
    }
}

impl Catalog {
    /// Reads every template under `dir` (none when it does not exist).
    /// Debian templates use `mirror`, as the base image does.
    pub fn load(dir: &Path, mirror: &str) -> anyhow::Result<Catalog> {
        let mut gallery = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(dir = %dir.display(), "no templates directory: the gallery is empty");
                return Ok(Catalog::default());
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
        };
        for entry in entries {
            let path = entry?.path();
            if path.join("template.toml").is_file() {
                let t = load_one(&path, mirror)
                    .with_context(|| format!("template {}", path.display()))?;
                gallery.push(t);
            }
        }
        gallery.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
        let gallery: Vec<GalleryTemplate> = gallery.into_iter().map(|(_, t)| t).collect();
        let builds = gallery
            .iter()
            .map(|t| (t.name.clone(), Build::Queued))
            .collect();
        Ok(Catalog {
            gallery: Arc::new(gallery),
            builds: Arc::new(Mutex::new(builds)),
        })
    }

    /// Builds the gallery's images one after the other, in the background.
    /// An image already built from the same recipe is ready at once. The
    /// builds run on a thread and runtime of their own, which a server
    /// stopping does not wait for.
    pub fn spawn_builds(&self, host: Arc<dyn vmhost::Verbs>) {
        let catalog = self.clone();
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the gallery's templates");
                return;
            }
        };
        std::thread::spawn(move || runtime.block_on(catalog.build_all(host)));
    }

    /// Builds the gallery's images one after the other.
    async fn build_all(self, host: Arc<dyn vmhost::Verbs>) {
        for t in self.gallery.iter() {
            self.set(&t.name, Build::Building("starting".into()));
            let (shown, name) = (self.clone(), t.name.clone());
            let progress = move |line: &str| {
                tracing::info!(template = %name, "{line}");
                shown.set(&name, Build::Building(line.to_string()));
            };
            let image = t.image();
            match host
                .prepare_image(&image, &t.recipe, Box::new(progress))
                .await
            {
                Ok(_) => self.set(&t.name, Build::Ready),
                Err(e) => {
                    tracing::error!(template = %t.name, error = %e, "cannot build the template");
                    self.set(&t.name, Build::Failed(e.to_string()));
                }
            }
        }
    }

    fn set(&self, name: &str, build: Build) {
        self.builds
            .lock()
            .expect("builds lock")
            .insert(name.into(), build);
    }

    fn build(&self, name: &str) -> Build {
        self.builds
            .lock()
            .expect("builds lock")
            .get(name)
            .cloned()
            .unwrap_or(Build::Queued)
    }

    fn find(&self, name: &str) -> Option<&GalleryTemplate> {
        self.gallery.iter().find(|t| t.name == name)
    }

    /// A gallery template's picture (SVG), if it has one.
    pub fn picture(&self, name: &str) -> Option<String> {
        self.find(name).and_then(|t| t.picture.clone())
    }

    fn view(&self, t: &GalleryTemplate) -> Template {
        let (state, progress, error) = match self.build(&t.name) {
            Build::Queued => ("queued", None, None),
            Build::Building(line) => ("building", Some(line), None),
            Build::Ready => ("ready", None, None),
            Build::Failed(e) => ("failed", None, Some(e)),
        };
        Template {
            name: t.name.clone(),
            title: t.title.clone(),
            description: t.description.clone(),
            kind: "gallery".into(),
            scope: "everyone".into(),
            state: state.into(),
            progress,
            error,
            open: t.open.clone(),
            picture: t
                .picture
                .as_ref()
                .map(|_| format!("/v1/templates/{}/picture", t.name)),
            created_by: None,
            created_at: None,
        }
    }
}

fn load_one(dir: &Path, mirror: &str) -> anyhow::Result<(u32, GalleryTemplate)> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("a template directory's name must be UTF-8")?;
    SpriteName::parse(name).with_context(|| format!("{name:?} is not a valid template name"))?;
    let text = std::fs::read_to_string(dir.join("template.toml"))?;
    let m: Manifest = toml::from_str(&text).context("template.toml")?;
    let mut files = Vec::new();
    let root = dir.join("files");
    if root.is_dir() {
        collect_files(&root, &root, &mut files)?;
    }
    for s in &m.services {
        anyhow::ensure!(
            sprites_wire::services::valid_service_name(&s.name),
            "{:?} is not a valid service name",
            s.name
        );
        files.push(RecipeFile {
            path: format!("{}/{}.json", sprites_wire::services::SERVICES_DIR, s.name),
            mode: 0o644,
            content: serde_json::to_string_pretty(&s.spec)? + "\n",
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let base = match m.base.as_deref().unwrap_or("debian") {
        "debian" => Recipe::debian(mirror),
        "busybox" => {
            anyhow::ensure!(m.packages.is_empty(), "busybox templates take no packages");
            Recipe::busybox()
        }
        other => anyhow::bail!("unknown base {other:?} (debian or busybox)"),
    };
    let picture = match std::fs::read_to_string(dir.join("picture.svg")) {
        Ok(svg) => Some(svg),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    Ok((
        m.order,
        GalleryTemplate {
            name: name.into(),
            title: m.title,
            description: m.description,
            open: m.open,
            picture,
            recipe: base.with(&m.packages, files),
        },
    ))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<RecipeFile>) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path: PathBuf = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_files(root, &path, out)?;
        } else if kind.is_file() {
            let rel = path.strip_prefix(root)?;
            let content = std::fs::read_to_string(&path)
                .with_context(|| format!("{} must be UTF-8 text", path.display()))?;
            let executable = entry.metadata()?.permissions().mode() & 0o111 != 0;
            out.push(RecipeFile {
                path: format!("/{}", rel.display()),
                mode: if executable { 0o755 } else { 0o644 },
                content,
            });
        } else {
            anyhow::bail!("{}: only files and directories", path.display());
        }
    }
    Ok(())
}

/// What a template name resolves to for the caller.
pub struct Resolved {
    pub image: String,
}

/// The image behind template `name` as the caller sees it; a template
/// still building or failed is a conflict with its state in words.
pub async fn resolve(state: &AppState, caller: &Caller, name: &str) -> Result<Resolved, ApiError> {
    if let Some(t) = state.settings.templates.find(name) {
        return match state.settings.templates.build(name) {
            Build::Ready => Ok(Resolved { image: t.image() }),
            Build::Queued => Err(ApiError::Conflict(format!(
                "template {name} is waiting for its turn to be built; try again in a minute"
            ))),
            Build::Building(step) => Err(ApiError::Conflict(format!(
                "template {name} is still being built ({step}); try again in a minute"
            ))),
            Build::Failed(e) => Err(ApiError::Conflict(format!(
                "template {name} could not be built: {e}"
            ))),
        };
    }
    let row = visible(state, caller, name).await?;
    Ok(Resolved { image: row.image })
}

/// A saved or imported template's row.
#[derive(sqlx::FromRow)]
struct TemplateRow {
    id: String,
    /// None: the operator's, for everyone.
    org_id: Option<String>,
    /// None: for the whole organization.
    owner_id: Option<String>,
    created_by: Option<String>,
    name: String,
    title: String,
    description: String,
    kind: String,
    image: String,
    open_path: Option<String>,
    created_at: i64,
}

/// The caller's view of a saved or imported template's row.
async fn visible(state: &AppState, caller: &Caller, name: &str) -> Result<TemplateRow, ApiError> {
    sqlx::query_as(
        "SELECT * FROM templates WHERE name = $1 AND (org_id IS NULL OR (org_id = $2 \
         AND (owner_id IS NULL OR owner_id = $3))) ORDER BY org_id IS NULL LIMIT 1",
    )
    .bind(name)
    .bind(&caller.org_id)
    .bind(&caller.user_id)
    .fetch_optional(state.db.pool())
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("template {name}")))
}

fn row_view(r: TemplateRow) -> Template {
    let scope = match (&r.org_id, &r.owner_id) {
        (None, _) => "everyone",
        (Some(_), None) => "organization",
        (Some(_), Some(_)) => "owner",
    };
    Template {
        name: r.name,
        title: r.title,
        description: r.description,
        kind: r.kind,
        scope: scope.into(),
        state: "ready".into(),
        progress: None,
        error: None,
        open: r.open_path,
        picture: None,
        created_by: r.created_by,
        created_at: Some(iso_ms(r.created_at as u64)),
    }
}

/// The gallery, then what the caller's organization and the operator made.
pub async fn list(state: &AppState, caller: &Caller) -> Result<TemplateList, ApiError> {
    let mut templates: Vec<Template> = state
        .settings
        .templates
        .gallery
        .iter()
        .map(|t| state.settings.templates.view(t))
        .collect();
    let rows: Vec<TemplateRow> = sqlx::query_as(
        "SELECT * FROM templates WHERE org_id IS NULL OR (org_id = $1 \
         AND (owner_id IS NULL OR owner_id = $2)) ORDER BY created_at, name",
    )
    .bind(&caller.org_id)
    .bind(&caller.user_id)
    .fetch_all(state.db.pool())
    .await?;
    templates.extend(rows.into_iter().map(row_view));
    Ok(TemplateList { templates })
}

pub async fn get(state: &AppState, caller: &Caller, name: &str) -> Result<Template, ApiError> {
    if let Some(t) = state.settings.templates.find(name) {
        return Ok(state.settings.templates.view(t));
    }
    Ok(row_view(visible(state, caller, name).await?))
}

/// Checks a new template's name, title and description; returns the title.
fn check_new(
    state: &AppState,
    name: &str,
    title: Option<&str>,
    description: &str,
) -> Result<String, ApiError> {
    SpriteName::parse(name).map_err(|e| ApiError::Invalid(format!("name: {e}")))?;
    if state.settings.templates.find(name).is_some() {
        return Err(ApiError::Conflict(format!(
            "{name} is the name of a template of the gallery; choose another"
        )));
    }
    let title = title
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or(name);
    if title.chars().count() > 80 {
        return Err(ApiError::Invalid("title: at most 80 characters".into()));
    }
    if description.chars().count() > 500 {
        return Err(ApiError::Invalid(
            "description: at most 500 characters".into(),
        ));
    }
    Ok(title.to_string())
}

/// `owner` or `organization`; the latter for the organization's owners and
/// admins only. Returns the row's owner_id.
async fn check_scope(
    state: &AppState,
    caller: &Caller,
    scope: Option<&str>,
) -> Result<Option<String>, ApiError> {
    match scope.unwrap_or("owner") {
        "owner" => Ok(Some(caller.user_id.clone())),
        "organization" => {
            let (_, role) =
                crate::domain::orgs::role_in(&state.db, &caller.user_id, &caller.org_slug).await?;
            if role == "member" {
                return Err(ApiError::Forbidden(
                    "only the organization's owners and admins may share templates with all of it"
                        .into(),
                ));
            }
            Ok(None)
        }
        other => Err(ApiError::Invalid(format!(
            "scope: owner or organization, not {other:?}"
        ))),
    }
}

struct NewRow<'a> {
    org_id: Option<&'a str>,
    owner_id: Option<&'a str>,
    created_by: Option<&'a str>,
    name: &'a str,
    title: &'a str,
    description: &'a str,
    kind: &'a str,
    image: &'a str,
    open: Option<&'a str>,
}

async fn insert(state: &AppState, id: &str, row: NewRow<'_>) -> Result<(), ApiError> {
    let inserted = sqlx::query(
        "INSERT INTO templates (id, org_id, owner_id, created_by, name, title, description, kind, \
         image, open_path, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(id)
    .bind(row.org_id)
    .bind(row.owner_id)
    .bind(row.created_by)
    .bind(row.name)
    .bind(row.title)
    .bind(row.description)
    .bind(row.kind)
    .bind(row.image)
    .bind(row.open)
    .bind(now_ms())
    .execute(state.db.pool())
    .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => Err(ApiError::Conflict(format!(
            "a template named {} exists",
            row.name
        ))),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// A checkpoint of one of the caller's sprites becomes a template.
pub async fn save(
    state: &AppState,
    caller: &Caller,
    req: SaveTemplate,
) -> Result<Template, ApiError> {
    let description = req.description.as_deref().unwrap_or("").trim().to_string();
    let title = check_new(state, &req.name, req.title.as_deref(), &description)?;
    let owner = check_scope(state, caller, req.scope.as_deref()).await?;
    if let Some(open) = &req.open {
        if !open.starts_with('/') || open.len() > 4096 {
            return Err(ApiError::Invalid(
                "open: an absolute path in the sprite".into(),
            ));
        }
    }
    let host = crate::domain::access::host_sprite(state, caller, &req.sprite).await?;
    let checkpoint = req
        .checkpoint
        .parse()
        .map_err(|_| ApiError::NotFound(format!("checkpoint {}", req.checkpoint)))?;
    let id = new_id();
    let image = format!("template-u{}", &id[..15]);
    let by = caller.handle.clone();
    // The row first: its unique name is the lock against a second save.
    insert(
        state,
        &id,
        NewRow {
            org_id: Some(&caller.org_id),
            owner_id: owner.as_deref(),
            created_by: Some(&by),
            name: &req.name,
            title: &title,
            description: &description,
            kind: "checkpoint",
            image: &image,
            open: req.open.as_deref(),
        },
    )
    .await?;
    if let Err(e) = state.host.save_image(&host, checkpoint, &image).await {
        delete_row(state, &id).await?;
        return Err(e.into());
    }
    get(state, caller, &req.name).await
}

/// Where an imported image goes and what it is called.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// Who an import is for: an organization's member (through the API) or
/// everyone (the operator, on the server machine).
pub enum Importer<'a> {
    Member(&'a Caller),
    Operator,
}

/// Imports a root file system (a tar archive, maybe gzipped) read from
/// `archive` as a template named `params.name`.
pub async fn import(
    state: &AppState,
    importer: Importer<'_>,
    params: ImportParams,
    archive: Box<dyn std::io::Read + Send>,
    max_bytes: u64,
) -> Result<Template, ApiError> {
    let description = params
        .description
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_string();
    let title = check_new(state, &params.name, params.title.as_deref(), &description)?;
    let (org, owner, by) = match &importer {
        Importer::Member(caller) => (
            Some(caller.org_id.clone()),
            check_scope(state, caller, params.scope.as_deref()).await?,
            Some(caller.handle.clone()),
        ),
        Importer::Operator => (None, None, None),
    };
    let id = new_id();
    let image = format!("image-{}", &id[..15]);
    insert(
        state,
        &id,
        NewRow {
            org_id: org.as_deref(),
            owner_id: owner.as_deref(),
            created_by: by.as_deref(),
            name: &params.name,
            title: &title,
            description: &description,
            kind: "image",
            image: &image,
            open: None,
        },
    )
    .await?;
    let image_name = image.clone();
    let progress = move |line: &str| tracing::info!(image = %image_name, "{line}");
    let imported = state
        .host
        .import_image(&image, archive, max_bytes, Box::new(progress))
        .await;
    if let Err(e) = imported {
        delete_row(state, &id).await?;
        return Err(e.into());
    }
    let row = sqlx::query_as("SELECT * FROM templates WHERE id = $1")
        .bind(&id)
        .fetch_one(state.db.pool())
        .await?;
    Ok(row_view(row))
}

async fn delete_row(state: &AppState, id: &str) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM templates WHERE id = $1")
        .bind(id)
        .execute(state.db.pool())
        .await?;
    Ok(())
}

/// Deletes a saved or imported template: its maker may, and the
/// organization's owners and admins. Sprites made from it stay.
pub async fn remove(state: &AppState, caller: &Caller, name: &str) -> Result<(), ApiError> {
    if state.settings.templates.find(name).is_some() {
        return Err(ApiError::Forbidden(
            "the gallery's templates come with the server and cannot be deleted".into(),
        ));
    }
    let row = visible(state, caller, name).await?;
    if row.org_id.is_none() {
        return Err(ApiError::Forbidden(
            "the operator's images are deleted on the server machine".into(),
        ));
    }
    if row.owner_id.as_deref() != Some(caller.user_id.as_str()) {
        let (_, role) =
            crate::domain::orgs::role_in(&state.db, &caller.user_id, &caller.org_slug).await?;
        if role == "member" {
            return Err(ApiError::Forbidden(
                "only its maker and the organization's owners and admins may delete it".into(),
            ));
        }
    }
    delete_row(state, &row.id).await?;
    match state.host.remove_image(&row.image).await {
        Ok(()) | Err(vmhost::Error::ImageMissing(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A reader of the archive at `path`, or of a tar archive of the directory
/// at `path` made on the fly (links kept as links, nothing followed). A
/// failure to archive reaches the reader as an error, never as an early
/// end that would pass for a smaller root.
pub fn archive_of(path: &Path) -> anyhow::Result<Box<dyn std::io::Read + Send>> {
    if !path.is_dir() {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        return Ok(Box::new(file));
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(16);
    let dir = path.to_path_buf();
    std::thread::spawn(move || {
        let mut b = tar::Builder::new(ChunkWriter(tx.clone()));
        b.follow_symlinks(false);
        if let Err(e) = b.append_dir_all(".", &dir).and_then(|()| b.finish()) {
            let _ = tx.send(Err(e));
        }
    });
    Ok(Box::new(ChunkReader {
        rx,
        chunk: Vec::new(),
        at: 0,
    }))
}

type Chunk = std::io::Result<Vec<u8>>;

struct ChunkWriter(std::sync::mpsc::SyncSender<Chunk>);

impl std::io::Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .send(Ok(buf.to_vec()))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct ChunkReader {
    rx: std::sync::mpsc::Receiver<Chunk>,
    chunk: Vec<u8>,
    at: usize,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk?;
                    self.at = 0;
                }
                // The writer is gone after finishing the archive.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The repository's gallery: every template reads, in its order, opens
    /// a note it ships, and serves on a declared HTTP port.
    #[test]
    fn the_repositorys_gallery_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
        let catalog = Catalog::load(&dir, "http://deb.debian.org/debian").unwrap();
        let names: Vec<&str> = catalog.gallery.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["website", "docs", "flask", "node"]);
        for t in catalog.gallery.iter() {
            let files = match &t.recipe {
                Recipe::Debian { files, .. } => files,
                other => panic!("{}: not a Debian recipe: {other:?}", t.name),
            };
            let open = t.open.as_deref().expect("a note to open");
            assert!(
                files.iter().any(|f| f.path == open),
                "{}: {open} is not shipped",
                t.name
            );
            let services: Vec<vmhost::ServiceSpec> = files
                .iter()
                .filter(|f| f.path.starts_with(sprites_wire::services::SERVICES_DIR))
                .map(|f| serde_json::from_str(&f.content).unwrap())
                .collect();
            assert!(
                services.iter().any(|s| s.http_port == Some(8080)),
                "{}",
                t.name
            );
            assert!(
                t.picture.as_deref().unwrap().starts_with("<svg"),
                "{}",
                t.name
            );
            assert!(
                !t.picture.as_deref().unwrap().contains("<script"),
                "{}",
                t.name
            );
        }
        // The recipe covers the files: changing one changes the image.
        let website = catalog.find("website").unwrap();
        let mut changed = website.recipe.clone();
        if let Recipe::Debian { files, .. } = &mut changed {
            files[0].content.push('!');
        }
        assert_ne!(changed.hash(100_000), website.recipe.hash(100_000));
    }

    #[test]
    fn a_broken_template_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("bad");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join("template.toml"), "title = \"x\"\ncolour = \"red\"\n").unwrap();
        let err = Catalog::load(dir.path(), "m").unwrap_err();
        assert!(format!("{err:#}").contains("bad"), "{err:#}");
        assert!(format!("{err:#}").contains("colour"), "{err:#}");
    }
}

//! The names of kiln's labels. Labels are for people, `kiln inspect` and `kiln explain`:
//! they never decide which image is which (see [`crate::tags`]), since every image
//! built `FROM` another inherits its labels.

/// The project the image was built for (see [`crate::tags::project_id`]).
pub const PROJECT: &str = "dev.kiln.project";
/// The image's name in the manifest (`api`, `api.prod`).
pub const IMAGE: &str = "dev.kiln.image";
/// The image's input key.
pub const KEY: &str = "dev.kiln.key";
/// The inputs the key was computed from, as JSON (`kiln_build::identity::Inputs::recorded`).
pub const INPUTS: &str = "dev.kiln.inputs";
/// The build time, RFC 3339.
pub const CREATED: &str = "org.opencontainers.image.created";

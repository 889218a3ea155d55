//! The optional configuration file, in TOML, with one key per flag of
//! `sprites-server` (the long name, `-` or `_` alike):
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! data_dir = "/srv/sprites"
//! base_domain = "sprites.example.com"
//! open_signup = true
//! ```
//!
//! Flags win over the environment, which wins over the file. The file is
//! `--config PATH`, else `$SPRITES_CONFIG`, else `/etc/sprites/config.toml`
//! when it exists.

use std::path::{Path, PathBuf};

use anyhow::Context;

pub const DEFAULT_PATH: &str = "/etc/sprites/config.toml";

/// The file named on the command line or in the environment, else the
/// default one if it exists.
pub fn locate(args: &[String]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    if let Some(p) = std::env::var_os("SPRITES_CONFIG") {
        return Some(PathBuf::from(p));
    }
    Path::new(DEFAULT_PATH)
        .is_file()
        .then(|| PathBuf::from(DEFAULT_PATH))
}

/// The environment variables the file at `path` sets: each key becomes the
/// variable of its flag in `cmd`. Unknown keys and values that are tables or
/// arrays are errors that name the file.
pub fn read(path: &Path, cmd: &clap::Command) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}: not valid TOML", path.display()))?;
    let flags: Vec<(String, String)> = cmd
        .get_arguments()
        .filter_map(|a| {
            let env = a.get_env()?.to_str()?.to_string();
            Some((a.get_long()?.replace('-', "_"), env))
        })
        .filter(|(long, _)| long != "config")
        .collect();
    let mut vars = Vec::new();
    for (key, value) in table {
        let Some((_, env)) = flags
            .iter()
            .find(|(long, _)| *long == key.replace('-', "_"))
        else {
            let known: Vec<&str> = flags.iter().map(|(l, _)| l.as_str()).collect();
            anyhow::bail!(
                "{}: unknown setting {key:?}; the settings are {}",
                path.display(),
                known.join(", ")
            );
        };
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => anyhow::bail!(
                "{}: {key} must be a string, number or boolean, not {}",
                path.display(),
                other.type_str()
            ),
        };
        vars.push((env.clone(), value));
    }
    Ok(vars)
}

/// Sets the file's variables that the environment does not already set.
/// Call before any thread starts.
pub fn apply(path: &Path, cmd: &clap::Command) -> anyhow::Result<()> {
    for (var, value) in read(path, cmd)? {
        if std::env::var_os(&var).is_none() {
            std::env::set_var(var, value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction, Command};

    fn cmd() -> Command {
        Command::new("t")
            .arg(Arg::new("listen").long("listen").env("T_LISTEN"))
            .arg(Arg::new("data-dir").long("data-dir").env("T_DATA_DIR"))
            .arg(
                Arg::new("open-signup")
                    .long("open-signup")
                    .env("T_OPEN_SIGNUP")
                    .action(ArgAction::SetTrue),
            )
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn keys_become_the_variables_of_their_flags() {
        let f = file("listen = \"127.0.0.1:9\"\ndata-dir = \"/srv\"\nopen_signup = true\n");
        let mut vars = read(f.path(), &cmd()).unwrap();
        vars.sort();
        assert_eq!(
            vars,
            [
                ("T_DATA_DIR".to_string(), "/srv".to_string()),
                ("T_LISTEN".to_string(), "127.0.0.1:9".to_string()),
                ("T_OPEN_SIGNUP".to_string(), "true".to_string()),
            ]
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = read(file("lisen = \"x\"").path(), &cmd()).unwrap_err();
        assert!(e.to_string().contains("unknown setting \"lisen\""), "{e}");
        assert!(e.to_string().contains("listen, data_dir"), "{e}");
        let e = read(file("listen = [1]").path(), &cmd()).unwrap_err();
        assert!(e.to_string().contains("must be a string"), "{e}");
        let e = read(file("listen = ").path(), &cmd()).unwrap_err();
        assert!(format!("{e:#}").contains("not valid TOML"), "{e}");
    }

    #[test]
    fn the_command_line_names_the_file() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            locate(&args(&["s", "--config", "/a.toml"])),
            Some(PathBuf::from("/a.toml"))
        );
        assert_eq!(
            locate(&args(&["s", "--config=/b.toml", "serve"])),
            Some(PathBuf::from("/b.toml"))
        );
    }
}

//! What every command shares: the API, whether JSON was asked for, the
//! sprite to act on, and how answers and progress are shown.

use serde::de::DeserializeOwned;
use sprites_wire::api::Progress;
use sprites_wire::client::Call;

use crate::api::Api;
use crate::config::{self, Config};

/// A command's context.
pub struct Ctx {
    pub api: Api,
    pub cfg: Config,
    /// Print JSON as the server sent it instead of text.
    pub json: bool,
    sprite: Option<String>,
}

impl Ctx {
    pub fn new(cfg: Config, json: bool, sprite: Option<String>) -> Ctx {
        Ctx {
            api: Api::new(&cfg.url, &cfg.token),
            cfg,
            json,
            sprite,
        }
    }

    /// The sprite to act on: `-s NAME`, else the one `sprite use` chose here.
    pub fn sprite(&self) -> anyhow::Result<String> {
        self.sprite
            .clone()
            .or_else(config::current_sprite)
            .ok_or_else(|| anyhow::anyhow!("which sprite? give -s NAME or run `sprite use NAME`"))
    }

    /// Sends `call` and prints its answer: JSON as the server sent it, or
    /// the text `text` makes of it.
    pub async fn show<A: DeserializeOwned>(
        &self,
        call: Call<A>,
        text: impl FnOnce(A) -> String,
    ) -> anyhow::Result<()> {
        self.show_while("", call, text).await
    }

    /// Like [`Ctx::show`], with a spinner saying `message` while it waits.
    pub async fn show_while<A: DeserializeOwned>(
        &self,
        message: &str,
        call: Call<A>,
        text: impl FnOnce(A) -> String,
    ) -> anyhow::Result<()> {
        let spinner = Spinner::start(self.json || message.is_empty(), message);
        let v = self.api.value(&call).await?;
        drop(spinner);
        if self.json {
            println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
        } else {
            let typed = call.read_value(v).map_err(|e| {
                anyhow::anyhow!("the server's answer is not what was expected: {e}")
            })?;
            println!("{}", text(typed));
        }
        Ok(())
    }

    /// Sends `call` under a spinner saying `message`; its answer, typed.
    pub async fn run_while<A: DeserializeOwned>(
        &self,
        message: &str,
        call: Call<A>,
    ) -> anyhow::Result<A> {
        let _spinner = Spinner::start(self.json, message);
        self.api.run(&call).await
    }

    /// Prints `text` unless JSON was asked for.
    pub fn say(&self, text: impl std::fmt::Display) {
        if !self.json {
            println!("{text}");
        }
    }

    /// Sends a call answered with NDJSON progress, showing each step on the
    /// spinner (or each line, with --json); fails on an error line.
    pub async fn progress(
        &self,
        message: &str,
        call: Call<Progress>,
    ) -> anyhow::Result<Vec<Progress>> {
        let spinner = Spinner::start(self.json, message);
        let lines = self
            .api
            .lines(&call, |raw, line| {
                if self.json {
                    println!("{raw}");
                } else if !matches!(line, Progress::Complete { .. } | Progress::Error { .. }) {
                    spinner.say(line.words());
                }
            })
            .await?;
        drop(spinner);
        if let Some(Progress::Error { error }) =
            lines.iter().find(|l| matches!(l, Progress::Error { .. }))
        {
            anyhow::bail!("{error}");
        }
        Ok(lines)
    }
}

/// One line a row, or `empty` when there are none.
pub fn lines_or(rows: &[String], empty: &str) -> String {
    if rows.is_empty() {
        empty.to_string()
    } else {
        rows.join("\n")
    }
}

/// A spinner on stderr while something slow happens, when a person
/// watches (stderr is a terminal) and no JSON was asked for.
pub struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    pub fn start(quiet: bool, message: impl Into<String>) -> Spinner {
        use std::io::IsTerminal;
        if quiet || !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let bar = indicatif::ProgressBar::new_spinner().with_message(message.into());
        bar.enable_steady_tick(std::time::Duration::from_millis(80));
        Spinner(Some(bar))
    }

    fn say(&self, message: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(message.to_string());
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

pub fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `90`, `90s`, `30m`, `2h`, `1d` in seconds.
pub fn parse_duration(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("{text:?}: a duration like 90s, 30m, 2h or 1d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => anyhow::bail!("{text:?}: a duration like 90s, 30m, 2h or 1d"),
    };
    Ok(n * scale)
}

/// `NAME=VALUE` pairs, as `--env` gives them.
pub fn env_pairs(env: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    env.iter()
        .map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("--env {e:?}: use NAME=VALUE"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_print_as_people_write_them() {
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert_eq!(parse_duration("30m").unwrap(), 1800);
        assert!(parse_duration("2 weeks").is_err());
        assert_eq!(duration(3725), "1h 02m");
    }
}
